"""Optimisers of the batched engine: every parameter and state tensor has a leading run axis,
and `lr` and `wd` are float tensors [run] (the warmed-up learning rate and the weight decay of
each run), so each run follows its own trajectory.

The state of a run is a dict of named tensors (`state_names`); AdamW's are `m.<param>` and
`v.<param>`, the names of every state saved before other optimisers existed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from grokinterp.config import RunConfig

MOMENTUM = {"sgd": 0.9, "muon": 0.95}
"""Default momentum: torch's usual SGD setting, and torch.optim.Muon's default."""
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
"""Keller Jordan's quintic Newton-Schulz coefficients (torch.optim.Muon's defaults)."""
NS_STEPS = 5
NS_EPS = 1e-7
PERPENDICULAR_EPS = 1e-30
"""⊥Grad's guard against 0 / 0 (pytorch-optimizer's OrthoGrad value)."""


def _per_run(value: Tensor, param: Tensor) -> Tensor:
    return value.view((-1,) + (1,) * (param.dim() - 1))


def _sqrt(x: float | Tensor) -> float | Tensor:
    return math.sqrt(x) if isinstance(x, float) else x.sqrt()


def adamw_(params, grads, state, t, lr: Tensor, wd: Tensor, cfg: RunConfig) -> None:
    """One in-place AdamW step t (1-based: an int, or a float64 0-d tensor in the compiled
    epoch; PyTorch's formulation, decoupled weight decay) on the parameters in `grads`:
    p <- p (1 - lr wd), then `_adam_update_` with g. State `m.<name>`, `v.<name>`."""
    for name in grads:
        param = params[name]
        param.mul_(1 - _per_run(lr, param) * _per_run(wd, param))
    _adam_update_(params, grads, state, t, lr, cfg)


def adam_(params, grads, state, t, lr: Tensor, wd: Tensor, cfg: RunConfig) -> None:
    """One in-place step t (1-based) of torch.optim.Adam (no amsgrad, no maximize): weight decay
    as coupled L2, g <- g + wd p, then `_adam_update_` with that g. State `m.<name>`,
    `v.<name>`."""
    coupled = {
        name: grad + _per_run(wd, params[name]) * params[name] for name, grad in grads.items()
    }
    _adam_update_(params, coupled, state, t, lr, cfg)


def _adam_update_(params, grads, state, t, lr: Tensor, cfg: RunConfig) -> None:
    """Adam's moment update and step, shared by Adam and AdamW: m <- lerp(m, g, 1 - beta1);
    v <- beta2 v + (1 - beta2) g^2; p <- p - lr / (1 - beta1^t) m / (sqrt(v / (1 - beta2^t)) +
    eps)."""
    bias1, bias2 = 1 - cfg.beta1**t, 1 - cfg.beta2**t
    for name, grad in grads.items():
        param = params[name]
        m, v = state[f"m.{name}"], state[f"v.{name}"]
        m.lerp_(grad, 1 - cfg.beta1)
        v.mul_(cfg.beta2).addcmul_(grad, grad, value=1 - cfg.beta2)
        denom = (v.sqrt() / _sqrt(bias2)).add_(cfg.adam_eps)
        param.sub_((_per_run(lr, param) / bias1) * m / denom)


def sgd_(params, grads, state, lr: Tensor, wd: Tensor, momentum: float) -> None:
    """One in-place step of torch.optim.SGD (dampening 0, no Nesterov, coupled L2 weight decay):
    d = g + wd p; b <- momentum b + d (b starts at 0, so the first b is d, as torch's clone);
    p <- p - lr b. State `momentum.<name>`."""
    for name, grad in grads.items():
        param, buf = params[name], state[f"momentum.{name}"]
        buf.mul_(momentum).add_(grad + _per_run(wd, param) * param)
        param.sub_(_per_run(lr, param) * buf)


def newton_schulz(matrix: Tensor) -> Tensor:
    """An approximate orthogonalisation U S' V^T (S' ~ 1) of a 2-D matrix U S V^T: torch.optim.
    Muon's quintic Newton-Schulz iteration, NS_STEPS steps in bfloat16 on the matrix divided by
    its Frobenius norm (clamped at NS_EPS), worked on the wide orientation; returns bfloat16."""
    x = matrix.bfloat16()
    tall = matrix.shape[0] > matrix.shape[1]
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=NS_EPS)
    a, b, c = NS_COEFFICIENTS
    for _ in range(NS_STEPS):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


def muon_(params, grads, state, lr: Tensor, wd: Tensor, momentum: float) -> None:
    """One in-place step of torch.optim.Muon (Nesterov, adjust_lr_fn "match_rms_adamw", Liu et
    al. 2025: the lr scaled by 0.2 sqrt(max(A, B)) so that AdamW's lr and weight decay carry
    over) on the 2-D parameters in `grads`: b <- lerp(b, g, 1 - momentum);
    O = NS(lerp(g, b, momentum)); p <- p (1 - lr wd) - 0.2 sqrt(max(A, B)) lr O, each run's
    matrix orthogonalised on its own. State `momentum.<name>`."""
    for name, grad in grads.items():
        param, buf = params[name], state[f"momentum.{name}"]
        buf.lerp_(grad, 1 - momentum)
        update = grad.lerp(buf, momentum)
        ortho = torch.stack([newton_schulz(matrix) for matrix in update])
        run_lr = _per_run(lr, param)
        param.mul_(1 - run_lr * _per_run(wd, param))
        param.sub_(run_lr * (0.2 * math.sqrt(max(param.shape[1:]))) * ortho)


def perpendicular_(params, grads) -> None:
    """Prieto et al.'s ⊥Grad, in place on each run's gradient of each parameter (flattened):
    g_perp = g - (w.g / (w.w + eps)) w, rescaled to |g|: g <- g_perp |g| / (|g_perp| + eps);
    a gradient parallel to w (|g_perp| <= 4 eps_float32 |g|) becomes 0 (pytorch-optimizer's
    OrthoGrad, float32)."""
    for name, grad in grads.items():
        w, g = params[name].flatten(1), grad.flatten(1)
        along = (w * g).sum(dim=1) / ((w * w).sum(dim=1) + PERPENDICULAR_EPS)
        perp = g - along[:, None] * w
        g_norm, perp_norm = g.norm(dim=1), perp.norm(dim=1)
        scale = g_norm / (perp_norm + PERPENDICULAR_EPS)
        scale = scale.masked_fill(perp_norm <= 4 * torch.finfo(g.dtype).eps * g_norm, 0.0)
        grad.copy_((perp * scale[:, None]).view_as(grad))
