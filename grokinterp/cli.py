"""The `grokinterp` command: a thin layer over the Python API.

User mistakes end in one line on stderr and exit code 2; heavy modules (torch, TransformerLens)
are imported only inside the command that needs them, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from pathlib import Path

from grokinterp.config import DEFAULT_PRESET, PRESETS, preset
from grokinterp.errors import UsageError

DEFAULT_RUNS_DIR = Path("checkpoints")
MAX_SWEEP_RUNS = 256
"""A sweep of more runs than this needs --large-sweep: a typo in a range must not fill a disk."""

# flag -> (RunConfig field, type, help)
OVERRIDES = {
    "--p": ("p", int, "prime modulus; inputs are [a, b, =] with = the token p"),
    "--train-frac": ("train_frac", float, "fraction of the p^2 pairs used for training, in (0, 1)"),
    "--epochs": ("epochs", int, "number of full-batch steps"),
    "--lr": ("lr", float, "peak AdamW learning rate"),
    "--weight-decay": ("weight_decay", float, "AdamW weight decay"),
    "--seed": ("seed", int, "seed of the weight initialisation"),
    "--data-seed": ("data_seed", int, "seed of the train/test split"),
    "--save-every": ("save_every", int, "checkpoint every N epochs (0 and the last always saved)"),
    "--d-model": ("d_model", int, "residual stream width"),
    "--n-heads": ("n_heads", int, "attention heads (d_head = d_model / n_heads)"),
    "--d-mlp": ("d_mlp", int, "MLP neurons"),
    "--warmup-steps": ("warmup_steps", int, "steps of linear learning-rate warm-up"),
    "--init": ("init", str, "weight init: paper (Nanda et al.) or transformer_lens"),
    "--operation": ("operation", str, "the operation mod p, or of --group (see the lists below)"),
    "--group": (
        "group",
        str,
        "a finite group whose operation is the task: S3..S5, A4, A5, D<n>, "
        "Z<n>xZ<m>... (see below); default none: arithmetic mod p",
    ),
}
SWEEPS = {
    "--seeds": ("seed", "seed", "sweep: several init seeds, e.g. 0-63 or 0,3,7"),
    "--data-seeds": ("data_seed", "dseed", "sweep: several split seeds"),
    "--weight-decays": ("weight_decay", "wd", "sweep: several weight decays, e.g. 0.3,1,3"),
    "--train-fracs": ("train_frac", "frac", "sweep: several train fractions, e.g. 0.3,0.5"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_list(text: str, kind: type) -> list:
    """'0-3,7' -> [0, 1, 2, 3, 7] for ints; '0.3,1' -> [0.3, 1.0] for floats."""
    values = []
    try:
        for part in text.split(","):
            if kind is int and "-" in part.strip()[1:]:
                low, high = part.split("-", 1)
                values.extend(range(int(low), int(high) + 1))
            else:
                values.append(kind(part))
    except ValueError:
        raise UsageError(f"cannot read {text!r} as a list of {kind.__name__}s") from None
    if not values:
        raise UsageError(f"empty list {text!r}")
    return values


def _operations_text() -> str:
    from grokinterp.tasks.modular import GROUPS, OPERATIONS

    lines = []
    for name, operation in OPERATIONS.items():
        basis = GROUPS[operation.group][1][0] if operation.group else "no known basis"
        lines.append(f"  {name:<11} ({operation.formula}) mod p   [{basis}]")
    return (
        "operations (--operation NAME; analysis basis in brackets):\n"
        + "\n".join(lines)
        + "\n\n"
        + _groups_text()
    )


def _groups_text() -> str:
    import textwrap

    from grokinterp.tasks.groups import GROUP_OPERATIONS, GROUPS_HELP

    lines = [f"  {name:<11} {formula}" for name, formula in GROUP_OPERATIONS.items()]
    head = (
        f"groups (--group NAME): {GROUPS_HELP}. Their operations (--operation NAME, default "
        "compose; analysis basis: the group's real irreducible representations, irreps):"
    )
    return textwrap.fill(head, 79) + "\n" + "\n".join(lines)


def _add_train(sub) -> None:
    names = ", ".join(PRESETS)
    parser = sub.add_parser(
        "train",
        help="train runs and write dense checkpoint series",
        description=(
            "Train a one-layer transformer on (a op b) mod p with full-batch AdamW and write a run "
            "directory: config.json, split.json, metrics.csv (train/test loss and accuracy every "
            "epoch) and checkpoints/epoch_NNNNNNN.safetensors. Start from a preset "
            f"({names}; default {DEFAULT_PRESET}) and override any value by flag. Sweep flags "
            "train several runs together as one batched model, one run directory each."
        ),
        epilog=_operations_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"one of {names}")
    for flag, (field, kind, text) in OVERRIDES.items():
        defaults = ", ".join(f"{name} {getattr(cfg, field)}" for name, cfg in PRESETS.items())
        if all(getattr(cfg, field) is None for cfg in PRESETS.values()):
            parser.add_argument(flag, type=kind, help=text)
            continue
        parser.add_argument(flag, type=kind, help=f"{text} (preset: {defaults})")
    for flag, (_, _, text) in SWEEPS.items():
        parser.add_argument(flag, metavar="LIST", help=text)
    parser.add_argument(
        "--out",
        type=Path,
        help="run directory (default checkpoints/<preset>[-<group>][-<operation>]-seed<seed>); "
        "for a sweep, "
        "the folder "
        "that receives one run directory per run (default checkpoints/)",
    )
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when present), cpu or cuda (default auto)"
    )
    parser.add_argument(
        "--engine",
        default="fast",
        help="fast: computes only the last position (default); hooked: the full hooked model",
    )
    parser.add_argument(
        "--resume",
        type=Path,
        nargs="+",
        metavar="DIR",
        help="continue killed runs from their last saved state (other settings come from DIR); "
        "with --epochs N, train finished runs on to N epochs",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "--large-sweep",
        action="store_true",
        help=f"go ahead with a sweep of more than {MAX_SWEEP_RUNS} runs (its plan is shown first)",
    )
    parser.set_defaults(handler=_train)


def _run_plan(args) -> tuple[list, list[Path]]:
    """The configs and run directories that the train flags ask for."""
    base = preset(args.preset)
    changes = {
        field: getattr(args, flag[2:].replace("-", "_")) for flag, (field, *_) in OVERRIDES.items()
    }
    base = base.replace(**{k: v for k, v in changes.items() if v is not None})
    if base.group is not None:
        if args.p is not None:
            raise UsageError("--p is the modulus of arithmetic mod p; a --group run has none")
        if args.operation is None:
            base = base.replace(operation="compose")
    swept = {}
    for flag, (field, _, _) in SWEEPS.items():
        text = getattr(args, flag[2:].replace("-", "_"))
        if text is not None:
            swept[flag] = parse_list(text, type(getattr(base, field)))
    cfgs, names = [], []
    for combo in itertools.product(*swept.values()):
        chosen = dict(zip(swept, combo, strict=True))
        cfg = base.replace(**{SWEEPS[flag][0]: value for flag, value in chosen.items()})
        if cfg.group is not None:
            task = f"-{cfg.group}" + ("" if cfg.operation == "compose" else f"-{cfg.operation}")
        else:
            task = "" if cfg.operation == "add" else f"-{cfg.operation}"
        name = f"{cfg.preset}{task}-seed{cfg.seed}" + "".join(
            f"-{SWEEPS[flag][1]}{value:g}" for flag, value in chosen.items() if flag != "--seeds"
        )
        cfgs.append(cfg.validate())
        names.append(name)
    if len(cfgs) == 1 and not swept:
        return cfgs, [args.out or DEFAULT_RUNS_DIR / names[0]]
    parent = args.out or DEFAULT_RUNS_DIR
    return cfgs, [parent / name for name in names]


def sweep_plan(cfgs: list, device: str) -> str:
    """One line: run count, disk (float32 checkpoints plus the training state, from the config),
    and time: one run's timed epochs (`sweep.plan.step_seconds`) times runs and epochs, an upper
    bound, since batched runs share each step's overhead."""
    from grokinterp.params import param_shapes
    from grokinterp.sweep.plan import step_seconds
    from grokinterp.train import resolve_device

    cfg = cfgs[0]
    floats = sum(math.prod(shape) for shape in param_shapes(cfg).values())
    disk = len(cfgs) * floats * 4 * (len(cfg.save_epochs) + 3)
    seconds = step_seconds(cfg, device) * len(cfgs) * cfg.epochs
    return (
        f"sweep plan: {len(cfgs)} runs of {cfg.epochs} epochs, about {disk / 1e9:.2f} GB on disk, "
        f"at most about {seconds / 3600:.2f} h on {resolve_device(device)}"
    )


