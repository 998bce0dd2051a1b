"""One task, several model families: train, analyse and compare, in one command.

    python scripts/arch_study.py [--models transformer,mlp] [--seed 0] [--preset small]

Trains (a + b) mod p at the preset's size and data (same split seed) with each model of MODELS
into checkpoints/arch-study/<model>-seed<s>/, analyses each in the Fourier basis
(analyses/arch-study/<model>-seed<s>/), writes a report per run (reports/arch-study-<model>.html)
and prints a markdown table, also written to analyses/arch-study/table.md and table.csv. A
killed study resumes where it stopped.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd
import torch
from study_rows import circuit, reached, write_tables

from grokinterp.analysis.analyze import Summary, analyze_run
from grokinterp.models import architecture
from grokinterp.presets import preset
from grokinterp.report.page import write_report
from grokinterp.storage.run import open_run
from grokinterp.training import batch_state
from grokinterp.training.loop import resume_runs, train_runs

MODELS = {
    "transformer": {},
    "transformer-2L": {"n_layers": 2},
    "mlp": {"model": "mlp"},
    "mlp-separate": {"model": "mlp", "embedding": "separate"},
    "mlp-quadratic": {"model": "mlp", "activation": "quadratic"},
}
"""Study name -> the architecture fields that differ from the preset (Nanda et al.'s model)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="transformer,mlp", help=", ".join(MODELS))
    parser.add_argument("--seed", type=int, default=0, help="init and split seed")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.models.split(","):
        cfg = preset(args.preset).replace(seed=args.seed, data_seed=args.seed, **MODELS[name])
        run_dir = args.root / "checkpoints" / "arch-study" / f"{name}-seed{args.seed}"
        if not run_dir.exists():
            train_runs([cfg.validate()], [run_dir])
        elif not batch_state.load_state(run_dir)[2]:
            resume_runs([run_dir])
        out = analyze_run(run_dir, args.root / "analyses" / "arch-study" / run_dir.name).path
        write_report(out, args.root / "reports" / f"arch-study-{name}.html")
        rows.append(_row(name, run_dir, out))
    table = pd.DataFrame(rows)
    folder = args.root / "analyses" / "arch-study"
    write_tables(folder, table, markdown(table))


def _row(name: str, run_dir: Path, analysis: Path) -> dict:
    summary = Summary.load(analysis)
    run = open_run(run_dir)
    shapes = architecture(run.config).param_shapes().values()
    return {
        "model": name,
        "parameters": sum(math.prod(shape) for shape in shapes),
        **reached(run.metrics(), summary),
        "key_frequencies": " ".join(map(str, summary.key_components)),
        **circuit(summary),
        **{k: summary.phases[k] for k in summary.phases},
    }


def markdown(table: pd.DataFrame) -> str:
    head = (
        "| model | parameters | epochs to 99% test acc | final test acc | key frequencies | "
        "neurons clustered (first layer) | clusters (k:neurons) | logit FVE | restricted loss | "
        "test loss | phase ends (memorisation / circuit / cleanup) |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in table.itertuples():
        epoch = "not reached" if pd.isna(r.epoch_99) else f"{int(r.epoch_99):,}"
        ends = " / ".join(
            "-" if pd.isna(v) else f"{int(v):,}"
            for v in (r.memorization_end, r.circuit_formation_end, r.cleanup_end)
        )
        lines.append(
            f"| {r.model} | {r.parameters:,} | {epoch} (of {r.epochs:,}) | {r.final_test_acc:.3f} "
            f"| {r.key_frequencies} | {r.neurons_clustered:.0%} | {r.clusters} | "
            f"{r.logit_fve:.3f} | {r.restricted_loss:.2g} | {r.test_loss:.2g} | {ends} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
