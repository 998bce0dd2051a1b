"""Model families: a run's architecture is `RunConfig.model`, one module per family.

Adding a family is one module with an `Architecture` subclass plus one entry in `FAMILIES`;
training, storage, analysis and the report use only the `Architecture` interface. `RunConfig`
appears in this package's annotations only and is never imported (as in
`grokinterp.training.recipe`), so `RunConfig.validate` may call `validate` here without an import
cycle.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import TYPE_CHECKING

from grokinterp.errors import UsageError
from grokinterp.models.base import Architecture, Internals
from grokinterp.models.layers import ACTIVATIONS, ATTENTION_RULES
from grokinterp.models.mlp import COMBINES, EMBEDDINGS, MLP
from grokinterp.models.transformer import LAYER_NORMS, MAX_LAYERS, Transformer

if TYPE_CHECKING:
    from grokinterp.config import RunConfig

FAMILIES: dict[str, type[Architecture]] = {"transformer": Transformer, "mlp": MLP}

__all__ = [
    "FAMILIES",
    "Architecture",
    "Internals",
    "architecture",
    "check_fields",
    "foreign_fields",
]


def architecture(cfg: RunConfig) -> Architecture:
    """The run's model (its family's `Architecture` for this config)."""
    try:
        return FAMILIES[cfg.model](cfg)
    except KeyError:
        raise UsageError(
            f"unknown model {cfg.model!r}; choose one of {', '.join(FAMILIES)}"
        ) from None


def foreign_fields(family: str) -> set[str]:
    """The architecture fields (RunConfig names) of other families that `family` never reads."""
    known = set().union(*(f.fields for f in FAMILIES.values()))
    return known - set(FAMILIES[family].fields)


def check_fields(family: str, given: set[str]) -> None:
    """Refuse architecture fields (RunConfig names) that `family` has no part for."""
    if family not in FAMILIES:
        raise UsageError(f"unknown model {family!r}; choose one of {', '.join(FAMILIES)}")
    foreign = sorted(given & foreign_fields(family))
    if foreign:
        flags = ", ".join(f"{name} (--{name.replace('_', '-')})" for name in foreign)
        raise UsageError(f"model {family} has no part for {flags}")


def validate(cfg: RunConfig) -> None:
    """Raise UsageError for an invalid architecture setting (called by `RunConfig.validate`)."""
    known = set().union(*(family.fields for family in FAMILIES.values()))
    defaults = {f.name: f.default for f in fields(cfg) if f.default is not MISSING}
    changed = {name for name in known & set(defaults) if getattr(cfg, name) != defaults[name]}
    check_fields(cfg.model, changed)
    if not 1 <= cfg.n_layers <= MAX_LAYERS:
        raise UsageError(f"n_layers must lie in 1..{MAX_LAYERS}, got {cfg.n_layers}")
    if not 0.0 <= cfg.attention_rate <= 1.0:
        raise UsageError(f"attention_rate must lie in [0, 1], got {cfg.attention_rate}")
    for name, choices in (
        ("attention_rule", ATTENTION_RULES),
        ("activation", ACTIVATIONS),
        ("layer_norm", LAYER_NORMS),
        ("embedding", EMBEDDINGS),
        ("combine", COMBINES),
    ):
        if getattr(cfg, name) not in choices:
            raise UsageError(
                f"unknown {name} {getattr(cfg, name)!r}; choose one of {', '.join(choices)}"
            )
    taken = FAMILIES[cfg.model].input_formats
    if cfg.input_format not in taken:
        raise UsageError(
            f"model {cfg.model} does not take input_format {cfg.input_format!r} (--input-format); "
            f"it takes {', '.join(taken)}"
        )
