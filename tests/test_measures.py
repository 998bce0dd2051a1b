"""Each progress measure against a closed form or a hand-built case, in the task's basis."""

import math

import numpy as np
import pytest
import torch

from grokinterp.analysis.measures import embedding, losses, neurons, phases, weights
from grokinterp.analysis.measures.logits import fit_logits, logit_fve
from grokinterp.bases.dlog import discrete_log
from grokinterp.bases.fourier import fourier_basis
from grokinterp.errors import UsageError
from grokinterp.presets import preset
from grokinterp.tasks import task_of

P = 17


def task(operation="add", p=P):
    return task_of(preset("small").replace(p=p, operation=operation))


def cos_sin(k, x, n=P):
    return torch.cos(2 * math.pi * k * x / n), torch.sin(2 * math.pi * k * x / n)


def test_embedding_built_from_known_frequencies():
    x = torch.arange(P, dtype=torch.float64)
    d_model = 8
    W_E = torch.zeros(P + 1, d_model, dtype=torch.float64)
    c3, s3 = cos_sin(3, x)
    c7, _ = cos_sin(7, x)
    W_E[:P, 0], W_E[:P, 1], W_E[:P, 2] = 2 * c3, s3, c7
    W_E[P] = 100.0  # the `=` token must be ignored
    basis = task().basis()
    norms = embedding.embedding_norms(W_E[None], basis)[0]
    # ||2 cos||^2 + ||sin||^2 over P residues = 4 P/2 + P/2; ||cos||^2 = P/2
    want = torch.zeros(P // 2, dtype=torch.float64)
    want[2], want[6] = math.sqrt(2.5 * P), math.sqrt(P / 2)
    torch.testing.assert_close(norms, want)
    assert embedding.key_components(norms, basis) == [3, 7]


def _spectrum_embedding(amplitudes: dict[int, float], p: int = 23) -> torch.Tensor:
    """Element embeddings [p, 2 * len] whose frequency k is amplitude * (cos, sin)(w_k x): its
    norm is amplitude * sqrt(p)."""
    x = torch.arange(p, dtype=torch.float64)
    columns = [a * t for k, a in amplitudes.items() for t in cos_sin(k, x, p)]
    return torch.stack(columns, dim=1)


def test_a_flat_spectrum_names_no_key_components():
    # p = 23: 11 frequencies. Ten of equal norm and one at a third of it: shares 1/10.11 each and
    # 0.011, so the share rule picks ten of the eleven, more than half: flat
    basis = task(p=23).basis()
    amplitudes = dict.fromkeys(range(1, 11), 1.0) | {11: 1 / 3}
    norms = embedding.embedding_norms(_spectrum_embedding(amplitudes)[None], basis)[0]
    keys = embedding.key_components(norms, basis)
    assert keys == list(range(1, 11))
    note = embedding.flat_spectrum(keys, basis)
    assert note.startswith("no key components: the spectrum is flat (10 of its 11 components")
    # three frequencies holding 90% of the norm: key, not flat, whatever the other eight hold
    amplitudes = {2: 1.0, 5: 1.0, 9: 1.0} | dict.fromkeys([1, 3, 4, 6, 7, 8, 10, 11], 0.204)
    norms = embedding.embedding_norms(_spectrum_embedding(amplitudes)[None], basis)[0]
    assert embedding.key_components(norms, basis) == [2, 5, 9]
    assert embedding.flat_spectrum([2, 5, 9], basis) is None


def test_half_of_the_spectrum_is_not_flat_and_more_is():
    basis = task(p=23).basis()
    assert embedding.flat_spectrum([1, 2, 3, 4, 5], basis) is None  # 5 of 11
    assert embedding.flat_spectrum([1, 2, 3, 4, 5, 6], basis) is not None  # 6 of 11
    canonical = task(p=113).basis()  # the shipped reference run's keys
    assert embedding.flat_spectrum([1, 8, 21], canonical) is None


def test_multiplicative_embedding_has_exactly_its_characters_as_key_frequencies():
    """W_E built from cos/sin of w_k log x (w_k = 2 pi k / (p - 1)) for k = 2 and 5: in the
    discrete-log basis exactly those frequencies, with closed-form norms; in the additive Fourier
    basis the same embedding is spread over many frequencies."""
    mul = task("mul")
    log = discrete_log(P)[1:].double()
    W_E = torch.zeros(P + 1, 4, dtype=torch.float64)
    c2, s2 = cos_sin(2, log, P - 1)
    c5, _ = cos_sin(5, log, P - 1)
    W_E[1:P, 0], W_E[1:P, 1], W_E[1:P, 2] = 2 * c2, s2, c5
    W_E[0], W_E[P] = 50.0, 100.0  # the zero residue is a trivial component; `=` is dropped
    basis = mul.basis()
    norms = embedding.embedding_norms(W_E[None], basis)[0]
    n = P - 1
    want = torch.zeros(n // 2, dtype=torch.float64)
    want[1], want[4] = math.sqrt(2.5 * n), math.sqrt(n / 2)
    torch.testing.assert_close(norms, want)
    assert embedding.key_components(norms, basis) == [2, 5]
    additive = embedding.embedding_norms(W_E[None, :, :], fourier_basis(P))[0]
    assert (additive.pow(2) / additive.pow(2).sum() > 0.01).sum() > 4
    assert weights.gini(norms[None]) > weights.gini(additive[None]) + 0.3


def test_neuron_logit_map_is_wu_transpose_wout_transpose():
    """Without LayerNorm the transformer's W_L is W_U^T W_out^T, checkpoint by checkpoint."""
    from grokinterp.models import architecture

    model = architecture(preset("small").replace(p=P, d_model=4, d_mlp=6))
    params = {name: torch.stack([model.init_params()[name]] * 2) for name in model.param_shapes()}
    params["blocks.0.mlp.W_out"][1] *= 2
    maps = model.neuron_logit_maps(params)[0]
    for c in range(2):
        W_out, W_U = params["blocks.0.mlp.W_out"][c], params["unembed.W_U"][c]
        torch.testing.assert_close(maps[c], W_U.double().T @ W_out.double().T)


def test_pure_cos_neuron_has_fve_one_and_mixed_neuron_splits():
    add = task()
    a, b = add.domain // P, add.domain % P
    c5, _ = cos_sin(5, a + b)
    c2a, _ = cos_sin(2, a)
    _, s6b = cos_sin(6, b)
    post = torch.stack([c5, c2a + s6b, torch.zeros_like(c5)], dim=1)[None]
    fve = neurons.component_fve(post, add, add.basis())[0]
    assert abs(fve[0, 4].item() - 1) < 1e-9 and fve[0].sum().item() < 1 + 1e-9
    # cos(2a) + sin(6b): half the variance at frequency 2, half at 6
    torch.testing.assert_close(fve[1, [1, 5]], torch.tensor([0.5, 0.5]))
    assert not fve[2].any()  # a dead neuron explains nothing
    dominant, best, counts = neurons.cluster_sizes(fve[None])
    assert dominant[0, 0] == 5 and counts[0, 4] == 1 and counts.sum() == 1


def test_neuron_on_the_multiplicative_clock_clusters_in_the_dlog_basis():
    mul = task("mul")
    log = discrete_log(P)
    a, b = mul.domain // P, mul.domain % P
    c3, _ = cos_sin(3, log[a] + log[b], P - 1)
    fve = neurons.component_fve(c3[None, :, None], mul, mul.basis())[0, 0]
    assert abs(fve[2].item() - 1) < 1e-9 and fve.sum().item() < 1 + 1e-9


def clock_logits(tsk, keys, scale, answer_of, n, zero_class=None):
    """scale * sum_k cos(w_k (s - t)) with w_k = 2 pi k / n, s the answer's and t the class's
    position on the clock; class `zero_class` (outside the clock) gets logit 0."""
    s = answer_of(tsk.domain // P, tsk.domain % P).double()[:, None]
    t = torch.arange(P, dtype=torch.float64)[None]
    if zero_class is not None:
        t = discrete_log(P).double()[None]
    logits = sum(torch.cos(2 * math.pi * k * (s - t) / n) for k in keys) * scale
    if zero_class is not None:
        logits[:, zero_class] = 0.0
    return logits[None]


@pytest.mark.parametrize(
    ("operation", "answer_of", "n", "zero_class"),
    [
        ("add", lambda a, b: a + b, P, None),
        ("sub", lambda a, b: a - b, P, None),
        ("mul", lambda a, b: discrete_log(P)[a] + discrete_log(P)[b], P - 1, 0),
    ],
)
def test_restricted_and_excluded_loss_of_a_pure_clock_model(operation, answer_of, n, zero_class):
    """A model whose logits are the clock of its task's basis: restricted loss equals its loss,
    excluded loss is the closed form, the logit FVE is 1. Excluded logits are 0 for every class
    (the clock part lies in the key directions; its mean over the pairs is 0), so the excluded
    loss is ln(number of classes) = ln p, also for a * b, where the class 0 off the clock has
    logit 0 (with logit z it would be ln(p - 1 + e^z))."""
    tsk, keys = task(operation), [2, 5]
    basis = tsk.basis()
    logits = clock_logits(tsk, keys, 8.0, answer_of, n, zero_class)
    labels = tsk.labels
    assert torch.equal(logits[0].argmax(dim=-1), labels)
    directions = losses.key_directions(tsk, basis, keys)
    torch.testing.assert_close(directions.T @ directions, torch.eye(4, dtype=torch.float64))
    full = losses.cross_entropy(logits, labels)
    restricted = losses.cross_entropy(losses.restricted_logits(logits, directions), labels)
    excluded = losses.cross_entropy(losses.excluded_logits(logits, directions), labels)
    torch.testing.assert_close(restricted, full)
    assert abs(excluded.item() - math.log(P)) < 1e-9
    assert abs(logit_fve(logits, tsk, basis, keys).item() - 1) < 1e-9
    assert logit_fve(logits, tsk, basis, [1]).item() < 1e-9
    assert abs(fit_logits(logits[0], tsk, basis, keys).fve - 1) < 1e-9


def test_excluded_loss_closed_form_with_a_class_off_the_clock():
    """a * b with the class 0 (never an answer) at logit z: excluded loss ln(p - 1 + e^z)."""
    mul, keys, z = task("mul"), [1, 4], -3.0
    log = discrete_log(P)
    logits = clock_logits(mul, keys, 6.0, lambda a, b: log[a] + log[b], P - 1, 0)
    logits[..., 0] = z
    directions = losses.key_directions(mul, mul.basis(), keys)
    excluded = losses.cross_entropy(losses.excluded_logits(logits, directions), mul.labels)
    assert abs(excluded.item() - math.log(P - 1 + math.exp(z))) < 1e-9


def test_no_measure_accepts_a_basis_of_another_task():
    mul, add = task("mul"), task("add")
    logits = torch.zeros(1, mul.n_pairs, P)
    post = torch.zeros(1, mul.n_pairs, 3)
    with pytest.raises(UsageError, match="does not belong"):
        losses.key_directions(mul, add.basis(), [1])
    with pytest.raises(UsageError, match="does not belong"):
        logit_fve(logits, mul, add.basis(), [1])
    with pytest.raises(UsageError, match="does not belong"):
        neurons.component_fve(post, mul, add.basis())
    with pytest.raises(UsageError, match="does not belong"):
        mul.basis("fourier")
    with pytest.raises(UsageError, match="no known basis"):
        task("a2_b2").basis()


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
    train_loss = np.maximum(5.0 * np.exp(-epochs / 30.0), 1e-4)  # flat (within 2x) from 270
    got = phases.locate_phases(epochs, train_loss, train_acc, test_loss)
    # log range ln(20) - ln(1e-6); 10% down after (t-500)/20 = 0.1 * range
    span = np.log(20.0) - np.log(1e-6)
    start, end = 500 + 20 * 0.1 * span, 500 + 20 * 0.9 * span
    # 5 exp(-t / 30) <= 2e-4 from t = 30 ln(25000) = 303.8
    assert got["memorization_end"] == 310
    assert got["circuit_formation_end"] == int(np.ceil(start / 10) * 10)
    assert got["cleanup_end"] == int(np.ceil(end / 10) * 10)
    flat = phases.locate_phases(epochs, train_loss, train_acc, np.full(len(epochs), 5.0))
    assert flat["memorization_end"] == 310 and flat["cleanup_end"] is None
    assert "not grokked" in phases.phase_note(len(epochs), flat)
    # with an excluded loss, memorisation ends at its lowest point before circuit formation ends
    excluded = 1.0 + (epochs - 200.0) ** 2
    with_basis = phases.locate_phases(epochs, train_loss, train_acc, test_loss, excluded)
    assert with_basis["memorization_end"] == 200
    assert with_basis["cleanup_end"] == got["cleanup_end"]
    few = phases.locate_phases(epochs[:4], train_loss[:4], train_acc[:4], test_loss[:4])
    assert set(few.values()) == {None} and "4 checkpoint" in phases.phase_note(4, few)


def test_key_directions_follow_the_config_modulus():
    cfg = preset("small")
    tsk = task_of(cfg)
    directions = losses.key_directions(tsk, tsk.basis(), [1])
    assert directions.shape == (cfg.p**2, 2)
