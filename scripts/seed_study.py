"""The canonical preset over several seeds (model and data seed both varied), in one command:

    python scripts/seed_study.py [--seeds 1-5] [--epochs 15000]

Trains the runs together as one batched model into checkpoints/seeds/canonical-seed<s>/, analyses
each, and writes analyses/seeds/canonical-seed<s>.json (the summary) and analyses/seeds/table.csv
(one row per seed: key frequencies, cluster sizes, FVE share, phase boundaries, final losses).
A killed study resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd

from grokinterp.analysis.analyze import Summary, analyze_run
from grokinterp.cli.lists import parse_list
from grokinterp.presets import preset
from grokinterp.storage import store
from grokinterp.training import batch_state
from grokinterp.training.loop import resume_runs, train_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="1-5", help="e.g. 1-5 or 1,4,9")
    parser.add_argument("--epochs", type=int, default=15_000)
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root")
    args = parser.parse_args()
    seeds = parse_list(args.seeds, int)
    cfgs = [preset("canonical").replace(seed=s, data_seed=s, epochs=args.epochs) for s in seeds]
    run_dirs = [args.root / "checkpoints" / "seeds" / f"canonical-seed{s}" for s in seeds]
    if not any(d.exists() for d in run_dirs):
        train_runs(cfgs, run_dirs, compile="off")  # the eager loop, as the shipped summaries
    elif not all(batch_state.load_state(d)[2] for d in run_dirs):
        resume_runs(run_dirs, compile="off")

    out = args.root / "analyses" / "seeds"
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed, run_dir in zip(seeds, run_dirs, strict=True):
        summary = analyze_run(run_dir, args.root / "analyses" / "seed-runs" / run_dir.name)
        shutil.copy2(summary.path / "summary.json", out / f"{run_dir.name}.json")
        rows.append(_row(seed, summary))
    table = pd.DataFrame(rows)
    store.atomic_write(out / "table.csv", table.to_csv(index=False).encode())
    print(table.to_string(index=False))


def _row(seed: int, summary: Summary) -> dict:
    return {
        "seed": seed,
        "key_frequencies": " ".join(map(str, summary.key_frequencies)),
        "n_key_frequencies": len(summary.key_frequencies),
        "cluster_sizes": json.dumps(summary.cluster_sizes),
        "unexplained_neurons": summary.unexplained_neurons,
        "fve_share": summary.fve_share,
        **summary.phases,
        "final_train_loss": summary.final_train_loss,
        "final_test_loss": summary.final_test_loss,
        "logit_fve_final": summary.logit_fve_final,
    }


if __name__ == "__main__":
    main()
