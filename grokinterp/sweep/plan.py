"""What a sweep will do before it does it: run states, disk and time estimates, the plan text.

Disk is estimated from the file formats (float32 checkpoints, the float32 training state with
both AdamW moments, the metrics rows, the analysis tables and the reports, each report inlining
plotly.js); time by timing a few training steps of one run per architecture on this machine's
device and scaling by the pairs each run of a group computes (a batched group pads every run to
its longest split).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from grokinterp.config import RunConfig
from grokinterp.sweep import folder
from grokinterp.sweep.group import DONE, NEW, PARTIAL, RESTART, RunState
from grokinterp.sweep.spec import Group, Spec

PLOTLY_JS_BYTES = 4_815_765
"""len(plotly.offline.get_plotlyjs()) of plotly 6/7; every run report inlines it once."""
METRICS_ROW_BYTES = 115
"""One metrics.csv row: an epoch and five float64 values at 17 significant digits."""


def _n_params(cfg: RunConfig) -> int:
    from grokinterp.models import architecture

    return sum(math.prod(shape) for shape in architecture(cfg).param_shapes().values())


def _spectrum(cfg: RunConfig) -> int:
    return (cfg.p - 1) // 2 + 1


@dataclass
class DiskEstimate:
    runs: int = 0
    analyses: int = 0
    reports: int = 0

    @property
    def total(self) -> int:
        return self.runs + self.analyses + self.reports


def disk_per_run(cfg: RunConfig, analysis: dict) -> DiskEstimate:
    """Bytes one finished run takes: its run directory, analysis and report."""
    params = _n_params(cfg)
    checkpoints = len(cfg.save_epochs)
    header = 2_500  # the run config in each checkpoint's metadata, tensor names, digest
    run = checkpoints * (4 * params + header) + 3 * 4 * params + 5_056 + header
    run += (cfg.epochs + 1) * METRICS_ROW_BYTES + 8 * cfg.n_train + 1_000
    estimate = DiskEstimate(runs=run)
    if analysis["analyze"]:
        spectrum = _spectrum(cfg)
        columns = 30 + 3 * spectrum
        estimate.analyses = checkpoints * (columns * 13 + cfg.d_mlp * 12)
        estimate.analyses += cfg.d_mlp * spectrum * 4 + 20_000
    if analysis.get("llc"):  # llc.csv rows and the float64 loss traces
        llc = analysis["llc"]
        estimate.analyses += checkpoints * (llc["chains"] * (llc["draws"] * 8 + 25) + 120)
    if analysis["report"]:
        figures = checkpoints * spectrum * 2 * 20 + cfg.d_mlp * spectrum * 12 + 300_000
        estimate.reports = PLOTLY_JS_BYTES + figures
    return estimate


def step_seconds(cfg: RunConfig, device: str = "auto", budget: float = 0.3) -> float:
    """Seconds of one training epoch of `cfg` alone (forward, backward, AdamW and the test
    evaluation) on `device`: the median of steps that take about `budget` seconds in all, after
    two warm-up steps."""
    import torch

    from grokinterp import data
    from grokinterp.models import architecture
    from grokinterp.recipe import Recipe
    from grokinterp.tasks import task_of
    from grokinterp.train import Split, resolve_device, train_step

    dev = resolve_device(device)
    model = architecture(cfg)
    params = {name: t[None].to(dev) for name, t in model.init_params().items()}
    for name in model.trained:
        params[name].requires_grad_(True)
    recipe = Recipe([cfg], dev)
    state = recipe.initial_state(params)
    split = data.train_indices(cfg)
    train = Split.stack([cfg], [split], dev)
    test = Split.stack([cfg], [data.test_indices(task_of(cfg), split)], dev)
    lr = torch.tensor([cfg.lr], device=dev)
    wd = torch.tensor([cfg.weight_decay], device=dev)

    def step(i: int) -> None:
        loss, _ = train.loss_and_accuracy(model.logits(params, train.a, train.b))
        with torch.no_grad():
            test.loss_and_accuracy(model.logits(params, test.a, test.b))
        train_step(params, state, loss, i, lr, wd, recipe)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for i in range(2):  # warm-up: the first steps pick kernels and allocate
        step(i)
    sync()
    times: list[float] = []
    while len(times) < 3 or (sum(times) < budget and len(times) < 50):
        start = time.perf_counter()
        step(len(times) + 2)
        sync()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _work(n_train: int, n_test: int) -> int:
    """Pair-passes of one epoch: forward and backward (about 3 forwards) on the training pairs,
    one forward on the test pairs."""
    return 3 * n_train + n_test


def group_work(group: Group) -> int:
    """Pair-passes of one epoch of one run of the group, padded to its longest splits."""
    n_train = max(run.config.n_train for run in group.runs)
    n_test = max(run.config.n_pairs - run.config.n_train for run in group.runs)
    return _work(n_train, n_test)


def time_estimate(spec: Spec, states: dict[str, RunState], device: str) -> dict[str, float]:
    """Seconds of training left per group, on this machine's `device` (0 for a group with
    nothing to train). One run per architecture is timed."""
    from grokinterp.sweep.spec import batch_key

    timed: dict[tuple, tuple[float, int]] = {}
    seconds = {}
    for group in spec.groups:
        left = [r for r in group.runs if states[r.name].kind != DONE]
        if not left:
            seconds[group.id] = 0.0
            continue
        key = batch_key(group.shared)
        if key not in timed:
            cfg = group.shared
            timed[key] = (step_seconds(cfg, device), _work(cfg.n_train, cfg.n_pairs - cfg.n_train))
        per_step, work = timed[key]
        epochs = sum(r.config.epochs - states[r.name].step for r in left)
        seconds[group.id] = per_step * epochs * group_work(group) / work
    return seconds


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _group_text(group: Group) -> str:
    cfg = group.shared
    return (
        f"{len(group.runs)} run(s), {cfg.operation} mod {cfg.p}, d_model {cfg.d_model}, "
        f"{cfg.n_heads} heads, d_mlp {cfg.d_mlp}, {cfg.epochs} epochs"
    )


def plan_lines(
    spec: Spec,
    sweep,
    states: dict[str, RunState],
    executor: str,
    device: str,
    seconds: dict[str, float] | None,
) -> list[str]:
    """The plan, as printed before the sweep starts."""
    counts = {kind: 0 for kind in (NEW, RESTART, PARTIAL, DONE)}
    for state in states.values():
        counts[state.kind] += 1
    grid = " x ".join(f"{key} ({len(values)})" for key, values in spec.grid.items())
    lines = [
        f"sweep {spec.name}: {len(spec.runs)} runs in {len(spec.groups)} batched group(s) -> "
        f"{sweep}",
        f"  grid      {grid}, from preset {spec.base.preset}",
    ]
    if spec.arms:
        lines.append(f"  arms      {', '.join(spec.arms)}")
    shown = spec.groups[:8]
    for group in shown:
        names = ", ".join(r.name for r in group.runs[:3]) + ", ..." * (len(group.runs) > 3)
        lines.append(f"  {group.id:<9} {_group_text(group)}: {names}")
    if len(spec.groups) > len(shown):
        lines.append(f"  ...       {len(spec.groups) - len(shown)} more group(s)")
    lines.append(
        f"  runs      {counts[NEW] + counts[RESTART]} to train, {counts[PARTIAL]} to resume, "
        f"{counts[DONE]} finished (skipped)"
    )
    disk = DiskEstimate()
    for run in spec.runs:
        one = disk_per_run(run.config, spec.analysis)
        disk.runs, disk.analyses, disk.reports = (
            disk.runs + one.runs,
            disk.analyses + one.analyses,
            disk.reports + one.reports,
        )
    lines.append(
        f"  disk      about {_size(disk.total)} when done (runs {_size(disk.runs)}, analyses "
        f"{_size(disk.analyses)}, reports {_size(disk.reports)})"
    )
    if seconds is not None:
        from grokinterp.train import resolve_device

        total = sum(seconds.values())
        longest = max(seconds.values(), default=0.0)
        dev = resolve_device(device) if executor == "local" else None
        where = f"this machine's {dev.type}" if dev else "this machine's device, for scale"
        lines.append(
            f"  time      about {_duration(total)} of training left on {where} "
            f"(longest group {_duration(longest)}; analysis extra)"
        )
    lines.append(f"  executor  {EXECUTOR_TEXT[executor]}")
    return lines


EXECUTOR_TEXT = {
    "local": "local: groups one after another in this process",
    "ray": "ray: one Ray task per group",
    "slurm": "slurm: one submitit job array, several groups per task",
}


def states_of(spec: Spec, sweep) -> dict[str, RunState]:
    from grokinterp.sweep.group import run_state

    return {run.name: run_state(folder.run_dir(sweep, run.name), run.config) for run in spec.runs}


def groups_to_run(spec: Spec, sweep, states: dict[str, RunState]) -> list[Group]:
    """Groups with a run to train, resume or analyse."""
    from grokinterp.sweep.group import analysis_is_current

    return [
        group
        for group in spec.groups
        if any(
            states[r.name].kind != DONE
            or not analysis_is_current(sweep, r.name, r.config, spec.analysis)
            for r in group.runs
        )
    ]
