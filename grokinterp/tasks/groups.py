"""Finite groups as permutation groups, and their composition as a task (Chughtai et al. 2023).

A group is the closure of a few permutation generators. Its elements are indexed canonically:
the permutations as tuples (g[i] = the image of point i), sorted, so the identity is element 0.
Composition is that of functions, (a * b)(x) = a(b(x)): b acts first. The groups by name:

    S<n>     the symmetric group on n points, n = 3..5 (generators: (1 2) and (1 2 ... n))
    A<n>     the alternating group, n = 4, 5 (the 3-cycles (1 2 k))
    D<n>     the dihedral group of order 2n, the symmetries of an n-gon, n = 3..128
             (x -> x + 1 and x -> -x on the vertices 0..n-1)
    Z<n>xZ<m>...   a direct product of cyclic groups, each factor a cycle on its own points;
             factors >= 2, order <= 256. A single factor Z<n> is Z_n with element k at index k,
             the same task as `add` mod n.

Element names: cycle notation on the points 1..n for S_n and A_n (`()` the identity); for D_n
`r<k>` the rotation x -> x + k and `s<k>` the reflection x -> k - x; for a product the tuple of
residues, `(i,j)` (for Z_n alone, `i`).

The task operations (Power et al. 2022 add the S_5 variants as further tasks): `compose` a * b,
`conjugate` a * b * a^-1 and `aba` a * b * a. Every pair is in the domain, and the labels are
group elements, so the group's irreducible representations are the basis of the analysis for all
three (rho(label) = rho(a) rho(b), rho(a) rho(b) rho(a)^T, rho(a) rho(b) rho(a)).

This module imports numpy alone at the top: `group_order` answers from the name, without
building the group, for the run config.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cache, cached_property, partial

import numpy as np

from grokinterp.errors import UsageError

GROUP_OPERATIONS = {"compose": "a * b", "conjugate": "a * b * a^-1", "aba": "a * b * a"}
"""Operation name -> formula, for `--group`; `compose` is the default."""

SYMMETRIC_RANGE = range(3, 6)
ALTERNATING_RANGE = range(4, 6)
DIHEDRAL_RANGE = range(3, 129)
MAX_PRODUCT_ORDER = 256

GROUPS_HELP = (
    "S3, S4, S5 (symmetric), A4, A5 (alternating), D<n> (dihedral of order 2n, n = 3..128), "
    "Z<n>xZ<m>... (cyclic factors >= 2, order <= 256; Z<n> alone is Z_n)"
)

_PATTERN = re.compile(r"^(?:(?P<family>[SAD])(?P<n>\d+)|(?P<cyclic>Z\d+(?:xZ\d+)*))$")


def parse_group(name: str) -> tuple[str, tuple[int, ...]]:
    """(family `S`, `A`, `D` or `Z`, its parameters) of a group name; UsageError when the name is
    unknown or out of the supported range."""
    match = _PATTERN.match(name) if isinstance(name, str) else None
    if match is None:
        raise UsageError(f"unknown group {name!r}; known: {GROUPS_HELP}")
    if match["cyclic"]:
        factors = tuple(int(f) for f in match["cyclic"][1:].split("xZ"))
        order = math.prod(factors)
        if min(factors) < 2 or order > MAX_PRODUCT_ORDER:
            raise UsageError(
                f"group {name}: cyclic factors must be >= 2 and the order <= {MAX_PRODUCT_ORDER}"
            )
        return "Z", factors
    family, n = match["family"], int(match["n"])
    allowed = {"S": SYMMETRIC_RANGE, "A": ALTERNATING_RANGE, "D": DIHEDRAL_RANGE}[family]
    if n not in allowed:
        raise UsageError(
            f"group {name}: {family}_n is supported for n = {allowed.start}..{allowed.stop - 1}"
        )
    return family, (n,)


def group_order(name: str) -> int:
    """|G| from the name alone."""
    family, params = parse_group(name)
    n = params[0]
    return {
        "S": lambda: math.factorial(n),
        "A": lambda: math.factorial(n) // 2,
        "D": lambda: 2 * n,
        "Z": lambda: math.prod(params),
    }[family]()


def group_title(name: str) -> str:
    """How the group prints: `S_4`, `D_7`, `Z_3 x Z_5`; the `group` of its task and basis."""
    family, params = parse_group(name)
    if family == "Z":
        return " x ".join(f"Z_{f}" for f in params)
    return f"{family}_{params[0]}"


# ---- permutation groups -------------------------------------------------------------------------
def closure(generators: list[tuple[int, ...]]) -> np.ndarray:
    """Every product of the generators (a permutation group), sorted: int64 [order, degree]."""
    degree = len(generators[0])
    identity = tuple(range(degree))
    found, frontier = {identity}, [identity]
    gens = [np.asarray(g, dtype=np.int64) for g in generators]
    while frontier:
        new = []
        for perm in frontier:
            array = np.asarray(perm, dtype=np.int64)
            for g in gens:
                product = tuple(array[g].tolist())  # perm after g: x -> perm(g(x))
                if product not in found:
                    found.add(product)
                    new.append(product)
        frontier = new
    return np.array(sorted(found), dtype=np.int64)


def cycle_notation(perm: np.ndarray) -> str:
    """`(1 2)(3 4 5)` on the points 1..n; `()` for the identity."""
    seen, cycles = set(), []
    for start in range(len(perm)):
        if start in seen or perm[start] == start:
            continue
        cycle, x = [], start
        while x not in seen:
            seen.add(x)
            cycle.append(x + 1)
            x = int(perm[x])
        cycles.append("(" + " ".join(map(str, cycle)) + ")")
    return "".join(cycles) or "()"


def parity(perms: np.ndarray) -> np.ndarray:
    """+1 for even permutations, -1 for odd ones (int64 [order])."""
    signs = []
    for perm in perms:
        transpositions, seen = 0, set()
        for start in range(len(perm)):
            length, x = 0, start
            while x not in seen:
                seen.add(x)
                x = int(perm[x])
                length += 1
            transpositions += max(length - 1, 0)
        signs.append(-1 if transpositions % 2 else 1)
    return np.array(signs, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class Group:
    """A finite group as sorted permutations; element i is `perms[i]`, element 0 the identity."""

    name: str
    perms: np.ndarray
    element_names: tuple[str, ...]
    special_characters: dict[str, np.ndarray] = field(default_factory=dict)
    """Named one-dimensional characters (the sign of S_n), for naming its irreps."""

    @property
    def order(self) -> int:
        return len(self.perms)

    @property
    def title(self) -> str:
        return group_title(self.name)

    @cached_property
    def table(self) -> np.ndarray:
        """int64 [order, order]: the index of a * b, (a * b)(x) = a(b(x))."""
        products = self.perms[:, self.perms]  # products[a, b, x] = a(b(x))
        return self._indices(products.reshape(-1, self.perms.shape[1])).reshape(
            self.order, self.order
        )

    @cached_property
    def _hashes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(random int64 weights, the elements' hashes sorted, their order): a permutation's
        hash is its dot product with the weights (wrapping); lookups are checked exactly."""
        weights = np.random.default_rng(0).integers(1, 2**62, self.perms.shape[1])
        hashes = self.perms @ weights
        order = np.argsort(hashes)
        if len(np.unique(hashes)) != self.order:  # pragma: no cover (probability ~ 2^-50)
            raise AssertionError(f"hash collision among the elements of {self.title}")
        return weights, hashes[order], order

    def _indices(self, perms: np.ndarray) -> np.ndarray:
        """The index of each permutation (rows), ValueError for one outside the group."""
        weights, hashes, order = self._hashes
        position = np.searchsorted(hashes, perms @ weights).clip(0, self.order - 1)
        found = order[position]
        if not np.array_equal(self.perms[found], perms):
            raise ValueError(f"not all of these permutations are elements of {self.title}")
        return found

    @cached_property
    def inverse(self) -> np.ndarray:
        """int64 [order]: the index of a^-1."""
        return np.argmax(self.table == 0, axis=1)

    def index(self, perm) -> int:
        """The index of a permutation (a sequence of images), ValueError if not in the group."""
        return int(self._indices(np.asarray(perm, dtype=np.int64)[None])[0])

    def labels(self, operation: str) -> np.ndarray:
        """int64 [order, order]: the label of (a, b) under a group operation."""
        table, inverse = self.table, self.inverse
        a = np.arange(self.order)[:, None]
        if operation == "compose":
            return table.copy()
        if operation == "conjugate":
            return table[table, inverse[a]]
        if operation == "aba":
            return table[table, a]
        raise UsageError(
            f"unknown group operation {operation!r}; known: {', '.join(GROUP_OPERATIONS)}"
        )


