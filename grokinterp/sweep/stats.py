"""Statistics of grokking epochs across seeds, for A/B studies of interventions.

A run that never reaches 99% test accuracy within its budget is counted, not dropped: its
grokking epoch is +inf (right-censored at the budget). Order statistics handle that exactly: the
median and a rank-based (distribution-free) confidence interval only ask which runs come first,
and "never" comes after every epoch. A median or bound that lands on a "never" is inf ("not
within the budget"). Pure functions: numbers and arrays in, numbers and arrays out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


def grok_epochs(first_epochs: Sequence[float | None]) -> np.ndarray:
    """float64 [runs]: each run's first epoch at 99% test accuracy, +inf for one that never got
    there (None, NaN or pd.NA, as the sweep table leaves it)."""
    values = [math.inf if pd.isna(v) else float(v) for v in first_epochs]
    return np.asarray(values, dtype=np.float64)


@dataclass(frozen=True)
class MedianInterval:
    """The median of a sample of grokking epochs and a rank-based confidence interval for it
    (any bound may be inf: not within the budget; nan: the sample is too small for the level)."""

    median: float
    low: float
    high: float
    confidence: float
    n: int
    grokked: int


def median_interval(epochs: np.ndarray, confidence: float = 0.7) -> MedianInterval:
    """The sample median (np.median; inf when the middle run(s) never grokked) and the
    distribution-free interval for the population median from order statistics
    (scipy.stats.quantile_test, p = 0.5): [x_(l), x_(u)] with ranks from Binomial(n, 1/2), so
    the inf of a "never" is just the largest value. With 3 seeds the only such interval is
    [min, max], of exact coverage 1 - 2/8 = 0.75, so levels up to 0.74 give it and higher levels
    give nan bounds: the default 0.7 fits 3-seed studies. Raises ValueError for an empty sample
    or a confidence outside (0, 1)."""
    epochs = np.asarray(epochs, dtype=np.float64)
    if epochs.size == 0:
        raise ValueError("median_interval of an empty sample")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    median = float(np.median(epochs))
    # the test's statistic needs a finite q; the interval does not depend on q
    q = median if math.isfinite(median) else float(np.max(epochs[np.isfinite(epochs)], initial=0))
    ci = stats.quantile_test(epochs, q=q, p=0.5).confidence_interval(confidence)
    grokked = int(np.isfinite(epochs).sum())
    return MedianInterval(median, float(ci.low), float(ci.high), confidence, epochs.size, grokked)


def _ratio(a: float, b: float) -> float:
    """a / b for epochs in (0, inf]: inf / inf and 0 / 0 are nan (nothing to compare)."""
    if (math.isinf(a) and math.isinf(b)) or b == 0:
        return math.nan
    return a / b


def speedup(baseline: MedianInterval, other: MedianInterval) -> tuple[float, float, float]:
    """(ratio, low, high): how many times earlier `other` groks than `baseline`, as the ratio
    of their medians (> 1: faster; 0 when `other` never groks and the baseline does; inf in the
    reverse case), and conservative bounds from the two intervals (baseline.low / other.high,
    baseline.high / other.low): the ratio of any two medians inside the intervals lies between
    them."""
    ratio = _ratio(baseline.median, other.median)
    return ratio, _ratio(baseline.low, other.high), _ratio(baseline.high, other.low)


def best_setting(epochs_by_setting: dict) -> object:
    """The key whose sample of grokking epochs (arrays, inf = never) is best: lowest median,
    ties broken by more runs grokked, then by the lower mean of the grokked epochs (the tuned
    baseline of a grid). Picked on the same seeds it is then compared on, so it favours the
    baseline: a speed-up against it is, if anything, understated."""

    def rank(key):
        epochs = np.asarray(epochs_by_setting[key], dtype=np.float64)
        finite = epochs[np.isfinite(epochs)]
        return (np.median(epochs), -finite.size, finite.mean() if finite.size else math.inf)

    if not epochs_by_setting:
        raise ValueError("best_setting of no settings")
    return min(epochs_by_setting, key=rank)


def share_grokked(epochs: np.ndarray, budget: float) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, share): the share of runs that have grokked by each epoch, a step function at
    the grokking epochs, "never" right-censored at `budget` (scipy.stats.ecdf on
    CensoredData: the Kaplan-Meier estimate, which with every censoring at the budget is the
    empirical distribution of the epochs, never runs counted in the denominator)."""
    epochs = np.asarray(epochs, dtype=np.float64)
    finite = epochs[np.isfinite(epochs)]
    if finite.size == 0:
        return np.array([0.0, float(budget)]), np.array([0.0, 0.0])
    never = np.full(epochs.size - finite.size, float(budget))
    cdf = stats.ecdf(stats.CensoredData(uncensored=finite, right=never)).cdf
    return np.asarray(cdf.quantiles, dtype=np.float64), np.asarray(cdf.probabilities)


def log_interp(epochs: np.ndarray, values: np.ndarray, at: float) -> float:
    """A positive quantity recorded at checkpoint `epochs` (ascending), read at epoch `at` by
    linear interpolation of its logarithm (a norm that decays exponentially between two
    checkpoints is read exactly). nan outside the recorded epochs."""
    epochs, values = np.asarray(epochs, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if not epochs[0] <= at <= epochs[-1]:
        return math.nan
    return float(np.exp(np.interp(at, epochs, np.log(values))))


def norm_delay_x(sq_mem: float, sq_grok: float, lr: float, weight_decay: float) -> float:
    """log(||theta_mem||^2 / ||theta_grok||^2) / (lr * weight_decay) in epochs (full batch: one
    step per epoch): the time decoupled weight decay alone, theta <- (1 - lr wd) theta, takes
    to shrink the squared norm by that ratio is half of it (for small lr wd), so the delay
    T_grok - T_mem is proportional to it when the norm sets the timescale."""
    return math.log(sq_mem / sq_grok) / (lr * weight_decay)


@dataclass(frozen=True)
class LinearFit:
    slope: float
    intercept: float
    r2: float
    n: int


def linear_fit(x: np.ndarray, y: np.ndarray) -> LinearFit:
    """Least-squares line y = slope x + intercept and its R^2 (scipy.stats.linregress, r^2),
    over the pairs where both are finite; ValueError with fewer than 3 such pairs."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 3:
        raise ValueError(f"a line through {int(keep.sum())} points has no meaningful R^2")
    fit = stats.linregress(x[keep], y[keep])
    return LinearFit(float(fit.slope), float(fit.intercept), float(fit.rvalue**2), int(keep.sum()))
