"""Weight-norm controls, applied after the optimiser (batched: a leading run axis)."""

from __future__ import annotations

import torch
from torch import Tensor


def total_norm(params: dict[str, Tensor], names) -> Tensor:
    """Per run, sqrt of the sum of squares over the named parameters (float64) [run]."""
    squares = sum(params[name].double().pow(2).flatten(1).sum(dim=1) for name in names)
    return squares.sqrt()


def fix_norm_(params: dict[str, Tensor], names, target: float) -> None:
    """Omnigrok (Liu et al. 2023): scale every run's named parameters by one factor so that
    their total L2 norm is `target` (the factor computed in float64)."""
    factor = target / total_norm(params, names)
    for name in names:
        param = params[name]
        param.mul_(factor.to(param.dtype).view((-1,) + (1,) * (param.dim() - 1)))


def matrices(params: dict[str, Tensor], names) -> list[str]:
    """The named parameters that are matrices or stacks of them (2+ axes besides the run's)."""
    return [name for name in names if params[name].dim() >= 3]


def cap_norms_(params: dict[str, Tensor], limits: dict[str, Tensor]) -> None:
    """A downward-only cap: each run's parameter `name` of L2 norm above limits[name][run]
    (float64 [run]) is scaled down to it; one below is left alone."""
    for name, limit in limits.items():
        param = params[name]
        norm = param.double().flatten(1).norm(dim=1)
        factor = torch.clamp(limit / norm, max=1.0)
        param.mul_(factor.to(param.dtype).view((-1,) + (1,) * (param.dim() - 1)))
