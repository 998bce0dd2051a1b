"""Where the analysis of a canonical checkpoint series spends its time.

    python benchmarks/profile_analyze.py [--checkpoints 60] [--top 18]

Writes the series of `bench_analyze.py` (random canonical-size checkpoints) and prints the
`cProfile` functions that take the most time of `analyze_run` on it, by their own time. Run it on
an idle machine: under another job's load the small operations slow many times over and lead the
list.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
from pathlib import Path

from bench_analyze import write_series

from grokinterp.analysis.analyze import analyze_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", type=int, default=60)
    parser.add_argument("--top", type=int, default=18, help="functions printed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run_dir, out = Path(folder) / "run", Path(folder) / "analysis"
        write_series(run_dir, args.checkpoints)
        profile = cProfile.Profile()
        profile.runcall(analyze_run, run_dir, out, progress=False)
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