def _train(args) -> None:
    from grokinterp.train import resume_runs, train_runs

    progress = not args.quiet
    if args.resume:
        resume_runs(args.resume, args.device, args.engine, progress=progress, epochs=args.epochs)
        done = args.resume
    else:
        cfgs, run_dirs = _run_plan(args)
        if len(cfgs) > 1:
            plan = sweep_plan(cfgs, args.device)
            if len(cfgs) > MAX_SWEEP_RUNS and not args.large_sweep:
                raise UsageError(
                    f"{plan}; that is more than {MAX_SWEEP_RUNS} runs: pass --large-sweep to go "
                    "ahead"
                )
            print(plan, file=sys.stderr, flush=True)
        train_runs(cfgs, run_dirs, device=args.device, engine=args.engine, progress=progress)
        done = run_dirs
    for run_dir in done:
        print(f"wrote {run_dir}")


def _add_analyze(sub) -> None:
    parser = sub.add_parser(
        "analyze",
        help="measure every checkpoint of a run (Fourier features, restricted/excluded loss, ...)",
        description=(
            "Compute the progress measures of Nanda et al. (2023) at every complete checkpoint of "
            "a run and write measures.csv (one row per checkpoint), neurons.safetensors and "
            "summary.json (key frequencies, the three phases, final losses, neuron clusters). "
            "Incremental: checkpoints already in the table are not measured again. Safe on a run "
            "that is still training: only complete checkpoint files are read."
        ),
    )
    parser.add_argument("--ckpt-dir", type=Path, required=True, metavar="RUN", help="run directory")
    parser.add_argument(
        "--out", type=Path, help="analysis directory (default analyses/<run-name>/)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "--basis",
        help="basis of the circuit measures (default: the task's own: fourier for add and sub, "
        "dlog for mul and div, irreps for a group; irreps also for add and sub); one that does "
        "not belong to the task is refused",
    )
    parser.add_argument(
        "--report", action="store_true", help="also write the HTML report (reports/<run-name>.html)"
    )
    parser.set_defaults(handler=_analyze)


