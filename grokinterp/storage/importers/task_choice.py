"""Which task an imported model was trained on, and a split checked against that task's domain.

grokinterp's operations own their domains (`grokinterp.tasks.modular`): a * b mod p and a / b
take b (and for a * b also a) from 1..p-1, the group Z_p^* whose discrete-log basis the analysis
uses. A model trained on all p^2 pairs of a * b, 0 included, learned a task grokinterp does not
represent (a * 0 = 0 for every a has no place in that basis): its split names a pair outside the
domain and is refused, as is a test set that is not the rest of the domain.
"""

from __future__ import annotations

import torch
from torch import Tensor

from grokinterp.errors import UsageError
from grokinterp.tasks import GROUP_OPERATIONS, OPERATIONS, Task
from grokinterp.tasks.groups import group_task, parse_group
from grokinterp.tasks.modular import modular_task

PAPER_FUNCTIONS = {"add": "add", "subtract": "sub", "x2xyy2": "a2_ab_b2"}
"""The paper's `Config.fn_name` -> grokinterp's operation (its fns_dict: (x + y) % p,
(x - y) % p, (x**2 + x*y + y**2) % p; 'rand', a random table it does not save, has none)."""


def task_for(operation: str, group: str | None, p: int) -> Task:
    """The task of `operation` mod p, or of the group `group`; UsageError for unknown names."""
    if group is not None:
        parse_group(group)
        if operation not in GROUP_OPERATIONS:
            known = ", ".join(GROUP_OPERATIONS)
            raise UsageError(f"--operation {operation!r} is not a group operation; choose {known}")
        return group_task(group, operation)
    if operation not in OPERATIONS:
        raise UsageError(f"unknown operation {operation!r}; known: {', '.join(OPERATIONS)}")
    return modular_task(operation, p)


def paper_operation(config: dict, flag: str | None) -> str:
    """The operation of a paper-layout file: its config's fn_name mapped, else --operation, else
    addition (the paper's default). The two must agree when both are there."""
    fn_name = config.get("fn_name")
    if fn_name is None:
        return flag or "add"
    if fn_name not in PAPER_FUNCTIONS:
        known = ", ".join(PAPER_FUNCTIONS)
        raise UsageError(
            f"the file's config has fn_name={fn_name!r}, whose labels the file does not hold; "
            f"grokinterp imports {known}"
        )
    operation = PAPER_FUNCTIONS[fn_name]
    if flag is not None and flag != operation:
        raise UsageError(f"the file's fn_name {fn_name!r} is {operation!r}, not --operation {flag}")
    return operation


def check_split(train: list[int], task: Task, test: list[int] | None = None) -> Tensor:
    """Sorted int64 train pair indices (a * n + b), each a distinct pair of the task's domain
    with at least one domain pair left to test; `test`, when the file records it, must be
    exactly the rest of the domain."""
    n, domain = task.n_elements, set(task.domain.tolist())
    if len(set(train)) != len(train):
        raise UsageError("the split lists a training pair twice")
    for what, indices in (("training", train), ("test", test or [])):
        outside = [i for i in indices if i not in domain]
        if outside:
            a, b = divmod(outside[0], n) if 0 <= outside[0] < n * n else (outside[0], "?")
            raise UsageError(
                f"the {what} pairs include {len(outside)} outside the domain of {task.formula} "
                f"(first: index {outside[0]}, a={a}, b={b}); the model was trained on another "
                "task than this one: check --operation / --group"
            )
    if not 0 < len(train) < task.n_pairs:
        raise UsageError(f"the split has {len(train)} training pairs of {task.n_pairs}")
    if test is not None and sorted(test) != sorted(domain - set(train)):
        raise UsageError("the file's test_indices are not the domain pairs left out of training")
    return torch.tensor(sorted(train), dtype=torch.int64)
