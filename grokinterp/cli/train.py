"""`grokinterp train`: one run, a batched sweep from flags, or a resume; the flags and their
checks, the plan of a large sweep, and the first line that says what is trained where."""

from __future__ import annotations

import argparse
import itertools
import shlex
import sys
from pathlib import Path

from grokinterp.cli.config_flags import add_config_flags, add_sweep_flags, given
from grokinterp.cli.lists import parse_list
from grokinterp.cli.replay import add_log_flags
from grokinterp.config import FIELDS, check_read, foreign_fields
from grokinterp.errors import UsageError
from grokinterp.presets import (
    DEFAULT_PRESET,
    GROUP_PRESETS,
    PRESETS,
    check_paper_model,
    preset,
    resolve,
)

DEFAULT_RUNS_DIR = Path("checkpoints")
MAX_SWEEP_RUNS = 256
"""A sweep of more runs than this needs --large-sweep: a typo in a range must not fill a disk."""


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
        + "\n\n"
        + _models_text()
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


def _models_text() -> str:
    """The families (`--model NAME`) and the model flags each reads, from the config's fields."""
    import textwrap

    lines = ["models (--model NAME) and the flags each reads (the others are refused):"]
    for family in FIELDS["model"].choices:
        foreign = foreign_fields(family)
        flags = [
            f.flag
            for f in FIELDS.values()
            if f.section == "model" and f.name != "model" and f.name not in foreign
        ]
        start = f"  {family:<12} "
        text = textwrap.fill(
            " ".join(flags),
            79,
            initial_indent=start,
            subsequent_indent=" " * len(start),
            break_on_hyphens=False,
        )
        lines.append(text)
    return "\n".join(lines)


