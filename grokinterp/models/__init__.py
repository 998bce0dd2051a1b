"""Model families: a run's architecture is `RunConfig.model`, one module per family.

Adding a family is one module with an `Architecture` subclass, one entry in `FAMILIES`, and its
name among the choices of `RunConfig.model` (with the model fields it alone reads declaring it in
their `only_with`); training, storage, analysis and the report use only the `Architecture`
interface. The config validates its own fields (`grokinterp.config.FIELDS`); `foreign_fields`
(the fields a family never reads) is the config's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from grokinterp.config import foreign_fields
from grokinterp.errors import UsageError
from grokinterp.models.base import Architecture, Internals
from grokinterp.models.mlp import MLP
from grokinterp.models.transformer import Transformer

if TYPE_CHECKING:
    from grokinterp.config import RunConfig

FAMILIES: dict[str, type[Architecture]] = {"transformer": Transformer, "mlp": MLP}

__all__ = [
    "FAMILIES",
    "Architecture",
    "Internals",
    "architecture",
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
