"""`grokinterp train`: one run, a batched sweep from flags, or a resume; the flags and their
checks, the plan of a large sweep, and the first line that says what is trained where."""

from __future__ import annotations

import argparse
import itertools
import math
import shlex
import sys
from pathlib import Path

from grokinterp.cli.lists import parse_list
from grokinterp.cli.replay import add_log_flags
from grokinterp.config import ARCHITECTURE_DEFAULTS, DEFAULT_PRESET, GROUP_PRESETS, PRESETS, preset
from grokinterp.errors import UsageError

DEFAULT_RUNS_DIR = Path("checkpoints")
MAX_SWEEP_RUNS = 256
"""A sweep of more runs than this needs --large-sweep: a typo in a range must not fill a disk."""
DEFAULT_FORMAT = ARCHITECTURE_DEFAULTS["input_format"]
"""The input format a default run name leaves unsaid."""

# flag -> (RunConfig field, type, help)
OVERRIDES = {
    "--p": ("p", int, "prime modulus: the element tokens are 0..p-1"),
    "--train-frac": ("train_frac", float, "fraction of the p^2 pairs used for training, in (0, 1)"),
    "--epochs": ("epochs", int, "number of epochs (passes over the training pairs)"),
    "--batch-size": (
        "batch_size",
        int,
        "training pairs per optimiser step, 1..the training set (default: full batch); each "
        "epoch visits them in an order fixed by (seed, epoch)",
    ),
    "--lr": ("lr", float, "peak AdamW learning rate"),
    "--weight-decay": ("weight_decay", float, "AdamW weight decay"),
    "--seed": ("seed", int, "seed of the weight initialisation"),
    "--data-seed": ("data_seed", int, "seed of the train/test split"),
    "--save-every": ("save_every", int, "checkpoint every N epochs (0 and the last always saved)"),
    "--model": ("model", str, "model family: transformer or mlp (see below)"),
    "--n-layers": ("n_layers", int, "transformer blocks, or hidden layers of the mlp (1..4)"),
    "--d-model": ("d_model", int, "residual stream width (mlp: width of each embedding)"),
    "--n-heads": ("n_heads", int, "transformer: attention heads (d_head = d_model / n_heads)"),
    "--d-mlp": ("d_mlp", int, "neurons of each MLP (hidden) layer"),
    "--activation": ("activation", str, "the neurons' nonlinearity: relu, gelu or quadratic"),
    "--layer-norm": ("layer_norm", str, "transformer: none or pre (LayerNorm before each part)"),
    "--attention-rate": (
        "attention_rate",
        float,
        "transformer: Zhong et al.'s attn_coeff c in [0, 1], each head's pattern is "
        "c * softmax + (1 - c) on every key it may see (runs made before this rule keep "
        "c * softmax + (1 - c) / keys)",
    ),
    "--input-format": (
        "input_format",
        str,
        "how a pair is written as tokens: a-b-eq ([a, b, =], = the token n), a-b ([a, b]) or "
        "a-op-b-eq ([a, op, b, =], op the token n + 1); the answer is read at the last "
        "position; the mlp takes a-b-eq or a-b",
    ),
    "--embedding": ("embedding", str, "mlp: shared (one table for a and b) or separate"),
    "--combine": ("combine", str, "mlp: concat or sum the embeddings of a and b"),
    "--warmup-steps": ("warmup_steps", int, "steps of linear learning-rate warm-up"),
    "--init": ("init", str, "weight init: paper (Nanda et al.) or transformer_lens"),
    "--operation": ("operation", str, "the operation mod p, or of --group (see the lists below)"),
    "--group": (
        "group",
        str,
        "a finite group whose operation is the task: S3..S5, A4, A5, D<n>, "
        "Z<n>xZ<m>... (see below); default none: arithmetic mod p",
    ),
    "--objective": (
        "objective",
        str,
        "training loss: cross_entropy, stablemax (Prieto et al.) or mse (one-hot targets)",
    ),
    "--temperature": ("temperature", float, "the objective sees logits / temperature (> 0)"),
    "--label-noise": (
        "label_noise",
        float,
        "fraction in [0, 1) of training labels replaced by another (recorded in split.json)",
    ),
    "--optimizer": (
        "optimizer",
        str,
        "adamw, sgd (with momentum) or muon (Muon for the hidden matrices, AdamW for the rest)",
    ),
    "--momentum": ("momentum", float, "sgd and muon: momentum (default sgd 0.9, muon 0.95)"),
    "--muon-params": (
        "muon_params",
        str,
        "muon: hidden (every matrix but the embeddings) or a comma list of 2-D parameter names",
    ),
    "--perpendicular-grad": (
        "perpendicular_grad",
        bool,
        "Prieto et al.'s ⊥Grad: drop the gradient's component along the weights",
    ),
    "--grad-filter": ("grad_filter", str, "Grokfast (Lee et al.): none, ema or ma"),
    "--filter-alpha": ("filter_alpha", float, "Grokfast ema: the decay alpha, in [0, 1)"),
    "--filter-window": ("filter_window", int, "Grokfast ma: the window of past gradients"),
    "--filter-lambda": ("filter_lambda", float, "Grokfast: amplification (default ema 2, ma 5)"),
    "--fixed-norm": (
        "fixed_norm",
        float,
        "Omnigrok: hold the total weight norm at this value (rescaled after every step)",
    ),
    "--norm-cap": ("norm_cap", float, "cap each matrix's norm at this times its initial norm"),
    "--precision": ("precision", str, "training forward dtype: float32, float64 or bfloat16"),
}
SWEEPS = {
    "--seeds": ("seed", "seed", "sweep: several init seeds, e.g. 0-63 or 0,3,7"),
    "--data-seeds": ("data_seed", "dseed", "sweep: several split seeds"),
    "--weight-decays": ("weight_decay", "wd", "sweep: several weight decays, e.g. 0.3,1,3"),
    "--train-fracs": ("train_frac", "frac", "sweep: several train fractions, e.g. 0.3,0.5"),
}


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
        + MODELS_HELP
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


