"""Finite groups: composition tables against direct permutation products, the real irreps
against closed forms, the irrep basis, hand-built models whose answer goes through one irrep,
Z_n as a group against the Fourier measures of addition, and the CLI's refusals. All fast."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

from grokinterp.analysis.columns import measure_checkpoints
from grokinterp.analysis.measures import embedding, losses, neurons
from grokinterp.analysis.measures.logits import fit_logits, logit_fve
from grokinterp.bases.fourier import fourier_basis
from grokinterp.bases.irreps import Irrep, check_irreps, irreps_of_table, real_irreps
from grokinterp.cli import build_parser, main
from grokinterp.cli.train import _run_plan
from grokinterp.config import RunConfig
from grokinterp.errors import UsageError
from grokinterp.models import architecture
from grokinterp.presets import GROUP_PRESETS, PRESETS, preset
from grokinterp.tasks import task_of
from grokinterp.tasks.groups import (
    Group,
    build_group,
    closure,
    group_irreps,
    group_order,
    group_task,
    irrep_basis,
)
from grokinterp.tasks.modular import modular_task

GROUPS = ["S3", "S4", "S5", "A4", "A5", "D3", "D4", "D7", "D12", "Z7", "Z8", "Z3xZ5", "Z2xZ2xZ2"]


def compose(a, b):
    """(a * b)(x) = a(b(x)), one point at a time."""
    return tuple(a[b[x]] for x in range(len(a)))


def invert(a):
    inverse = [0] * len(a)
    for x, y in enumerate(a):
        inverse[y] = x
    return tuple(inverse)


def fixed_points(perm) -> int:
    return sum(int(x == y) for x, y in enumerate(perm))


def sign(perm) -> int:
    inversions = sum(1 for i, j in itertools.combinations(range(len(perm)), 2) if perm[i] > perm[j])
    return -1 if inversions % 2 else 1


# ---- the groups -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", GROUPS)
def test_composition_table_is_the_direct_permutation_product(name):
    group = build_group(name)
    perms = [tuple(p) for p in group.perms.tolist()]
    assert perms == sorted(set(perms)) and len(perms) == group_order(name)
    assert perms[0] == tuple(range(len(perms[0])))  # the identity is element 0
    index = {p: i for i, p in enumerate(perms)}
    for a, b in itertools.product(range(len(perms)), repeat=2):
        assert group.table[a, b] == index[compose(perms[a], perms[b])]
    for a, perm in enumerate(perms):
        assert group.table[0, a] == a == group.table[a, 0]
        assert perms[group.inverse[a]] == invert(perm)
        assert group.table[a, group.inverse[a]] == 0 == group.table[group.inverse[a], a]
        assert group.index(perm) == a
    with pytest.raises(ValueError):
        group.index((1, 0, *perms[0][2:]) if name.startswith("A") else (0,) * len(perms[0]))


@pytest.mark.parametrize("name", ["S4", "D5", "A4"])
def test_conjugate_and_aba_tasks_follow_their_formulas(name):
    group = build_group(name)
    perms = [tuple(p) for p in group.perms.tolist()]
    index = {p: i for i, p in enumerate(perms)}
    conjugate = group_task(name, "conjugate").table
    aba = group_task(name, "aba").table
    for a, b in itertools.product(range(len(perms)), repeat=2):
        pa, pb = perms[a], perms[b]
        assert conjugate[a, b] == index[compose(compose(pa, pb), invert(pa))]
        assert aba[a, b] == index[compose(compose(pa, pb), pa)]


def test_group_orders_families_and_element_names():
    assert [group_order(n) for n in ("S3", "S4", "S5", "A4", "A5", "D7", "Z3xZ5")] == [
        6,
        24,
        120,
        12,
        60,
        14,
        15,
    ]
    assert all(sign(p) == 1 for p in build_group("A5").perms.tolist())
    s3 = build_group("S3")
    assert s3.element_names == ("()", "(2 3)", "(1 2)", "(1 2 3)", "(1 3 2)", "(1 3)")
    d4 = build_group("D4")
    assert d4.element_names == ("r0", "s0", "s1", "r1", "s2", "r2", "r3", "s3")
    for name, perm in zip(d4.element_names, d4.perms.tolist(), strict=True):
        k = int(name[1:])
        want = [(x + k) % 4 if name[0] == "r" else (k - x) % 4 for x in range(4)]
        assert perm == want
    assert build_group("Z7").element_names == tuple(map(str, range(7)))
    assert build_group("Z3xZ5").element_names[:6] == (
        "(0,0)",
        "(0,1)",
        "(0,2)",
        "(0,3)",
        "(0,4)",
        "(1,0)",
    )


def test_cyclic_group_task_is_addition_mod_n():
    z7, add = group_task("Z7"), modular_task("add", 7)
    assert torch.equal(z7.table, add.table)
    assert z7.group == add.group == "Z_7" and z7.bases == ("irreps", "fourier")
    product = group_task("Z3xZ5")
    for a, b in itertools.product(range(15), repeat=2):
        assert product.table[a, b] == ((a // 5 + b // 5) % 3) * 5 + (a % 5 + b % 5) % 5


# ---- the irreps ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, dims, kinds",
    [
        ("S3", [1, 1, 2], "rrr"),
        ("S4", [1, 1, 2, 3, 3], "rrrrr"),
        ("S5", [1, 1, 4, 4, 5, 5, 6], "rrrrrrr"),
        ("A4", [1, 2, 3], "rcr"),  # the complex pair of 1-dim irreps, realified
        ("A5", [1, 3, 3, 4, 5], "rrrrr"),
        ("D7", [1, 1, 2, 2, 2], "rrrrr"),  # n odd: 2 of dimension 1, (n - 1) / 2 of dimension 2
        ("D12", [1, 1, 1, 1] + [2] * 5, "r" * 9),  # n even: 4 and (n - 2) / 2
        ("Z7", [1, 2, 2, 2], "rccc"),
        ("Z8", [1, 1, 2, 2, 2], "rrccc"),
    ],
)
def test_real_irreps_have_the_known_dimensions_and_types(name, dims, kinds):
    irreps = group_irreps(name)
    order = group_order(name)
    assert [i.dim for i in irreps] == dims
    assert "".join(i.kind[0] for i in irreps) == kinds
    assert sum(i.block_size for i in irreps) == order
    if "c" not in kinds:
        assert sum(d * d for d in dims) == order
    assert irreps[0].name == "trivial"


def test_realification_counts_of_a4():
    """A_4 over the reals: 1, 2 (the complex pair omega, omega-bar realified) and 3. sum d^2 is
    1 + 4 + 9 = 14 > 12; the blocks, d^2 / <chi, chi>, are 1 + 2 + 9 = 12."""
    irreps = group_irreps("A4")
    assert [i.dim**2 for i in irreps] == [1, 4, 9]
    assert [i.block_size for i in irreps] == [1, 2, 9]
    assert [i.commutant for i in irreps] == [1, 2, 1]


def quaternion_group() -> Group:
    """Q8 through its left regular action: elements 1, i, j, k, -1, -i, -j, -k as 0..7."""
    units = ["1", "i", "j", "k"]
    times = {  # u * v for units, (sign, unit)
        ("i", "i"): (-1, "1"),
        ("j", "j"): (-1, "1"),
        ("k", "k"): (-1, "1"),
        ("i", "j"): (1, "k"),
        ("j", "k"): (1, "i"),
        ("k", "i"): (1, "j"),
        ("j", "i"): (-1, "k"),
        ("k", "j"): (-1, "i"),
        ("i", "k"): (-1, "j"),
    }

    def left(u):
        image = []
        for x in range(8):
            s, v = (1 if x < 4 else -1), units[x % 4]
            t, w = (1, v) if u == "1" else (1, u) if v == "1" else times[(u, v)]
            image.append(units.index(w) + (0 if s * t == 1 else 4))
        return tuple(image)

    perms = closure([left("i"), left("j")])
    return Group("Q8", perms, tuple(str(i) for i in range(8)))


def test_quaternionic_irrep_of_q8():
    group = quaternion_group()
    assert group.order == 8
    irreps = real_irreps(group.table)
    assert [(i.dim, i.kind) for i in irreps] == [(1, "real")] * 4 + [(4, "quaternionic")]
    assert irreps[-1].block_size == 4  # 16 entries span 16 / 4 functions
    basis = irreps_of_table("Q8", irreps)
    assert torch.allclose(basis.matrix @ basis.matrix.T, torch.eye(8, dtype=torch.float64))


@pytest.mark.parametrize("name", ["S4", "A4", "D6", "Z3xZ5"])
def test_each_irrep_is_an_orthogonal_homomorphism(name):
    table = build_group(name).table
    for irrep in group_irreps(name):
        rho = irrep.matrices
        for a, b in itertools.product(range(len(table)), repeat=2):
            np.testing.assert_allclose(rho[a] @ rho[b], rho[table[a, b]], atol=1e-9)
        np.testing.assert_allclose(
            rho @ rho.transpose(0, 2, 1), np.broadcast_to(np.eye(irrep.dim), rho.shape), atol=1e-9
        )


def test_characters_match_closed_forms():
    s4 = build_group("S4")
    perms = s4.perms.tolist()
    by_name = {i.name: i.character for i in group_irreps("S4")}
    standard = np.array([fixed_points(p) - 1 for p in perms], dtype=float)
    signs = np.array([sign(p) for p in perms], dtype=float)
    np.testing.assert_allclose(by_name["sign"], signs, atol=1e-9)
    np.testing.assert_allclose(by_name["3a"], standard, atol=1e-9)
    np.testing.assert_allclose(by_name["3b"], standard * signs, atol=1e-9)
    # the 2-dim irrep of S4 factors through S3: 2 on the Klein group, 0 on odd elements...
    cycle_type = [sorted(len(c) for c in cycles(p)) for p in perms]
    want2 = [
        {(1, 1, 1, 1): 2, (2, 2): 2, (1, 1, 2): 0, (1, 3): -1, (4,): 0}[tuple(t)]
        for t in cycle_type
    ]
    np.testing.assert_allclose(by_name["2a"], want2, atol=1e-9)
    s5 = build_group("S5").perms.tolist()
    np.testing.assert_allclose(
        {i.name: i.character for i in group_irreps("S5")}["4a"],
        [fixed_points(p) - 1 for p in s5],
        atol=1e-9,
    )
    for n in (7, 8):
        group = build_group(f"D{n}")
        rotation = {name: int(name[1:]) for name in group.element_names if name[0] == "r"}
        twos = [i for i in group_irreps(f"D{n}") if i.dim == 2]
        for k, irrep in enumerate(twos, start=1):  # 2a, 2b, ... are frequencies 1, 2, ...
            for g, name in enumerate(group.element_names):
                want = 2 * math.cos(2 * math.pi * k * rotation[name] / n) if name[0] == "r" else 0
                assert abs(irrep.character[g] - want) < 1e-9
    z7 = [i for i in group_irreps("Z7") if i.dim == 2]
    for k, irrep in enumerate(z7, start=1):
        np.testing.assert_allclose(
            irrep.character, 2 * np.cos(2 * np.pi * k * np.arange(7) / 7), atol=1e-9
        )


def cycles(perm):
    seen, found = set(), []
    for start in range(len(perm)):
        if start not in seen:
            cycle, x = [], start
            while x not in seen:
                seen.add(x)
                cycle.append(x)
                x = perm[x]
            found.append(cycle)
    return found


def test_checks_refuse_a_reducible_or_broken_representation():
    s3 = build_group("S3")
    irreps = group_irreps("S3")
    widths = [i.block_size for i in irreps]
    inverse = s3.inverse
    check_irreps(irreps, s3.table, widths, 3, inverse)
    doubled = np.zeros((6, 2, 2))
    doubled[:, 0, 0] = doubled[:, 1, 1] = 1.0  # trivial + trivial: reducible
    with pytest.raises(AssertionError, match="reducible"):
        check_irreps([Irrep("x", doubled, 2)], s3.table, [2], 3, inverse)
    broken = irreps[2].matrices.copy()
    broken[[1, 2]] = broken[[2, 1]]  # swap two elements: no longer a homomorphism
    with pytest.raises(AssertionError, match="homomorphism"):
        check_irreps([*irreps[:2], Irrep("2a", broken, 1)], s3.table, widths, 3, inverse)
    with pytest.raises(AssertionError, match="fill"):
        check_irreps(irreps[:2], s3.table, widths[:2], 2, inverse)


@pytest.mark.parametrize("name", ["S4", "A4", "D6", "Z8", "Z3xZ5"])
def test_irrep_basis_is_orthonormal_and_its_kernels_are_characters(name):
    basis = irrep_basis(name)
    order = group_order(name)
    eye = torch.eye(order, dtype=torch.float64)
    assert torch.allclose(basis.matrix @ basis.matrix.T, eye, atol=1e-10)
    assert sorted(r for c in basis.components for r in c.rows) == list(range(order))
    assert basis.kind == "irrep" and basis.name == "irreps"
    assert [c.name for c in basis.components if c.trivial] == ["trivial"]
    assert torch.allclose(basis.matrix[0], torch.full((order,), order**-0.5, dtype=torch.float64))
    table, inverse = build_group(name).table, build_group(name).inverse
    s_c_inverse = table[:, inverse]  # [s, c] -> s c^-1
    for irrep, component in zip(group_irreps(name), basis.components, strict=True):
        rows = basis.matrix[list(component.rows)].numpy()
        kernel = rows.T @ rows  # sum_r phi_r(s) phi_r(c)
        want = irrep.dim / (irrep.commutant * order) * irrep.character[s_c_inverse]
        np.testing.assert_allclose(kernel, want, atol=1e-10)
        if irrep.commutant == 1:  # rows are the normalised matrix entries themselves
            entries = np.sqrt(irrep.dim / order) * irrep.matrices.reshape(order, -1).T
            np.testing.assert_allclose(rows, entries, atol=1e-12)


# ---- hand-built models: the answer through one irrep --------------------------------------------
@pytest.mark.parametrize("name, chosen", [("S4", "3b"), ("S4", "2a"), ("D5", "2b")])
def test_a_model_computing_through_one_irrep_has_it_as_its_only_key_irrep(name, chosen):
    task, basis = group_task(name), irrep_basis(name)
    order = group_order(name)
    irrep = {i.name: i for i in group_irreps(name)}[chosen]
    rho = torch.from_numpy(irrep.matrices)  # [order, d, d]
    d = irrep.dim

    # embedding: element a -> the entries of rho(a) (then the `=` token), padded to d_model 16
    W_E = torch.zeros(order + 1, 16, dtype=torch.float64)
    W_E[:order, : d * d] = rho.reshape(order, -1)
    W_E[order] = 1.0
    norms = embedding.embedding_norms(W_E[None], basis)[0]
    assert embedding.key_components(norms, basis) == [chosen]
    assert norms[[c.key for c in basis.spectrum].index(chosen)] == pytest.approx(
        norms.norm().item(), rel=1e-12
    )

    # logits: scale * chi(a b c^-1), the character of the answer against each class
    a, b = task.domain // order, task.domain % order
    ab = task.labels
    chi = torch.from_numpy(irrep.character)
    inverse = torch.from_numpy(build_group(name).inverse)
    table = torch.from_numpy(build_group(name).table)
    logits = 6.0 * chi[table[ab[:, None], inverse[None, :]]][None]  # [1, pairs, classes]
    assert torch.equal(ab, torch.from_numpy(build_group(name).table)[a, b])
    directions = losses.key_directions(task, basis, [chosen])
    full = losses.cross_entropy(logits, ab)
    restricted = losses.cross_entropy(losses.restricted_logits(logits, directions), ab)
    excluded = losses.cross_entropy(losses.excluded_logits(logits, directions), ab)
    assert restricted.item() == pytest.approx(full.item(), abs=1e-9)
    assert excluded.item() == pytest.approx(math.log(order), abs=1e-9)  # nothing else is left
    assert logit_fve(logits, task, basis, [chosen]).item() == pytest.approx(1.0, abs=1e-12)
    assert fit_logits(logits[0], task, basis, [chosen]).fve == pytest.approx(1.0, abs=1e-12)
    others = [c.key for c in basis.spectrum if c.key != chosen]
    assert logit_fve(logits, task, basis, others).item() == pytest.approx(0.0, abs=1e-12)

    # neurons: u^T rho(a) rho(b) v for random u, v, all explained by the chosen irrep
    u, v = torch.randn(2, 8, d, dtype=torch.float64)
    post = torch.einsum("ni,pij,pjk,nk->pn", u, rho[a], rho[b], v)[None]
    fve = neurons.component_fve(post, task, basis)
    _, best, counts = neurons.cluster_sizes(fve)
    j = [c.key for c in basis.spectrum].index(chosen)
    assert torch.allclose(fve[0, :, j], torch.ones(8, dtype=torch.float64))
    assert counts[0, j] == 8 and counts.sum() == 8


# ---- Z_n as a group: the Fourier measures of addition, reproduced -------------------------------
def frequency_of(irrep_name: str, n: int) -> int:
    """The frequency of a Z_n irrep: 2a, 2b, ... are k = 1, 2, ...; 1a is k = n / 2."""
    return n // 2 if irrep_name == "1a" else ord(irrep_name[1]) - ord("a") + 1


@pytest.mark.parametrize("n", [7, 8, 9])
def test_irrep_blocks_of_z_n_are_the_fourier_frequencies(n):
    fourier, irreps = fourier_basis(n), irrep_basis(f"Z{n}")
    for component in irreps.spectrum:
        k = frequency_of(component.name, n)
        ours = irreps.matrix[list(component.rows)]
        theirs = fourier.matrix[list(fourier.component(k).rows)]
        assert torch.allclose(ours.T @ ours, theirs.T @ theirs, atol=1e-12)


def test_addition_and_subtraction_take_the_irreps_of_z_p():
    """`grokinterp analyze --basis irreps` on an add or sub run: Z_p's irreps, the basis of the
    group task with the same table."""
    z7 = group_task("Z7").basis("irreps")
    for operation in ("add", "sub"):
        basis = modular_task(operation, 7).basis("irreps")
        assert basis.row_names == z7.row_names and torch.equal(basis.matrix, z7.matrix)
    with pytest.raises(UsageError, match="does not belong"):
        modular_task("mul", 7).basis("irreps")


def test_z7_as_a_group_reproduces_the_fourier_measures_of_addition():
    add = preset("small").replace(p=7, d_model=16, n_heads=2, d_mlp=32, train_frac=0.5)
    group = add.replace(group="Z7", operation="compose").validate()
    assert (group.d_vocab, group.n_pairs) == (add.d_vocab, add.n_pairs)
    states = []
    for seed in range(3):
        weights = architecture(add.replace(seed=seed)).init_params()
        states.append({k: v.float() for k, v in weights.items()})
    train = torch.randperm(49, generator=torch.Generator().manual_seed(0))[:24].sort().values
    fourier, irreps = task_of(add).basis("fourier"), task_of(group).basis("irreps")
    final_fourier = embedding.embedding_norms(states[-1]["embed.W_E"][None], fourier)[0]
    final_irreps = embedding.embedding_norms(states[-1]["embed.W_E"][None], irreps)[0]
    keys_f = embedding.key_components(final_fourier, fourier)
    keys_i = embedding.key_components(final_irreps, irreps)
    assert sorted(frequency_of(k, 7) for k in keys_i) == keys_f and keys_f
    for keys in (keys_f, [1], [2, 3]):
        names = {frequency_of(c.name, 7): c.name for c in irreps.spectrum}
        ours, _ = measure_checkpoints(group, states, train, [names[k] for k in keys], irreps)
        theirs, _ = measure_checkpoints(add, states, train, keys, fourier)
        for column in theirs.columns:
            mine = column
            if column.startswith(("W_E.k", "W_L.k", "cluster.k")):
                prefix, k = column.split(".k")
                mine = f"{prefix}.{names[int(k)]}"
            np.testing.assert_allclose(ours[mine], theirs[column], atol=1e-6, err_msg=column)
    # the addition task accepts the irreps basis too: the same numbers as the group task
    direct, _ = measure_checkpoints(add, states, train, [names[k] for k in keys], irreps)
    for column in ours.columns:
        np.testing.assert_allclose(direct[column], ours[column], atol=1e-12, err_msg=column)


def test_z8_irreps_match_fourier_measures_of_addition_mod_8():
    """An even n: the 1-dim irrep (-1)^x is the Fourier component n / 2 (one cos row)."""
    task_f, task_i = modular_task("add", 8), group_task("Z8")
    fourier, irreps = fourier_basis(8), irrep_basis("Z8")
    logits = torch.randn(2, 64, 8, dtype=torch.float64)
    post = torch.randn(2, 64, 16, dtype=torch.float64).relu()
    for keys in ([4], [1, 4], [2, 3]):
        names = [
            next(c.name for c in irreps.spectrum if frequency_of(c.name, 8) == k) for k in keys
        ]
        for measure in ("restricted", "excluded"):
            results = []
            for task, basis, ks in ((task_f, fourier, keys), (task_i, irreps, names)):
                directions = losses.key_directions(task, basis, ks)
                changed = getattr(losses, f"{measure}_logits")(logits, directions)
                results.append(losses.cross_entropy(changed, task.labels))
            torch.testing.assert_close(results[0], results[1], atol=1e-9, rtol=0)
        torch.testing.assert_close(
            logit_fve(logits, task_f, fourier, keys), logit_fve(logits, task_i, irreps, names)
        )
    fve_f = neurons.component_fve(post, task_f, fourier)
    fve_i = neurons.component_fve(post, task_i, irreps)
    order = [frequency_of(c.name, 8) - 1 for c in irreps.spectrum]
    torch.testing.assert_close(fve_i, fve_f[..., order], atol=1e-9, rtol=0)


# ---- config and command line --------------------------------------------------------------------
def test_group_config_derives_sizes_and_round_trips():
    cfg = preset("small").replace(group="S4", operation="compose").validate()
    assert (cfg.n_elements, cfg.d_vocab, cfg.d_vocab_out, cfg.eq_token, cfg.n_pairs) == (
        24,
        25,
        24,
        24,
        576,
    )
    assert RunConfig.from_json(cfg.to_json()) == cfg
    old = json.loads(preset("small").to_json())
    assert "group" not in old  # modular configs: the JSON of before groups
    assert RunConfig.from_dict(old).group is None
    assert not cfg.same_architecture(preset("small"))
    with pytest.raises(UsageError, match="not an operation of group"):
        preset("small").replace(group="S4").validate()  # operation `add`
    with pytest.raises(UsageError, match="unknown group"):
        preset("small").replace(group="GL2", operation="compose").validate()


def plan(argv):
    args = build_parser().parse_args(["train", *argv])
    return _run_plan(args)


def test_run_names_include_the_group_and_default_to_composition(tmp_path):
    cfgs, dirs = plan(["--group", "S4"])
    assert cfgs[0].operation == "compose" and dirs[0].name == "small-S4-seed0"
    cfgs, dirs = plan(["--group", "S5", "--operation", "conjugate", "--seeds", "1-2"])
    assert [d.name for d in dirs] == ["small-S5-conjugate-seed1", "small-S5-conjugate-seed2"]
    assert "S3, S4, S5" in build_parser()._subparsers._group_actions[0].choices["train"].epilog


def test_group_runs_start_from_their_own_preset_and_flags_override_it(tmp_path):
    """`--group` takes the group preset (an MLP at 70% training pairs), every flag still wins,
    `--model transformer` drops the MLP-only settings, and modular runs keep their presets."""
    (cfg,), (run_dir,) = plan(["--group", "S4"])
    assert cfg == GROUP_PRESETS["small"].replace(group="S4")
    assert (cfg.model, cfg.embedding, cfg.train_frac, cfg.operation) == (
        "mlp",
        "separate",
        0.7,
        "compose",
    )
    flags = ["--train-frac", "0.5", "--lr", "0.001", "--weight-decay", "1", "--epochs", "7"]
    (cfg,), _ = plan(["--group", "S4", *flags, "--d-mlp", "64", "--embedding", "shared"])
    assert (cfg.train_frac, cfg.lr, cfg.weight_decay, cfg.epochs) == (0.5, 1e-3, 1.0, 7)
    assert (cfg.d_mlp, cfg.embedding, cfg.d_model) == (64, "shared", 256)
    (cfg,), (run_dir,) = plan(["--group", "S4", "--model", "transformer", "--n-heads", "8"])
    assert (cfg.model, cfg.embedding, cfg.n_heads, cfg.lr) == ("transformer", "shared", 8, 0.01)
    assert run_dir.name == "small-transformer-S4-seed0"
    (cfg,), (run_dir,) = plan(["--preset", "canonical", "--group", "D5", "--seeds", "1"])
    assert (cfg.lr, cfg.epochs, cfg.group, run_dir.name) == (
        1e-3,
        25_000,
        "D5",
        "canonical-D5-seed1",
    )
    assert plan([])[0] == [PRESETS["small"]]  # arithmetic mod p: as before
    assert plan(["--model", "mlp"])[0] == [PRESETS["small"].replace(model="mlp")]
    assert main(["train", "--group", "S3", "--epochs", "1", "--out", str(tmp_path / "r")]) == 0
    assert RunConfig.from_json((tmp_path / "r" / "config.json").read_text()) == GROUP_PRESETS[
        "small"
    ].replace(group="S3", epochs=1)  # the chosen defaults are saved with the run


def test_a_sweep_over_groups_takes_the_group_preset(tmp_path):
    from grokinterp.sweep.spec import read_spec

    spec = tmp_path / "s.toml"
    spec.write_text('[fixed]\nepochs = 5\n[grid]\ngroup = ["S3", "D4"]\nseed = [0]\n')
    cfgs = [run.config for run in read_spec(spec).runs]
    assert cfgs == [GROUP_PRESETS["small"].replace(group=g, epochs=5) for g in ("S3", "D4")]
    spec.write_text('[fixed]\ngroup = "S3"\nmodel = "transformer"\n[grid]\nseed = [0]\n')
    (run,) = read_spec(spec).runs
    assert run.config == preset("small", "S3", "transformer")
    assert (run.config.model, run.config.embedding, run.config.train_frac) == (
        "transformer",
        "shared",
        0.7,
    )


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--group", "Q8"], "unknown group"),
        (["--group", "S7"], "supported for n = 3..5"),
        (["--group", "A3"], "supported for n = 4..5"),
        (["--group", "D2"], "supported for n = 3..128"),
        (["--group", "Z300"], "order <= 256"),
        (["--group", "S3", "--train-frac", "1.0"], "train_frac must lie in (0, 1)"),
        (["--group", "S3", "--train-frac", "0.01"], "empty split"),
        (["--group", "S3", "--operation", "mul"], "not an operation of group"),
        (["--group", "S3", "--p", "7"], "p (--p) applies only without --group"),
    ],
)
def test_bad_group_inputs_get_one_line_exit_2_and_write_nothing(argv, words, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *argv, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


# ---- the pipeline on a tiny group run -----------------------------------------------------------
def test_train_analyze_report_on_a_tiny_s3_run(tmp_path):
    from grokinterp.analysis.analyze import Summary, analyze_run, load_measures
    from grokinterp.report.page import write_report
    from grokinterp.training.loop import train_runs

    cfg = preset("small").replace(
        group="S3",
        operation="compose",
        d_model=16,
        n_heads=2,
        d_mlp=32,
        train_frac=0.5,
        epochs=30,
        save_every=10,
    )
    run = tmp_path / "run"
    train_runs([cfg], [run], progress=False)
    split = json.loads((run / "split.json").read_text())["train_indices"]
    assert len(split) == 18 and max(split) < 36
    out = analyze_run(run, tmp_path / "analysis", progress=False).path
    summary = Summary.load(out)
    assert summary.basis["kind"] == "irrep" and summary.task["formula"] == "a * b in S_3"
    assert all(isinstance(k, str) for k in summary.key_components)
    table = load_measures(out)
    assert {"W_E.sign", "W_E.2a", "cluster.sign", "cluster.2a"} <= set(table.columns)
    page = write_report(out, tmp_path / "report.html").read_text()
    assert "Irrep norms per irrep over training" in page and "chi_rho(c' c^-1)" in page


def test_report_figures_name_components_by_the_basis_kind():
    import pandas as pd

    from grokinterp.report import components as rc
    from grokinterp.report import figures as rf

    epochs = {"epoch": [0, 10]}
    freq = pd.DataFrame(
        epochs | {f"{p}.k{k}": [1.0, 2.0] for p in ("W_E", "cluster") for k in (3, 1)}
    )
    irrep = pd.DataFrame(
        epochs | {f"{p}.{k}": [1.0, 2.0] for p in ("W_E", "cluster") for k in ("sign", "3a")}
    )
    assert rf.component_columns(freq, "W_E") == [(1, "W_E.k1"), (3, "W_E.k3")]  # by frequency
    assert rf.component_columns(irrep, "W_E") == [("sign", "W_E.sign"), ("3a", "W_E.3a")]
    clusters = rc.cluster_figure(freq, [3], 8)
    assert [t.name for t in clusters.data] == ["k = 3", "other frequencies", "not clustered"]
    clusters = rc.cluster_figure(irrep, ["3a"], 8, "irrep")
    assert [t.name for t in clusters.data] == ["irrep 3a", "other irreps", "not clustered"]
    slider = rc.spectrum_slider_figure(irrep, ["3a"], kind="irrep")
    assert list(slider.data[0].x) == ["sign", "3a"] and slider.layout.xaxis.title.text == "irrep"
    assert rc.spectrum_slider_figure(freq, [3]).layout.xaxis.title.text == "frequency k"
