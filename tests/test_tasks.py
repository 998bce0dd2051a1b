"""Tasks and bases: every operation's table against a direct computation, and the bases'
defining properties (orthonormal, named rows that are what their names say)."""

import math

import numpy as np
import pytest
import torch

from grokinterp.bases.dlog import discrete_log, dlog_basis, generator
from grokinterp.cli import main
from grokinterp.presets import preset
from grokinterp.tasks import OPERATIONS, task_of

P = 13


def direct(name, a, b, p):
    """The operation computed one pair at a time in plain Python; None outside the domain."""
    inverse = pow(b, p - 2, p) if b else None
    table = {
        "add": (a + b) % p,
        "sub": (a - b) % p,
        "mul": a * b % p if a and b else None,
        "div": a * inverse % p if b else None,
        "div_or_sub": None if not b else (a * inverse % p if b % 2 else (a - b) % p),
        "a2_b2": (a**2 + b**2) % p,
        "a2_ab_b2": (a**2 + a * b + b**2) % p,
        "a2_ab_b2_a": (a**2 + a * b + b**2 + a) % p,
        "a3_ab": (a**3 + a * b) % p,
        "a3_ab2_b": (a**3 + a * b**2 + b) % p,
    }
    return table[name]


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_every_operation_table_matches_a_direct_computation(name):
    task = task_of(preset("small").replace(p=P, operation=name))
    want = {
        a * P + b: direct(name, a, b, P)
        for a in range(P)
        for b in range(P)
        if direct(name, a, b, P) is not None
    }
    assert task.domain.tolist() == sorted(want)
    assert task.labels.tolist() == [want[i] for i in sorted(want)]
    assert task.n_pairs == preset("small").replace(p=P, operation=name).n_pairs
    symmetric = all(
        direct(name, a, b, P) == direct(name, b, a, P) for a in range(P) for b in range(P)
    )
    assert task.commutative == symmetric


def test_division_inverts_multiplication():
    mul = task_of(preset("small").replace(p=P, operation="mul")).table
    div = task_of(preset("small").replace(p=P, operation="div")).table
    for a in range(1, P):
        for b in range(1, P):
            assert div[mul[a, b], b] == a


def test_swap_unseen_counts_only_swaps_with_the_same_answer():
    sub = task_of(preset("small").replace(p=P, operation="sub"))
    train = torch.tensor([1 * P + 2, 3 * P + 3])
    pairs = torch.tensor([2 * P + 1, 3 * P + 3])
    # (2, 1) has answer 1, its trained swap (1, 2) answer 12: nothing given away
    assert sub.swap_unseen(train, pairs).tolist() == [True, False]


def test_generator_and_discrete_log():
    for p in (3, 5, 13, 59, 113):
        g = generator(p)
        assert sorted(pow(g, j, p) for j in range(p - 1)) == list(range(1, p))
        assert all(pow(g, j, p) != 1 for j in range(1, p - 1))
        log = discrete_log(p)
        assert log[0] == -1 and all(pow(g, int(log[x]), p) == x for x in range(1, p))
    assert generator(13) == 2 and generator(23) == 5


def test_dlog_basis_is_orthonormal_and_its_rows_are_characters():
    for p in (5, 13, 59):
        basis = dlog_basis(p)
        torch.testing.assert_close(basis.matrix @ basis.matrix.T, torch.eye(p, dtype=torch.float64))
    basis, log = dlog_basis(P), discrete_log(P)
    n = P - 1
    for row, name in zip(basis.matrix, basis.row_names, strict=True):
        if name == "zero":
            want = torch.zeros(P, dtype=torch.float64)
            want[0] = 1.0
        elif name == "const":
            want = (torch.arange(P) > 0).double()
        else:
            kind, k = name.split()
            want = getattr(torch, kind)(2 * math.pi * int(k) * log.double() / n)
            want[0] = 0.0
        torch.testing.assert_close(row, want / want.norm())
    # Legendre symbol: the last frequency (p - 1)/2 is one row, (-1)^log x
    assert basis.spectrum[-1].key == n // 2 and len(basis.spectrum[-1].rows) == 1
    restricted = basis.restricted(torch.arange(1, P))
    assert "zero" not in restricted.row_names and restricted.matrix.shape == (n, n)


def test_cli_refuses_an_unknown_operation_and_a_foreign_basis(tmp_path, capsys, tiny_cfg):
    code = main(["train", "--operation", "pow", "--out", str(tmp_path / "r"), "--quiet"])
    assert code == 2 and "unknown operation 'pow'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    code = main(["train", "--operation", "mul", "--p", "3", "--train-frac", "0.2",
                 "--out", str(tmp_path / "r"), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "4 pairs of operation 'mul'" in err and not (tmp_path / "r").exists()

    from grokinterp.training.loop import train_runs

    run = tmp_path / "mul"
    train_runs([tiny_cfg.replace(operation="mul", epochs=10)], [run], progress=False)
    out = tmp_path / "analysis"
    code = main(["analyze", "--ckpt-dir", str(run), "--out", str(out), "--basis", "fourier"])
    err = capsys.readouterr().err
    assert code == 2 and "does not belong" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_batched_runs_of_a_task_with_a_partial_domain(tmp_path, tiny_cfg):
    """Runs of a / b with different train fractions train together (padded splits): each equals
    its run trained alone."""
    from grokinterp.storage import store
    from grokinterp.training.loop import train_runs

    cfgs = [tiny_cfg.replace(operation="div", train_frac=f, epochs=5) for f in (0.3, 0.6)]
    train_runs(cfgs, [tmp_path / "a", tmp_path / "b"], progress=False)
    train_runs(cfgs[1:], [tmp_path / "alone"], progress=False)
    together, alone = (store.read_metrics_array(tmp_path / d) for d in ("b", "alone"))
    assert np.isfinite(together).all()
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-5)
