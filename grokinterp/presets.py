"""The presets: the only place where concrete hyperparameters of a run appear. A run starts
from one (`preset`) and overrides any field; `RunConfig.preset` records its name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

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


def power_batch_size(cfg: RunConfig) -> int:
    """Power et al.'s (2022) automatic minibatch size (their `--batchsize 0`, the default):
    min(512, ceil(n_train / 2)) pairs (openai/grok, grok/data.py,
    `ArithmeticIterator.calculate_batchsize`)."""
    return min(512, math.ceil(cfg.n_train / 2))


# Power et al. (2022), "Grokking: generalization beyond overfitting on small algorithmic
# datasets", from their code, openai/grok at 3d64b1d (files grok/data.py, grok/training.py,
# grok/transformer.py), at the setting of their Fig. 1 (x / y mod 97, 50% of the equations).
# Stated differences from their code:
# - input: grokinterp writes [a, op, b, =] and scores the answer c at `=` against the 97
#   elements; theirs is `<eos> a op b = c` (tokens[:-1] of `<eos> a op b = c <eos>`, vocabulary
#   of 239 tokens: two symbols, the operators, 0..96 and 120 S5 permutations), with logits over
#   all 239 tokens and a loss that also scores the final `<eos>` (predicted at c).
# - warm-up: step s (0-based) has lr 1e-3 * min((s + 1) / 10, 1) here; theirs min(s / 10, 1)
#   (their first step has lr 0).
# - weight decay 1 is the paper's AdamW intervention (Fig. 2); their code's default is 0.
# - the split: theirs shuffles once with numpy's RandomState(0) and trains on round(N * frac)
#   equations; here data_seed draws it and int(N * frac) train (equal at 0.5: 4,656).
# - epochs: their budget is 10^5 optimiser steps (`--max_steps`); 10,000 epochs of
#   ceil(4,656 / 512) = 10 steps at this training fraction.
_POWER_2022 = _CANONICAL.replace(
    preset="power2022",
    p=97,  # data.py: MODULUS = 97, numbers 0..96
    operation="div",  # Fig. 1: x / y; data.py: every a in 0..96, b in 1..96, as grokinterp's div
    train_frac=0.5,  # Fig. 1 (left): 50% of the 9,312 equations train
    input_format="a-op-b-eq",  # data.py: `a op b =`, the answer c read at `=` (see above)
    n_layers=2,  # training.py: --n_layers 2
    d_model=128,  # training.py: --d_model 128
    n_heads=4,  # training.py: --n_heads 4, so d_head = 128 / 4 = 32 (transformer.py)
    d_mlp=512,  # transformer.py FFN: d_ff = multiplier (4) * d_model
    activation="relu",  # training.py: --non_linearity relu
    layer_norm="post",  # transformer.py DecoderBlock: x = LN(x + attn(x)); LN(x + ffn(x))
    positional="sinusoidal",  # transformer.py _position_encoding, a buffer, not learned
    biases="none",  # transformer.py: every Linear has bias=False; only the LayerNorms have one
    init="pytorch",  # transformer.py has no init code: nn.Embedding, nn.Linear defaults
    lr=1e-3,  # training.py: --max_lr 1e-3
    weight_decay=1.0,  # the paper's AdamW, weight decay 1 (Fig. 2); decoupled, every parameter
    beta1=0.9,  # training.py configure_optimizers: betas=(0.9, 0.98)
    beta2=0.98,
    adam_eps=1e-8,  # training.py configure_optimizers: eps=1e-8
    warmup_steps=10,  # training.py: --warmup_steps 10, linear (see above)
    batch_size=512,  # power_batch_size at train_frac 0.5, re-derived for any other (`resolve`)
    epochs=10_000,  # training.py: --max_steps 100000 (see above)
    save_every=100,
    seed=0,
    data_seed=0,
)

# Chughtai, Chan, Nanda (ICML 2023), "A Toy Model of Universality": their OneLayerMLP
# (bilal-chughtai/rep-theory-mech-interp, rep_theory/utils/models.py) and its training
# (train_with_checkpoints.py, batch_experiments/S5_MLP_seed*/cfg.json).
_CHUGHTAI = RunConfig(
    preset="chughtai2023",
    p=113,  # never read: a group task (`group` below)
    group="S5",  # their main group, SymmetricGroup(5)
    operation="compose",  # x * y for all |G|^2 ordered pairs
    train_frac=0.4,  # S5 cfg.json frac_train
    input_format="a-b",  # two ids (x, y), no `=` token
    model="mlp",  # OneLayerMLP
    embedding="separate",  # W_x and W_y
    combine="concat",  # hstack(W_x[x], W_y[y]) @ W
    d_model=256,  # cfg.json layers.embed_dim
    d_mlp=128,  # cfg.json layers.hidden_dim
    n_heads=4,  # never read by an mlp
    activation="relu",  # nn.ReLU
    first_bias="none",  # OneLayerMLP has no biases
    init="paper",  # randn / sqrt(fan-in): W_x, W_y / sqrt(256), W / sqrt(512), W_U / sqrt(128)
    optimizer="adamw",  # torch.optim.AdamW on all parameters
    lr=1e-3,  # cfg.json lr
    weight_decay=1.0,  # cfg.json weight_decay
    beta1=0.9,  # betas=(0.9, 0.98)
    beta2=0.98,
    adam_eps=1e-8,  # torch's default eps
    warmup_steps=1,  # no schedule: the full lr from the first step
    epochs=250_000,  # cfg.json num_epochs; full batch, one step per epoch
    save_every=250,  # 1,001 evenly spaced checkpoints; theirs are 1,000 log-spaced epochs
    seed=1,  # seeds 1..4 in the paper's tables
    data_seed=1,  # they split with the run's seed too
)

CHUGHTAI_TRAIN_FRACS = {"S5": 0.4, "A5": 0.5, "Z113": 0.3, "Z118": 0.3, "D59": 0.3, "D61": 0.3}
"""The training fraction of each group of Chughtai et al.'s MLP runs (batch_experiments/
<group>_MLP_seed1/cfg.json frac_train; their C_n is Z<n>, their D_n of order 2n is D<n>); S6
(0.25) lies beyond the symmetric groups grokinterp builds. A group outside the table keeps S5's
0.4."""

# devinterp's grokking example (timaeus-research/devinterp, examples/grokking.ipynb, cells 3-5:
# ExperimentParams, MLP, train).
_DEVINTERP = RunConfig(
    preset="devinterp-grokking",
    p=53,  # ExperimentParams.p
    operation="add",  # (a + b) % p over all p^2 pairs
    train_frac=0.4,  # train_frac: int(0.4 * 2809) = 1123 training pairs
    input_format="a-b",  # x[..., 0], x[..., 1], no `=` token
    model="mlp",
    embedding="shared",  # one nn.Embedding(p, embed_dim) for a and b
    combine="concat",  # linear1l(e_a) + linear1r(e_b) = [e_a, e_b] @ [W_l^T; W_r^T]
    d_model=12,  # embed_dim
    d_mlp=48,  # hidden_size
    n_heads=4,  # never read by an mlp
    activation="gelu",  # nn.GELU(), the exact erf form
    first_bias="per-operand",  # linear1l and linear1r have bias=True; linear2 has none
    init="pytorch",  # PyTorch's default init of nn.Embedding and nn.Linear
    optimizer="adam",  # torch.optim.Adam, weight decay as coupled L2
    lr=5e-3,  # lr
    weight_decay=2e-4,  # weight_decay
    beta1=0.9,  # torch's default betas (0.9, 0.999)
    beta2=0.999,
    adam_eps=1e-8,  # torch's default eps
    warmup_steps=1,  # no schedule
    batch_size=128,  # batch_size
    batch_sampling="independent",  # next(iter(DataLoader(shuffle=True))) every step
    epochs=25_000,  # n_batches: optimiser steps
    save_every=250,  # n_batches // n_save_model_checkpoints = 250 (100 checkpoints)
    seed=0,  # random_seed
    # the split: grokinterp's rule (torch.randperm seeded by data_seed); theirs is
    # random.shuffle(seed) of the pairs in a Python set's order, another 40% subset
    data_seed=0,
)

DEVINTERP_LLC = {
    "lr": 3e-3,  # SGLD lr (epsilon), cell 21
    "localization": 5.0,  # gamma
    "nbeta": 2.0,
    "chains": 1,  # num_chains=2 is set but never passed: devinterp's default 1 chain
    "draws": 500,  # num_draws
    "burnin": 0,  # num_burnin_steps, devinterp's default
    "batch_size": 128,  # DataLoader(train_data, batch_size=128, shuffle=True)
}
"""The SGLD settings of devinterp's per-checkpoint LLC estimates (examples/grokking.ipynb, cells
17 and 21), as `grokinterp.analysis.llc.LLCSettings` fields: a reproduction of the example
estimates the LLC of each checkpoint with them."""

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
    # Groks on a 2-core CPU in under a minute (docs/results.md, "the small preset").
    "small": _CANONICAL.replace(
        preset="small", p=59, d_model=64, d_mlp=256, lr=1e-2, epochs=4_000, save_every=50
    ),
    "power2022": _POWER_2022,
    "chughtai2023": _CHUGHTAI,
    "devinterp-grokking": _DEVINTERP,
    # the papers' settings (`grokinterp reproduce`): Nanda et al.'s is the canonical run
    "nanda2023": _CANONICAL.replace(preset="nanda2023"),
    "zhong2023": _ZHONG,
}

DERIVED: dict[str, dict[str, Callable[[RunConfig], Any]]] = {
    "power2022": {"batch_size": power_batch_size},
}
"""Preset name -> {field: the rule that derives it from the run's other fields}, applied by
`resolve` where the field is not given (Power et al.'s batch size follows the training set)."""

PAPER_MODEL = tuple(f.name for f in FIELDS.values() if f.section == "model") + ("init",)
"""The fields that make a paper's model: a preset of `PAPER_PRESETS` refuses other values."""

PAPER_PRESETS = ("power2022", "chughtai2023", "devinterp-grokking")
"""The presets that are a paper's model at its setting: its architecture and init are fixed
(`PAPER_MODEL`); the task, data, optimiser and budget may change."""

# Chughtai et al. (ICML 2023), their code's `rep_theory/batch_experiments/*_MLP_*/cfg.json`:
# embeddings of a and b of width 256 each, concatenated, 128 ReLU neurons, AdamW lr 1e-3, weight
# decay 1; they train 250,000 epochs (docs/results.md, "the group study with Chughtai et al.'s
# MLP": S4 at 70% groks by epoch 9,100 in four seeds).
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
    # (docs/results.md, "finite groups at the group presets").
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
    part for back to their defaults (a transformer has no `embedding`). A paper's preset
    (`PAPER_PRESETS`) keeps its model and task kind: `chughtai2023` takes any group (its
    training fraction from `CHUGHTAI_TRAIN_FRACS`), the others none. UsageError for an unknown
    name, or a group or model that contradicts the paper's."""
    if name in PAPER_PRESETS:
        return _paper_preset(name, group, model)
    table = PRESETS if group is None else GROUP_PRESETS
    try:
        cfg = table[name]
    except KeyError:
        kind = "" if group is None else " for a --group run"
        raise UsageError(
            f"unknown preset {name!r}{kind}; choose one of {', '.join(table)}"
        ) from None
    if group is not None:
        cfg = cfg.replace(group=group)
    if model is not None and model != cfg.model:
        foreign = foreign_fields(model) if model in FIELDS["model"].choices else set()
        reset = {k: FIELDS[k].default for k in foreign if FIELDS[k].sparse}
        cfg = cfg.replace(model=model, **reset)  # an unknown family is refused by `validate`
    return cfg


def _paper_preset(name: str, group: str | None, model: str | None) -> RunConfig:
    cfg = PRESETS[name]
    check_paper_model(cfg, {} if model is None else {"model": model})
    if group is None:
        return cfg
    if cfg.group is None:
        raise UsageError(f"preset {name} is arithmetic mod {cfg.p}; it takes no --group")
    return cfg.replace(group=group, train_frac=CHUGHTAI_TRAIN_FRACS.get(group, cfg.train_frac))


def check_paper_model(cfg: RunConfig, given: dict[str, Any]) -> None:
    """UsageError (one line) when a value `given` ({field: value}) to a `PAPER_MODEL` field of a
    `PAPER_PRESETS` preset differs from the paper's; nothing to check for other presets."""
    if cfg.preset not in PAPER_PRESETS:
        return
    paper = PRESETS[cfg.preset]
    for name, value in given.items():
        if name in PAPER_MODEL and value != getattr(paper, name):
            raise UsageError(
                f"{FIELDS[name].flag} {value} contradicts preset {cfg.preset}, the paper's "
                f"model ({name} {getattr(paper, name)}); start from another preset to change "
                "the model"
            )


def resolve(cfg: RunConfig, given: dict[str, Any]) -> RunConfig:
    """`cfg`, a preset under the values `given` by the user (flags, a sweep's values), with the
    preset's `DERIVED` fields that are not given derived again from the run's own fields (Power
    et al.'s batch size from n_train). UsageError, before anything is written, for a value
    given to a `PAPER_MODEL` field of a `PAPER_PRESETS` preset that differs from the paper's,
    or for an invalid config."""
    check_paper_model(cfg, given)
    rules = {k: rule for k, rule in DERIVED.get(cfg.preset, {}).items() if k not in given}
    if not rules:
        return cfg
    cfg.replace(**{k: FIELDS[k].default for k in rules}).validate()  # what the rules read
    return cfg.replace(**{k: rule(cfg) for k, rule in rules.items()})
