"""`grokinterp import`: its flags and handler (registered by `grokinterp.cli`)."""

from __future__ import annotations

from pathlib import Path

from grokinterp.cli.config_flags import add_config_flags

IMPORT_NOTES = {
    "p": "paper: when its config has none",
    "train_frac": "paper: when its config has no frac_train; transformer-lens: with --data-seed",
    "seed": "paper: also the split's seed, when its config has none; transformer-lens: only "
    "recorded, default 0",
    "data_seed": "transformer-lens: rebuild the split as the grokking demo does, "
    "torch.manual_seed(N) then the first int(p * p * F) of torch.randperm(p * p)",
    "operation": "the operation the model was trained on, default add; paper: from its fn_name",
    "group": "transformer-lens: a group task (e.g. S5); p is then unused",
    "lr": "when the file has none",
    "weight_decay": "when the file has none",
    "beta1": "when the file has none",
    "beta2": "when the file has none",
    "adam_eps": "when the file has none",
}
"""The run config fields that `grokinterp import` takes, with what each means for the layouts:
a flag sets what the file does not state and must agree with what it does."""


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
        help="paper, per-epoch, transformer-lens, transformer-lens-dir, grokinterp-export (a "
        "folder `grokinterp export` wrote: its config, split and epoch restored; also taken "
        "when --layout transformer-lens names one), chughtai (their OneLayerMLP model.pt beside "
        "its cfg.json), gromov (fc1.weight, fc2.weight), devinterp (the grokking notebook's MLP) "
        "or zhong (model_<id>.pt beside config_<id>.json); see docs/import-export.md",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="the new run directory (absent or empty)",
    )
    add_config_flags(parser, IMPORT_NOTES, IMPORT_NOTES.get)
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
        "--allow-loss-mismatch",
        action="store_true",
        help="import even when the recomputed final train loss disagrees with the recorded one",
    )
    parser.set_defaults(handler=_import)


def _import(args) -> None:
    from grokinterp.storage.importers import Options, import_run

    options = Options(
        **{name: getattr(args, name) for name in IMPORT_NOTES},
        split_from=args.split_from,
        metrics=not args.no_metrics,
        epoch=args.epoch,
        allow_loss_mismatch=args.allow_loss_mismatch,
    )
    out, notes = import_run(args.source, args.out, args.layout, options)
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {out}")
