"""Each early-warning indicator against a case with a known answer
(grokinterp.prediction.indicators)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import signal

from grokinterp.prediction.indicators import (
    alignment,
    attention,
    graph,
    mlp_weights,
    slowing,
    spectral,
)


def test_fiedler_value_of_graphs_with_known_spectra():
    n = 7
    path = np.diag(np.ones(n - 1), 1)
    path = path + path.T
    assert graph.fiedler_value(path) == pytest.approx(2 * (1 - math.cos(math.pi / n)))
    assert graph.fiedler_value(3.0 * (np.ones((n, n)) - np.eye(n))) == pytest.approx(3.0 * n)
    two_pieces = np.zeros((4, 4))
    two_pieces[0, 1] = two_pieces[1, 0] = two_pieces[2, 3] = two_pieces[3, 2] = 1.0
    assert graph.fiedler_value(two_pieces) == pytest.approx(0.0, abs=1e-12)


def test_layered_adjacency_of_one_all_negative_layer_is_complete_bipartite():
    # K_{m,n} has Laplacian eigenvalues 0, n (m - 1 times), m (n - 1 times), m + n: lambda_2 =
    # min(m, n); |w| makes the sign irrelevant
    adjacency = graph.layered_adjacency([-np.ones((3, 5))])
    assert adjacency.shape == (8, 8)
    assert graph.fiedler_value(adjacency) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="does not chain"):
        graph.layered_adjacency([np.ones((3, 5)), np.ones((4, 2))])


def test_mlp_weight_chain_of_both_families():
    transformer = {"blocks.0.mlp.W_in": 1, "blocks.0.mlp.W_out": 2, "unembed.W_U": 3}
    assert mlp_weights(transformer, 1) == [1, 2]
    mlp = {"blocks.0.mlp.W_in": 1, "blocks.1.mlp.W_in": 2, "unembed.W_U": 3}
    assert mlp_weights(mlp, 2) == [1, 2, 3]


def test_spectral_entropy_of_a_known_spectrum():
    q, _ = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64))
    spectrum = torch.tensor([4.0, 2.0, 1.0, 1.0], dtype=torch.float64)
    cov = torch.stack([q @ torch.diag(spectrum) @ q.T, torch.eye(4), torch.diag(spectrum * 0)])
    cov[2, 0, 0] = 1.0  # one direction only
    # p = (1/2, 1/4, 1/8, 1/8): H = 1.75 log 2 = 0.875 log 4
    expected = torch.tensor([0.875, 1.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(spectral.spectral_entropy(cov), expected)


def test_covariance_matches_numpy():
    x = torch.randn(2, 50, 3, dtype=torch.float64)
    for i in range(2):
        expected = np.cov(x[i].numpy(), rowvar=False, bias=True)
        np.testing.assert_allclose(spectral.covariance(x)[i].numpy(), expected)


def test_log_alignment_ratio_closed_forms():
    n = 16
    weight = torch.zeros(n, 5, dtype=torch.float64)
    weight[0, 0] = 2.0  # one singular direction: e_0
    aligned = torch.zeros(10, n, dtype=torch.float64)
    aligned[:, 0] = torch.arange(1.0, 11.0)
    orthogonal_half = aligned.clone()
    orthogonal_half[:, 1] = aligned[:, 0]  # half of the inputs' energy off W's direction
    lar = alignment.log_alignment_ratio(
        torch.stack([aligned, orthogonal_half]), torch.stack([weight, weight])
    )
    torch.testing.assert_close(
        lar, torch.tensor([1.0, 1 + math.log(0.5) / (2 * math.log(n))], dtype=torch.float64)
    )
    # isotropic weight (orthogonal n x n) and isotropic inputs: overlap 1/n, LAR exactly 1/2
    q, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64))
    lar = alignment.log_alignment_ratio(torch.eye(n, dtype=torch.float64)[None], q[None])
    torch.testing.assert_close(lar, torch.tensor([0.5], dtype=torch.float64))


def test_log_alignment_ratio_is_the_overlap_of_its_two_spectra():
    x, w = torch.randn(40, 6, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    p, q = alignment.spectra(x, w)
    assert float(p.sum()) == pytest.approx(1.0) and float(q.sum()) == pytest.approx(1.0)
    expected = 1 + math.log(float((p * q).sum())) / (2 * math.log(6))
    assert float(alignment.log_alignment_ratio(x[None], w[None])[0]) == pytest.approx(expected)


def test_head_similarity_and_entropy_spread_of_known_patterns():
    one_hot = torch.zeros(5, 3, dtype=torch.float64)
    one_hot[:, 0] = 1.0
    other = torch.zeros(5, 3, dtype=torch.float64)
    other[:, 1] = 1.0
    uniform = torch.full((5, 3), 1 / 3, dtype=torch.float64)
    same = torch.stack([one_hot, one_hot], dim=1)  # pairs, head, key
    apart = torch.stack([one_hot, other, uniform], dim=1)
    # apart: cos(one_hot, other) = 0, cos(one_hot, uniform) = cos(other, uniform) = 1/sqrt(3)
    torch.testing.assert_close(
        attention.head_similarity(same[None]), torch.tensor([1.0], dtype=torch.float64)
    )
    torch.testing.assert_close(
        attention.head_similarity(apart[None]),
        torch.tensor([2 / (3 * math.sqrt(3))], dtype=torch.float64),
    )
    # entropies 0, 0, log 3: population std = log(3) * sqrt(2) / 3
    torch.testing.assert_close(
        attention.entropy_spread(apart[None]),
        torch.tensor([math.log(3) * math.sqrt(2) / 3], dtype=torch.float64),
    )


def test_rolling_statistics_of_an_ar1_series():
    phi, sigma, n = 0.7, 0.5, 40_000
    rng = np.random.default_rng(0)
    x = signal.lfilter([1.0], [1.0, -phi], rng.normal(0, sigma, n))  # x_t = phi x_(t-1) + e_t
    window = n // 2
    ac1 = slowing.rolling_lag1_autocorrelation(x, window)
    var = slowing.rolling_variance(x, window)
    assert np.isnan(ac1[window - 2]) and not np.isnan(ac1[window - 1])
    # sampling error of a lag-1 autocorrelation ~ sqrt((1 - phi^2) / window) = 0.005
    assert ac1[-1] == pytest.approx(phi, abs=0.03)
    assert var[-1] == pytest.approx(sigma**2 / (1 - phi**2), rel=0.05)


def test_rolling_statistics_exact_cases():
    alternating = np.array([1.0, -1.0] * 5)
    np.testing.assert_allclose(slowing.rolling_lag1_autocorrelation(alternating, 4)[3:], -1.0)
    np.testing.assert_allclose(slowing.rolling_lag1_autocorrelation(np.arange(6.0), 3)[2:], 1.0)
    np.testing.assert_allclose(slowing.rolling_variance(np.arange(6.0), 3)[2:], 1.0)


def test_head_entropy_of_a_zhong_pattern_is_that_of_its_distribution():
    """c * softmax + (1 - c) over 3 keys, divided by its sum 3 - 2c, is a distribution; its
    entropy is computed here by hand, and a plain softmax row is left as it is."""
    from grokinterp.prediction.indicators.attention import head_entropies

    softmax = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
    c = 0.5
    zhong = c * softmax + (1 - c)
    q = zhong / zhong.sum()
    want = -(q * q.log()).sum()
    got = head_entropies(zhong.reshape(1, 1, 1, 3))
    assert torch.allclose(got, want.reshape(1, 1), atol=1e-12)
    plain = -(softmax * softmax.log()).sum()
    assert head_entropies(softmax.reshape(1, 1, 1, 3)).item() == plain.item()


def test_hankel_matrix_stacks_delays():
    from grokinterp.prediction.indicators import dmd

    x = np.arange(6.0)
    assert np.array_equal(dmd.hankel(x, 3), [[0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5]])
    two = np.stack([x, 10 * x], axis=1)  # two channels: each delay holds both
    assert np.array_equal(dmd.hankel(two, 2)[:, 0], [0, 0, 1, 10])


def test_dmd_residual_of_damped_sinusoids_is_zero_and_jumps_at_a_regime_change():
    from grokinterp.prediction.indicators import dmd

    t = np.arange(160.0)
    # two damped sinusoids: 4 complex exponentials, so rank 4 reproduces the signal exactly
    x = np.exp(-0.01 * t) * np.cos(0.3 * t) + 0.5 * np.exp(-0.003 * t) * np.sin(0.05 * t + 1)
    assert dmd.dmd_residual(x, delays=10, rank=4) < 1e-9
    assert dmd.dmd_residual(x, delays=10, rank=2) > 1e-2  # too few modes: not exact
    changed = np.where(t < 80, x, 0.8 * np.cos(1.1 * t) + 0.3)
    assert dmd.dmd_residual(changed, delays=10, rank=4) > 0.1
    # trailing windows: zero before the change and after it (3 modes), large across it
    ends = np.array([60, 79, 100, 110, 159])
    rolling = dmd.rolling_dmd_residual(changed, ends, window=40, delays=10, rank=4)
    assert np.all(rolling[[0, 1, 4]] < 1e-9) and np.all(rolling[[2, 3]] > 0.1)
    # causal: a later sample never moves an earlier value; too short a history is NaN
    later = changed.copy()
    later[120:] += 5.0
    assert dmd.rolling_dmd_residual(later, ends, 40, 10, 4)[2] == rolling[2]
    assert np.isnan(dmd.rolling_dmd_residual(x, np.array([10]), 40, 10, 4)[0])
