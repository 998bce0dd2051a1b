"""The sweep folder: one ordinary run directory per run, beside the sweep's own records.

    SWEEP/sweep.toml              the spec as last run (a copy, for the record)
    SWEEP/plan.json               every run's name, batch and config; the analysis settings
    SWEEP/runs/<run>/             an ordinary run directory (`grokinterp.storage.store`), whose
                                  lock (RUN/.lock) the worker training it holds
    SWEEP/analyses/<run>/         its analysis (`grokinterp.storage.analysis_format`)
    SWEEP/reports/<run>.html      its report (`grokinterp.report.page`)
    SWEEP/failures.json           batches that failed in the last invocation, with the error
    SWEEP/slurm/                  submitit's job files (SLURM executor only)
    SWEEP/sweep-table.csv, .parquet, sweep-report.html   written by `grokinterp sweep-report`

Only the driver writes plan.json and failures.json; workers write their runs' own files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from grokinterp.config import RunConfig
from grokinterp.errors import UsageError

RUNS, ANALYSES, REPORTS, SLURM = "runs", "analyses", "reports", "slurm"
PLAN_FILE, SPEC_COPY, FAILURES_FILE = "plan.json", "sweep.toml", "failures.json"
TABLE_CSV, TABLE_PARQUET, REPORT_FILE = (
    "sweep-table.csv",
    "sweep-table.parquet",
    "sweep-report.html",
)
PLAN_FORMAT = "grokinterp-sweep-1"


def run_dir(sweep: Path, name: str) -> Path:
    return Path(sweep) / RUNS / name


def analysis_dir(sweep: Path, name: str) -> Path:
    return Path(sweep) / ANALYSES / name


def report_path(sweep: Path, name: str) -> Path:
    return Path(sweep) / REPORTS / f"{name}.html"


def write_plan(sweep: Path, spec) -> None:
    from grokinterp.storage.store import atomic_write

    plan = {
        "format": PLAN_FORMAT,
        "spec": str(spec.path),
        "analysis": spec.analysis,
        "grid": spec.grid,
        "arms": spec.arms,
        "runs": [
            {"name": run.name, "group": run.batch, "arm": run.arm, "config": run.config.to_dict()}
            for run in spec.runs
        ],
    }
    atomic_write(Path(sweep) / PLAN_FILE, json.dumps(plan, indent=1).encode())
    atomic_write(Path(sweep) / SPEC_COPY, spec.text.encode())


def read_plan(sweep: Path) -> dict:
    path = Path(sweep) / PLAN_FILE
    if not Path(sweep).is_dir():
        raise UsageError(f"{sweep}: no such sweep folder")
    try:
        plan = json.loads(path.read_text())
    except OSError:
        raise UsageError(f"{path}: missing; is {sweep} a sweep folder?") from None
    except ValueError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(plan, dict) or plan.get("format") != PLAN_FORMAT:
        raise UsageError(f"{path}: not a grokinterp sweep plan")
    try:
        plan["configs"] = {r["name"]: RunConfig.from_dict(r["config"]) for r in plan["runs"]}
    except (KeyError, TypeError, UsageError) as exc:
        raise UsageError(f"{path}: unreadable run list ({exc})") from None
    return plan


def read_failures(sweep: Path) -> dict:
    try:
        failures = json.loads((Path(sweep) / FAILURES_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return failures if isinstance(failures, dict) else {}


def write_failures(sweep: Path, failures: dict) -> None:
    from grokinterp.storage.store import atomic_write

    path = Path(sweep) / FAILURES_FILE
    if failures:
        atomic_write(path, json.dumps(failures, indent=1).encode())
    else:
        path.unlink(missing_ok=True)


@contextmanager
def run_locks(sweep: Path, names: list[str]) -> Iterator[list[str]]:
    """Hold the lock (`grokinterp.storage.run_lock`) of each run that no other process holds; yield
    the names locked. The operating system drops a lock when its holder dies, so a killed worker
    leaves none."""
    from grokinterp.storage.run_lock import Busy, holding_one

    with ExitStack() as stack:
        held = []
        for name in names:
            try:
                stack.enter_context(holding_one(run_dir(sweep, name)))
            except Busy:
                continue
            held.append(name)
        yield held