MODELS_HELP = """\
models (--model NAME; a flag for a part the model lacks is refused):
  transformer  Nanda et al.'s: n_layers blocks of attention (n_heads heads) and an MLP of d_mlp
               neurons, learned positions, no LayerNorm unless --layer-norm pre;
               --attention-rate c: Zhong et al.'s attn_coeff (2023; 1 learned, 0 constant attention)
  mlp          Gromov / Chughtai et al.'s: embeddings of a and b (--embedding shared|separate),
               --combine concat|sum, n_layers hidden layers of d_mlp neurons, an unembedding;
               no biases. Try --activation quadratic for Gromov's network."""


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
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"one of {names}")
    for flag, (field, kind, text) in OVERRIDES.items():
        if kind is bool:
            parser.add_argument(flag, action="store_const", const=True, help=text)
            continue
        if all(getattr(cfg, field) is None for cfg in PRESETS.values()):
            parser.add_argument(flag, type=kind, help=text)
            continue
        parser.add_argument(flag, type=kind, help=f"{text} ({_preset_values(field)})")
    for flag, (_, _, text) in SWEEPS.items():
        parser.add_argument(flag, metavar="LIST", help=text)
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
        "compiled where the benchmarks measured it faster (README, Speed)",
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


def _preset_values(field: str) -> str:
    """`preset: small 0.3, canonical 0.3; --group: small 0.7, canonical 0.7` (the group part
    only where a group preset differs)."""
    values = [
        ", ".join(f"{name} {getattr(cfg, field)}" for name, cfg in table.items())
        for table in (PRESETS, GROUP_PRESETS)
    ]
    return f"preset: {values[0]}" + ("" if values[0] == values[1] else f"; --group: {values[1]}")