def _rotation(n: int, k: int) -> tuple[int, ...]:
    return tuple((x + k) % n for x in range(n))


def _cycle_on(points: range, degree: int) -> tuple[int, ...]:
    image = list(range(degree))
    for i, x in enumerate(points):
        image[x] = points[(i + 1) % len(points)]
    return tuple(image)


@cache
def build_group(name: str) -> Group:
    """The group of a name (see the module docstring), elements in canonical order."""
    family, params = parse_group(name)
    if family in "SA":
        n = params[0]
        if family == "S":
            generators = [(1, 0, *range(2, n)), _rotation(n, 1)]
        else:
            generators = [_cycle_on([0, 1, k], n) for k in range(2, n)]
        perms = closure(generators)
        names = tuple(cycle_notation(p) for p in perms)
        special = {"sign": parity(perms)} if family == "S" else {}
        return Group(name, perms, names, special)
    if family == "D":
        n = params[0]
        perms = closure([_rotation(n, 1), tuple((-x) % n for x in range(n))])
        names = tuple(f"r{int(p[0])}" if (p[1] - p[0]) % n == 1 else f"s{int(p[0])}" for p in perms)
        return Group(name, perms, names)
    degree, start, generators = sum(params), 0, []
    for factor in params:
        generators.append(_cycle_on(range(start, start + factor), degree))
        start += factor
    perms = closure(generators)
    offsets = np.cumsum((0,) + params[:-1])
    residues = [[int(p[o]) - int(o) for o in offsets] for p in perms]
    if len(params) == 1:
        names = tuple(str(r[0]) for r in residues)
    else:
        names = tuple("(" + ",".join(map(str, r)) + ")" for r in residues)
    return Group(name, perms, names)


