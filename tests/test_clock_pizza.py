"""Zhong et al.'s clock-vs-pizza diagnostics on hand-built clocks and pizzas (closed forms in
tests/helpers.py) and on invariants of the architectures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from grokinterp.analysis.context import forward_on_domain
from grokinterp.analysis.measures import clock_pizza
from grokinterp.models import architecture
from grokinterp.presets import preset
from grokinterp.tasks import task_of
from tests.helpers import clock_mlp, pizza_mlp

P, FREQS = 23, (3, 7)
SCALE = 1 + 0.5 * torch.cos(torch.arange(P, dtype=torch.float64) * 2 * math.pi * 2 / P)


def diagnostics(cfg, state) -> tuple[float, float]:
    """(gradient symmetricity, distance irrelevance) of one state dict."""
    task, model = task_of(cfg), architecture(cfg)
    logits = forward_on_domain(model, {k: v[None] for k, v in state.items()}, task).logits
    q = clock_pizza.distance_irrelevance(logits, task.labels, clock_pizza.operand_distance(task))
    triples = clock_pizza.sample_triples(task)
    s_g = clock_pizza.gradient_symmetricity(*clock_pizza.operand_gradients(model, state, *triples))
    return float(s_g), float(q[0])


def test_hand_built_models_compute_their_closed_forms():
    """The builders realise the formulas the diagnostics are checked against."""
    a, b = torch.meshgrid(torch.arange(P), torch.arange(P), indexing="ij")
    a, b = a.flatten().double(), b.flatten().double()
    c = torch.arange(P, dtype=torch.float64)
    w = torch.tensor(FREQS, dtype=torch.float64) * 2 * math.pi / P
    angle = lambda x: x[:, None, None] * w  # noqa: E731  [pairs, 1, K]
    total = angle(a + b) - (c[None, :, None] * w)
    pizza = (4 * torch.cos(angle(a - b) / 2) ** 2 * torch.cos(total)).sum(-1)
    clock = SCALE * torch.cos(total).sum(-1)
    for (cfg, state), expected in (
        (pizza_mlp(P, FREQS), pizza),
        (clock_mlp(P, FREQS, SCALE), clock),
    ):
        logits = forward_on_domain(
            architecture(cfg), {k: v[None] for k, v in state.items()}, task_of(cfg)
        ).logits[0]
        torch.testing.assert_close(logits, expected, atol=1e-10, rtol=0)


def test_pizza_is_symmetric_and_distance_dependent():
    s_g, q = diagnostics(*pizza_mlp(P, FREQS))
    assert s_g == pytest.approx(1.0, abs=1e-12)  # a function of E_a + E_b
    assert q == pytest.approx(0.0, abs=1e-12)  # the right logit is a function of a - b


def test_clock_is_asymmetric_and_distance_irrelevant():
    cfg, state = clock_mlp(P, FREQS, SCALE)
    s_g, q = diagnostics(cfg, state)
    a, b, _ = clock_pizza.sample_triples(task_of(cfg))
    w = torch.tensor(FREQS, dtype=torch.float64) * 2 * math.pi / P
    expected = torch.cos((a - b).double()[:, None] * w).mean(dim=1).mean()
    assert s_g == pytest.approx(float(expected), abs=1e-6)  # float32 weights in the module
    assert abs(s_g) < 0.3  # the clock's side, far from the pizza's 1
    assert q == pytest.approx(1.0, abs=1e-12)  # the right logit s_{a+b} ignores a - b


def test_distance_irrelevance_is_the_papers_matrix_formula():
    """Against Zhong et al.'s layout: M[(a + b) % p, (a - b) % p] the right logit, q = the mean
    over columns of each column's std over the mean-free total std."""
    cfg = preset("small").replace(p=P)
    task = task_of(cfg)
    logits = torch.randn(2, task.n_pairs, P, generator=torch.Generator().manual_seed(1))
    q = clock_pizza.distance_irrelevance(logits, task.labels, clock_pizza.operand_distance(task))
    for ckpt in range(2):
        matrix = np.zeros((P, P))
        for i, pair in enumerate(task.domain.tolist()):
            a, b = divmod(pair, P)
            matrix[(a + b) % P, (a - b) % P] = logits[ckpt, i, (a + b) % P]
        expected = np.mean(np.std(matrix, axis=0)) / np.std(matrix)
        assert float(q[ckpt]) == pytest.approx(expected, rel=1e-12)


def test_distance_is_a_times_b_inverse():
    for cfg, formula in (
        (preset("small").replace(p=P), lambda a, b: (a - b) % P),
        (preset("small").replace(p=7, group="Z7", operation="compose"), lambda a, b: (a - b) % 7),
        (preset("small").replace(p=P, operation="mul"), None),
    ):
        task = task_of(cfg)
        n = task.n_elements
        a, b = task.domain // n, task.domain % n
        distance = clock_pizza.operand_distance(task)
        if formula is None:  # a / b mod p: distance * b = a
            assert torch.equal(distance * b % P, a)
        else:
            assert torch.equal(distance, formula(a, b))


def test_constant_attention_is_symmetric_in_the_operands():
    """At attention rate 0 the transformer sees E_a and E_b only through their sum (uniform
    attention, the same W_V): s_g = 1 for any weights; learned attention breaks it."""
    for rate, symmetric in ((0.0, True), (1.0, False)):
        cfg = preset("small").replace(p=P, attention_rate=rate)
        state = architecture(cfg).initial_state_dict()
        for name in ("blocks.0.attn.W_Q", "blocks.0.attn.W_K"):  # sharpen the attention
            state[name] = state[name] * 4
        model, task = architecture(cfg), task_of(cfg)
        s_g = float(
            clock_pizza.gradient_symmetricity(
                *clock_pizza.operand_gradients(model, state, *clock_pizza.sample_triples(task))
            )
        )
        assert (s_g == pytest.approx(1.0, abs=1e-9)) == symmetric, (rate, s_g)


def test_not_applicable_outside_commutative_groups():
    cases = [(dict(p=P, operation=op), op in ("add", "mul")) for op in ("add", "mul", "sub")]
    cases += [(dict(p=P, operation="a2_b2"), False)]  # commutative, but no group
    cases += [(dict(group="S3", operation="compose"), False)]  # a group, not commutative
    cases += [(dict(group="Z3xZ3", operation="compose"), True)]
    for fields, applies in cases:
        task = task_of(preset("small").replace(**fields))
        assert (clock_pizza.not_applicable(task) is None) == applies, fields
