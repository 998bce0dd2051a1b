"""Experiment trackers (wandb, trackio): optional, never needed for a run to start.

A run's metrics rows go to RUN/metrics.jsonl whatever the flags (`grokinterp.storage.store`); with
`--log-to NAME` the rows written at each checkpoint are also sent to that tracker as they are
written (one tracker run per grokinterp run, named after its directory, step = epoch), and
`grokinterp analyze --log-to NAME` sends the analysis measures (step = the checkpoint's epoch,
keys prefixed `analysis/`). `grokinterp replay RUN --to NAME` sends a finished run's
metrics.jsonl (and, with --analysis, its measures) later, e.g. from a machine without network.

Each tracker is imported only inside the function that uses it, and `require` checks that it is
installed (the extras `grokinterp[wandb]`, `grokinterp[trackio]`), and wandb logged in or
offline, before anything is written.
wandb follows its own settings (`WANDB_MODE=offline`, `WANDB_DIR`, a login for online runs);
trackio is local-first (a SQLite store under `TRACKIO_DIR`, default the Hugging Face cache;
`trackio show` opens its dashboard).
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from grokinterp.errors import UsageError

TRACKERS = ("wandb", "trackio")
DEFAULT_PROJECT = "grokinterp"


def require(name: str | None) -> None:
    """UsageError unless `name` is None or a known tracker that is installed and, for wandb,
    able to start a run without asking for a login."""
    if name is None:
        return
    if name not in TRACKERS:
        raise UsageError(f"unknown tracker {name!r}; choose {' or '.join(TRACKERS)}")
    if importlib.util.find_spec(name) is None:
        raise UsageError(
            f"--log-to {name} needs the {name} package, which is not installed: "
            f"pip install 'grokinterp[{name}]'"
        )
    if name == "wandb" and not _wandb_ready():
        raise UsageError(
            "wandb is not logged in: run `wandb login`, or set WANDB_MODE=offline to log "
            "locally (`grokinterp replay` sends a run later)"
        )


OFFLINE_MODES = ("offline", "dryrun", "disabled")


def _wandb_ready() -> bool:
    """True when wandb can start a run without asking: an offline mode, an API key in the
    environment, or stored credentials (`wandb login`; checked without a prompt or network)."""
    if os.environ.get("WANDB_MODE", "").lower() in OFFLINE_MODES or os.environ.get("WANDB_API_KEY"):
        return True
    import wandb

    return bool(wandb.login(prompt=False, verify=False))


class Stream:
    """One tracker run: `log(rows)` sends rows {"epoch": e, name: value, ...}; `finish()`."""

    def __init__(self, tracker: str, name: str, config: dict, project: str = DEFAULT_PROJECT):
        require(tracker)
        self.tracker = tracker
        if tracker == "wandb":
            import wandb

            self.run = wandb.init(project=project, name=name, config=config, reinit="create_new")
        else:
            import trackio

            self.run = trackio.init(project=project, name=name, config=config)

    def log(self, rows: Iterable[dict], prefix: str = "") -> int:
        """Send each row at step = its epoch; None and NaN values are left out (not recorded).
        Returns the number of rows sent."""
        count = 0
        for row in rows:
            values = {
                prefix + key: value
                for key, value in row.items()
                if key != "epoch" and _recorded(value)
            }
            self.run.log(values, step=int(row["epoch"]))
            count += 1
        return count

    def finish(self) -> None:
        self.run.finish()


def _recorded(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)


class RunStreams:
    """Training's callback: a Stream per run directory, opened at its first rows."""

    def __init__(self, tracker: str, project: str = DEFAULT_PROJECT):
        require(tracker)
        self.tracker, self.project = tracker, project
        self.streams: dict[Path, Stream] = {}

    def __call__(self, run_dir: Path, rows: list[dict]) -> None:
        from grokinterp.storage import store

        run_dir = Path(run_dir)
        if run_dir not in self.streams:
            config = store.read_config(run_dir).to_dict()
            self.streams[run_dir] = Stream(self.tracker, run_dir.name, config, self.project)
        self.streams[run_dir].log(rows)

    def close(self) -> None:
        for stream in self.streams.values():
            stream.finish()


def log_measures(
    tracker: str, analysis_dir: Path, run_name: str, project: str = DEFAULT_PROJECT
) -> int:
    """Send an analysis's measures table (one row per checkpoint) as one tracker run named
    `<run>-analysis`; returns the rows sent."""
    from grokinterp.storage.analysis_format import load_measures

    table = load_measures(Path(analysis_dir))
    rows = table.select_dtypes("number").to_dict("records")
    stream = Stream(tracker, f"{run_name}-analysis", {"analysis": str(analysis_dir)}, project)
    try:
        return stream.log(rows, prefix="analysis/")
    finally:
        stream.finish()


def replay(
    run_dir: Path,
    tracker: str,
    analysis_dir: Path | None = None,
    project: str = DEFAULT_PROJECT,
) -> tuple[int, int]:
    """Send a run's metrics.jsonl (and the measures of `analysis_dir`) to `tracker`; returns
    (metrics rows, measures rows) sent. A run made before metrics.jsonl sends its metrics.csv."""
    from grokinterp.storage import store

    require(tracker)
    run_dir = Path(run_dir)
    rows = store.read_metrics_stream(run_dir)
    if not rows:
        raise UsageError(f"{run_dir}: no metrics rows to send")
    stream = Stream(tracker, run_dir.name, store.read_config(run_dir).to_dict(), project)
    try:
        sent = stream.log(rows)
    finally:
        stream.finish()
    if analysis_dir is None:
        return sent, 0
    return sent, log_measures(tracker, analysis_dir, run_dir.name, project)
