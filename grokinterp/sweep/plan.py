"""What a sweep will do before it does it: run states, disk and time estimates, the plan text.

Disk is estimated from the file formats (float32 checkpoints, the float32 training state with
both AdamW moments, the metrics rows, the analysis tables and the reports, each report inlining
plotly.js); time by timing a few training steps per architecture on this machine's device, alone and
batched (`batch_seconds`), and scaling by the pairs each run of a batch computes (a batch
pads every run to its longest split).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from grokinterp.config import RunConfig
from grokinterp.storage import sweep_dir
from grokinterp.sweep.batch import DONE, NEW, PARTIAL, RESTART, RunState
from grokinterp.sweep.spec import Batch, Spec, batch_key

PLOTLY_JS_BYTES = 4_815_765
"""len(plotly.offline.get_plotlyjs()) of plotly 6/7; every run report inlines it once."""
METRICS_ROW_BYTES = 115
"""One metrics.csv row: an epoch and five float64 values at 17 significant digits."""


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


NO_ANALYSIS = {"analyze": False, "report": False}
"""The [analysis] settings of training alone (`grokinterp train`)."""


def disk_per_run(cfg: RunConfig, analysis: dict) -> DiskEstimate:
    """Bytes one finished run takes: its run directory, and the analysis and report that the
    sweep spec's [analysis] settings `analysis` ask for."""
    from grokinterp.models import architecture

    params = architecture(cfg).n_parameters()
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


def step_seconds(cfg: RunConfig, device: str = "auto", budget: float = 0.3, runs: int = 1) -> float:
    """Seconds of one training epoch (forward, backward, AdamW and the test evaluation) of `runs`
    copies of `cfg` trained together as one batched model on `device`: the median of steps that
    take about `budget` seconds in all, after two warm-up steps."""
    import torch

    from grokinterp import data
    from grokinterp.models import architecture
    from grokinterp.tasks import task_of
    from grokinterp.training.loop import PaddedPairs, resolve_device, train_step
    from grokinterp.training.recipe import Recipe

    dev = resolve_device(device)
    model = architecture(cfg)
    cfgs = [cfg] * runs
    params = {
        name: t[None].repeat(runs, *(1,) * t.dim()).to(dev)
        for name, t in model.init_params().items()
    }
    for name in model.trained:
        params[name].requires_grad_(True)
    recipe = Recipe(cfgs, dev)
    state = recipe.initial_state(params)
    split = data.train_indices(cfg)
    train = PaddedPairs.stack(cfgs, [split] * runs, dev)
    test = PaddedPairs.stack(cfgs, [data.test_indices(task_of(cfg), split)] * runs, dev)
    lr = torch.full((runs,), cfg.lr, device=dev)
    wd = torch.full((runs,), cfg.weight_decay, device=dev)

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


def _padded_work(cfgs: list[RunConfig]) -> int:
    """Pair-passes of one epoch of one run of `cfgs` trained together, padded to the longest
    splits."""
    n_train = max(cfg.n_train for cfg in cfgs)
    return _work(n_train, max(cfg.n_pairs - cfg.n_train for cfg in cfgs))


def batch_work(batch: Batch) -> int:
    """Pair-passes of one epoch of one run of the batch, padded to its longest splits."""
    return _padded_work([run.config for run in batch.runs])


PROBE_SECONDS = 1.0
"""About the most seconds `batch_seconds` spends timing a batch (beyond one run alone)."""


def batch_seconds(cfgs: list[RunConfig], device: str = "auto", timed: dict | None = None) -> float:
    """Seconds of one epoch of `cfgs` trained together as one batched model on `device`.

    One forward and backward serves the whole batch, so an epoch of B runs costs a fixed part
    (kernel launches, Python, the optimiser's loop over tensors) plus a part per run:
    t(B) = t(1) + (B - 1) m. t(1) and t(k) are timed (`step_seconds`) on the first config, k the
    largest batch up to B whose five timed steps take about PROBE_SECONDS by t(1) (at least 2),
    m = max(t(k) - t(1), 0) / (k - 1); then scaled by the pairs one run computes, padded to the
    batch's longest split, over the timed config's. benchmarks/bench_plan.py measures the curve
    this extrapolates: on a 2-core CPU (torch 2.13, one thread) the small preset costs 14.5,
    30.9, 57.7, 121 and 324 ms at B = 1, 2, 4, 8, 16 (about B t(1): the matmuls dominate), a
    model of d_model 32 on p = 23 costs 3.3, 3.5, 4.7, 7.0, 12.0 and 24.0 ms at B = 1, 2, 4, 8,
    16, 32 (about 2.9 + 0.66 B ms: the fixed part dominates). `timed` caches the timings by
    shared fields and batch size across calls."""
    timed = {} if timed is None else timed
    cfg = cfgs[0]
    key = batch_key(cfg)
    if (key, 1) not in timed:
        timed[key, 1] = step_seconds(cfg, device)
    solo = timed[key, 1]
    probe = max(2, min(len(cfgs), int(PROBE_SECONDS / (5 * solo))))
    if len(cfgs) > 1 and (key, probe) not in timed:
        timed[key, probe] = step_seconds(cfg, device, runs=probe)
    marginal = max(timed[key, probe] - solo, 0.0) / (probe - 1) if len(cfgs) > 1 else 0.0
    work = _work(cfg.n_train, cfg.n_pairs - cfg.n_train)
    return (solo + (len(cfgs) - 1) * marginal) * _padded_work(cfgs) / work


