"""Tasks: what a run is trained on (see `base.Task`); one module per family."""

from grokinterp.tasks.base import Task, require_basis
from grokinterp.tasks.groups import GROUP_OPERATIONS, group_task
from grokinterp.tasks.modular import OPERATIONS, modular_task


def task_of(cfg) -> Task:
    """The task of a run config: a group operation when `cfg.group` is set, else mod p."""
    if getattr(cfg, "group", None) is not None:
        return group_task(cfg.group, cfg.operation)
    return modular_task(cfg.operation, cfg.p)


__all__ = ["GROUP_OPERATIONS", "OPERATIONS", "Task", "require_basis", "task_of"]
