"""Builders shared by tests and benchmarks: a run's initial state, runs killed at a chosen
write or step as a crash leaves them."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest
from torch import Tensor

from grokinterp import store
from grokinterp.config import RunConfig
from grokinterp.models import architecture


def initial_state(cfg: RunConfig) -> dict[str, Tensor]:
    """The complete state dict (parameters and buffers) of the run's initial weights."""
    model = architecture(cfg)
    return model.state_dict_of(model.init_params())


class Killed(BaseException):
    """The process dying at a write (no `except Exception` catches it)."""


@contextmanager
def killed_at_write(n: int | None):
    """Count the writes of run files (`store.atomic_write`, `store.append_metrics`) into the
    yielded list; the n-th stops half-way, as a kill leaves it: half a temporary file, or the
    appended rows cut in the middle."""
    count = [0]
    atomic_write, append_metrics = store.atomic_write, store.append_metrics

    def killed_here() -> bool:
        count[0] += 1
        return count[0] == n

    def torn_atomic_write(path, data):
        if killed_here():
            Path(path).with_name(f".{Path(path).name}.tmp-{os.getpid()}").write_bytes(
                data[: len(data) // 2]
            )
            raise Killed
        atomic_write(path, data)

    def torn_append(run_dir, rows):
        path = Path(run_dir) / store.METRICS_FILE
        before = path.stat().st_size
        append_metrics(run_dir, rows)
        if killed_here():
            os.truncate(path, (before + path.stat().st_size) // 2)
            raise Killed

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "atomic_write", torn_atomic_write)
        patch.setattr(store, "append_metrics", torn_append)
        yield count


@contextmanager
def killed_at_step(step: int):
    """A run dies (KeyboardInterrupt, as Ctrl-C) when it first saves its state at `step`: its
    checkpoint and metrics rows of that step are out, its state is not."""
    save_state = store.save_state

    def die(run_dir, at, tensors, finished):
        if at == step:
            raise KeyboardInterrupt
        save_state(run_dir, at, tensors, finished)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "save_state", die)
        yield
