"""Analysis speed on a canonical-size checkpoint series, against a baseline commit in the same run.

    python benchmarks/bench_analyze.py [--checkpoints 400] [--baseline 8e19ccf]

Writes one run directory of random canonical-size checkpoints (the weights are random: only the
timing matters), then analyses it with `grokinterp analyze` twice, each in a fresh process: once
with the code at `--baseline` (checked out into a temporary git worktree) and once with this
checkout's code; then once more with this checkout's code, finding nothing new. The table gives
the seconds of each (the call to `grokinterp.cli.main` alone, imports excluded) and the ratio of
this checkout against the baseline, which is what the speed targets state (docs/speed.md): on
another machine or under another load the seconds change, the ratio much less.
The default baseline, 7112e3f, is the analysis before it was made one pass (the packages by
stage, moved unchanged; earlier commits cannot read the run config's format 2).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from grokinterp import data
from grokinterp.models import architecture
from grokinterp.presets import preset
from grokinterp.storage import store

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS_PER_400 = 30.0
"""The target for 400 canonical checkpoints on the 2-core reference machine."""
TIMED = """import sys, time
from grokinterp.cli import main
start = time.perf_counter()
code = main(["analyze", "--ckpt-dir", sys.argv[1], "--out", sys.argv[2], "--quiet"])
assert code == 0, code
print(time.perf_counter() - start)
"""
"""Run in a fresh process whose working directory is the code's checkout."""


def write_series(run_dir: Path, n_checkpoints: int) -> None:
    """`n_checkpoints` canonical checkpoints, each with its own random weights."""
    cfg = preset("canonical").replace(epochs=100 * (n_checkpoints - 1), save_every=100)
    store.write_run_files(run_dir, cfg, data.train_indices(cfg))
    for index, epoch in enumerate(cfg.save_epochs):
        weights = architecture(cfg.replace(seed=index)).init_params()
        store.save_checkpoint(run_dir, cfg, epoch, architecture(cfg).state_dict_of(weights))


def timed_analysis(code_dir: Path, run_dir: Path, out: Path) -> float:
    """Seconds that `grokinterp analyze` of the code in `code_dir` takes on `run_dir`."""
    env = {**os.environ, "PYTHONPATH": str(code_dir)}
    result = subprocess.run(
        [sys.executable, "-c", TIMED, str(run_dir), str(out)],
        cwd=code_dir,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        sys.exit(f"the analysis by {code_dir} failed:\n{result.stderr}")
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", type=int, default=400)
    parser.add_argument("--baseline", default="7112e3f", help="the commit to compare against")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        baseline = folder / "baseline"
        subprocess.run(
            [
                "git",
                "-C",
                str(ROOT),
                "worktree",
                "add",
                "--detach",
                "-q",
                str(baseline),
                args.baseline,
            ],
            check=True,
        )
        try:
            run_dir = folder / "run"
            write_series(run_dir, args.checkpoints)
            before = timed_analysis(baseline, run_dir, folder / "analysis-baseline")
            now = timed_analysis(ROOT, run_dir, folder / "analysis")
            rerun = timed_analysis(ROOT, run_dir, folder / "analysis")
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(baseline)], check=True
            )
    target = TARGET_SECONDS_PER_400 * args.checkpoints / 400
    print(
        f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    )
    header = f"{'what':<40}{'seconds':>10}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    print(
        f"{f'baseline {args.baseline}: {args.checkpoints} checkpoints':<40}{before:>10.1f}{1:>8.2f}"
    )
    print(f"{f'this checkout: {args.checkpoints} checkpoints':<40}{now:>10.1f}{now / before:>8.2f}")
    print(f"{'this checkout: again, nothing new':<40}{rerun:>10.1f}{rerun / before:>8.2f}")
    print(
        f"target: {target:.0f} s on the reference machine, where the baseline took 103 s: "
        f"a ratio of {target / 103:.2f} or less"
    )


if __name__ == "__main__":
    main()