def save_seconds(cfg: RunConfig, repeats: int = 3) -> float:
    """Seconds one run's checkpoint save takes (the median of `repeats`): the files the training
    loop writes for it at each checkpoint (weights, the training state with both AdamW moments,
    and three small files: the metrics rows, their stream and the batch record), each written
    atomically and fsynced, into a temporary directory."""
    import tempfile

    import torch

    from grokinterp.models import architecture
    from grokinterp.storage import store

    model = architecture(cfg)
    weights = model.init_params()
    state = weights | {f"{m}.{k}": t.clone() for k, t in weights.items() for m in "mv"}
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for epoch in range(repeats):
            start = time.perf_counter()
            store.save_checkpoint(Path(tmp), cfg, epoch, model.state_dict_of(weights))
            store.save_state(Path(tmp), epoch, state | {"rng": torch.get_rng_state()}, False)
            for name in ("metrics", "stream", "record"):
                store.atomic_write(Path(tmp) / name, b"0" * METRICS_ROW_BYTES * cfg.save_every)
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def training_seconds(
    cfgs: list[RunConfig], step: int, device: str = "auto", timed: dict | None = None
) -> float:
    """Seconds to train `cfgs` together as one batched model from epoch `step` (0: new) to their
    end: the epochs left times `batch_seconds`, plus the checkpoints left times the runs times
    `save_seconds` (`timed` caches both across calls)."""
    timed = {} if timed is None else timed
    cfg = cfgs[0]
    if (batch_key(cfg), "save") not in timed:
        timed[batch_key(cfg), "save"] = save_seconds(cfg)
    saves = sum(epoch > step for epoch in cfg.save_epochs) + (step == 0)
    epochs = (cfg.epochs - step) * batch_seconds(cfgs, device, timed)
    return epochs + saves * len(cfgs) * timed[batch_key(cfg), "save"]


def time_estimate(
    spec: Spec, states: dict[str, RunState], device: str, timed: dict | None = None
) -> dict[str, float]:
    """Seconds of training left per batch, on this machine's `device` (0 for a batch with
    nothing to train): its new runs trained together from epoch 0, its killed runs resumed
    together by the epoch they saved (`training_seconds` of each batch; `timed` as there)."""
    timed = {} if timed is None else timed
    seconds = {}
    for batch in spec.batches:
        batches: dict[int, list[RunConfig]] = {}
        for run in batch.runs:
            state = states[run.name]
            if state.kind != DONE:
                batches.setdefault(state.step if state.kind == PARTIAL else 0, []).append(
                    run.config
                )
        seconds[batch.id] = sum(
            training_seconds(cfgs, step, device, timed) for step, cfgs in batches.items()
        )
    return seconds


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError


def duration(seconds: float) -> str:
    """Seconds as text: s below 90 s, min below 90 min, else h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _batch_text(batch: Batch) -> str:
    cfg = batch.shared
    return (
        f"{len(batch.runs)} run(s), {cfg.operation} mod {cfg.p}, d_model {cfg.d_model}, "
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
        f"sweep {spec.name}: {len(spec.runs)} runs in {len(spec.batches)} batch(es) -> {sweep}",
        f"  grid      {grid}, from preset {spec.base.preset}",
    ]
    if spec.arms:
        lines.append(f"  arms      {', '.join(spec.arms)}")
    shown = spec.batches[:8]
    for batch in shown:
        names = ", ".join(r.name for r in batch.runs[:3]) + ", ..." * (len(batch.runs) > 3)
        lines.append(f"  {batch.id:<9} {_batch_text(batch)}: {names}")
    if len(spec.batches) > len(shown):
        lines.append(f"  ...       {len(spec.batches) - len(shown)} more batch(s)")
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
        from grokinterp.training.loop import resolve_device

        total = sum(seconds.values())
        longest = max(seconds.values(), default=0.0)
        dev = resolve_device(device) if executor == "local" else None
        where = f"this machine's {dev.type}" if dev else "this machine's device, for scale"
        lines.append(
            f"  time      about {duration(total)} of training left on {where} "
            f"(longest batch {duration(longest)}; analysis extra)"
        )
    lines.append(f"  executor  {EXECUTOR_TEXT[executor]}")
    return lines


EXECUTOR_TEXT = {
    "local": "local: batches one after another in this process",
    "ray": "ray: one Ray task per batch",
    "slurm": "slurm: one submitit job array, several batches per task",
}


def states_of(spec: Spec, sweep) -> dict[str, RunState]:
    from grokinterp.sweep.batch import run_state

    return {
        run.name: run_state(sweep_dir.run_dir(sweep, run.name), run.config) for run in spec.runs
    }


def batches_to_run(spec: Spec, sweep, states: dict[str, RunState]) -> list[Batch]:
    """Batches with a run to train, resume or analyse."""
    from grokinterp.sweep.batch import analysis_is_current

    return [
        batch
        for batch in spec.batches
        if any(
            states[r.name].kind != DONE
            or not analysis_is_current(sweep, r.name, r.config, spec.analysis)
            for r in batch.runs
        )
    ]
