"""`grokinterp import`: its flags and handler (registered by `grokinterp.cli`)."""

from __future__ import annotations

from pathlib import Path


def add_import(sub) -> None:
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
