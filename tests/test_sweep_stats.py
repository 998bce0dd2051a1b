"""The A/B statistics of grokking epochs against closed forms and hand-worked samples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from grokinterp.sweep import stats

INF = math.inf


def binomial_interval_ranks(n: int, confidence: float) -> tuple[int, int]:
    """The textbook order-statistic interval for a median, [x_(l), x_(n + 1 - l)] (1-based),
    l the largest rank with P(K <= l - 1) <= (1 - confidence) / 2 for K ~ Binomial(n, 1/2)."""
    alpha = (1 - confidence) / 2
    tail, rank = 0.0, 0
    for k in range(n):
        tail += math.comb(n, k) / 2**n
        if tail > alpha:
            break
        rank = k + 1
    return rank, n + 1 - rank


def test_never_is_infinite_and_counted():
    epochs = pd.array([300, None, 12], dtype="Int64").tolist() + [float("nan")]
    assert stats.grok_epochs(epochs).tolist() == [300.0, INF, 12.0, INF]


@pytest.mark.parametrize("confidence", [0.7, 0.9, 0.95])
def test_median_interval_is_the_order_statistic_interval(confidence):
    rng = np.random.default_rng(0)
    sample = np.concatenate([rng.integers(100, 3000, size=9).astype(float), [INF] * 3])
    low_rank, high_rank = binomial_interval_ranks(12, confidence)
    ordered = np.sort(sample)
    result = stats.median_interval(rng.permutation(sample), confidence)
    assert (result.low, result.high) == (ordered[low_rank - 1], ordered[high_rank - 1])
    assert result.median == (ordered[5] + ordered[6]) / 2
    assert (result.n, result.grokked) == (12, 9)


def test_three_seeds_give_min_max_and_a_never_is_an_open_bound():
    result = stats.median_interval(stats.grok_epochs([500, None, 300]), 0.7)
    assert (result.median, result.low, result.high) == (500.0, 300.0, INF)
    most_never = stats.median_interval(stats.grok_epochs([None, None, 300]), 0.7)
    assert most_never.median == INF and most_never.grokked == 1
    # [min, max] covers the median with probability 1 - 2 / 8: no 3-seed interval reaches 0.9
    assert math.isnan(stats.median_interval(np.array([1.0, 2.0, 3.0]), 0.9).low)
    with pytest.raises(ValueError):
        stats.median_interval(np.array([]))


def test_speedup_ratio_and_conservative_bounds():
    base = stats.MedianInterval(800.0, 600.0, 1000.0, 0.7, 3, 3)
    fast = stats.MedianInterval(200.0, 100.0, 400.0, 0.7, 3, 3)
    assert stats.speedup(base, fast) == (4.0, 1.5, 10.0)
    never = stats.MedianInterval(INF, 700.0, INF, 0.7, 3, 1)
    ratio, low, high = stats.speedup(base, never)
    assert ratio == 0.0 and low == 0.0 and high == pytest.approx(1000 / 700)
    assert math.isnan(stats.speedup(never, never)[0])


def test_best_setting_prefers_low_median_then_more_grokked_then_low_mean():
    settings = {
        "a": [400.0, 500.0, INF],
        "b": [300.0, 900.0, 950.0],
        "c": [INF, INF, 100.0],
        "d": [400.0, 500.0, 600.0],
    }
    assert stats.best_setting(settings) == "d"  # median 500 as "a", all three grokked
    assert stats.best_setting({"a": settings["a"], "b": settings["b"]}) == "a"


def test_share_grokked_counts_never_in_the_denominator():
    epochs, share = stats.share_grokked(np.array([500.0, INF, 300.0]), budget=1000)
    assert share[np.searchsorted(epochs, 300.0)] == pytest.approx(1 / 3)
    assert share[np.searchsorted(epochs, 500.0)] == pytest.approx(2 / 3)
    assert share.max() == pytest.approx(2 / 3)
    assert stats.share_grokked(np.array([INF, INF]), 1000)[1].max() == 0.0


def test_log_interp_reads_an_exponential_exactly():
    epochs = np.array([0.0, 50.0, 100.0])
    values = 7.0 * np.exp(-0.02 * epochs)
    assert stats.log_interp(epochs, values, 20.0) == pytest.approx(7.0 * math.exp(-0.4))
    assert math.isnan(stats.log_interp(epochs, values, 120.0))


def test_norm_delay_x_is_twice_the_time_weight_decay_takes():
    lr, wd, ratio = 1e-3, 0.5, 3.0
    squared, steps = 1.0, 0
    while squared > 1 / ratio:  # decoupled decay alone, step by step
        squared *= (1 - lr * wd) ** 2
        steps += 1
    assert stats.norm_delay_x(ratio, 1.0, lr, wd) == pytest.approx(2 * steps, rel=2e-3)


def test_linear_fit_against_numpy():
    x = np.array([1.0, 2.0, 3.0, 4.0, INF])
    exact = stats.linear_fit(x, 2 * x + 1)
    assert (exact.slope, exact.intercept, exact.n) == (pytest.approx(2), pytest.approx(1), 4)
    assert exact.r2 == pytest.approx(1.0)
    y = np.array([1.0, 3.5, 2.5, 6.0, 0.0])
    noisy = stats.linear_fit(x, y)
    assert noisy.r2 == pytest.approx(np.corrcoef(x[:4], y[:4])[0, 1] ** 2)
    with pytest.raises(ValueError):
        stats.linear_fit(x[:2], y[:2])
