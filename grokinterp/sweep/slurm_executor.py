"""The SLURM executor, through submitit: one job array, each task training several batches.

Each array task runs `[slurm] batches_per_task` batches one after another. A task that is
preempted, or that nears `timeout_min` (SLURM sends the signal `signal_delay_s` before), is
checkpointed by submitit and requeued; the requeued task runs the same batches again, which skips
the finished runs and resumes the others from their saved state
(grokinterp.training.loop.resume_runs). Submitit's own files (pickled calls, stdout and stderr of
every task) go to SWEEP/slurm/. `--slurm-cluster local` runs the same job array as local processes
(submitit's LocalExecutor): what the tests use. Imported only by `--executor slurm`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import submitit

from grokinterp.errors import UsageError
from grokinterp.storage import sweep_dir
from grokinterp.sweep.batch import failure, payload, run_batch_safely
from grokinterp.sweep.spec import Batch


class BatchesTask(submitit.helpers.Checkpointable):
    """One array task: its batches in turn. On preemption or time-out submitit calls the
    inherited `checkpoint`, which resubmits this same call: the runs' own state is the
    checkpoint."""

    def __call__(
        self, sweep: str, batches: list[tuple[str, list]], analysis: dict, device: str
    ) -> list[dict[str, Any]]:
        return [
            run_batch_safely(sweep, batch_id, runs, analysis, device, progress=True)
            for batch_id, runs in batches
        ]


def make_executor(sweep: Path, options: dict, cluster: str) -> submitit.AutoExecutor:
    executor = submitit.AutoExecutor(
        folder=Path(sweep) / sweep_dir.SLURM,
        cluster=cluster,
        slurm_max_num_timeout=options["max_requeues"],
        local_max_num_timeout=options["max_requeues"],
    )
    parameters: dict[str, Any] = {
        "name": f"grokinterp-{Path(sweep).name}",
        "timeout_min": options["timeout_min"],
        "cpus_per_task": options["cpus_per_task"],
        "gpus_per_node": options["gpus_per_node"],
        "mem_gb": options["mem_gb"],
        "slurm_array_parallelism": options["array_parallelism"],
        "slurm_signal_delay_s": options["signal_delay_s"],
    }
    if options["partition"] is not None:
        parameters["slurm_partition"] = options["partition"]
    if options["additional"]:
        parameters["slurm_additional_parameters"] = options["additional"]
    try:
        executor.update_parameters(**parameters)
    except (AssertionError, NameError, ValueError, TypeError) as exc:
        raise UsageError(f"[slurm] options refused by submitit: {exc}") from None
    return executor


def chunks(batches: list[Batch], per_task: int) -> list[list[Batch]]:
    return [batches[i : i + per_task] for i in range(0, len(batches), per_task)]


def submit_with(
    executor, sweep: Path, batches: list[Batch], analysis: dict, device: str, options: dict
) -> list[tuple[Any, list[Batch]]]:
    """Submit the batches as one job array through `executor` (`make_executor`); return each
    task's job with its batches."""
    tasks = chunks(batches, options["batches_per_task"])
    jobs = executor.map_array(
        BatchesTask(),
        [str(sweep)] * len(tasks),
        [[(batch.id, payload(batch)) for batch in task] for task in tasks],
        [analysis] * len(tasks),
        [device] * len(tasks),
    )
    first = jobs[0].job_id.split("_")[0] if jobs else "-"
    print(
        f"submitted job array {first}: {len(tasks)} task(s) of up to {options['batches_per_task']} "
        f"batch(s); logs in {Path(sweep) / sweep_dir.SLURM}",
        flush=True,
    )
    return list(zip(jobs, tasks, strict=True))


def collect(jobs: list[tuple[Any, list[Batch]]]) -> Iterator[dict]:
    """Wait for every task; yield its batches' results, or a failure for each of its batches when
    the task itself died (killed, out of memory, requeued too often)."""
    for job, batches in jobs:
        try:
            results = job.result()
        except Exception as exc:  # noqa: BLE001 - submitit raises several kinds
            lines = [line for line in str(exc).strip().splitlines() if line.strip()]
            where = f"job {job.job_id}"
            text = f"{type(exc).__name__} in {where}: {lines[0] if lines else ''}"
            print(f"{where}: see {job.paths.stderr}", file=sys.stderr)
            for batch in batches:
                yield failure(batch, text)
            continue
        yield from results
