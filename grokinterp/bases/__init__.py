"""Bases of functions on a task's elements; one module per family (see `base.Basis`)."""

from collections.abc import Callable

from grokinterp.bases.base import Basis, Component
from grokinterp.bases.dlog import dlog_basis
from grokinterp.bases.fourier import fourier_basis

BUILDERS: dict[str, Callable] = {
    "fourier": lambda task: fourier_basis(task.n_elements),
    "dlog": lambda task: dlog_basis(task.n_elements),
}
"""Basis name -> builder from the task (a `grokinterp.tasks.Task`)."""

__all__ = ["BUILDERS", "Basis", "Component"]
