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

PRESETS: dict[str, RunConfig] = {
    "canonical": _CANONICAL,
    # Groks on a 2-core CPU in under a minute (measured numbers in the README).
    "small": _CANONICAL.replace(
        preset="small", p=59, d_model=64, d_mlp=256, lr=1e-2, epochs=4_000, save_every=50
    ),
    "power2022": _POWER_2022,
}

DERIVED: dict[str, dict[str, Callable[[RunConfig], Any]]] = {
    "power2022": {"batch_size": power_batch_size},
}
"""Preset name -> {field: the rule that derives it from the run's other fields}, applied by
`resolve` where the field is not given (Power et al.'s batch size follows the training set)."""

PAPER_MODEL = tuple(f.name for f in FIELDS.values() if f.section == "model") + ("init",)
"""The fields that make a paper's model: a preset of `PAPER_PRESETS` refuses other values."""

PAPER_PRESETS = ("power2022",)
"""The presets that are a paper's model at its setting: its architecture and init are fixed
(`PAPER_MODEL`); the task, data, optimiser and budget may change."""

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


def resolve(cfg: RunConfig, given: dict[str, Any]) -> RunConfig:
    """`cfg`, a preset under the values `given` by the user (flags, a sweep's values), with the
    preset's `DERIVED` fields that are not given derived again from the run's own fields (Power
    et al.'s batch size from n_train). UsageError, before anything is written, for a value
    given to a `PAPER_MODEL` field of a `PAPER_PRESETS` preset that differs from the paper's,
    or for an invalid config."""
    if cfg.preset in PAPER_PRESETS:
        paper = PRESETS[cfg.preset]
        for name, value in given.items():
            if name in PAPER_MODEL and value != getattr(paper, name):
                raise UsageError(
                    f"{FIELDS[name].flag} {value} contradicts preset {cfg.preset}, the paper's "
                    f"model ({name} {getattr(paper, name)}); start from another preset to change "
                    "the model"
                )
    rules = {k: rule for k, rule in DERIVED.get(cfg.preset, {}).items() if k not in given}
    if not rules:
        return cfg
    cfg.replace(**{k: FIELDS[k].default for k in rules}).validate()  # what the rules read
    return cfg.replace(**{k: rule(cfg) for k, rule in rules.items()})
