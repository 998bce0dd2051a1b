"""Locate the three phases (Nanda et al. 2023, section 5.3) from the measured series; see RULE."""

from __future__ import annotations

import numpy as np

START_OF_FALL = 0.1
END_OF_FALL = 0.9
FLAT = 2.0
"""The train loss has stopped falling once it is within this factor of its lowest value."""
MIN_CHECKPOINTS = 5
"""Fewer checkpoints than this cannot show three phases: every boundary is null."""
RULE = (
    "Read at checkpoints from the loss curves, as the paper reads its figures; no epoch typed by "
    "hand. Cleanup is the sharp fall of the test loss: measured in log space from its peak (after "
    "the first checkpoint with 100% train accuracy) down to its lowest value, circuit formation "
    "ends at the first checkpoint after the peak that is 10% of the way down, and cleanup ends at "
    "the first that is 90% of the way down; a run whose test loss never falls below a tenth of its "
    "peak has not grokked, and those two boundaries are null. Memorisation ends where circuit "
    "formation begins: at the lowest excluded loss before circuit formation ends (before the last "
    "checkpoint when it has not), from where the excluded loss rises; for a task with no basis "
    "(no excluded loss), at the end of the train loss's fall: the first checkpoint whose train "
    "loss is within a factor of 2 of its lowest value before circuit formation ends. "
    f"Fewer than {MIN_CHECKPOINTS} checkpoints: every boundary is null."
)


def locate_phases(
    epochs: np.ndarray,
    train_loss: np.ndarray,
    train_acc: np.ndarray,
    test_loss: np.ndarray,
    excluded_loss: np.ndarray | None = None,
) -> dict[str, int | None]:
    """The last epoch of each phase (see RULE); None where the run does not show it."""
    phases: dict[str, int | None] = dict.fromkeys(
        ("memorization_end", "circuit_formation_end", "cleanup_end")
    )
    if len(epochs) < MIN_CHECKPOINTS:
        return phases
    memorised = np.flatnonzero(train_acc >= 1.0)
    if not len(memorised):
        return phases
    start = memorised[0]
    log_loss = np.log(test_loss)
    peak = start + int(np.argmax(log_loss[start:]))
    low = log_loss[peak:].min()
    formed = len(epochs) - 1
    if log_loss[peak] - low >= np.log(10):
        progress = (log_loss[peak] - log_loss) / (log_loss[peak] - low)
        after_peak = np.arange(len(epochs)) > peak
        formed = np.flatnonzero(after_peak & (progress >= START_OF_FALL))[0]
        cleaned = np.flatnonzero(after_peak & (progress >= END_OF_FALL))[0]
        phases["circuit_formation_end"] = int(epochs[formed])
        phases["cleanup_end"] = int(epochs[cleaned])
    if excluded_loss is not None:
        end = int(np.argmin(excluded_loss[: formed + 1]))
    else:
        end = np.flatnonzero(train_loss[: formed + 1] <= FLAT * train_loss[: formed + 1].min())[0]
    phases["memorization_end"] = int(epochs[end])
    return phases


def phase_note(n_checkpoints: int, phases: dict[str, int | None]) -> str | None:
    """Why boundaries are null, in words (None when all three were found)."""
    if n_checkpoints < MIN_CHECKPOINTS:
        return f"only {n_checkpoints} checkpoint(s): at least {MIN_CHECKPOINTS} are needed"
    if phases["memorization_end"] is None:
        return "train accuracy never reached 100%: the run has not memorised"
    if phases["cleanup_end"] is None:
        return "the test loss never fell below a tenth of its peak: the run has not grokked"
    return None


def first_below_tenth(epochs: np.ndarray, values: np.ndarray) -> int | None:
    """The first epoch at which a loss is below a tenth of its value at the first checkpoint
    (None for a measure that does not apply)."""
    if values is None:
        return None
    below = np.flatnonzero(values < values[0] / 10)
    return int(epochs[below[0]]) if len(below) else None


def trend(epochs: np.ndarray, values: np.ndarray, start: int | None, end: int | None):
    """Least-squares slope (per epoch) of a measure over the checkpoints in [start, end]."""
    if start is None or end is None or values is None:
        return None
    inside = (epochs >= start) & (epochs <= end)
    if inside.sum() < 2:
        return None
    return float(np.polyfit(epochs[inside], values[inside], 1)[0])


def paper_checks(table, phases: dict[str, int | None]) -> dict[str, float | int | None]:
    """The paper's qualitative claims, measured: restricted loss falls (below a tenth of its
    start) before test loss does; excluded loss rises during circuit formation; the weight norm
    falls in cleanup. Slopes are least-squares trends over the phase (single checkpoints can sit
    on a loss spike)."""
    epochs = table["epoch"].to_numpy()
    column = lambda name: table[name].to_numpy() if name in table else None  # noqa: E731
    mem, circ, clean = (
        phases[k] for k in ("memorization_end", "circuit_formation_end", "cleanup_end")
    )
    excluded = column("excluded_loss")
    before = epochs <= (circ if circ is not None else epochs[-1])
    return {
        "initial_loss": float(table["all_loss"].iloc[0]),
        "excluded_loss_lowest_before_cleanup": None
        if excluded is None
        else int(epochs[before][np.argmin(excluded[before])]),
        "restricted_loss_below_tenth": first_below_tenth(epochs, column("restricted_loss")),
        "test_loss_below_tenth": first_below_tenth(epochs, table["test_loss"].to_numpy()),
        "excluded_loss_slope_in_circuit_formation": trend(
            epochs, column("excluded_loss"), mem, circ
        ),
        "weight_norm_slope_in_cleanup": trend(epochs, table["weight_norm"].to_numpy(), circ, clean),
    }
