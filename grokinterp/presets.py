"""The presets: the only place where concrete hyperparameters of a run appear. A run starts
from one (`preset`) and overrides any field; `RunConfig.preset` records its name.
"""

from __future__ import annotations

from grokinterp.config import FIELDS, RunConfig, foreign_fields
from grokinterp.errors import UsageError

# Nanda et al. (ICLR 2023), the canonical grokking run: see shared REFERENCE.md.
_CANONICAL = RunConfig(
    preset="canonical",
    p=113,  # the canonical preset
    train_frac=0.3,
    d_model=128,
    n_heads=4,
    d_mlp=512,
    init="paper",
    lr=1e-3,
    weight_decay=1.0,
    beta1=0.9,
    beta2=0.98,
    warmup_steps=10,
    epochs=40_000,
    save_every=100,
    seed=0,
    data_seed=0,
)

# Zhong, Liu, Tegmark, Andreas (NeurIPS 2023), "The Clock and the Pizza": their code's
# `code/train-main.py` (fjzzq2002/pizza), one-layer runs with eqn_sign = diff_vocab = 0: inputs
# [a, b] mod 59, d_model 128, 4 heads, d_mlp 4 d_model, ReLU, no LayerNorm, AdamW lr 1e-3 betas
# (0.9, 0.98) weight decay 2, 10 warm-up steps, full batch, 20,000 epochs, train fraction 0.8.
# They draw attn_coeff ~ U(0, 1) per run; the preset holds 1 (learned attention, the clock end).
# They keep only the final model; a checkpoint every 200 epochs here.
_ZHONG = _CANONICAL.replace(
    preset="zhong2023",
    p=59,
    train_frac=0.8,
    input_format="a-b",
    init="zhong",
    weight_decay=2.0,
    epochs=20_000,
    save_every=200,
    attention_rate=1.0,
)

PRESETS: dict[str, RunConfig] = {
    "canonical": _CANONICAL,
    # Groks on a 2-core CPU in under a minute (measured numbers in the README).
    "small": _CANONICAL.replace(
        preset="small", p=59, d_model=64, d_mlp=256, lr=1e-2, epochs=4_000, save_every=50
    ),
    # the papers' settings (`grokinterp reproduce`): Nanda et al.'s is the canonical run
    "nanda2023": _CANONICAL.replace(preset="nanda2023"),
    "zhong2023": _ZHONG,
}

# Chughtai et al. (ICML 2023), their code's `rep_theory/batch_experiments/*_MLP_*/cfg.json`:
# embeddings of a and b of width 256 each, concatenated, 128 ReLU neurons, AdamW lr 1e-3, weight
# decay 1; they train 250,000 epochs (the README's MLP group study: S4 at 70% groks by epoch 9,100
# in four seeds).
_GROUP_CANONICAL = _CANONICAL.replace(
    operation="compose",
    train_frac=0.7,
    model="mlp",
    embedding="separate",
    d_model=256,
    d_mlp=128,
    epochs=25_000,
    save_every=250,
)

GROUP_PRESETS: dict[str, RunConfig] = {
    "canonical": _GROUP_CANONICAL,
    # The same MLP at lr 1e-2 and weight decay 3: S4 groks on a 2-core CPU in a few minutes
    # (measured numbers in the README, "Finite groups").
    "small": _GROUP_CANONICAL.replace(
        preset="small", p=59, lr=1e-2, weight_decay=3.0, epochs=2_000, save_every=50
    ),
}
"""The presets of a finite-group run (`group` set, which the preset leaves to the caller): the
task kind needs a larger training fraction and other settings than arithmetic mod p; `p` keeps
the modular preset's value (validated, never read). Same names as `PRESETS`."""

DEFAULT_PRESET = "small"


def preset(name: str, group: str | None = None, model: str | None = None) -> RunConfig:
    """The preset `name` for the task kind: arithmetic mod p (`group` None, `PRESETS`) or
    composition in `group` (`GROUP_PRESETS`, with `group` set). `model`, when it names another
    family than the preset's, switches to it and puts the architecture fields that family has no
    part for back to their defaults (a transformer has no `embedding`). UsageError for an
    unknown name."""
    table = PRESETS if group is None else GROUP_PRESETS
    try:
        cfg = table[name]
    except KeyError:
        raise UsageError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
    if group is not None:
        cfg = cfg.replace(group=group)
    if model is not None and model != cfg.model:
        foreign = foreign_fields(model) if model in FIELDS["model"].choices else set()
        reset = {k: FIELDS[k].default for k in foreign if FIELDS[k].sparse}
        cfg = cfg.replace(model=model, **reset)  # an unknown family is refused by `validate`
    return cfg
