"""Tasks: what a run is trained on (see `base.Task`); one module per family."""

from grokinterp.tasks.base import Task, require_basis
from grokinterp.tasks.modular import OPERATIONS, modular_task


def task_of(cfg) -> Task:
    """The task of a run config."""
    return modular_task(cfg.operation, cfg.p)


__all__ = ["OPERATIONS", "Task", "require_basis", "task_of"]
