"""`grokinterp sweep` and `grokinterp sweep-report`: flags and handlers (registered by
`grokinterp.cli`)."""

from __future__ import annotations

import sys
from pathlib import Path


def add_sweep(sub) -> None:
    parser = sub.add_parser(
        "sweep",
        help="plan and run a sweep spec (TOML): local, on Ray or on SLURM",
        description=(
            "Read a sweep spec (TOML: a base preset, [fixed] values, a [grid] of lists over any "
            "run config field, optional [arms.NAME] variants each crossed with the grid, the "
            "[analysis] to run after training; see docs/sweeps.md), print the "
            "plan (runs, the batches they pack into, disk and time estimates), then train "
            "and analyse every run into SWEEP/runs/<run>/, SWEEP/analyses/<run>/ and "
            "SWEEP/reports/<run>.html. Re-running the same command skips finished runs, resumes "
            "killed ones and retries failed batches. A batch that fails is reported and the rest "
            "go on (exit code 1 when any failed)."
        ),
    )
    parser.add_argument("spec", type=Path, metavar="SPEC", help="the sweep spec (.toml)")
    parser.add_argument(
        "--out", type=Path, help="the sweep folder (default sweeps/<spec file name>)"
    )
    parser.add_argument(
        "--executor",
        default="local",
        help="local (default: batches one after another in this process), ray (the `ray` extra) "
        "or slurm (submitit, the `slurm` extra)",
    )
    parser.add_argument(
        "--address", help="ray: the address of a running cluster (default: start a local one)"
    )
    parser.add_argument(
        "--slurm-cluster",
        default="slurm",
        help="slurm: slurm (default), or local / debug to run the job array on this machine",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA when present), cpu or cuda; ray: cpu keeps batches off the GPUs",
    )
    parser.add_argument("--plan", action="store_true", help="print the plan and stop")
    parser.add_argument(
        "--no-time-estimate",
        action="store_true",
        help="skip timing a few training steps per architecture for the plan",
    )
    parser.add_argument("--quiet", action="store_true", help="no training progress output")
    parser.set_defaults(handler=_sweep)


def _sweep(args) -> None:
    from grokinterp.sweep.executors import run_sweep

    failed = run_sweep(
        args.spec,
        args.out,
        executor=args.executor,
        address=args.address,
        device=args.device,
        slurm_cluster=args.slurm_cluster,
        plan_only=args.plan,
        estimate_time=not args.no_time_estimate,
        progress=not args.quiet,
    )
    if failed:
        sys.exit(1)


def add_sweep_report(sub) -> None:
    parser = sub.add_parser(
        "sweep-report",
        help="write a sweep's table (CSV, Parquet) and its HTML report",
        description=(
            "Collect every run of a sweep folder into SWEEP/sweep-table.csv and .parquet (one row "
            "per run: its config, the epochs of 99% train and test accuracy, phase boundaries, "
            "key components, final losses, FVE share) and write SWEEP/sweep-report.html: epochs "
            "to generalise against train fraction and weight decay, and the key-component counts "
            "across seeds, each point linking to its run's report."
        ),
    )
    parser.add_argument("sweep", type=Path, metavar="SWEEP", help="the sweep folder")
    parser.set_defaults(handler=_sweep_report)


def _sweep_report(args) -> None:
    from grokinterp.report.sweep_page import write_sweep_report
    from grokinterp.storage import environment, sweep_dir
    from grokinterp.sweep.table import write_table

    table, written, note = write_table(args.sweep)
    runs = args.sweep / sweep_dir.RUNS
    environment.compare(sorted(runs.iterdir()) if runs.is_dir() else [], f"{args.sweep}")
    for path in written:
        print(f"wrote {path}")
    if note:
        print(note)
    print(f"wrote {write_sweep_report(args.sweep, table)}")
