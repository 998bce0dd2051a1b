"""Critical-slowing-down statistics of a series (Scheffer et al. 2009, "Early-warning signals
for critical transitions"; Dakos et al. 2012): near a transition a system recovers slowly from
perturbations, so the lag-1 autocorrelation and the variance of its fluctuations rise. Both are
taken over a trailing (causal) window of `window` consecutive values, without detrending."""

from __future__ import annotations

import numpy as np
import pandas as pd


def rolling_lag1_autocorrelation(values: np.ndarray, window: int) -> np.ndarray:
    """Pearson correlation of (x_(t-1), x_t) over the pairs inside the trailing window of
    `window` values ending at t (pandas rolling), float64; NaN for the first `window - 1`
    values and where the window is constant. Range [-1, 1]; an AR(1) series x_t = phi x_(t-1) +
    noise has autocorrelation phi."""
    series = pd.Series(np.asarray(values, dtype=np.float64))
    return series.rolling(window - 1).corr(series.shift(1)).to_numpy()


def rolling_variance(values: np.ndarray, window: int) -> np.ndarray:
    """Sample variance (ddof 1) over the trailing window of `window` values, float64; NaN for
    the first `window - 1`. An AR(1) series with noise variance s^2 has variance
    s^2 / (1 - phi^2)."""
    return pd.Series(np.asarray(values, dtype=np.float64)).rolling(window).var().to_numpy()
