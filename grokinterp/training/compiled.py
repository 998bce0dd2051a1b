"""The compiled training epoch: the whole epoch of the batched engine through `torch.compile`.

An epoch is two compiled graphs and one backward: `forward` (the fast batched forward on the
training pairs in the run's precision, the float64 cross-entropy and accuracy that metrics.csv
records, the objective, and the test pairs' loss, accuracy and unseen accuracy under no_grad)
and the recipe's update (warm-up, filter, ⊥Grad, optimiser, norm control: every parameter's
update fused by inductor). The step index enters as a float64 0-d tensor on the device, so one
graph serves every step and the loop never waits for the device (`grokinterp.training.loop._loop`
reads the metrics back at checkpoints only). On CUDA both graphs are compiled with mode
`reduce-overhead` (replayed from CUDA graphs), the weights and the optimiser's state marked as
static addresses; on the CPU with inductor's C++ kernels (g++).

`compile` (`grokinterp train --compile`): `off` is the eager loop (the baseline, bit for bit the
uncompiled loop); `on` compiles wherever `unsupported` finds nothing in the way, and otherwise
trains eagerly and says why in one line; `auto` compiles where `benchmarks/bench_train.py` and
`benchmarks/bench_gpu.py` measured the compiled epoch faster, the compile time included
(`auto_reason`; the measurements: docs/speed.md, "The compiled epoch"): on the CPU for long, large
runs; on CUDA not yet, for want of a measurement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from grokinterp.errors import UsageError

if TYPE_CHECKING:
    from grokinterp.config import RunConfig

CHOICES = ("auto", "on", "off")

AUTO_CPU_MIN_WORK = 2.0e9
"""`auto` compiles a CPU run whose epochs x training pairs x d_mlp reach this. Measured by
`benchmarks/bench_train.py --compiled` (docs/speed.md, "The compiled epoch"): a cold compile paid
for itself after 4,076 epochs of the small preset (1.1e9 in these units) and after 756 epochs of the
canonical one (1.5e9); the canonical run is 7.8e10, the small one 1.1e9 (left eager)."""


def check_choice(choice: str) -> None:
    if choice not in CHOICES:
        raise UsageError(f"unknown compile choice {choice!r}; choose one of {', '.join(CHOICES)}")


def unsupported(cfgs: Sequence[RunConfig], engine: str) -> str | None:
    """Why these runs cannot train through the compiled epoch, or None when they can."""
    if engine != "fast":
        return f"the {engine} engine is the uncompiled baseline; only the fast engine compiles"
    if cfgs[0].batch_size is not None:
        return "minibatch training (--batch-size) has no compiled epoch"
    return None


def auto_reason(cfgs: Sequence[RunConfig], device: torch.device) -> str | None:
    """Why `compile=auto` leaves these runs eager, or None when it compiles them."""
    if device.type == "cuda":
        return (
            "no GPU measurement yet says the compiled epoch is faster on CUDA "
            "(benchmarks/bench_gpu.py decides); --compile on compiles"
        )
    cfg = cfgs[0]
    work = cfg.epochs * cfg.n_train * cfg.d_mlp
    if work < AUTO_CPU_MIN_WORK:
        return (
            f"on the CPU auto compiles from epochs x training pairs x d_mlp >= "
            f"{AUTO_CPU_MIN_WORK:.0e} (this run: {work:.1e}); the compile would cost more "
            "than it saves"
        )
    return None


def decide(
    choice: str,
    cfgs: Sequence[RunConfig],
    device: torch.device,
    engine: str,
    before: bool | None = None,
) -> tuple[bool, str | None]:
    """(compile or not, the reason when a run asked to compile, or left to auto, stays eager).
    On resume `before` says whether the runs were compiled until now (their environment.json;
    runs trained before the compiled epoch existed were not): `auto` keeps that, so a resumed
    run equals an unbroken one."""
    check_choice(choice)
    if choice == "off":
        return False, None
    reason = unsupported(cfgs, engine)
    if reason is None and choice == "auto" and before is False:
        reason = "the runs were trained by the eager loop so far, and auto keeps it on resume"
    elif reason is None and choice == "auto" and before is None:
        reason = auto_reason(cfgs, device)
    return reason is None, reason


def _options(device: torch.device) -> dict:
    if device.type == "cuda":
        return {"mode": "reduce-overhead", "fullgraph": True}
    return {"fullgraph": True}


def compile_epoch(forward, update, params: dict, state: dict, device: torch.device):
    """`forward(params) -> (loss [run], metrics row [run, 5])` and
    `update(params, grads, state, step, lr, wd)` compiled for `device`; on CUDA the weights and
    state get static addresses, so the CUDA graphs read them in place. Drops every graph
    compiled before in this process (`torch._dynamo.reset`): the epoch functions of each group
    are new closures of the same code, whose cache entries would otherwise pile up to dynamo's
    recompile limit over a sweep's groups, and hold their tensors."""
    torch._dynamo.reset()
    if device.type == "cuda":
        for tensor in (*params.values(), *state.values()):
            torch._dynamo.mark_static_address(tensor)
    options = _options(device)
    return torch.compile(forward, **options), torch.compile(update, **options)


def step_tensor(step: int, device: torch.device) -> torch.Tensor:
    """The step index as a float64 0-d tensor on `device` (a fill, no host-device copy)."""
    return torch.full((), float(step), dtype=torch.float64, device=device)
