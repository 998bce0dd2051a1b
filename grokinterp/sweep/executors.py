"""Run a sweep: plan it, then hand its batches to an executor, and report what happened.

    local   the batches one after another in this process (on the GPU when there is one)
    ray     one Ray task per batch, on a running cluster (--address) or a local one
    slurm   one submitit job array; each task trains several batches; preempted or timed-out
            tasks are requeued and resume from the runs' saved state

Every executor calls the same `grokinterp.sweep.batch.run_batch` on the same batches, so a sweep
gives the same run directories on each. A batch that fails (an exception, a killed worker) is
reported in SWEEP/failures.json and the others go on; running the same command again skips the
finished runs, resumes the killed ones and retries the failed batches.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from grokinterp.errors import UsageError
from grokinterp.storage import sweep_dir
from grokinterp.sweep.batch import payload, run_batch_safely
from grokinterp.sweep.spec import Batch, Spec, check_executor, read_spec

DEFAULT_SWEEPS_DIR = Path("sweeps")
SLURM_CLUSTERS = ("slurm", "local", "debug")


def run_local(
    sweep: Path, batches: list[Batch], analysis: dict, device: str, progress: bool
) -> Iterator[dict]:
    for batch in batches:
        yield run_batch_safely(sweep, batch.id, payload(batch), analysis, device, progress)


def _check_options(executor: str, address: str | None, slurm_cluster: str, device: str) -> None:
    from grokinterp.training.loop import DEVICES, resolve_device

    check_executor(executor)
    if address is not None and executor != "ray":
        raise UsageError("--address names a Ray cluster: it goes with --executor ray")
    if slurm_cluster not in SLURM_CLUSTERS:
        raise UsageError(
            f"unknown --slurm-cluster {slurm_cluster!r}; choose one of {', '.join(SLURM_CLUSTERS)}"
        )
    if executor == "local":
        resolve_device(device)  # --device cuda without a GPU is refused here and now
    elif device not in DEVICES:
        raise UsageError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if executor == "slurm" and slurm_cluster == "slurm":
        import shutil

        if shutil.which("sbatch") is None:
            raise UsageError(
                "--executor slurm: no sbatch here (run on a SLURM login node, or try the "
                "sweep with --slurm-cluster local)"
            )


def sweep_folder(spec: Spec, out: str | Path | None) -> Path:
    """The sweep's folder; refused when it holds something other than a sweep."""
    sweep = Path(out) if out is not None else DEFAULT_SWEEPS_DIR / spec.name
    if sweep.exists():
        if not sweep.is_dir():
            raise UsageError(f"{sweep} is a file, not a sweep folder")
        if any(sweep.iterdir()) and not (sweep / sweep_dir.PLAN_FILE).exists():
            raise UsageError(f"{sweep} holds other files; choose another --out")
    return sweep


def run_sweep(
    spec_path: str | Path,
    out: str | Path | None = None,
    executor: str = "local",
    address: str | None = None,
    device: str = "auto",
    slurm_cluster: str = "slurm",
    plan_only: bool = False,
    estimate_time: bool = True,
    progress: bool = True,
) -> int:
    """Plan and run a sweep; return the number of batches that failed. Every check (the spec,
    the options, the runs already in the folder) comes before anything is written or started."""
    from grokinterp.sweep import plan as planning

    _check_options(executor, address, slurm_cluster, device)
    spec = read_spec(spec_path)
    sweep = sweep_folder(spec, out)
    states = planning.states_of(spec, sweep)
    seconds = None
    if estimate_time:  # timed here; the workers of Ray and SLURM may have a GPU where this has none
        import torch

        here = device if executor == "local" or torch.cuda.is_available() else "cpu"
        seconds = planning.time_estimate(spec, states, here)
    for line in planning.plan_lines(spec, sweep, states, executor, device, seconds):
        print(line, flush=True)
    todo = planning.batches_to_run(spec, sweep, states)
    if plan_only:
        return 0
    if not todo:
        print("nothing to do: every run is finished and analysed")
        sweep.mkdir(parents=True, exist_ok=True)
        sweep_dir.write_plan(sweep, spec)
        sweep_dir.write_failures(sweep, {})
        return 0

    # the executor is set up before the plan is written: a refusal leaves no sweep behind
    if executor == "ray":
        from grokinterp.sweep import ray_executor

        session = ray_executor.connect(address, spec.ray)
        if device == "cuda" and not session.gpus:
            ray_executor.disconnect(session)
            raise UsageError("--device cuda: the Ray cluster has no GPU")
    elif executor == "slurm":
        from grokinterp.sweep import slurm_executor

        submitter = slurm_executor.make_executor(sweep.resolve(), spec.slurm, slurm_cluster)
    sweep.mkdir(parents=True, exist_ok=True)
    sweep_dir.write_plan(sweep, spec)
    sweep = sweep.resolve()  # workers may start elsewhere
    if executor == "local":
        results = run_local(sweep, todo, spec.analysis, device, progress)
    elif executor == "ray":
        results = ray_executor.run(session, sweep, todo, spec.analysis, device, spec.ray)
    else:
        jobs = slurm_executor.submit_with(submitter, sweep, todo, spec.analysis, device, spec.slurm)
        results = slurm_executor.collect(jobs)
    return _report(sweep, spec, todo, results)


def _report(sweep: Path, spec: Spec, todo: list[Batch], results) -> int:
    """Print each batch's outcome as it comes; record the failures; return their count."""
    planned = {batch.id: batch for batch in spec.batches}
    failures: dict[str, dict] = {}
    sweep_dir.write_failures(sweep, failures)
    failed = 0
    for result in results:
        batch = planned[result["group"]]
        names = [run.name for run in batch.runs]
        if result.get("error"):
            failed += 1
            failures[batch.id] = {"runs": names, **result}
            sweep_dir.write_failures(sweep, failures)
            print(f"{batch.id}: FAILED: {result['error']}", file=sys.stderr, flush=True)
            continue
        parts = [
            f"{len(result[key])} {'with their LLC estimated' if key == 'llc' else key}"
            for key in ("trained", "resumed", "done", "analysed", "llc", "busy")
            if result.get(key)
        ]
        busy = " (busy: held by another worker; run again later)" if result.get("busy") else ""
        print(
            f"{batch.id}: {', '.join(parts) or 'nothing to do'} in {result['seconds']:.1f} s on "
            f"{result['host']} ({result['device']}){busy}",
            flush=True,
        )
    if failed:
        print(
            f"{failed} of {len(todo)} group(s) failed "
            f"(errors in {sweep / sweep_dir.FAILURES_FILE}); "
            "run the same command again to retry them",
            file=sys.stderr,
        )
    else:
        print(f"sweep {spec.name}: {len(todo)} group(s) done -> {sweep}")
    return failed
