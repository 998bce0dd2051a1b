"""Clock or pizza against the attention rate (Zhong et al. 2023, "The Clock and the Pizza"):
train, analyse and plot, in one command.

    python scripts/attention_study.py [--rates 0,0.25,0.5,0.75,1] [--seeds 0,1] [--epochs 4000]

Trains (a + b) mod p at the small preset with each attention rate r (each head's pattern is
r * softmax + (1 - r) * uniform; 1 is Nanda et al.'s transformer, 0 constant attention), the
seeds of one rate as one batched run (seed = data seed), into
checkpoints/attention-study/rate<r>-seed<s>/; analyses each (analyses/attention-study/...), and
writes the final gradient symmetricity and distance irrelevance of every run against the rate
(reports/attention-study.html, plotly) and a markdown table (analyses/attention-study/table.md
and table.csv). A killed study resumes where it stopped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import torch
from study_rows import write_tables

from grokinterp.analysis.analyze import analyze_run, load_measures
from grokinterp.presets import preset
from grokinterp.storage import store
from grokinterp.training.loop import resume_runs, train_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="0,0.25,0.5,0.75,1", help="attention rates in [0, 1]")
    parser.add_argument("--seeds", default="0,1", help="init and split seeds")
    parser.add_argument("--epochs", type=int, default=None, help="default: the preset's")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rates = [float(r) for r in args.rates.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for rate in rates:
        cfgs = [_config(args, rate, seed) for seed in seeds]
        dirs = [args.root / "checkpoints" / "attention-study" / _name(rate, s) for s in seeds]
        _train(cfgs, dirs)
        for seed, run_dir in zip(seeds, dirs, strict=True):
            out = analyze_run(
                run_dir, args.root / "analyses" / "attention-study" / run_dir.name
            ).path
            rows.append(_row(rate, seed, load_measures(out)))
    table = pd.DataFrame(rows)
    folder = args.root / "analyses" / "attention-study"
    html = figure(table).to_html(include_plotlyjs=True, full_html=True)
    store.atomic_write(args.root / "reports" / "attention-study.html", html.encode())
    write_tables(folder, table, markdown(table))


def _config(args, rate: float, seed: int):
    cfg = preset(args.preset).replace(attention_rate=rate, seed=seed, data_seed=seed)
    return (cfg.replace(epochs=args.epochs) if args.epochs else cfg).validate()


def _name(rate: float, seed: int) -> str:
    return f"rate{rate:g}-seed{seed}"


def _train(cfgs, dirs: list[Path]) -> None:
    """Train the runs of one rate together; resume them when a previous study was killed."""
    if not any(d.exists() for d in dirs):
        train_runs(cfgs, dirs, progress=False)
    elif not all(store.load_state(d)[2] for d in dirs):
        resume_runs(dirs, progress=False)


def _row(rate: float, seed: int, measures: pd.DataFrame) -> dict:
    final = measures.iloc[-1]
    hit = measures["epoch"][measures["test_acc"] >= 0.99]
    return {
        "attention_rate": rate,
        "seed": seed,
        "epochs": int(final["epoch"]),
        "epoch_test_99": int(hit.iloc[0]) if len(hit) else None,
        "final_test_acc": float(final["test_acc"]),
        "gradient_symmetricity": float(final["gradient_symmetricity"]),
        "distance_irrelevance": float(final["distance_irrelevance"]),
    }


def markdown(table: pd.DataFrame) -> str:
    lines = [
        "| attention rate | seed | first checkpoint with 99% test acc | final test acc | "
        "gradient symmetricity | distance irrelevance |",
        "|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        epoch = "not reached" if pd.isna(r.epoch_test_99) else f"{int(r.epoch_test_99):,}"
        lines.append(
            f"| {r.attention_rate:g} | {r.seed} | {epoch} (of {r.epochs:,}) | "
            f"{r.final_test_acc:.3f} | {r.gradient_symmetricity:.3f} | "
            f"{r.distance_irrelevance:.3f} |"
        )
    return "\n".join(lines) + "\n"


def figure(table: pd.DataFrame) -> go.Figure:
    """Both diagnostics of every run's final checkpoint against its attention rate."""
    fig = go.Figure()
    for column, name in (
        ("gradient_symmetricity", "gradient symmetricity"),
        ("distance_irrelevance", "distance irrelevance"),
    ):
        fig.add_trace(
            go.Scatter(
                x=table["attention_rate"],
                y=table[column],
                mode="markers",
                name=name,
                text=[f"seed {s}" for s in table["seed"]],
                marker={"size": 10},
            )
        )
    fig.update_layout(
        title="Clock or pizza against the attention rate (final checkpoints; Zhong et al. 2023)",
        xaxis_title="attention rate (0 constant attention, 1 learned)",
        yaxis_title="diagnostic",
        yaxis_range=[-1.05, 1.05],
    )
    return fig


if __name__ == "__main__":
    main()
