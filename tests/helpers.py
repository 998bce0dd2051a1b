"""Builders shared by tests and benchmarks: a run's initial state, runs killed at a chosen
write or step as a crash leaves them."""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from torch import Tensor

from grokinterp import store
from grokinterp.config import RunConfig, preset


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


def _circle_embedding(p: int, freqs: tuple[int, ...]) -> Tensor:
    """[p, 2 len(freqs)]: element x as (cos w_k x, sin w_k x) for each k, w_k = 2 pi k / p."""
    x = torch.arange(p, dtype=torch.float64)[:, None] * torch.tensor(freqs) * 2 * math.pi / p
    return torch.stack([x.cos(), x.sin()], dim=-1).flatten(1)


def _quadratic_mlp(p: int, freqs: tuple[int, ...], d_mlp: int) -> RunConfig:
    return preset("small").replace(
        model="mlp", activation="quadratic", p=p, d_model=2 * len(freqs), d_mlp=d_mlp
    )


def pizza_mlp(p: int, freqs: tuple[int, ...]) -> tuple[RunConfig, dict[str, Tensor]]:
    """Zhong et al.'s pizza as a quadratic MLP on [E_a, E_b] (float64 weights): for each
    frequency k, neurons x1^2, x2^2 and ((x1 + x2) / sqrt 2)^2 of x = E_a + E_b in k's plane, read
    out as cos(w c) (x1^2 - x2^2) + sin(w c) 2 x1 x2. With x = 2 cos(w (a - b) / 2) times the
    unit vector at angle w (a + b) / 2, the logits are
        Q_abc = sum_k 4 cos^2(w_k (a - b) / 2) cos(w_k (a + b - c)):
    a function of E_a + E_b, the right answer's logit a function of a - b alone."""
    n = len(freqs)
    cfg = _quadratic_mlp(p, freqs, 3 * n)
    W_in = torch.zeros(4 * n, 3 * n, dtype=torch.float64)
    W_U = torch.zeros(3 * n, p, dtype=torch.float64)
    w_c = torch.arange(p, dtype=torch.float64) * 2 * math.pi / p
    for j, k in enumerate(freqs):
        cos, sin = 2 * j, 2 * j + 1
        for half in (0, 2 * n):  # the same direction read from E_a and from E_b
            W_in[half + cos, 3 * j] = 1
            W_in[half + sin, 3 * j + 1] = 1
            W_in[half + cos, 3 * j + 2] = W_in[half + sin, 3 * j + 2] = 1 / math.sqrt(2)
        # x1^2 - x2^2 and 2 x1 x2 = 2 n3 - x1^2 - x2^2
        W_U[3 * j] = (k * w_c).cos() - (k * w_c).sin()
        W_U[3 * j + 1] = -(k * w_c).cos() - (k * w_c).sin()
        W_U[3 * j + 2] = 2 * (k * w_c).sin()
    state = {"embed.W_E": _circle_embedding(p, freqs), "blocks.0.mlp.W_in": W_in}
    return cfg, state | {"unembed.W_U": W_U}


def clock_mlp(
    p: int, freqs: tuple[int, ...], class_scale: Tensor
) -> tuple[RunConfig, dict[str, Tensor]]:
    """Nanda et al.'s clock as a quadratic MLP on [E_a, E_b] (float64 weights): the products
    (E_a)_i (E_b)_j of each frequency's plane as differences of squares, (u + v)^2 - (u - v)^2 =
    4 u v, read out through M_c = [[cos w c, sin w c], [sin w c, -cos w c]] and scaled by
    `class_scale` [p] per class:
        Q_abc = s_c E_a^T M_c E_b = s_c sum_k cos(w_k (a + b - c)),
    so the right answer's logit s_{a+b} depends on a + b alone, and per triple
    cos(dQ/dE_a, dQ/dE_b) = (1 / K) sum_k cos(w_k (a - b)) (M_c is orthogonal and symmetric)."""
    n = len(freqs)
    cfg = _quadratic_mlp(p, freqs, 8 * n)
    W_in = torch.zeros(4 * n, 8 * n, dtype=torch.float64)
    W_U = torch.zeros(8 * n, p, dtype=torch.float64)
    w_c = torch.arange(p, dtype=torch.float64) * 2 * math.pi / p
    for j, k in enumerate(freqs):
        c, s = (k * w_c).cos(), (k * w_c).sin()
        M = {(0, 0): c, (0, 1): s, (1, 0): s, (1, 1): -c}
        for m, ((i, jj), entry) in enumerate(M.items()):
            plus, minus = 8 * j + 2 * m, 8 * j + 2 * m + 1
            W_in[2 * j + i, plus] = W_in[2 * j + i, minus] = 1
            W_in[2 * n + 2 * j + jj, plus], W_in[2 * n + 2 * j + jj, minus] = 1, -1
            W_U[plus], W_U[minus] = entry / 4, -entry / 4
    state = {"embed.W_E": _circle_embedding(p, freqs), "blocks.0.mlp.W_in": W_in}
    return cfg, state | {"unembed.W_U": W_U * class_scale}
