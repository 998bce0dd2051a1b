"""What a worker does with one batch, whatever the executor: train, resume, skip, analyse.

A run's state is read from the run directories of its batch
(`grokinterp.training.batch_state`), never from a sweep-wide record, so any executor, any number of
times, after any crash, comes to the same decision:

    absent or empty                    new: trained from scratch
    batch committed, finished          done: skipped (analysed if its analysis is missing, its
                                       LLC estimated where [analysis.llc] asks for it and
                                       checkpoints lack it)
    batch committed, not finished      partial: resumed with its whole batch, in its batch
                                       order, from the batch's step (resume_runs)
    run files but nothing committed    killed before its first save: cleared, trained anew
    (or only temporary files)

A directory whose config.json differs from the planned config is refused (UsageError): it is
another run. Each run is locked (flock) while a worker holds it; a run locked by another live
process is left alone ("busy"), so two workers never train the same run.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grokinterp.config import RunConfig
from grokinterp.errors import UsageError
from grokinterp.storage import store, sweep_dir
from grokinterp.training import batch_state

if TYPE_CHECKING:
    from grokinterp.sweep.spec import Batch


def payload(batch: Batch) -> list[tuple[str, dict]]:
    """The runs of a batch as a worker receives them: names and config dicts."""
    return [(run.name, run.config.to_dict()) for run in batch.runs]


def failure(batch: Batch, error: str, trace: str = "") -> dict[str, Any]:
    """What the driver records for a batch that did not finish."""
    return {"group": batch.id, "error": error, "traceback": trace}


NEW, DONE, PARTIAL, RESTART = "new", "done", "partial", "restart"


@dataclass(frozen=True)
class RunState:
    kind: str
    step: int = 0


def config_difference(stored: RunConfig, planned: RunConfig) -> str:
    """The fields in which a run's stored config differs from the planned one ("" for none); the
    attention rule counts only below rate 1, where the two rules differ."""
    same_rule = stored.attention_rate == planned.attention_rate == 1.0
    ignored = {"format_version", *(("attention_rule",) if same_rule else ())}
    diffs = [
        f"{name} {getattr(stored, name)!r} != {getattr(planned, name)!r}"
        for name in planned.to_dict()
        if name not in ignored and getattr(stored, name) != getattr(planned, name)
    ]
    return ", ".join(diffs)


def run_state(run_dir: Path, cfg: RunConfig) -> RunState:
    """What the directory of one planned run holds (see the module docstring)."""
    run_dir = Path(run_dir)
    if not run_dir.exists() or (run_dir.is_dir() and not store.run_files(run_dir)):
        return RunState(NEW)
    if not (run_dir / store.CONFIG_FILE).exists():
        if all(
            path.name.startswith(".") and ".tmp-" in path.name for path in store.run_files(run_dir)
        ):
            return RunState(RESTART)  # killed while writing its first file
        raise UsageError(f"{run_dir} holds files but no run; move them away")
    stored = store.read_config(run_dir)
    if difference := config_difference(stored, cfg):
        raise UsageError(
            f"{run_dir} holds a run of another config ({difference}); "
            "the spec changed: use another --out or move that run away"
        )
    batch = batch_state.status(run_dir)
    if batch is None or batch.step is None:
        return RunState(RESTART)
    return RunState(DONE) if batch.finished else RunState(PARTIAL, batch.step)


def analysis_is_current(sweep: Path, name: str, cfg: RunConfig, analysis: dict) -> bool:
    """True when the run's analysis (and report, if asked for) covers its last epoch."""
    from grokinterp.storage.analysis_format import SUMMARY_FILE, Summary

    if not analysis["analyze"]:
        return True
    out = sweep_dir.analysis_dir(sweep, name)
    try:
        summary = Summary.load(out)
    except UsageError:
        return False
    if summary.last_epoch != cfg.epochs:
        return False
    if not analysis["report"]:
        return True
    page = sweep_dir.report_path(sweep, name)
    return page.exists() and page.stat().st_mtime_ns >= (out / SUMMARY_FILE).stat().st_mtime_ns


