"""The sweep plan's time estimate against the measured training time, and the batch curve it
models.

    python benchmarks/bench_plan.py [--spec SPEC.toml] [--batches 1,2,4,8,16] [--device cpu]

First table: milliseconds of one epoch (`grokinterp.sweep.plan.step_seconds`) of B copies of the
spec's first run trained together, per batch size, with the affine model `batch_seconds` fits
beside it. Second table: per group of the spec, the plan's
estimate (`time_estimate`, every run new), the old estimate that summed the runs' solo epochs,
and the wall time of training the group
(`grokinterp.training.loop.train_runs` into a temporary folder, no analysis), and their ratio.
Without `--spec`, a tiny sweep: the README's `--seeds 0-7 --weight-decays 0.3,1` grid (16 runs, one
batched group) at the README's test sizes (p = 11, d_model 8, d_mlp 16), 2,000 epochs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

TINY = """
preset = "small"
[fixed]
p = 11
d_model = 8
d_mlp = 16
epochs = 2000
save_every = 100
[grid]
weight_decay = [0.3, 1.0]
seed = [0, 1, 2, 3, 4, 5, 6, 7]
[analysis]
analyze = false
report = false
"""


def main() -> None:
    from grokinterp.sweep import plan
    from grokinterp.sweep.batch import NEW, RunState
    from grokinterp.sweep.spec import batch_key, read_spec
    from grokinterp.training.loop import train_runs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path)
    parser.add_argument("--batches", default="1,2,4,8,16")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.spec
        if path is None:
            path = Path(tmp) / "tiny.toml"
            path.write_text(TINY)
        spec = read_spec(path)
        cfg = spec.batches[0].runs[0].config
        timed: dict = {}
        print("B     measured ms   affine ms")
        for b in map(int, args.batches.split(",")):
            measured = plan.step_seconds(cfg, args.device, budget=1.0, runs=b)
            model = plan.batch_seconds([cfg] * b, args.device, timed)
            print(f"{b:<5} {measured * 1e3:>11.2f} {model * 1e3:>11.2f}")
        states = {run.name: RunState(NEW) for run in spec.runs}
        estimate = plan.time_estimate(spec, states, args.device, timed)
        print("batch      runs  estimate s  solo sum s  measured s  ratio")
        for batch in spec.batches:
            dirs = [Path(tmp) / "runs" / run.name for run in batch.runs]
            start = time.perf_counter()
            train_runs([r.config for r in batch.runs], dirs, args.device, progress=False)
            took = time.perf_counter() - start
            solo = timed[batch_key(batch.shared), 1] * len(batch.runs) * batch.shared.epochs
            print(
                f"{batch.id:<10} {len(batch.runs):>4} {estimate[batch.id]:>11.1f} {solo:>11.1f} "
                f"{took:>11.1f} {estimate[batch.id] / took:>6.2f}"
            )


if __name__ == "__main__":
    main()
