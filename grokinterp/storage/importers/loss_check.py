"""Does the rebuilt split reproduce the file's recorded train loss?

A wrong split seed, or a model of another operation read as addition, imports without error
and gives an analysis of the wrong data set. When the file records the train loss of its final
weights (the paper's 'train_loss', else the train curve at the last checkpoint's epoch), the
importer recomputes it (float64 cross-entropy at the last position, over the rebuilt training
pairs) and compares:

- within FLOAT32_RTOL (relative): the same loss, up to float32 rounding;
- within STEP_RTOL: a note with both numbers. The public code records each loss before that
  epoch's step and saves the weights after it, so the two may be one step apart;
- beyond: refused with both numbers, unless --allow-loss-mismatch (then a warning note).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from grokinterp.config import RunConfig
from grokinterp.errors import UsageError

FLOAT32_RTOL = 1e-5
STEP_RTOL = 0.05


def train_loss(cfg: RunConfig, state: dict[str, Tensor], train: Tensor) -> float:
    """Mean cross-entropy (float64) of the model `state` over the training pairs `train`
    (grid indices a * n + b, int64), at the last position."""
    from grokinterp.data import grid_tokens
    from grokinterp.models import architecture
    from grokinterp.tasks import task_of

    model = architecture(cfg).hooked()
    model.load_state_dict(state)
    with torch.no_grad():
        logits = model.eval()(grid_tokens(cfg, train))[:, -1].double()
    labels = task_of(cfg).table.flatten()[train]
    return float(F.cross_entropy(logits, labels))


def recorded_final_loss(data: dict, train_curve, epoch: int) -> float | None:
    """The train loss the file records for its weights at `epoch`: 'train_loss' when the file
    has one number there, else the train curve at `epoch` (its last value when `epoch` is one
    past its end, as the paper's final.pth labels its weights); None when it records none."""
    value = data.get("train_loss")
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if train_curve is None or epoch > len(train_curve):
        return None  # the curve ends before these weights
    recorded = float(train_curve[min(epoch, len(train_curve) - 1)])
    return None if math.isnan(recorded) else recorded


def compare(recomputed: float, recorded: float, allow: bool) -> str | None:
    """None when the losses agree to float32 rounding, else a note; UsageError when they differ
    by more than STEP_RTOL and not `allow`."""
    gap = abs(recomputed - recorded) / max(abs(recorded), 1e-300)
    if gap <= FLOAT32_RTOL:
        return None
    both = (
        f"the final train loss on the rebuilt split is {recomputed:.6g}, "
        f"the file records {recorded:.6g}"
    )
    if gap <= STEP_RTOL:
        return f"{both} ({gap:.2%} apart: within one training step's change)"
    if allow:
        return f"WARNING: {both} ({gap:.2%} apart); imported anyway (--allow-loss-mismatch)"
    raise UsageError(
        f"{both}: the split or task is not the file's (check --seed, --data-seed, --split-from, "
        "--operation); --allow-loss-mismatch imports anyway"
    )
