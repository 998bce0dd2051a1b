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
            "--split-from, or --data-seed with --train-frac); `transformer-lens-dir`, a directory "
            "of such state dicts, one .pt/.pth/.safetensors file per checkpoint with its epoch as "
            "the last number in the name (optional split.json, result.json); `per-epoch`, a folder "
            "of the paper's weights, one ep<N>.pth (or <N>.pth, as its Trainer's save_models writes"
            " them) per saved epoch, with optional final.pth (final weights, curves, optimizer), "
            "init.pth (the split as train_data) and result.json (curves and config). Curves "
            "recorded less often than every epoch are kept at their own epochs; AdamW's settings "
            "come from the file's optimizer state, else its config, else the flags, else the "
            "layout's defaults; a single model's epoch from the file, --epoch, or its curves' "
            "length; the train loss the file records is recomputed on the rebuilt split and a "
            "mismatch refused. State dicts saved through torch.compile (keys prefixed _orig_mod.), "
            "DDP (module.) or a wrapping module (model.), and PyTorch Lightning checkpoints (the "
            "weights under 'state_dict', its epoch and optimizer state) are read as the weights "
            "they wrap. A flag that contradicts the file is an error. Everything is checked before "
            "anything is written; what was inferred is printed and kept in the run's import.json."
        ),
    )
    parser.add_argument(
        "source", type=Path, metavar="SOURCE", help="the .pth/.pt file (or directory)"
    )
    parser.add_argument(
        "--layout",
        required=True,
        help="paper, per-epoch, transformer-lens, transformer-lens-dir, or grokinterp-export (a "
        "folder `grokinterp export` wrote: its config, split and epoch restored; also taken "
        "when --layout transformer-lens names one)",
    )
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
    parser.add_argument(
        "--epoch",
        type=int,
        metavar="N",
        help="the epoch of a single final model whose file records none (default: the number "
        "of epochs its curves cover)",
    )
    parser.add_argument(
        "--operation",
        metavar="NAME",
        help="the operation the model was trained on (default add; paper: from its fn_name)",
    )
    parser.add_argument(
        "--group", metavar="G", help="transformer-lens: a group task (e.g. S5); p is unused"
    )
    parser.add_argument("--lr", type=float, metavar="X", help="AdamW lr, when the file has none")
    parser.add_argument(
        "--weight-decay", type=float, metavar="X", help="AdamW weight decay, when the file has none"
    )
    parser.add_argument(
        "--betas",
        type=float,
        nargs=2,
        metavar=("B1", "B2"),
        help="AdamW betas, when not in the file",
    )
    parser.add_argument(
        "--adam-eps", type=float, metavar="X", help="AdamW eps, when the file has none"
    )
    parser.add_argument(
        "--allow-loss-mismatch",
        action="store_true",
        help="import even when the recomputed final train loss disagrees with the recorded one",
    )
    parser.set_defaults(handler=_import)


def _import(args) -> None:
    from grokinterp.storage.importers import Options, import_run

    options = Options(
        p=args.p,
        train_frac=args.train_frac,
        seed=args.seed,
        data_seed=args.data_seed,
        split_from=args.split_from,
        metrics=not args.no_metrics,
        epoch=args.epoch,
        operation=args.operation,
        group=args.group,
        lr=args.lr,
        weight_decay=args.weight_decay,
        beta1=args.betas[0] if args.betas else None,
        beta2=args.betas[1] if args.betas else None,
        adam_eps=args.adam_eps,
        allow_loss_mismatch=args.allow_loss_mismatch,
    )
    out, notes = import_run(args.source, args.out, args.layout, options)
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {out}")
