"""Training speed on CUDA: the eager epoch against the compiled one
(`grokinterp.training.compiled`).

    python benchmarks/bench_gpu.py [--epochs 50] [--full-epochs 40000] [--sweep-seeds 64]
                                   [--sweep-epochs 200] [--skip-full]

Three tables, eager against compiled in the same process:
1. Per epoch, small and canonical preset: wall time (medians, one epoch of each in turn, as
   `grokinterp train` runs it without checkpoint writing), GPU busy time (the CUDA kernels'
   time per epoch under torch.profiler) and the compile time (the first compiled epoch less the
   median).
2. The canonical run, `--full-epochs` epochs through `grokinterp.training.loop.train_runs`
   with every checkpoint and metrics row written: wall time (skipped with `--skip-full`).
3. `--sweep-seeds` canonical seeds as one batched model: wall time per epoch over
   `--sweep-epochs` epochs, projected to the preset's 40,000 epochs (a projection, printed as
   such).
On a machine where torch sees no CUDA device it prints one line saying so and exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_train import epoch_runner  # noqa: E402

from grokinterp.presets import preset  # noqa: E402
from grokinterp.training.loop import train_runs  # noqa: E402

MODES = ("off", "on")


def busy_ms(run, epochs: int, start: int) -> float:
    """Milliseconds of CUDA kernel time per epoch over `epochs` epochs under torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for i in range(start, start + epochs):
            run(i)
        torch.cuda.synchronize()
    total_us = sum(event.self_device_time_total for event in prof.key_averages())
    return total_us / 1e3 / epochs


def epoch_table(epochs: int) -> None:
    header = (
        f"{'preset':<11}{'eager ms':>10}{'compiled ms':>13}{'speed-up':>10}"
        f"{'eager busy ms':>15}{'compiled busy ms':>18}{'compile s':>11}"
    )
    print(f"\n{header}\n{'-' * len(header)}")
    for name in ("small", "canonical"):
        cfg = preset(name)
        runs = {mode: epoch_runner([cfg], mode, "cuda") for mode in MODES}
        start = time.perf_counter()
        runs["on"](0)
        torch.cuda.synchronize()
        first = time.perf_counter() - start
        runs["off"](0)
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        for i in range(1, epochs + 1):
            for mode in MODES:
                torch.cuda.synchronize()
                start = time.perf_counter()
                runs[mode](i)
                torch.cuda.synchronize()
                times[mode].append(time.perf_counter() - start)
        wall = {mode: statistics.median(times[mode]) for mode in MODES}
        busy = {mode: busy_ms(runs[mode], 20, epochs + 1) for mode in MODES}
        print(
            f"{name:<11}{wall['off'] * 1e3:>10.2f}{wall['on'] * 1e3:>13.2f}"
            f"{wall['off'] / wall['on']:>9.2f}x{busy['off']:>15.2f}{busy['on']:>18.2f}"
            f"{first - wall['on']:>11.1f}"
        )


def full_run_table(epochs: int) -> None:
    cfg = preset("canonical").replace(epochs=epochs)
    header = f"{'canonical run':<24}{'epochs':>8}{'checkpoints':>13}{'wall s':>9}"
    print(f"\n{header}\n{'-' * len(header)}")
    for mode in MODES:
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            train_runs([cfg], [Path(folder) / "run"], "cuda", progress=False, compile=mode)
            seconds = time.perf_counter() - start
        name = "compiled" if mode == "on" else "eager"
        print(f"{name:<24}{epochs:>8,}{len(cfg.save_epochs):>13}{seconds:>9.1f}")


def sweep_table(seeds: int, epochs: int) -> None:
    cfg = preset("canonical")
    cfgs = [cfg.replace(seed=s, data_seed=s) for s in range(seeds)]
    header = f"{f'{seeds} seeds, one batch':<24}{'ms/epoch':>10}{'projected 40,000 epochs':>25}"
    print(f"\n{header}\n{'-' * len(header)}")
    for mode in MODES:
        run = epoch_runner(cfgs, mode, "cuda")
        run(0)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for i in range(1, epochs + 1):
            run(i)
        torch.cuda.synchronize()
        per_epoch = (time.perf_counter() - start) / epochs
        name = "compiled" if mode == "on" else "eager"
        projected = f"{per_epoch * cfg.epochs / 60:.1f} min (projected)"
        print(f"{name:<24}{per_epoch * 1e3:>10.2f}{projected:>25}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=50, help="timed epochs per mode")
    parser.add_argument("--full-epochs", type=int, default=40_000)
    parser.add_argument("--skip-full", action="store_true", help="leave out the full run")
    parser.add_argument("--sweep-seeds", type=int, default=64)
    parser.add_argument("--sweep-epochs", type=int, default=200)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(f"bench_gpu: torch {torch.__version__} sees no CUDA device here; nothing to measure")
        return
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    epoch_table(args.epochs)
    if not args.skip_full:
        full_run_table(args.full_epochs)
    sweep_table(args.sweep_seeds, args.sweep_epochs)


if __name__ == "__main__":
    main()