def _analyze(args) -> None:
    from grokinterp.analyze import Summary, analyze_run

    out = analyze_run(args.ckpt_dir, args.out, progress=not args.quiet, basis_name=args.basis)
    summary = Summary.load(out)
    print(f"wrote {out}")
    print(f"  task               {summary.task['formula']}")
    print(f"  checkpoints        {summary.n_checkpoints} (last epoch {summary.last_epoch})")
    if summary.basis is None:
        print(f"  not applicable     {', '.join(summary.not_applicable)} (no known basis)")
    else:
        print(f"  basis              {summary.basis['title']}")
        kind = {"frequency": "frequencies", "irrep": "irreps"}.get(summary.basis["kind"], "keys")
        print(f"  key {kind:<15}{summary.key_components}")
    phases = ", ".join(f"{name} {epoch}" for name, epoch in summary.phases.items())
    print(f"  phases             {phases}")
    print(
        f"  final loss         train {summary.final_train_loss:.3g}, "
        f"test {summary.final_test_loss:.3g}"
    )
    if summary.fve_share is not None:
        print(
            f"  neurons FVE > {summary.fve_threshold}  {summary.fve_share:.1%}, "
            f"clusters {summary.cluster_sizes}"
        )
    if args.report:
        from grokinterp.report import write_report

        print(f"wrote {write_report(out, run_dir=args.ckpt_dir)}")