def add_train(sub) -> None:
    names = ", ".join(PRESETS)
    parser = sub.add_parser(
        "train",
        help="train runs and write dense checkpoint series",
        description=(
            "Train a model (by default Nanda et al.'s one-layer transformer; --model mlp for an "
            "MLP) on (a op b) mod p with full-batch AdamW and write a run "
            "directory: config.json, split.json, metrics.csv (train/test loss and accuracy every "
            "epoch) and checkpoints/epoch_NNNNNNN.safetensors. Start from a preset "
            f"({names}; default {DEFAULT_PRESET}; a --group run starts from the group preset of "
            "that name, Chughtai et al.'s MLP at 70% training pairs) and override any value by "
            "flag. Sweep flags "
            "train several runs together as one batched model, one run directory each."
        ),
        epilog=_operations_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_flags(parser, FIELDS, _preset_note)
    add_sweep_flags(parser)
    parser.add_argument(
        "--out",
        type=Path,
        help="run directory (default checkpoints/<preset>[-<model>][-<n>L][-<input format>]"
        "[-<group>]"
        "[-<operation>]-seed<seed>); "
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
        "--compile",
        default="auto",
        help="on: the whole epoch through torch.compile; off: the eager loop; auto (default): "
        "compiled where the benchmarks measured it faster (docs/speed.md, The compiled epoch)",
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
    add_log_flags(parser, "the metrics rows as each checkpoint writes them")
    parser.set_defaults(handler=_train)


def _preset_note(field: str) -> str | None:
    """What the presets set `field` to: `preset: small 0.3, canonical 0.3; --group: small 0.7,
    canonical 0.7` (the group part only where a group preset differs); None where every preset
    leaves the field at its default."""
    if field == "preset":
        return (
            f"{', '.join(PRESETS)}; default {DEFAULT_PRESET}; a --group run starts from the group "
            "preset of that name, Chughtai et al.'s MLP at 70% training pairs"
        )
    tables = (PRESETS, GROUP_PRESETS)
    default = FIELDS[field].default
    if all(getattr(cfg, field) == default for table in tables for cfg in table.values()):
        return None
    values = [
        ", ".join(f"{name} {getattr(cfg, field)}" for name, cfg in table.items())
        for table in tables
    ]
    return f"preset: {values[0]}" + ("" if values[0] == values[1] else f"; --group: {values[1]}")


def _run_plan(args) -> tuple[list, list[Path]]:
    """The configs and run directories that the train flags ask for, every config checked."""
    from grokinterp.training.recipe import check_recipe

    name = args.preset or DEFAULT_PRESET
    base = preset(name, args.group, args.model)
    family = preset(name, args.group).model
    changes = given(args, [field for field in FIELDS if field != "preset"])
    check_paper_model(base, changes)
    base = base.replace(**changes)
    check_read(base, changes)
    swept = {}
    for field in (f for f in FIELDS.values() if f.swept):
        text = getattr(args, f"{field.name}_list")
        if text is not None:
            swept[field.name] = parse_list(text, field.kind)
            if len(set(swept[field.name])) != len(swept[field.name]):
                raise UsageError(f"{field.sweep_flag} lists a value twice: {text}")
    cfgs, names = [], []
    for combo in itertools.product(*swept.values()):
        chosen = dict(zip(swept, combo, strict=True))
        cfg = resolve(base.replace(**chosen), {**changes, **chosen})
        if cfg.group is not None:
            task = f"-{cfg.group}" + ("" if cfg.operation == "compose" else f"-{cfg.operation}")
        else:
            task = "" if cfg.operation == "add" else f"-{cfg.operation}"
        model = "" if cfg.model == family else f"-{cfg.model}"
        model += "" if cfg.n_layers == 1 else f"-{cfg.n_layers}L"
        fmt = cfg.input_format
        model += "" if fmt == FIELDS["input_format"].default else f"-{fmt}"
        name = f"{cfg.preset}{model}{task}-{FIELDS['seed'].name_part(cfg.seed)}" + "".join(
            f"-{FIELDS[field].name_part(value)}"
            for field, value in chosen.items()
            if field != "seed"
        )
        cfgs.append(cfg.validate())
        check_recipe(cfg)
        names.append(name)
    if len(set(names)) != len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise UsageError(f"two runs of the sweep would share the run directory name {twice}")
    if len(cfgs) == 1 and not swept:
        return cfgs, [args.out or DEFAULT_RUNS_DIR / names[0]]
    parent = args.out or DEFAULT_RUNS_DIR
    return cfgs, [parent / name for name in names]


def sweep_plan(cfgs: list, device: str) -> str:
    """One line: run count, disk (the run directories, `sweep.plan.disk_per_run`), and time: the
    runs trained together as one batched model, timed on this machine
    (`sweep.plan.training_seconds`)."""
    from grokinterp.sweep.plan import NO_ANALYSIS, disk_per_run, duration, training_seconds
    from grokinterp.training.loop import resolve_device

    cfg = cfgs[0]
    disk = sum(disk_per_run(c, NO_ANALYSIS).total for c in cfgs)
    seconds = training_seconds(cfgs, 0, device)
    return (
        f"sweep plan: {len(cfgs)} runs of {cfg.epochs} epochs, about {disk / 1e9:.2f} GB on disk, "
        f"about {duration(seconds)} of training on {resolve_device(device)}"
    )


def _train(args) -> None:
    from grokinterp.storage import trackers
    from grokinterp.training.compiled import check_choice

    check_choice(args.compile)
    trackers.require(args.log_to)
    streams = trackers.RunStreams(args.log_to, args.project) if args.log_to else None
    try:
        (_resume if args.resume else _train_new)(args, streams)
    finally:
        if streams is not None:
            streams.close()


def _train_new(args, on_rows) -> None:
    """New runs: every check, then the runs' locks (taken before anything is written), then
    the refusal of occupied run directories, then training."""
    from grokinterp.storage import run_lock
    from grokinterp.training import stopped
    from grokinterp.training.loop import resolve_options, train_runs
    from grokinterp.training.memory import check_fits

    cfgs, run_dirs = _run_plan(args)
    device = resolve_options(args.device, args.engine)
    check_fits(cfgs[:1], device)  # before the plan times a step of one run
    if len(cfgs) > 1:
        plan = sweep_plan(cfgs, args.device)
        if len(cfgs) > MAX_SWEEP_RUNS and not args.large_sweep:
            raise UsageError(
                f"{plan}; that is more than {MAX_SWEEP_RUNS} runs: pass --large-sweep to go ahead"
            )
        check_fits(cfgs, device)
    with run_lock.holding(run_dirs):
        for cfg, run_dir in zip(cfgs, run_dirs, strict=True):
            _check_out(cfg, run_dir)
        if len(cfgs) > 1:
            print(plan, file=sys.stderr, flush=True)
        _say(not args.quiet, _announce("training", cfgs, run_dirs, device))
        options = _loop_options(args, on_rows)
        groups = _batches_by_size(cfgs)
        if len(groups) > 1:
            print(
                f"--batch-size: the runs train as {len(groups)} groups one after another, one "
                "per training-set size",
                file=sys.stderr,
                flush=True,
            )
        with stopped.reporting(run_dirs, new=True):  # the directories are fresh: ours alone
            for group in groups:
                batch_dirs = [run_dirs[i] for i in group]
                train_runs(
                    [cfgs[i] for i in group], batch_dirs, args.device, args.engine, **options
                )
    for run_dir in run_dirs:
        print(f"wrote {run_dir}")


def _loop_options(args, on_rows) -> dict:
    """The keyword options `train_runs` and `resume_runs` take from the command line."""
    return {"progress": not args.quiet, "on_rows": on_rows, "compile": args.compile}


def _batches_by_size(cfgs: list) -> list[list[int]]:
    """The runs' indices as trained together: all in one batch, or with a batch_size one
    batch per number of training pairs (`grokinterp.training.loop._check_batchable`), in run
    order."""
    if cfgs[0].batch_size is None:
        return [list(range(len(cfgs)))]
    groups: dict[int, list[int]] = {}
    for i, cfg in enumerate(cfgs):
        groups.setdefault(cfg.n_train, []).append(i)
    return list(groups.values())


def _resume(args, on_rows) -> None:
    """Killed (or, with --epochs, finished) runs: the locks of every run of their groups, then
    the groups read again and trained on."""
    from grokinterp.storage import run_lock
    from grokinterp.storage.store import read_config
    from grokinterp.training import batch_state, stopped
    from grokinterp.training.loop import resolve_options, resume_runs

    device = resolve_options(args.device, args.engine)
    members = [run for group in batch_state.batches_of(args.resume) for run in group.runs]
    with run_lock.holding(members), stopped.reporting(members, new=False):
        for group in batch_state.resumable(args.resume, args.epochs):
            cfgs = [read_config(run_dir) for run_dir in group.runs]
            cfgs = [cfg.replace(epochs=args.epochs or cfg.epochs) for cfg in cfgs]
            _say(
                not args.quiet,
                _announce(f"resuming at epoch {group.step}", cfgs, group.runs, device),
            )
        options = _loop_options(args, on_rows)
        resume_runs(args.resume, args.device, args.engine, epochs=args.epochs, **options)
    for run_dir in args.resume:
        print(f"wrote {run_dir}")


def _check_out(cfg, run_dir: Path) -> None:
    """Refuse a run directory that already holds files; for a run of this same config, say
    where it stands and the command that goes on with it."""
    from grokinterp.storage import store
    from grokinterp.training import batch_state

    try:
        store.check_fresh_run_dir(run_dir)
    except UsageError:
        if not (run_dir / store.CONFIG_FILE).exists() or store.read_config(run_dir) != cfg:
            raise
        group = batch_state.status(run_dir)
        if group is None or group.step is None:
            raise UsageError(
                f"{run_dir} holds this same run, killed before its first checkpoint; delete it "
                "and run the command again"
            ) from None
        resume = f"grokinterp train --resume {shlex.quote(str(run_dir))}"
        if group.finished:
            raise UsageError(
                f"{run_dir} already holds this run, finished at epoch {group.step}; train it on "
                f"with: {resume} --epochs N"
            ) from None
        raise UsageError(
            f"{run_dir} holds this same run, unfinished (saved at epoch {group.step}); resume "
            f"it with: {resume}"
        ) from None


def _announce(doing: str, cfgs: list, run_dirs: list[Path], device) -> str:
    """One line: what is trained (task, model, runs, device) and where it is written."""
    from grokinterp.tasks import task_of

    cfg = cfgs[0]
    if len(run_dirs) == 1:
        where = str(run_dirs[0])
    else:
        parents = sorted({str(Path(run_dir).parent) for run_dir in run_dirs})
        where = f"{len(run_dirs)} run directories in {', '.join(parents)}"
    shown = [  # the sizes, and the settings away from their defaults
        name
        for name, value in cfg.part("model").items()
        if name != "model" and not (FIELDS[name].has_default and value == FIELDS[name].default)
    ]
    model = f"{cfg.model}: " + ", ".join(f"{name} {getattr(cfg, name)}" for name in shown)
    return (
        f"{doing} {len(cfgs)} run(s) of {task_of(cfg).formula} ({model}) to epoch {cfg.epochs} "
        f"on {device} -> {where}"
    )


def _say(enabled: bool, text: str) -> None:
    if enabled:
        print(text, file=sys.stderr, flush=True)
