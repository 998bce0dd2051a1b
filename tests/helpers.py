"""Builders shared by tests and benchmarks."""

from __future__ import annotations

from torch import Tensor

from grokinterp.config import RunConfig
from grokinterp.models import architecture


def initial_state(cfg: RunConfig) -> dict[str, Tensor]:
    """The complete state dict (parameters and buffers) of the run's initial weights."""
    model = architecture(cfg)
    return model.state_dict_of(model.init_params())