def _add_report(sub) -> None:
    parser = sub.add_parser(
        "report",
        help="write the interactive HTML report of an analysed run",
        description=(
            "Build one self-contained HTML page (plotly.js inlined, works offline) from a run's "
            "analysis: losses with the three phases shaded, restricted/excluded loss, weight norm "
            "and Gini, Fourier norms of the embedding over epochs, neuron clusters, and the final "
            "model's attention and logits in the Fourier basis. Run `grokinterp analyze` first."
        ),
    )
    parser.add_argument("--ckpt-dir", type=Path, required=True, metavar="RUN", help="run directory")
    parser.add_argument(
        "--analysis", type=Path, help="analysis directory (default analyses/<run-name>/)"
    )
    parser.add_argument("--out", type=Path, help="HTML file (default reports/<run-name>.html)")
    parser.set_defaults(handler=_report)


def _report(args) -> None:
    from grokinterp.analysis_format import DEFAULT_ANALYSES_DIR
    from grokinterp.report import write_report
    from grokinterp.run import open_run

    analysis_dir = args.analysis or DEFAULT_ANALYSES_DIR / open_run(args.ckpt_dir).name
    print(f"wrote {write_report(analysis_dir, args.out, run_dir=args.ckpt_dir)}")


def _add_import(sub) -> None:
    parser = sub.add_parser(
        "import",
        help="turn checkpoints saved by other code into a run directory",
        description=(
            "Convert a checkpoint file saved by other code into a run directory (config.json, "
            "split.json, checkpoints/epoch_N.safetensors, and metrics.csv when the file records "
            "loss curves) that `grokinterp analyze` and `grokinterp report` accept. SOURCE is read "
            "with torch.load(weights_only=True) only: a file that needs code to unpickle is "
            "refused. Layouts: `paper`, Nanda et al.'s progress-measures-paper code (a dict with "
            "'state_dicts' and 'epochs', or 'model' and 'epoch', or a bare state dict; p, "
            "frac_train and seed from its 'config' dict or the flags; the split rebuilt as its "
            "gen_train_test does); `transformer-lens`, HookedTransformer state dicts (a dict with "
            "'checkpoints' and 'checkpoint_epochs' as the TransformerLens grokking demo saves, or "
            "'model', or a bare state dict; p from W_E; the split from 'train_indices', "
            "--split-from, or --data-seed with --train-frac). A flag that contradicts the file is "
            "an error. Everything is checked before anything is written."
        ),
    )
    parser.add_argument("source", type=Path, metavar="SOURCE", help="the .pth/.pt file")
    parser.add_argument("--layout", required=True, help="paper or transformer-lens")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="the new run directory (absent or empty)",
    )
    parser.add_argument(
        "--p", type=int, metavar="P", help="prime modulus (paper: when its config has none)"
    )
    parser.add_argument(
        "--train-frac",
        type=float,
        metavar="F",
        help="training fraction (paper: when its config has no frac_train; transformer-lens: "
        "with --data-seed)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="paper: the split seed, when its config has none; transformer-lens: the init seed, "
        "only recorded (default 0)",
    )
    parser.add_argument(
        "--data-seed",
        type=int,
        metavar="N",
        help="transformer-lens: rebuild the split as the grokking demo does, torch.manual_seed(N) "
        "then the first int(p * p * F) of torch.randperm(p * p)",
    )
    parser.add_argument(
        "--split-from",
        type=Path,
        metavar="JSON",
        help="the split as a JSON list of train pair indices a * p + b (or a run's split.json), "
        "for a file that records none",
    )
    parser.add_argument(
        "--no-metrics", action="store_true", help="leave the file's loss curves out"
    )
    parser.set_defaults(handler=_import)


