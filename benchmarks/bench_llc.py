"""LLC speed: seconds per checkpoint at the default settings against one training step.

    python benchmarks/bench_llc.py [--preset small] [--run RUN] [--repeats 3]
        [--burnin 30 --draws 70]

Estimates the LLC (grokinterp.analysis.llc.estimator's defaults, or the burn-in and draws given) of
one checkpoint of a run of the preset (the last checkpoint of RUN when given, else the preset's
initial weights; the estimator's cost does not depend on the weights) two ways: devinterp's sampler,
one chain after the other (the module `AnswerLogits`), and the chains batched along the fast
forward's run axis (grokinterp.analysis.llc.sgld, what `analyze --llc` runs); and times, in the same
process, one plain full-batch training step of the fast engine (forward, backward, AdamW;
bench_train's `time_steps`). Prints, per way, seconds per LLC estimate (median of the repeats, after
one untimed estimate that pays the imports), the SGLD steps per chain x chains, milliseconds per
training step, and the ratio; also the largest difference between the two ways' LLC per chain.
Needs pip install 'grokinterp[llc]'.
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

from grokinterp.analysis.llc.estimator import LLCSettings, estimate_llc  # noqa: E402
from grokinterp.analysis.llc.series import (  # noqa: E402
    AnswerLogits,
    answer_loss,
    llc_of_state,
    training_pairs,
)
from grokinterp.data import train_indices  # noqa: E402
from grokinterp.models import architecture  # noqa: E402
from grokinterp.presets import preset  # noqa: E402
from grokinterp.storage.run import open_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--run", type=Path, help="a run of the preset: its last checkpoint")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--burnin", type=int, default=LLCSettings.burnin)
    parser.add_argument("--draws", type=int, default=LLCSettings.draws)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = LLCSettings(burnin=args.burnin, draws=args.draws)
    if args.run:
        run = open_run(args.run)
        cfg, state = run.config, run.state_dict()
        data = training_pairs(cfg, run.train_indices, run.path)
    else:
        cfg = preset(args.preset)
        model = architecture(cfg)
        state = model.state_dict_of(model.init_params())
        data = training_pairs(cfg, train_indices(cfg), args.preset)
    module = AnswerLogits(architecture(cfg), state)
    ways = {
        "devinterp, chain after chain": lambda: estimate_llc(module, *data, answer_loss, settings),
        "chains batched (analyze --llc)": lambda: llc_of_state(cfg, state, data, settings),
    }
    seconds, results = {}, {}
    for name, estimate in ways.items():
        estimate()
        times, cpu = [], []
        for _ in range(args.repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            results[name] = estimate()
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        seconds[name] = statistics.median(times), statistics.median(cpu)
    step = time_steps([cfg], "fast", steps=20)
    step_cpu = time_steps([cfg], "fast", steps=20, clock=time.process_time)
    result = results["chains batched (analyze --llc)"]
    gap = max(abs(a - b) for a, b in zip(*(r.per_chain for r in results.values()), strict=True))
    print(f"settings: {settings.to_dict()} (nbeta used {result.nbeta:.4g}; {result.status})")
    print(f"largest difference of an LLC per chain between the two ways: {gap:.2g}")
    print(
        "| preset | training pairs | sampler | SGLD steps | LLC s/checkpoint (CPU s) | "
        "ms/training step (CPU ms) | LLC / training step (by CPU time) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, (llc_s, llc_cpu) in seconds.items():
        print(
            f"| {args.preset} | {len(data[1]):,} | {name} | "
            f"{settings.draws + settings.burnin} x {settings.chains} | "
            f"{llc_s:.2f} ({llc_cpu:.2f}) | {1000 * step:.1f} ({1000 * step_cpu:.1f}) | "
            f"{llc_s / step:.0f}x ({llc_cpu / step_cpu:.0f}x) |"
        )


if __name__ == "__main__":
    main()