def _run_plan(args) -> tuple[list, list[Path]]:
    """The configs and run directories that the train flags ask for."""
    base = preset(args.preset, args.group, args.model)
    family = preset(args.preset, args.group).model
    changes = {
        field: getattr(args, flag[2:].replace("-", "_")) for flag, (field, *_) in OVERRIDES.items()
    }
    given = {k: v for k, v in changes.items() if v is not None}
    base = base.replace(**given)
    from grokinterp.models import check_fields

    check_fields(base.model, set(given) - {"model"})
    if base.group is not None and args.p is not None:
        raise UsageError("--p is the modulus of arithmetic mod p; a --group run has none")
    swept = {}
    for flag, (field, _, _) in SWEEPS.items():
        text = getattr(args, flag[2:].replace("-", "_"))
        if text is not None:
            swept[flag] = parse_list(text, type(getattr(base, field)))
            if len(set(swept[flag])) != len(swept[flag]):
                raise UsageError(f"{flag} lists a value twice: {text}")
    cfgs, names = [], []
    for combo in itertools.product(*swept.values()):
        chosen = dict(zip(swept, combo, strict=True))
        cfg = base.replace(**{SWEEPS[flag][0]: value for flag, value in chosen.items()})
        if cfg.group is not None:
            task = f"-{cfg.group}" + ("" if cfg.operation == "compose" else f"-{cfg.operation}")
        else:
            task = "" if cfg.operation == "add" else f"-{cfg.operation}"
        model = "" if cfg.model == family else f"-{cfg.model}"
        model += "" if cfg.n_layers == 1 else f"-{cfg.n_layers}L"
        model += "" if cfg.input_format == DEFAULT_FORMAT else f"-{cfg.input_format}"
        name = f"{cfg.preset}{model}{task}-seed{cfg.seed}" + "".join(
            f"-{SWEEPS[flag][1]}{value:g}" for flag, value in chosen.items() if flag != "--seeds"
        )
        cfgs.append(cfg.validate())
        names.append(name)
    if len(set(names)) != len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise UsageError(f"two runs of the sweep would share the run directory name {twice}")
    if len(cfgs) == 1 and not swept:
        return cfgs, [args.out or DEFAULT_RUNS_DIR / names[0]]
    parent = args.out or DEFAULT_RUNS_DIR
    return cfgs, [parent / name for name in names]


def sweep_plan(cfgs: list, device: str) -> str:
    """One line: run count, disk (float32 checkpoints plus the training state, from the config),
    and time: the runs trained together as one batched model, timed on this machine
    (`sweep.plan.training_seconds`)."""
    from grokinterp.models import architecture
    from grokinterp.sweep.plan import duration, training_seconds
    from grokinterp.training.loop import resolve_device

    cfg = cfgs[0]
    floats = sum(math.prod(shape) for shape in architecture(cfg).param_shapes().values())
    disk = len(cfgs) * floats * 4 * (len(cfg.save_epochs) + 3)
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
        groups = _batch_groups(cfgs)
        if len(groups) > 1:
            print(
                f"--batch-size: the runs train as {len(groups)} groups one after another, one "
                "per training-set size",
                file=sys.stderr,
                flush=True,
            )
        with stopped.reporting(run_dirs, new=True):  # the directories are fresh: ours alone
            for group in groups:
                group_dirs = [run_dirs[i] for i in group]
                train_runs(
                    [cfgs[i] for i in group], group_dirs, args.device, args.engine, **options
                )
    for run_dir in run_dirs:
        print(f"wrote {run_dir}")


def _loop_options(args, on_rows) -> dict:
    """The keyword options `train_runs` and `resume_runs` take from the command line."""
    return {"progress": not args.quiet, "on_rows": on_rows, "compile": args.compile}


def _batch_groups(cfgs: list) -> list[list[int]]:
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
    members = [run for group in batch_state.groups_of(args.resume) for run in group.runs]
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
    from grokinterp.config import ARCHITECTURE_DEFAULTS
    from grokinterp.models import FAMILIES

    shown = [  # the sizes, and the settings away from their defaults
        name
        for name in FAMILIES[cfg.model].fields
        if getattr(cfg, name) != ARCHITECTURE_DEFAULTS.get(name)
    ]
    model = f"{cfg.model}: " + ", ".join(f"{name} {getattr(cfg, name)}" for name in shown)
    return (
        f"{doing} {len(cfgs)} run(s) of {task_of(cfg).formula} ({model}) to epoch {cfg.epochs} "
        f"on {device} -> {where}"
    )


def _say(enabled: bool, text: str) -> None:
    if enabled:
        print(text, file=sys.stderr, flush=True)
