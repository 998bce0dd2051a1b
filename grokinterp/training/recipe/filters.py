"""Gradient filters: Lee et al. 2024's Grokfast ("Grokfast: Accelerated Grokking by Amplifying
Slow Gradients"), which adds lambda times a low-pass filter of the gradient history to each
gradient before the optimiser. Batched: every tensor has a leading run axis."""

from __future__ import annotations

import torch
from torch import Tensor

LAMBDA = {"ema": 2.0, "ma": 5.0}
"""The paper's default amplification per filter (its `gradfilter_ema` / `gradfilter_ma`)."""


def ema_(grads: dict[str, Tensor], state, step, alpha: float, lamb: float) -> None:
    """Grokfast-EMA, in place at step `step` (0-based; an int, or a float64 0-d tensor in the
    compiled epoch): h <- g at step 0, else h <- alpha h + (1 - alpha) g (as lerp); then
    g <- g + lamb h. State `ema.<name>`."""
    for name, grad in grads.items():
        history = state[f"ema.{name}"]
        if isinstance(step, Tensor):
            history.copy_(torch.where(step == 0, grad, history.lerp(grad, 1.0 - alpha)))
        elif step == 0:
            history.copy_(grad)
        else:
            history.lerp_(grad, 1.0 - alpha)
        grad.add_(history, alpha=lamb)


def ma_(grads: dict[str, Tensor], state, step, window: int, lamb: float) -> None:
    """Grokfast-MA, in place at step `step` (0-based; an int, or a float64 0-d tensor in the
    compiled epoch): the last `window` gradients are kept in a ring buffer [run, window, ...]
    (`ma.<name>`, slot step mod window); from the step at which it is full on,
    g <- g + lamb mean(buffer) (the paper's warm-up)."""
    for name, grad in grads.items():
        buffer = state[f"ma.{name}"]
        if isinstance(step, Tensor):
            slot = (step % window).long().view(1)
            buffer.index_copy_(1, slot, grad.unsqueeze(1))
            full = (step + 1 >= window).to(grad.dtype)
            grad.add_(buffer.mean(dim=1) * (full * lamb))
            continue
        buffer[:, step % window] = grad
        if step + 1 >= window:
            grad.add_(buffer.mean(dim=1), alpha=lamb)
