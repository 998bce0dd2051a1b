"""Composition in finite groups over several seeds, analysed in the irrep basis, in one command:

    python scripts/group_study.py [--groups S4,D23] [--seeds 0-3] [--model transformer|mlp]

For each group, trains its runs together as one batched model into
checkpoints/group-study[-mlp]/<group>-seed<s>/ (init and split seed both s), analyses each in the
group's real irreps (analyses/group-study[-mlp]/<group>-seed<s>/), and prints a markdown table:
epochs
to 99% test accuracy, the key irreps with their share of the final embedding's squared norm over
the non-trivial irreps, the share of neurons clustered by irrep (FVE > 0.85), the logit fit by the
key irreps' characters, and the restricted loss. The table also goes to
analyses/group-study/table.md and table.csv. A killed study resumes where it stopped.

`--model mlp` trains Chughtai et al.'s one-hidden-layer MLP with their settings (MLP_BASE: the
`OneLayerMLP` of their code's batch experiments) on the same groups, train fractions and seeds.

The transformer's hyperparameters (STUDY) grok on a 2-core CPU in minutes; S5 (14,400 pairs) costs
about
0.5 s per epoch for four seeds there, too slow for the thousands of epochs it needs, so it is
left to a GPU (`--groups S5`). torch runs on one thread (`--threads`): on a shared 2-core machine
a second thread made these small steps over ten times slower.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from study_rows import circuit, reached, write_tables

from grokinterp.analysis.analyze import Summary, analyze_run, load_measures
from grokinterp.cli.lists import parse_list
from grokinterp.presets import preset
from grokinterp.storage.run import open_run
from grokinterp.training import batch_state
from grokinterp.training.loop import resume_runs, train_runs

BASE = preset("small").replace(
    preset="group-study",
    operation="compose",
    d_model=128,
    d_mlp=256,
    lr=1e-2,
    weight_decay=3.0,
    save_every=50,
)
"""Shared by every group: the small preset, wider, with weight decay 3."""
MLP_BASE = preset("canonical", group="S4").replace(preset="group-study-mlp", p=59, group=None)
"""Chughtai et al. (ICML 2023), their code's `rep_theory/batch_experiments/*_MLP_*/cfg.json`:
embeddings of a and b of width 256 each, concatenated, 128 ReLU neurons, no biases, AdamW lr 1e-3,
weight decay 1, betas (0.9, 0.98). They train 250,000 epochs; here 25,000, what the CPU allows."""
STUDY = {
    "S4": {"train_frac": 0.7, "epochs": 6000},
    "D23": {"train_frac": 0.5, "epochs": 6000},
    "S5": {"train_frac": 0.4, "epochs": 20000},
}
"""Per group: the train fraction and epochs (groups not listed: 0.5 and 5000)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", default="S4,D23", help="comma-separated, e.g. S4,D23")
    parser.add_argument("--seeds", default="0-3", help="e.g. 0-3 or 1,4,9")
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--model", default="transformer", choices=("transformer", "mlp"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = parse_list(args.seeds, int)
    rows = []
    study = "group-study" if args.model == "transformer" else "group-study-mlp"
    for group in args.groups.split(","):
        settings = STUDY.get(group, {"train_frac": 0.5, "epochs": 5000})
        if args.model == "mlp":
            base = MLP_BASE.replace(group=group, train_frac=settings["train_frac"])
        else:
            base = BASE.replace(group=group, **settings)
        cfgs = [base.replace(seed=s, data_seed=s).validate() for s in seeds]
        run_dirs = [args.root / "checkpoints" / study / f"{group}-seed{s}" for s in seeds]
        if not any(d.exists() for d in run_dirs):
            train_runs(cfgs, run_dirs)
        elif not all(batch_state.load_state(d)[2] for d in run_dirs):
            resume_runs(run_dirs)
        for seed, run_dir in zip(seeds, run_dirs, strict=True):
            out = analyze_run(run_dir, args.root / "analyses" / study / run_dir.name).path
            rows.append(_row(group, seed, run_dir, out))
    table = pd.DataFrame(rows)
    folder = args.root / "analyses" / study
    write_tables(folder, table, markdown(table))


def _row(group: str, seed: int, run_dir: Path, analysis: Path) -> dict:
    summary = Summary.load(analysis)
    metrics = open_run(run_dir).metrics()
    final = load_measures(analysis).iloc[-1]
    spectrum = [c for c in final.index if c.startswith("W_E.")]
    squares = final[spectrum].to_numpy(np.float64) ** 2
    share = dict(zip([c[4:] for c in spectrum], squares / squares.sum(), strict=True))
    return {
        "group": group,
        "seed": seed,
        "train_frac": summary.config["train_frac"],
        **reached(metrics, summary),
        "key_irreps": " ".join(f"{k} {share[k]:.0%}" for k in summary.key_components),
        **circuit(summary),
    }


def markdown(table: pd.DataFrame) -> str:
    head = (
        "| group | seed | train frac | epochs to 99% test acc | final test acc | key irreps "
        "(share of W_E) | neurons clustered | clusters (irrep:neurons) | logit FVE | restricted "
        "loss | test loss |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in table.itertuples():
        epoch = "not reached" if pd.isna(r.epoch_99) else f"{int(r.epoch_99)}"
        lines.append(
            f"| {r.group} | {r.seed} | {r.train_frac:g} | {epoch} (of {r.epochs}) | "
            f"{r.final_test_acc:.3f} | {r.key_irreps} | {r.neurons_clustered:.0%} | {r.clusters} "
            f"| {r.logit_fve:.2f} | {r.restricted_loss:.2g} | {r.test_loss:.2g} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
