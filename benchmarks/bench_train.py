"""Training speed: the plain hooked loop, the fast engine, and the batched engine, side by side.

    python benchmarks/bench_train.py [--steps 30] [--runs 8] [--preset canonical] [--families-only]

Prints one table: milliseconds per full-batch training step (forward, backward, AdamW; no
evaluation), steps per second, speed-up over the hooked loop, and the share of the FLOP floor,
the step's matmul FLOPs at the matmul rate this machine reaches in the same process. A second
table times whole epochs as `grokinterp train` runs them (the step plus the test-set evaluation
logged every epoch) and projects the preset's full run. A third table times each model family
at the preset's widths (the two-layer transformer and the MLP beside the one-layer default):
the fast forward against the family's own hooked module, as a ratio. A fourth table times each
training intervention (`grokinterp.training.recipe`) against plain AdamW, each timed right after a
plain AdamW measurement of the same length in the same process; `--interventions` prints only it.
`--compiled` prints only a fifth table: the whole epoch as `grokinterp train` runs it (forward,
float64 loss and train/test metrics, backward, the recipe's update; no checkpoint writing),
eager against compiled (`grokinterp.training.compiled`), one epoch of each in turn, medians, for the
small and the canonical preset (`--presets`), with the compile time (the first compiled epoch less
the median) and the epochs after which the compile has paid for itself.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from grokinterp import data
from grokinterp.models import architecture
from grokinterp.presets import preset
from grokinterp.training.loop import (
    PaddedPairs,
    build_epoch,
    hooked_logits,
    on_device,
    train_runs,
    train_step,
)
from grokinterp.training.recipe import Recipe
from grokinterp.training.recipe.label_noise import noisy_labels
from grokinterp.training.recipe.precision import in_precision


def matmul_rate(n: int, k: int, m: int, repeats: int = 50) -> float:
    """FLOP/s of an [n, k] x [k, m] float32 matmul, the shape that dominates a step."""
    x, w = torch.randn(n, k), torch.randn(k, m)
    for _ in range(5):
        x @ w
    start = time.perf_counter()
    for _ in range(repeats):
        x @ w
    return 2 * n * k * m * repeats / (time.perf_counter() - start)


def step_flops(cfg) -> float:
    """Matmul FLOPs of one fast step: per training pair, W_O, W_in, W_out and W_U forward
    (the per-token tables are p rows, negligible), times 3 for forward plus backward."""
    d, m, p = cfg.d_model, cfg.d_mlp, cfg.p
    return 3 * 2 * cfg.n_train * (d * d + 2 * d * m + d * p)


def stepper(cfgs, engine: str):
    """A function that takes training step `step` of the runs `cfgs` trained together (forward
    in the run's precision, its objective, backward, its recipe's step), as `grokinterp train`."""
    device = torch.device("cpu")
    model = architecture(cfgs[0])
    initial = [architecture(cfg).init_params() for cfg in cfgs]
    params = {name: torch.stack([w[name] for w in initial]) for name in initial[0]}
    recipe = Recipe(cfgs)
    recipe.prepare_(params)
    for name in model.trained:
        params[name].requires_grad_(True)
    state = recipe.initial_state(params)
    train = PaddedPairs.stack(cfgs, [data.train_indices(cfg) for cfg in cfgs], device)
    logits_fn = model.logits if engine == "fast" else hooked_logits(model, device)
    logits_fn = in_precision(logits_fn, cfgs[0].precision)
    lr = torch.tensor([cfg.lr for cfg in cfgs])
    wd = torch.tensor([cfg.weight_decay for cfg in cfgs])

    def step(i: int) -> None:
        logits = logits_fn(params, train.a, train.b)
        loss, _ = train.loss_and_accuracy(logits)
        if recipe.objective is not None:
            loss = recipe.objective(logits, train.label, train.mask)
        train_step(params, state, loss, i, lr, wd, recipe)

    return step


def time_steps(cfgs, engine: str, steps: int, clock=time.perf_counter) -> float:
    """Seconds per training step of the runs `cfgs` trained together (after 3 warm-up steps),
    by `clock` (wall time by default; time.process_time for CPU time)."""
    step = stepper(cfgs, engine)
    for i in range(steps + 3):
        if i == 3:
            start = clock()
        step(i)
    return (clock() - start) / steps


def time_epochs(cfg, epochs: int) -> float:
    """Seconds per epoch of `grokinterp train` (fast engine, eager, evaluation and saving
    included)."""
    short = cfg.replace(epochs=epochs, save_every=cfg.save_every)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        train_runs([short], [Path(folder) / "run"], progress=False, compile="off")
        return (time.perf_counter() - start) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="canonical")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per engine")
    parser.add_argument("--runs", type=int, default=8, help="runs in the batched measurement")
    parser.add_argument(
        "--families-only", action="store_true", help="only the table of the model families"
    )
    parser.add_argument("--interventions", action="store_true", help="only the intervention table")
    parser.add_argument(
        "--compiled", action="store_true", help="only the eager against compiled epoch table"
    )
    parser.add_argument(
        "--presets", default="small,canonical", help="presets of the --compiled table"
    )
    args = parser.parse_args()
    if args.compiled:
        print(f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")
        compiled_table(args.presets.split(","), args.steps)
        return
    cfg = preset(args.preset)
    threads = torch.get_num_threads()
    if args.families_only or args.interventions:
        print(f"preset {args.preset}, {threads} torch threads, torch {torch.__version__}")
        (family_table if args.families_only else intervention_table)(cfg, args.steps)
        return
    threads = torch.get_num_threads()
    rate = matmul_rate(cfg.n_train, cfg.d_model, cfg.d_mlp)
    floor = step_flops(cfg) / rate
    print(f"preset {args.preset}, {threads} torch threads, torch {torch.__version__}")
    print(f"matmul rate {rate / 1e9:.0f} GFLOP/s; step {step_flops(cfg) / 1e9:.2f} GFLOP")
    print(f"FLOP floor {floor * 1e3:.1f} ms/step\n")

    hooked = time_steps([cfg], "hooked", max(args.steps // 3, 5))
    fast = time_steps([cfg], "fast", args.steps)
    batch = [cfg.replace(seed=s, data_seed=s) for s in range(args.runs)]
    batched = time_steps(batch, "fast", max(args.steps // 3, 5)) / args.runs
    header = f"{'engine':<26}{'ms/step':>9}{'steps/s':>9}{'vs hooked':>11}{'floor/time':>12}"
    print(header)
    print("-" * len(header))
    for name, seconds in (
        ("hooked (plain loop)", hooked),
        ("fast", fast),
        (f"batched, per run of {args.runs}", batched),
    ):
        print(
            f"{name:<26}{seconds * 1e3:>9.1f}{1 / seconds:>9.1f}"
            f"{hooked / seconds:>10.2f}x{floor / seconds:>11.0%}"
        )

    per_epoch = time_epochs(cfg, max(args.steps * 3, 100))
    print(
        f"\nwhole epochs (step + test evaluation + saving), fast engine: {per_epoch * 1e3:.1f} ms"
    )
    print(
        f"projected {cfg.epochs:,}-epoch {args.preset} run: {per_epoch * cfg.epochs / 60:.1f} min"
    )
    family_table(cfg, args.steps)
    intervention_table(cfg, args.steps)


FAMILIES = {
    "transformer, 1 layer": {},
    "transformer, 2 layers": {"n_layers": 2},
    "mlp, 1 hidden layer": {"model": "mlp"},
    "mlp, 2 hidden layers": {"model": "mlp", "n_layers": 2},
}


def family_table(cfg, steps: int) -> None:
    """ms per training step of each family, fast against its hooked module."""
    header = f"{'model':<24}{'hooked ms':>11}{'fast ms':>9}{'fast vs hooked':>16}"
    print(f"\n{header}\n{'-' * len(header)}")
    for name, changes in FAMILIES.items():
        family = cfg.replace(**changes)
        hooked = time_steps([family], "hooked", max(steps // 3, 5))
        fast = time_steps([family], "fast", steps)
        print(f"{name:<24}{hooked * 1e3:>11.1f}{fast * 1e3:>9.1f}{hooked / fast:>15.2f}x")


INTERVENTIONS = {
    "StableMax cross-entropy": {"objective": "stablemax"},
    "MSE on one-hot": {"objective": "mse"},
    "temperature 2": {"temperature": 2.0},
    "SGD + momentum": {"optimizer": "sgd"},
    "Muon + AdamW": {"optimizer": "muon"},
    "⊥Grad + AdamW": {"perpendicular_grad": True},
    "Grokfast EMA": {"grad_filter": "ema"},
    "Grokfast MA (window 100)": {"grad_filter": "ma"},
    "fixed total norm": {"fixed_norm": 50.0},
    "norm cap 2x": {"norm_cap": 2.0},
    "float64 forward": {"precision": "float64"},
    "bfloat16 forward": {"precision": "bfloat16"},
}


def intervention_table(cfg, steps: int) -> None:
    """ms per training step of each intervention against plain AdamW, the two stepped in turn
    (one AdamW step, one intervention step, `steps` times after 3 warm-up steps each), so that
    other load on the machine falls on both alike; medians."""
    header = f"{'intervention':<26}{'AdamW ms':>10}{'ms':>9}{'vs AdamW':>10}"
    print(f"\n{header}\n{'-' * len(header)}")
    for name, changes in INTERVENTIONS.items():
        pair = stepper([cfg], "fast"), stepper([cfg.replace(**changes).validate()], "fast")
        times: tuple[list[float], list[float]] = ([], [])
        for i in range(steps + 3):
            for step, record in zip(pair, times, strict=True):
                start = time.perf_counter()
                step(i)
                if i >= 3:
                    record.append(time.perf_counter() - start)
        plain, other = (statistics.median(t) for t in times)
        print(f"{name:<26}{plain * 1e3:>10.1f}{other * 1e3:>9.1f}{other / plain:>9.2f}x")


def epoch_runner(cfgs, compile: str, device: str = "cpu"):
    """A function that runs epoch `step` of the runs `cfgs` from their initial weights as
    `grokinterp train` does (`grokinterp.training.loop.build_epoch`), eager (`off`) or compiled
    (`on`)."""
    model = architecture(cfgs[0])
    initial = [architecture(cfg).init_params() for cfg in cfgs]
    params = {name: torch.stack([w[name] for w in initial]) for name in initial[0]}
    recipe = Recipe(cfgs)
    recipe.prepare_(params)
    device = torch.device(device)
    params, state = on_device(model, params, recipe.initial_state(params), device)
    splits = [data.train_indices(cfg) for cfg in cfgs]
    splits = [(split, noisy_labels(cfg, split)) for cfg, split in zip(cfgs, splits, strict=True)]
    epoch = build_epoch(cfgs, splits, params, state, (device, "fast", compile == "on", False))

    def run(step: int) -> None:
        loss, _ = epoch.forward(params)
        epoch.step(params, state, loss, step)

    return run


def compiled_table(presets: list[str], epochs: int) -> None:
    """ms per whole epoch, eager against compiled, one epoch of each in turn (medians of
    `epochs` after the first of each), with the compile time and its break-even."""
    header = (
        f"{'preset':<11}{'eager ms':>10}{'compiled ms':>13}{'speed-up':>10}"
        f"{'compile s':>11}{'break-even epochs':>19}"
    )
    print(f"\n{header}\n{'-' * len(header)}")
    for name in presets:
        cfg = preset(name)
        eager, fused = epoch_runner([cfg], "off"), epoch_runner([cfg], "on")
        start = time.perf_counter()
        fused(0)
        first = time.perf_counter() - start
        eager(0)
        times: tuple[list[float], list[float]] = ([], [])
        for i in range(1, epochs + 1):
            for run, record in zip((eager, fused), times, strict=True):
                start = time.perf_counter()
                run(i)
                record.append(time.perf_counter() - start)
        plain, other = (statistics.median(t) for t in times)
        compile_s = first - other
        saved = plain - other
        even = f"{compile_s / saved:,.0f}" if saved > 0 else "never"
        print(
            f"{name:<11}{plain * 1e3:>10.1f}{other * 1e3:>13.1f}{plain / other:>9.2f}x"
            f"{compile_s:>11.1f}{even:>19}"
        )


if __name__ == "__main__":
    main()
