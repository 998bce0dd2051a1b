"""Power et al.'s central experiment: epochs to generalise against the training fraction.

    python scripts/power_sweep.py [--preset small] [--epochs 4000] [--seeds 0]
        [--operations add,sub,mul,div,a2_b2,a2_ab_b2] [--fractions 0.3,0.4,0.5,0.6,0.7,0.8]

For each operation, every (fraction, seed) run trains together as one batched model (one run
directory each, under checkpoints/power-sweep/). From each run's metrics.csv the script reads the
first epoch with test accuracy >= 99%, and writes analyses/power-sweep/table.csv (one row per run)
and reports/power-sweep.html (one self-contained plotly figure), then prints the markdown table of
operation x fraction (median over seeds; "> N" where no seed reached 99% within N epochs).
Finished runs are kept and not trained again, so a killed sweep can be re-run.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from grokinterp.cli.lists import parse_list
from grokinterp.errors import UsageError
from grokinterp.presets import preset
from grokinterp.storage import store
from grokinterp.tasks.modular import OPERATIONS
from grokinterp.training import batch_state
from grokinterp.training.loop import train_runs

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.99


def first_epoch_at(run_dir: Path, column: str, level: float) -> int | None:
    metrics = store.read_metrics_array(run_dir)
    index = store.METRIC_COLUMNS.index(column)
    reached = np.flatnonzero(metrics[:, index] >= level)
    return int(metrics[reached[0], 0]) if len(reached) else None


def finished(run_dir: Path) -> bool:
    try:
        return batch_state.load_state(run_dir)[2]
    except UsageError:  # no state yet, or an unreadable one: train it (again)
        return False


def sweep(args) -> pd.DataFrame:
    base = preset(args.preset).replace(epochs=args.epochs, save_every=args.epochs)
    rows = []
    for operation in args.operations:
        plan = []
        for fraction in args.fractions:
            for seed in args.seeds:
                cfg = base.replace(
                    operation=operation, train_frac=fraction, seed=seed, data_seed=seed
                ).validate()
                name = f"{operation}-frac{fraction:g}-seed{seed}"
                plan.append((cfg, args.runs / name))
        todo = [(cfg, run) for cfg, run in plan if not finished(run)]
        for _, run in todo:
            if run.exists():  # a killed first attempt: start it afresh
                shutil.rmtree(run)
        if todo:
            print(f"{operation}: training {len(todo)} runs together", flush=True)
            train_runs([c for c, _ in todo], [r for _, r in todo], progress=not args.quiet)
        for cfg, run in plan:
            rows.append(
                {
                    "operation": operation,
                    "formula": OPERATIONS[operation].formula,
                    "train_frac": cfg.train_frac,
                    "seed": cfg.seed,
                    "epochs_trained": cfg.epochs,
                    "epoch_train_99": first_epoch_at(run, "train_acc", TARGET),
                    "epoch_test_99": first_epoch_at(run, "test_acc", TARGET),
                    "run_dir": str(run),
                }
            )
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame, epochs: int) -> str:
    fractions = sorted(table["train_frac"].unique())
    lines = ["| operation | " + " | ".join(f"{f:.0%}" for f in fractions) + " |"]
    lines.append("| --- |" + " --- |" * len(fractions))
    for _, group in table.groupby("operation", sort=False):
        cells = []
        for fraction in fractions:
            reached = group.loc[group["train_frac"] == fraction, "epoch_test_99"]
            done = reached.dropna()
            cells.append(f"{int(np.median(done)):,}" if len(done) else f"> {epochs:,}")
            if 0 < len(done) < len(reached):
                cells[-1] += f" ({len(done)}/{len(reached)} seeds)"
        lines.append(f"| {group['formula'].iloc[0]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(table: pd.DataFrame, epochs: int) -> go.Figure:
    fig = go.Figure()
    for _, group in table.groupby("operation", sort=False):
        summary = group.groupby("train_frac")["epoch_test_99"].median()
        fig.add_trace(
            go.Scatter(
                x=summary.index * 100,
                y=summary.to_numpy(np.float64),
                mode="lines+markers",
                name=group["formula"].iloc[0],
            )
        )
    fig.update_layout(
        title=f"Epochs to 99% test accuracy (median over seeds; gaps: not within {epochs:,})",
        xaxis_title="training data (% of the operation's pairs)",
        yaxis_title="epochs",
        yaxis_type="log",
        template="plotly_white",
    )
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--epochs", type=int, default=4000)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--operations", default="add,sub,mul,div,a2_b2,a2_ab_b2")
    parser.add_argument("--fractions", default="0.3,0.4,0.5,0.6,0.7,0.8")
    parser.add_argument("--runs", type=Path, default=ROOT / "checkpoints" / "power-sweep")
    parser.add_argument("--out", type=Path, default=ROOT / "analyses" / "power-sweep")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    args.seeds = parse_list(args.seeds, int)
    args.fractions = parse_list(args.fractions, float)
    args.operations = args.operations.split(",")
    torch.set_num_threads(args.threads)
    table = sweep(args)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "table.csv", index=False)
    report = ROOT / "reports" / "power-sweep.html"
    report.parent.mkdir(exist_ok=True)
    figure(table, args.epochs).write_html(report, include_plotlyjs=True)
    print(markdown(table, args.epochs))
    print(f"wrote {args.out / 'table.csv'} and {report}")


if __name__ == "__main__":
    main()
