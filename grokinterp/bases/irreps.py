"""The real irreducible representations of a finite group, computed from its multiplication table,
and the basis of functions on the group that their matrix entries give (Chughtai et al. 2023).

The algorithm (numerical, numpy; nothing is typed in per group):

1. Isotypic blocks. Functions f on G carry the left and the right regular action. A class function
   c with c(g^-1) = c(g) acts on them by convolution, M[x, y] = c(y^-1 x), a symmetric matrix
   commuting with both actions, so it is a scalar on each real isotypic block: on the block of a
   complex irreducible character chi (merged with its conjugate), sum_g c(g) chi(g) / chi(1),
   real. With random values of c on the classes (paired with the inverse classes) those scalars
   differ between blocks, and the eigenspaces of M are the blocks: orthonormal bases of each.
2. One irrep per block. A random symmetric matrix S = sum_g t_g (L(g) + L(g)^T) of left
   translations commutes with the right action; restricted to a block its eigenspaces are
   irreducible right-invariant subspaces (its commutant there is M_m(R), M_m(C) or M_m(H)
   realified, whose Hermitian elements have eigenvalues of multiplicity exactly d, the real
   dimension of the irrep). With W an orthonormal basis of one such eigenspace (|G| x d),
   rho(h) = W^T R(h) W, R(h) f(x) = f(x h), is a real orthogonal irreducible representation.
3. Checks, each at build time: rho(a) rho(b) = rho(ab) for every pair, rho(g) orthogonal, the
   commutant dimension <chi, chi> = (1/|G|) sum_g chi(g)^2 is 1, 2 or 4 (real, complex or
   quaternionic type: the Frobenius-Schur indicator (1/|G|) sum_g chi(g^2) is then 1, 0 or -2 for
   the real character), the block is d^2 / <chi, chi> wide, the characters are orthogonal, and the
   block sizes sum to |G|.

Realification: a complex irrep that is not real-valued (chi != conj chi) pairs with its conjugate
into one real irrep of twice the dimension d, whose d^2 matrix entries span only d^2 / 2
functions; a quaternionic one doubles too, its d^2 entries spanning d^2 / 4. So sum d^2 over the
real irreps exceeds |G| when there are such irreps (A_4: 1 + 4 + 9 = 14 > 12), while the blocks'
widths, d^2 / <chi, chi>, sum to |G| (1 + 2 + 9).

The basis: for each irrep of dimension d its rows are the normalised matrix entries
sqrt(d / |G|) rho(g)_ij (orthonormal by Schur orthogonality for the real type), Gram-Schmidt
orthonormalised in (i, j) order for the other types. Component = irrep, trivial = `trivial`. The
kernel of a component, sum_r phi_r(s) phi_r(c), is (d / (<chi, chi> |G|)) chi(s c^-1): the logit
fit of `grokinterp.analysis.measures.logits` is the fit by the characters chi_rho(a b c^-1).

Names: `trivial`, `sign` (the parity of S_n), the rest `<d><letter>` by real dimension d, letters
in decreasing order of the character over the conjugacy classes (classes by their first element).
For Z_n and D_n the 2-dimensional irreps `2a, 2b, ...` are the frequencies k = 1, 2, ... (character
2 cos(2 pi k / n) on the rotation by one); for S_n, `<n-1>a` is the standard representation
(character +(n-3) on a transposition) and `<n-1>b` standard x sign.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from grokinterp.bases.base import Basis, Component, check_orthonormal

TYPES = {1: "real", 2: "complex", 4: "quaternionic"}
"""<chi, chi> of a real irrep (its commutant's dimension) -> its Frobenius-Schur type."""
INDICATOR = {1: 1, 2: 0, 4: -2}
"""<chi, chi> -> the Frobenius-Schur indicator (1/|G|) sum_g chi(g^2) of the real character."""
GAP = 1e-6
"""Eigenvalues closer than GAP (relative to the largest) belong to one eigenspace."""


@dataclass(frozen=True, eq=False)
class Irrep:
    """A real orthogonal irreducible representation of a group given by its table."""

    name: str
    matrices: np.ndarray
    """float64 [order, d, d]: rho(g)."""
    commutant: int
    """<chi, chi>: 1, 2 or 4."""

    @property
    def dim(self) -> int:
        return self.matrices.shape[1]

    @property
    def kind(self) -> str:
        return TYPES[self.commutant]

    @property
    def character(self) -> np.ndarray:
        return np.trace(self.matrices, axis1=1, axis2=2)

    @property
    def block_size(self) -> int:
        """The dimension of its isotypic block of functions on the group: d^2 / <chi, chi>."""
        return self.dim**2 // self.commutant


def inverses(table: np.ndarray) -> np.ndarray:
    """The index of g^-1 for each g (element 0 the identity)."""
    return np.argmax(table == 0, axis=1)


def conjugacy_classes(table: np.ndarray) -> list[np.ndarray]:
    """The classes as sorted index arrays, ordered by their smallest element."""
    order = table.shape[0]
    inverse = inverses(table)
    conjugates = table[table[:, np.arange(order)], inverse[:, None]]  # [x, g] = x g x^-1
    label = np.full(order, -1)
    classes = []
    for g in range(order):
        if label[g] < 0:
            members = np.unique(conjugates[:, g])
            label[members] = len(classes)
            classes.append(members)
    return classes


def _clusters(values: np.ndarray, scale: float) -> list[np.ndarray]:
    """Indices of sorted `values` grouped where neighbours differ by less than GAP * scale."""
    cuts = np.flatnonzero(np.diff(values) > GAP * scale) + 1
    return np.split(np.arange(len(values)), cuts)


def _isotypic_blocks(table, inverse, classes, rng) -> list[np.ndarray]:
    """Orthonormal bases [order, block] of the real isotypic blocks (step 1)."""
    order = table.shape[0]
    c = np.zeros(order)
    for members in classes:
        paired = np.unique(inverse[members])
        if paired[0] >= members[0]:  # each (K, K^-1) pair gets one random value
            c[members] = c[paired] = rng.standard_normal() / len(members)
    M = c[table[inverse[None, :], np.arange(order)[:, None]]]  # M[x, y] = c(y^-1 x)
    values, vectors = np.linalg.eigh(M)
    return [vectors[:, group] for group in _clusters(values, 1.0)]


def _one_irrep(block, table, inverse, rng) -> np.ndarray:
    """rho [order, d, d] on one irreducible subspace of a block (step 2)."""
    order = table.shape[0]
    t = rng.standard_normal(order)
    S = t[table[np.arange(order)[:, None], inverse[None, :]]]  # S[x, y] = t(x y^-1): L(x y^-1)
    S = S + S.T
    values, vectors = np.linalg.eigh(block.T @ S @ block)
    lowest = _clusters(values, max(1.0, float(np.abs(values).max())))[0]
    W = block @ vectors[:, lowest]  # [order, d]
    return np.einsum("xi,xhj->hij", W, W[table])  # rho(h)_ij = sum_x W(x)_i W(x h)_j


def _name(irreps: list[tuple[np.ndarray, int]], classes, special) -> list[str]:
    """Names in the order given (sorted by `_sort_key`): trivial, special, then <d><letter>."""
    names, count = [], {}
    for matrices, _ in irreps:
        character = np.trace(matrices, axis1=1, axis2=2)
        d = matrices.shape[1]
        if d == 1 and np.allclose(character, 1.0):
            names.append("trivial")
            continue
        known = [k for k, v in special.items() if d == 1 and np.allclose(character, v)]
        if known:
            names.append(known[0])
            continue
        index = count.get(d, 0)
        count[d] = index + 1
        letters = ""
        while True:
            letters = chr(ord("a") + index % 26) + letters
            index = index // 26 - 1
            if index < 0:
                break
        names.append(f"{d}{letters}")
    return names


def real_irreps(table: np.ndarray, special: dict | None = None, attempts: int = 3) -> list[Irrep]:
    """Every real irreducible representation of the group with multiplication table `table`
    (int64 [order, order], table[a, b] = index of a * b, element 0 the identity), checked;
    sorted trivial first, then by dimension and decreasing character. `special` names
    one-dimensional characters (e.g. {"sign": parity}). The random elements of steps 1 and 2
    come from seeds 0, 1, ...: a failed check (near-equal random eigenvalues, improbable) retries
    with the next seed, up to `attempts` times."""
    for seed in range(attempts):
        try:
            return _real_irreps(table, special, seed)
        except AssertionError:
            if seed == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _real_irreps(table: np.ndarray, special: dict | None, seed: int) -> list[Irrep]:
    table = np.asarray(table, dtype=np.int64)
    order = table.shape[0]
    if not np.array_equal(table[0], np.arange(order)):
        raise ValueError("element 0 must be the identity")
    inverse = inverses(table)
    classes = conjugacy_classes(table)
    rng = np.random.default_rng(seed)
    found = []
    for block in _isotypic_blocks(table, inverse, classes, rng):
        rho = _one_irrep(block, table, inverse, rng)
        character = np.trace(rho, axis1=1, axis2=2)
        commutant = int(round(float(character @ character) / order))
        found.append((rho, commutant, block.shape[1]))
    irreps = [(rho, commutant) for rho, commutant, _ in found]

    def sort_key(item):
        rho, _ = item
        character = np.trace(rho, axis1=1, axis2=2)
        at_classes = tuple(-np.round(character[c[0]], 6) for c in classes)
        return (rho.shape[1], at_classes)

    order_of = sorted(range(len(irreps)), key=lambda i: sort_key(irreps[i]))
    irreps = [irreps[i] for i in order_of]
    widths = [found[i][2] for i in order_of]
    names = _name(irreps, classes, special or {})
    result = [Irrep(n, rho, c) for n, (rho, c) in zip(names, irreps, strict=True)]
    real_classes = {min(c[0], int(inverse[c].min())) for c in classes}
    check_irreps(result, table, widths, len(real_classes), inverse)
    return result


def check_irreps(irreps: list[Irrep], table, widths, n_real_classes: int, inverse) -> None:
    """Raise AssertionError unless every irrep is a homomorphism, orthogonal and irreducible of a
    consistent type, the characters are orthogonal and the blocks fill the group algebra."""
    order = table.shape[0]
    square = table[np.arange(order), np.arange(order)]
    for irrep, width in zip(irreps, widths, strict=True):
        rho, d = irrep.matrices, irrep.dim
        what = f"irrep {irrep.name} (dimension {d})"
        products = np.einsum("aij,bjk->abik", rho, rho)
        if not np.allclose(products, rho[table], atol=1e-8):
            raise AssertionError(f"{what} is not a homomorphism")
        if not np.allclose(np.einsum("gij,gkj->gik", rho, rho), np.eye(d), atol=1e-8):
            raise AssertionError(f"{what} is not orthogonal")
        chi = irrep.character
        norm = float(chi @ chi) / order
        if irrep.commutant not in TYPES or abs(norm - irrep.commutant) > 1e-6:
            raise AssertionError(f"{what}: <chi, chi> = {norm:.6f} is not 1, 2 or 4: reducible")
        indicator = float(chi[square].sum()) / order
        if abs(indicator - INDICATOR[irrep.commutant]) > 1e-6:
            raise AssertionError(f"{what}: Frobenius-Schur indicator {indicator:.6f} contradicts")
        if width != irrep.block_size or (d * d) % irrep.commutant:
            raise AssertionError(f"{what}: block of {width} functions, not d^2/<chi, chi>")
        if not np.allclose(rho[inverse], rho.transpose(0, 2, 1), atol=1e-8):
            raise AssertionError(f"{what}: rho(g^-1) != rho(g)^T")
    characters = np.stack([irrep.character for irrep in irreps])
    gram = characters @ characters.T / order
    if not np.allclose(gram, np.diag([irrep.commutant for irrep in irreps]), atol=1e-6):
        raise AssertionError("the irreps' characters are not orthogonal")
    if sum(widths) != order:
        raise AssertionError(f"the isotypic blocks fill {sum(widths)} of {order} dimensions")
    if len(irreps) != n_real_classes:  # one real irrep per class paired with its inverse class
        raise AssertionError(f"{len(irreps)} real irreps but {n_real_classes} real classes")


def _gram_schmidt(rows: np.ndarray, rank: int) -> np.ndarray:
    """Orthonormal rows spanning `rows`, taken in order (rows adding < 1e-8 are dropped)."""
    kept: list[np.ndarray] = []
    for row in rows:
        v = row.copy()
        for _ in range(2):  # twice is enough (Kahan, Parlett)
            for u in kept:
                v -= (u @ v) * u
        norm = np.linalg.norm(v)
        if norm > 1e-8 * max(1.0, np.linalg.norm(row)):
            kept.append(v / norm)
    if len(kept) != rank:
        raise AssertionError(f"matrix entries span {len(kept)} functions, expected {rank}")
    return np.stack(kept)


def basis_rows(irrep: Irrep) -> tuple[np.ndarray, list[str]]:
    """The irrep's orthonormal rows over the elements and their names (see the module doc)."""
    order, d = irrep.matrices.shape[:2]
    entries = np.sqrt(d / order) * irrep.matrices.reshape(order, d * d).T  # [(i j), g]
    if irrep.commutant == 1:
        names = [f"{irrep.name}[{i},{j}]" for i in range(d) for j in range(d)]
        return entries, names
    rows = _gram_schmidt(entries, irrep.block_size)
    return rows, [f"{irrep.name}#{r}" for r in range(len(rows))]


def irreps_of_table(title: str, irreps: list[Irrep]) -> Basis:
    """The `Basis` of a group (its `title`, e.g. `S_4`) from its real irreps."""
    rows, names, components, start = [], [], [], 0
    for irrep in irreps:
        block, row_names = basis_rows(irrep)
        rows.append(block)
        names += row_names
        span = tuple(range(start, start + len(block)))
        components.append(Component(irrep.name, irrep.name, span, irrep.name == "trivial"))
        start += len(block)
    matrix = torch.from_numpy(np.concatenate(rows))
    check_orthonormal(matrix, f"the irrep basis of {title}")
    kinds = sorted({irrep.kind for irrep in irreps if irrep.kind != "real"})
    note = f"; {' and '.join(kinds)} types realified" if kinds else ""
    return Basis(
        name="irreps",
        title=f"real irreducible representations of {title}{note}",
        group=title,
        kind="irrep",
        matrix=matrix,
        row_names=tuple(names),
        components=tuple(components),
    )
