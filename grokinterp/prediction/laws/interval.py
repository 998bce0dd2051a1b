"""The 80% interval a fitted delay law carries (`grokinterp.prediction.laws`)."""

from __future__ import annotations

import numpy as np

INTERVAL = (0.1, 0.9)
"""Quantiles of the fitting runs' log(predicted / actual delay) that bound the interval."""


def with_interval(constants: dict, predicted: list[float], runs: list) -> dict:
    """`constants` with the optimisers of the fitting `runs` (RunFacts with t_grok), their
    count, and the 80% interval of log(predicted / actual delay) over them, `predicted` being
    the law's grokking epochs of the runs (delays below one epoch count as one)."""
    actual = np.maximum([r.t_grok - r.t_mem for r in runs], 1.0)
    delays = np.maximum(np.subtract(predicted, [r.t_mem for r in runs]), 1.0)
    ratio = np.log(delays / actual)
    return constants | {
        "optimizers": sorted({r.optimizer for r in runs}),
        "n_runs": len(runs),
        "log_ratio_low": float(np.quantile(ratio, INTERVAL[0])),
        "log_ratio_high": float(np.quantile(ratio, INTERVAL[1])),
    }
