"""Minibatch training against the full-batch epoch, in the same process.

    python benchmarks/bench_minibatch.py [--preset small] [--epochs 200] [--batch-sizes 128,512]

For each batch size (and full batch), trains the preset for `--epochs` epochs into a temporary
folder (`grokinterp.training.loop.train_runs`, no analysis, saving only the first and last epoch)
and prints the wall time, the optimiser steps per second and the time of an epoch relative to the
full-batch epoch of the same run. One thread, so that the ratio does not depend on the load of
the other core. Dated results go to docs/results.md.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch

from grokinterp.presets import preset
from grokinterp.training.loop import train_runs


def timed(cfg, folder: Path) -> float:
    """Seconds to train `cfg` into a new run directory under `folder`."""
    start = time.perf_counter()
    train_runs([cfg], [folder / f"bs{cfg.batch_size}"], progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--batch-sizes", default="128,512")
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = preset(args.preset).replace(epochs=args.epochs, save_every=args.epochs)
    sizes = [None, *(int(s) for s in args.batch_sizes.split(","))]
    print(f"{args.preset}: {base.n_train} training pairs, {args.epochs} epochs, one thread")
    print("| batch size | steps per epoch | wall s | steps per s | epoch time / full batch |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        full = None
        for size in sizes:
            cfg = base.replace(batch_size=size)
            steps = 1 if size is None else math.ceil(base.n_train / size)
            seconds = timed(cfg, Path(tmp))
            full = seconds if size is None else full
            print(
                f"| {size or 'full'} | {steps} | {seconds:.2f} | "
                f"{steps * args.epochs / seconds:.1f} | {seconds / full:.2f} |"
            )


if __name__ == "__main__":
    main()