def _import(args) -> None:
    from grokinterp.importers import Options, import_run

    options = Options(
        p=args.p,
        train_frac=args.train_frac,
        seed=args.seed,
        data_seed=args.data_seed,
        split_from=args.split_from,
        metrics=not args.no_metrics,
    )
    print(f"wrote {import_run(args.source, args.out, args.layout, options)}")


def _add_sweep(sub) -> None:
    parser = sub.add_parser(
        "sweep",
        help="plan and run a sweep spec (TOML): local, on Ray or on SLURM",
        description=(
            "Read a sweep spec (TOML: a base preset, [fixed] values, a [grid] of lists over any "
            "run config field, the [analysis] to run after training; see the README), print the "
            "plan (runs, the batched groups they pack into, disk and time estimates), then train "
            "and analyse every run into SWEEP/runs/<run>/, SWEEP/analyses/<run>/ and "
            "SWEEP/reports/<run>.html. Re-running the same command skips finished runs, resumes "
            "killed ones and retries failed groups. A group that fails is reported and the rest "
            "go on (exit code 1 when any failed)."
        ),
    )
    parser.add_argument("spec", type=Path, metavar="SPEC", help="the sweep spec (.toml)")
    parser.add_argument(
        "--out", type=Path, help="the sweep folder (default sweeps/<spec file name>)"
    )
    parser.add_argument(
        "--executor",
        default="local",
        help="local (default: groups one after another in this process), ray (the `ray` extra) "
        "or slurm (submitit, the `slurm` extra)",
    )
    parser.add_argument(
        "--address", help="ray: the address of a running cluster (default: start a local one)"
    )
    parser.add_argument(
        "--slurm-cluster",
        default="slurm",
        help="slurm: slurm (default), or local / debug to run the job array on this machine",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA when present), cpu or cuda; ray: cpu keeps groups off the GPUs",
    )
    parser.add_argument("--plan", action="store_true", help="print the plan and stop")
    parser.add_argument(
        "--no-time-estimate",
        action="store_true",
        help="skip timing a few training steps per architecture for the plan",
    )
    parser.add_argument("--quiet", action="store_true", help="no training progress output")
    parser.set_defaults(handler=_sweep)


def _sweep(args) -> None:
    from grokinterp.sweep.executors import run_sweep

    failed = run_sweep(
        args.spec,
        args.out,
        executor=args.executor,
        address=args.address,
        device=args.device,
        slurm_cluster=args.slurm_cluster,
        plan_only=args.plan,
        estimate_time=not args.no_time_estimate,
        progress=not args.quiet,
    )
    if failed:
        sys.exit(1)


def _add_sweep_report(sub) -> None:
    parser = sub.add_parser(
        "sweep-report",
        help="write a sweep's table (CSV, Parquet) and its HTML report",
        description=(
            "Collect every run of a sweep folder into SWEEP/sweep-table.csv and .parquet (one row "
            "per run: its config, the epochs of 99% train and test accuracy, phase boundaries, "
            "key components, final losses, FVE share) and write SWEEP/sweep-report.html: epochs "
            "to generalise against train fraction and weight decay, and the key-frequency counts "
            "across seeds, each point linking to its run's report."
        ),
    )
    parser.add_argument("sweep", type=Path, metavar="SWEEP", help="the sweep folder")
    parser.set_defaults(handler=_sweep_report)


def _sweep_report(args) -> None:
    from grokinterp.sweep.report import write_sweep_report
    from grokinterp.sweep.table import write_table

    table, written, note = write_table(args.sweep)
    for path in written:
        print(f"wrote {path}")
    if note:
        print(note)
    print(f"wrote {write_sweep_report(args.sweep, table)}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="grokinterp",
        description="Train grokking transformers on modular arithmetic, keep dense checkpoint "
        "series, and measure the circuit forming in the task's basis (Nanda et al., ICLR 2023).",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
    _add_train(sub)
    _add_analyze(sub)
    _add_report(sub)
    _add_import(sub)
    _add_sweep(sub)
    _add_sweep_report(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        args.handler(args)
    except UsageError as exc:
        print(f"grokinterp: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("grokinterp: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
