"""Each progress measure against a closed form or a hand-built case."""

import math

import numpy as np
import torch

from grokinterp import data, fourier
from grokinterp.config import preset
from grokinterp.measures import embedding, losses, neurons, phases, weights
from grokinterp.measures.logits import logit_fve

P = 17


def cos_sin(k, x, p=P):
    return torch.cos(2 * math.pi * k * x / p), torch.sin(2 * math.pi * k * x / p)


def test_embedding_built_from_known_frequencies():
    x = torch.arange(P, dtype=torch.float64)
    d_model = 8
    W_E = torch.zeros(P + 1, d_model, dtype=torch.float64)
    c3, s3 = cos_sin(3, x)
    c7, _ = cos_sin(7, x)
    W_E[:P, 0], W_E[:P, 1], W_E[:P, 2] = 2 * c3, s3, c7
    W_E[P] = 100.0  # the `=` token must be ignored
    norms = embedding.embedding_norms(W_E[None], P)[0]
    # ||2 cos||^2 + ||sin||^2 over P residues = 4 P/2 + P/2; ||cos||^2 = P/2
    want = torch.zeros(P // 2, dtype=torch.float64)
    want[2], want[6] = math.sqrt(2.5 * P), math.sqrt(P / 2)
    torch.testing.assert_close(norms, want)
    assert embedding.key_frequencies(norms) == [3, 7]


def test_neuron_logit_map_is_wu_transpose_wout_transpose():
    gen = torch.Generator().manual_seed(0)
    W_out, W_U = torch.randn(1, 6, 4, generator=gen), torch.randn(1, 4, P, generator=gen)
    want = W_U[0].double().T @ W_out[0].double().T
    torch.testing.assert_close(embedding.neuron_logit_map(W_out, W_U)[0], want)


def test_pure_cos_neuron_has_fve_one_and_mixed_neuron_splits():
    a, b = data.pair_operands(P)
    c5, _ = cos_sin(5, a + b)
    c2a, _ = cos_sin(2, a)
    _, s6b = cos_sin(6, b)
    post = torch.stack([c5, c2a + s6b, torch.zeros_like(c5)], dim=1)[None]
    fve = neurons.frequency_fve(post, P)[0]
    assert abs(fve[0, 4].item() - 1) < 1e-9 and fve[0].sum().item() < 1 + 1e-9
    # cos(2a) + sin(6b): half the variance at frequency 2, half at 6
    torch.testing.assert_close(fve[1, [1, 5]], torch.tensor([0.5, 0.5]))
    assert not fve[2].any()  # a dead neuron explains nothing
    dominant, best, counts = neurons.cluster_sizes(fve[None])
    assert dominant[0, 0] == 5 and counts[0, 4] == 1 and counts.sum() == 1


def test_restricted_and_excluded_loss_of_a_pure_key_frequency_model():
    a, b = data.pair_operands(P)
    c = torch.arange(P)
    keys = [2, 5]
    s = (a + b)[:, None] - c[None]
    logits = sum(torch.cos(2 * math.pi * k * s.double() / P) for k in keys)[None] * 8.0
    labels = (a + b) % P
    directions = losses.key_directions(P, keys)
    torch.testing.assert_close(directions.T @ directions, torch.eye(4, dtype=torch.float64))
    full = losses.cross_entropy(logits, labels)
    restricted = losses.cross_entropy(losses.restricted_logits(logits, directions), labels)
    excluded = losses.cross_entropy(losses.excluded_logits(logits, directions), labels)
    torch.testing.assert_close(restricted, full)
    assert abs(excluded.item() - math.log(P)) < 1e-9
    assert abs(logit_fve(logits, P, keys).item() - 1) < 1e-9
    assert logit_fve(logits, P, [1]).item() < 1e-9


def test_cross_entropy_matches_a_direct_formula():
    logits = torch.randn(2, 30, P)
    labels = torch.randint(0, P, (30,))
    want = [
        np.mean(
            [
                np.log(np.exp(row.double().numpy()).sum()) - float(row[y])
                for row, y in zip(r, labels, strict=True)
            ]
        )
        for r in logits
    ]
    np.testing.assert_allclose(losses.cross_entropy(logits, labels).numpy(), want, rtol=1e-12)


def test_gini_extremes_and_a_worked_case():
    n = 10
    constant, one_hot = torch.ones(1, n), torch.zeros(1, n)
    one_hot[0, 3] = 5.0
    assert abs(weights.gini(constant).item()) < 1e-12
    assert abs(weights.gini(one_hot).item() - (1 - 1 / n)) < 1e-12
    # (1, 3): sorted c = (1, 3), |c|_1 = 4 -> 1 - 2 (1/4 * 1.5/2 + 3/4 * 0.5/2) = 0.25
    assert abs(weights.gini(torch.tensor([[3.0, 1.0]])).item() - 0.25) < 1e-12


def test_weight_norm_is_a_direct_sum_of_squares():
    state = {"x": torch.randn(3, 4, 5), "y": torch.randn(3, 7)}
    got = weights.sum_of_squares(state)
    for name, t in state.items():
        for c in range(3):
            assert (
                abs(got[name][c].item() - sum(v * v for v in t[c].flatten().double().tolist()))
                < 1e-9
            )


def test_phases_on_a_synthetic_series():
    epochs = np.arange(0, 1000, 10)
    train_acc = np.where(epochs >= 100, 1.0, 0.5)
    test_loss = np.where(epochs < 500, 20.0, 20.0 * np.exp(-(epochs - 500) / 20.0))
    test_loss = np.maximum(test_loss, 1e-6)
    got = phases.locate_phases(epochs, train_acc, test_loss)
    # log range ln(20) - ln(1e-6); 10% down after (t-500)/20 = 0.1 * range
    span = np.log(20.0) - np.log(1e-6)
    start, end = 500 + 20 * 0.1 * span, 500 + 20 * 0.9 * span
    assert got["memorization_end"] == 100
    assert got["circuit_formation_end"] == int(np.ceil(start / 10) * 10)
    assert got["cleanup_end"] == int(np.ceil(end / 10) * 10)
    flat = phases.locate_phases(epochs, train_acc, np.full(len(epochs), 5.0))
    assert flat["memorization_end"] == 100 and flat["cleanup_end"] is None


def test_key_directions_follow_the_config_modulus():
    cfg = preset("small")
    directions = losses.key_directions(cfg.p, [1])
    assert directions.shape == (cfg.p**2, 2)
    assert fourier.frequencies(cfg.p)[-1] == (cfg.p - 1) // 2