def group_task(name: str, operation: str = "compose"):
    """The `Task` of a group operation: labels in the group's canonical element order."""
    import torch

    from grokinterp.bases.fourier import fourier_basis
    from grokinterp.tasks.base import Task

    if operation not in GROUP_OPERATIONS:
        raise UsageError(
            f"operation {operation!r} is not a group operation; with a group choose one of "
            f"{', '.join(GROUP_OPERATIONS)}"
        )
    group = build_group(name)
    family, params = parse_group(name)
    cyclic = family == "Z" and len(params) == 1
    return Task(
        name=name if operation == "compose" else f"{name}-{operation}",
        formula=f"{GROUP_OPERATIONS[operation]} in {group.title}",
        table=torch.from_numpy(group.labels(operation)),
        n_classes=group.order,
        element_names=group.element_names,
        group=group.title,
        bases=("irreps", "fourier") if cyclic else ("irreps",),
        builders={
            "irreps": partial(irrep_basis, name),
            "fourier": partial(fourier_basis, group.order),
        },
    )


@cache
def _group_irreps(name: str) -> tuple:
    from grokinterp.bases.irreps import real_irreps

    group = build_group(name)
    return tuple(real_irreps(group.table, group.special_characters))


def group_irreps(name: str) -> list:
    """The real irreps (`grokinterp.bases.irreps.Irrep`) of a named group, computed once per
    process."""
    return list(_group_irreps(name))


def irrep_basis(name: str):
    """The irrep basis (`grokinterp.bases.Basis`) of a named group, e.g. `S4` or `Z3xZ5`."""
    from grokinterp.bases.irreps import irreps_of_table

    return irreps_of_table(group_title(name), group_irreps(name))
