"""Locate the three phases (Nanda et al. 2023, section 5.3) from the measured series; see RULE."""

from __future__ import annotations

import numpy as np

START_OF_FALL = 0.1
END_OF_FALL = 0.9
RULE = (
    "Read at checkpoints, no epoch typed by hand. Memorisation ends at the first checkpoint where "
    "train accuracy is 100%. The test loss then peaks and, once the circuit is complete, falls: "
    "measured in log space from its peak (at or after the end of memorisation) down to its lowest "
    "value, circuit formation ends at the first checkpoint after the peak that is 10% of the way "
    "down, and cleanup ends at the first that is 90% of the way down. A run whose test loss never "
    "falls below a tenth of its peak has not grokked, and those two boundaries are null."
)


def locate_phases(
    epochs: np.ndarray, train_acc: np.ndarray, test_loss: np.ndarray
) -> dict[str, int | None]:
    phases: dict[str, int | None] = dict.fromkeys(
        ("memorization_end", "circuit_formation_end", "cleanup_end")
    )
    memorised = np.flatnonzero(train_acc >= 1.0)
    if not len(memorised):
        return phases
    start = memorised[0]
    phases["memorization_end"] = int(epochs[start])
    log_loss = np.log(test_loss)
    peak = start + int(np.argmax(log_loss[start:]))
    low = log_loss[peak:].min()
    if log_loss[peak] - low < np.log(10):
        return phases
    progress = (log_loss[peak] - log_loss) / (log_loss[peak] - low)
    after_peak = np.arange(len(epochs)) > peak
    formed = np.flatnonzero(after_peak & (progress >= START_OF_FALL))[0]
    cleaned = np.flatnonzero(after_peak & (progress >= END_OF_FALL))[0]
    phases["circuit_formation_end"] = int(epochs[formed])
    phases["cleanup_end"] = int(epochs[cleaned])
    return phases


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
    return {
        "initial_loss": float(table["all_loss"].iloc[0]),
        "restricted_loss_below_tenth": first_below_tenth(epochs, column("restricted_loss")),
        "test_loss_below_tenth": first_below_tenth(epochs, table["test_loss"].to_numpy()),
        "excluded_loss_slope_in_circuit_formation": trend(
            epochs, column("excluded_loss"), mem, circ
        ),
        "weight_norm_slope_in_cleanup": trend(epochs, table["weight_norm"].to_numpy(), circ, clean),
    }
