"""Bases of functions on a task's elements; one module per family (see `base.Basis`)."""

from collections.abc import Callable

from grokinterp.bases.base import Basis, Component
from grokinterp.bases.dlog import dlog_basis
from grokinterp.bases.fourier import fourier_basis


def _irreps(task):
    from grokinterp.bases.irreps import irrep_basis
    from grokinterp.tasks.groups import name_of_title

    return irrep_basis(name_of_title(task.group))


BUILDERS: dict[str, Callable] = {
    "fourier": lambda task: fourier_basis(task.n_elements),
    "dlog": lambda task: dlog_basis(task.n_elements),
    "irreps": _irreps,
}
"""Basis name -> builder from the task (a `grokinterp.tasks.Task`)."""

__all__ = ["BUILDERS", "Basis", "Component"]
