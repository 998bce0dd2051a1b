"""LLC speed: seconds per checkpoint at the default settings against one training step.

    python benchmarks/bench_llc.py [--preset small] [--run RUN] [--repeats 3]

Estimates the LLC (grokinterp.llc's defaults: SGLD through devinterp) of one checkpoint of a run
of the preset (the last checkpoint of RUN when given, else the preset's initial weights; the
estimator's cost does not depend on the weights) and times, in the same process, one plain
full-batch training step of the fast engine (forward, backward, AdamW; bench_train's
`time_steps`). Prints seconds per LLC estimate (median of the repeats), the SGLD steps it takes,
milliseconds per SGLD step and per training step, and their ratio. Needs
pip install 'grokinterp[llc]'.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_train import time_steps  # noqa: E402

from grokinterp.config import preset  # noqa: E402
from grokinterp.data import train_indices  # noqa: E402
from grokinterp.llc import LLCSettings  # noqa: E402
from grokinterp.llc_series import llc_of_state, training_pairs  # noqa: E402
from grokinterp.models import architecture  # noqa: E402
from grokinterp.run import open_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--run", type=Path, help="a run of the preset: its last checkpoint")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = LLCSettings()
    if args.run:
        run = open_run(args.run)
        cfg, state = run.config, run.state_dict()
        data = training_pairs(cfg, run.train_indices, run.path)
    else:
        cfg = preset(args.preset)
        model = architecture(cfg)
        state = model.state_dict_of(model.init_params())
        data = training_pairs(cfg, train_indices(cfg), args.preset)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = llc_of_state(cfg, state, data, settings)
        times.append(time.perf_counter() - start)
    step = time_steps([cfg], "fast", steps=20)
    sgld_steps = settings.chains * (settings.draws + settings.burnin)
    llc_s = statistics.median(times)
    print(f"settings: {settings.to_dict()} (nbeta used {result.nbeta:.4g}; {result.status})")
    print(
        "| preset | training pairs | LLC s/checkpoint | SGLD steps | ms/SGLD step | "
        "ms/training step | LLC / training step |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {args.preset} | {len(data[1]):,} | {llc_s:.2f} | {sgld_steps} | "
        f"{1000 * llc_s / sgld_steps:.1f} | {1000 * step:.1f} | {llc_s / step:.0f}x |"
    )


if __name__ == "__main__":
    main()