def run_batch(
    sweep: str | Path,
    batch: str,
    runs: list[tuple[str, dict]],
    analysis: dict,
    device: str = "auto",
    progress: bool = False,
) -> dict[str, Any]:
    """Bring every run of one batch to done (and analysed); return what was done.

    `runs` holds (name, RunConfig.to_dict()) pairs, so the call pickles small and needs no spec
    file on the worker. Exceptions propagate (see `run_batch_safely`)."""
    from grokinterp.training.loop import resolve_device, resume_runs, train_runs

    sweep = Path(sweep)
    started = time.perf_counter()
    result: dict[str, Any] = {
        "group": batch,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "device": str(resolve_device(device)),
        **{key: [] for key in ("trained", "resumed", "done", "busy", "analysed", "llc")},
    }
    configs = {name: RunConfig.from_dict(cfg) for name, cfg in runs}
    with sweep_dir.run_locks(sweep, list(configs)) as held:
        result["busy"] = [name for name in configs if name not in held]
        states = {name: run_state(sweep_dir.run_dir(sweep, name), configs[name]) for name in held}
        fresh = [name for name in held if states[name].kind in (NEW, RESTART)]
        for name in fresh:
            if states[name].kind == RESTART:  # everything but the lock this worker holds
                for path in store.run_files(sweep_dir.run_dir(sweep, name)):
                    if path.is_dir():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
        result["done"] = [name for name in held if states[name].kind == DONE]
        for batch in batch_state.batches_of([sweep_dir.run_dir(sweep, n) for n in result["done"]]):
            batch_state.settle(batch)  # completes a last commit that was killed half-way
        if fresh:
            _say(progress, f"{batch}: training {len(fresh)} run(s) on {result['device']}")
            dirs = [sweep_dir.run_dir(sweep, name) for name in fresh]
            train_runs([configs[n] for n in fresh], dirs, device, progress=progress)
            result["trained"] = fresh
        partial = [sweep_dir.run_dir(sweep, name) for name in held if states[name].kind == PARTIAL]
        for batch in batch_state.batches_of(partial):
            names = [run.name for run in batch.runs]
            _say(progress, f"{batch}: resuming {len(names)} run(s) from epoch {batch.step}")
            resume_runs(batch.runs, device, progress=progress)
            result["resumed"] += names
        for name in held:
            if not analysis_is_current(sweep, name, configs[name], analysis):
                _analyse(sweep, name, analysis)
                result["analysed"].append(name)
            if analysis.get("llc") is not None and _llc(sweep, name, analysis["llc"]):
                result["llc"].append(name)
    result["seconds"] = time.perf_counter() - started
    return result


def _analyse(sweep: Path, name: str, analysis: dict) -> None:
    from grokinterp.analysis.analyze import analyze_run

    run = sweep_dir.run_dir(sweep, name)
    out = analyze_run(run, sweep_dir.analysis_dir(sweep, name), False, analysis["basis"]).path
    if analysis["report"]:
        from grokinterp.report.page import write_report

        write_report(out, sweep_dir.report_path(sweep, name))


def _llc(sweep: Path, name: str, settings: dict) -> bool:
    """Estimate the LLC of the run's checkpoints not yet estimated with these settings (after
    its analysis, into the same directory); True when there were any."""
    from grokinterp.analysis.llc.estimator import LLCSettings
    from grokinterp.analysis.llc.series import llc_is_current, llc_run

    run, out = sweep_dir.run_dir(sweep, name), sweep_dir.analysis_dir(sweep, name)
    settings = LLCSettings(**settings)
    if llc_is_current(run, out, settings):
        return False
    llc_run(run, out, settings, progress=False)
    return True


def _say(enabled: bool, text: str) -> None:
    if enabled:
        print(text, flush=True)


def run_batch_safely(*args, **kwargs) -> dict[str, Any]:
    """`run_batch`, with an exception turned into a result that carries it: one failed batch
    never stops the others of a worker. KeyboardInterrupt and SystemExit still propagate."""
    try:
        return run_batch(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - reported, and the sweep goes on
        batch = kwargs.get("batch", args[1] if len(args) > 1 else "?")
        return {
            "group": batch,
            "error": f"{type(exc).__name__}: {exc}".splitlines()[0],
            "traceback": traceback.format_exc(),
            "host": socket.gethostname(),
        }
