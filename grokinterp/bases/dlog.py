"""The multiplicative characters of Z_p^*: the Fourier basis of Z_(p-1) through the discrete log.

Z_p^* is cyclic of order p - 1: with a generator g (the smallest, found by testing g^((p-1)/q) != 1
for every prime q dividing p - 1), every nonzero x is g^j for one j = log_g x in Z_(p-1), and
x * y corresponds to log x + log y. So a function of x != 0 has a Fourier transform over j, and a
network computing a * b can use the same "clock" as one computing a + b, on log a and log b.

The basis is over all p residues. Row 0 is `zero`, the indicator of 0 (a trivial component of its
own: 0 is outside Z_p^*, a * 0 = 0 carries no clock). The other p - 1 rows are those of
`grokinterp.bases.fourier` for Z_(p-1) evaluated at log_g x, and 0 at x = 0: `const` (trivial),
then frequency k = 1..(p-3)/2 with rows `cos k`, `sin k`, and k = (p-1)/2 with the single row
`cos (p-1)/2` = (-1)^(log x), the Legendre symbol.
"""

from __future__ import annotations

import torch

from grokinterp.bases import fourier
from grokinterp.bases.base import Basis, Component


def prime_factors(n: int) -> list[int]:
    """The distinct primes dividing n."""
    return [q for q in range(2, n + 1) if n % q == 0 and all(q % d for d in range(2, q))]


def generator(p: int) -> int:
    """The smallest generator of Z_p^* (p prime)."""
    order = p - 1
    for g in range(2 if p > 2 else 1, p):
        if all(pow(g, order // q, p) != 1 for q in prime_factors(order)):
            return g
    raise ValueError(f"{p} is not prime")


def discrete_log(p: int) -> torch.Tensor:
    """log_g x for x = 0..p-1 (int64), with -1 at x = 0, g = `generator(p)`."""
    g, log = generator(p), torch.full((p,), -1, dtype=torch.int64)
    x = 1
    for j in range(p - 1):
        log[x] = j
        x = x * g % p
    return log


def dlog_basis(p: int) -> Basis:
    """The multiplicative characters of Z_p^*, as a `Basis` over the p residues."""
    log = discrete_log(p)
    cyclic = fourier.basis(p - 1)
    matrix = torch.zeros(p, p, dtype=torch.float64)
    matrix[0, 0] = 1.0
    matrix[1:, 1:] = cyclic[:, log[1:]]
    components = [Component("zero", "zero", (0,), trivial=True)]
    for c in fourier.components(p - 1):
        components.append(Component(c.name, c.key, tuple(r + 1 for r in c.rows), c.trivial))
    return Basis(
        name="dlog",
        title=f"multiplicative characters of Z_{p}^* (discrete log, generator {generator(p)})",
        group=f"Z_{p}^*",
        kind="frequency",
        matrix=matrix,
        row_names=("zero", *fourier.basis_names(p - 1)),
        components=tuple(components),
    )
