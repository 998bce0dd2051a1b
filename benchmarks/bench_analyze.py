"""Analysis speed on a canonical-size checkpoint series.

    python benchmarks/bench_analyze.py [--checkpoints 400]

Writes a run directory of random canonical-size checkpoints (weights are random: only the timing
matters), analyses it with `grokinterp.analysis.analyze.analyze_run`, and prints the wall time per
checkpoint and in total against the 30 s target for 400 checkpoints (issue 21), plus the time
of an incremental re-run that finds nothing new.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from grokinterp import data
from grokinterp.analysis.analyze import analyze_run
from grokinterp.models import architecture
from grokinterp.presets import preset
from grokinterp.storage import store

TARGET_SECONDS_PER_400 = 30.0


def write_series(run_dir: Path, n_checkpoints: int) -> None:
    cfg = preset("canonical").replace(epochs=100 * (n_checkpoints - 1), save_every=100)
    store.write_run_files(run_dir, cfg, data.train_indices(cfg))
    for index, epoch in enumerate(cfg.save_epochs):
        weights = architecture(cfg.replace(seed=index)).init_params()
        store.save_checkpoint(run_dir, cfg, epoch, architecture(cfg).state_dict_of(weights))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run_dir, out = Path(folder) / "run", Path(folder) / "analysis"
        write_series(run_dir, args.checkpoints)
        start = time.perf_counter()
        analyze_run(run_dir, out, progress=False)
        total = time.perf_counter() - start
        start = time.perf_counter()
        analyze_run(run_dir, out, progress=False)
        rerun = time.perf_counter() - start
    target = TARGET_SECONDS_PER_400 * args.checkpoints / 400
    print(f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")
    header = f"{'what':<34}{'seconds':>10}{'target':>10}{'time/target':>13}"
    print(header)
    print("-" * len(header))
    print(
        f"{f'analyse {args.checkpoints} checkpoints':<34}{total:>10.1f}{target:>10.0f}"
        f"{total / target:>12.2f}x"
    )
    print(f"{'per checkpoint':<34}{total / args.checkpoints:>10.3f}")
    print(f"{'re-run, nothing new':<34}{rerun:>10.1f}")


if __name__ == "__main__":
    main()
