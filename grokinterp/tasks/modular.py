"""Binary operations mod a prime p (Power et al. 2022, table of operations, plus a * b).

Each operation owns its domain: b ranges over 1..p-1 where the operation divides by b, and
multiplication takes both operands from Z_p^* = 1..p-1, the group on which its discrete-log
clock lives (a * 0 = 0 for every a would be a second, trivial task). An operation whose labels
are a group's composition names that group and its bases; the others have no known basis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np


def _inverse(b: np.ndarray, p: int) -> np.ndarray:
    """b^-1 mod p for b != 0 (Fermat: b^(p-2)); 0 where b = 0."""
    table = np.array([pow(x, p - 2, p) if x else 0 for x in range(p)], dtype=np.int64)
    return table[b]


@dataclass(frozen=True)
class Operation:
    formula: str
    """`a op b`, without the modulus."""
    compute: Callable[[np.ndarray, np.ndarray, int], np.ndarray]
    """Labels of int64 operand arrays; may exceed p before the final `% p`."""
    a_from: int = 0
    """a ranges over a_from..p-1."""
    b_from: int = 0
    """b ranges over b_from..p-1."""
    group: str | None = None
    """`cyclic` (labels compose in Z_p), `units` (in Z_p^*), or None."""


OPERATIONS: dict[str, Operation] = {
    "add": Operation("a + b", lambda a, b, p: (a + b) % p, group="cyclic"),
    "sub": Operation("a - b", lambda a, b, p: (a - b) % p, group="cyclic"),
    "mul": Operation("a * b", lambda a, b, p: a * b % p, a_from=1, b_from=1, group="units"),
    "div": Operation("a / b", lambda a, b, p: a * _inverse(b, p) % p, b_from=1, group="units"),
    "div_or_sub": Operation(
        "a / b if b is odd else a - b",
        lambda a, b, p: np.where(b % 2 == 1, a * _inverse(b, p), a - b) % p,
        b_from=1,
    ),
    "a2_b2": Operation("a^2 + b^2", lambda a, b, p: (a * a + b * b) % p),
    "a2_ab_b2": Operation("a^2 + ab + b^2", lambda a, b, p: (a * a + a * b + b * b) % p),
    "a2_ab_b2_a": Operation("a^2 + ab + b^2 + a", lambda a, b, p: (a * a + a * b + b * b + a) % p),
    "a3_ab": Operation("a^3 + ab", lambda a, b, p: (a * a % p * a + a * b) % p),
    "a3_ab2_b": Operation(
        "a^3 + ab^2 + b", lambda a, b, p: (a * a % p * a + a * (b * b % p) + b) % p
    ),
}
"""Operation name -> definition; `grokinterp train --operation NAME`."""

GROUPS = {"cyclic": ("Z_{p}", ("fourier", "irreps")), "units": ("Z_{p}^*", ("dlog",))}
"""Which group the labels compose in, and its bases, the default first (`irreps`: those of Z_p
computed as for any finite group, the same measures as `fourier`; p <= 256)."""


def domain_size(name: str, p: int) -> int:
    operation = OPERATIONS[name]
    return (p - operation.a_from) * (p - operation.b_from)


def label_table(name: str, p: int) -> np.ndarray:
    """int64 [p, p]: the label of (a, b), -1 outside the operation's domain."""
    operation = OPERATIONS[name]
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    table = operation.compute(a.astype(np.int64), b.astype(np.int64), p)
    inside = (a >= operation.a_from) & (b >= operation.b_from)
    return np.where(inside, table, -1).astype(np.int64)


def modular_task(name: str, p: int):
    """The `Task` of operation `name` mod p."""
    import torch

    from grokinterp.bases import dlog_basis, fourier_basis
    from grokinterp.tasks.base import Task
    from grokinterp.tasks.groups import irrep_basis

    operation = OPERATIONS[name]
    group, bases = GROUPS.get(operation.group, (None, ()))
    return Task(
        name=name,
        formula=f"({operation.formula}) mod {p}",
        table=torch.from_numpy(label_table(name, p)),
        n_classes=p,
        element_names=tuple(str(x) for x in range(p)),
        group=group.format(p=p) if group else None,
        bases=bases,
        element_bases=("fourier", "dlog"),
        builders={
            "fourier": partial(fourier_basis, p),
            "dlog": partial(dlog_basis, p),
            "irreps": partial(irrep_basis, f"Z{p}"),
        },
    )
