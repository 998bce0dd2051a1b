"""Float precision of the training forward (softmax collapse depends on it: Prieto et al. 2025)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from grokinterp.errors import UsageError

PRECISIONS = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}

Logits = Callable[[dict[str, Tensor], Tensor, Tensor], Tensor]


def check_device(precision: str, device: torch.device) -> None:
    """Refuse bfloat16 on a CUDA device without it (CPUs compute bfloat16 in software)."""
    if precision == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UsageError("precision bfloat16 asked for, but this CUDA device has no bfloat16")


def in_precision(logits: Logits, precision: str) -> Logits:
    """`logits` computed with every parameter cast to `precision` (the float32 weights get the
    gradient of the cast, i.e. the gradient in that precision, rounded to float32); float32:
    `logits` itself."""
    if precision == "float32":
        return logits
    dtype = PRECISIONS[precision]

    def cast(params: dict[str, Tensor], a: Tensor, b: Tensor) -> Tensor:
        return logits({name: t.to(dtype) for name, t in params.items()}, a, b)

    return cast
