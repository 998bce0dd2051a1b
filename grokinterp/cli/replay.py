"""Tracker flags (`--log-to`, `--project`) for train and analyze, and `grokinterp replay`
(registered by `grokinterp.cli`)."""

from __future__ import annotations

from pathlib import Path

TRACKER_CHOICES = ("wandb", "trackio")


def add_log_flags(parser, what: str) -> None:
    parser.add_argument(
        "--log-to",
        choices=TRACKER_CHOICES,
        help=f"also send {what} to wandb or trackio (the optional extras grokinterp[wandb], "
        "grokinterp[trackio]); checked before anything is written",
    )
    _add_project(parser)


def _add_project(parser) -> None:
    parser.add_argument(
        "--project", default="grokinterp", help="the tracker's project (default grokinterp)"
    )


def add_replay(sub) -> None:
    parser = sub.add_parser(
        "replay",
        help="send a finished run's metrics (and analysis) to wandb or trackio",
        description=(
            "Send the metrics rows of RUN/metrics.jsonl (metrics.csv for a run made before it) "
            "to a tracker as one run named after the run directory, step = epoch; with "
            "--analysis DIR also the analysis measures (keys analysis/..., a run named "
            "<run>-analysis). wandb follows its own settings (WANDB_MODE=offline, WANDB_DIR); "
            "trackio writes its local store (TRACKIO_DIR)."
        ),
    )
    parser.add_argument("run", type=Path, metavar="RUN", help="the run directory")
    parser.add_argument("--to", required=True, choices=TRACKER_CHOICES, help="the tracker")
    parser.add_argument("--analysis", type=Path, metavar="DIR", help="the run's analysis")
    _add_project(parser)
    parser.set_defaults(handler=_replay)


def _replay(args) -> None:
    from grokinterp.storage.run import open_run
    from grokinterp.storage.trackers import replay, require

    require(args.to)
    open_run(args.run)  # a missing run is one line before the tracker starts
    rows, measures = replay(args.run, args.to, args.analysis, args.project)
    extra = f" and {measures} analysis rows" if args.analysis else ""
    print(f"sent {rows} metrics rows{extra} of {args.run} to {args.to}")
