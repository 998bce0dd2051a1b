"""`grokinterp export`: its flags and handler (registered by `grokinterp.cli`)."""

from __future__ import annotations

from pathlib import Path


def add_export(sub) -> None:
    parser = sub.add_parser(
        "export",
        help="write a run's checkpoints in another library's format",
        description=(
            "Write a run for other code; `grokinterp import` reads each target back as the same "
            "run (see docs/import-export.md). --to transformer-lens: one checkpoint (the last, "
            "or --epoch N) as OUT/model.safetensors, the classic HookedTransformer state dict, "
            "and OUT/config.json, the TransformerBridgeConfig arguments (transformer runs with "
            "relu or gelu and attention rate 1). --to safetensors: one checkpoint of any family "
            "under grokinterp's own names, with the run's config and split in OUT/config.json. "
            "--to devinterp: the whole series as OUT/model.pt in the layout of devinterp's "
            "grokking example (its MLP's runs only)."
        ),
    )
    parser.add_argument("run", type=Path, metavar="RUN", help="the run directory")
    parser.add_argument(
        "--to",
        required=True,
        metavar="FORMAT",
        help="transformer-lens, safetensors or devinterp (checked before anything is read)",
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="the new folder (absent or empty)"
    )
    parser.add_argument(
        "--epoch",
        type=int,
        metavar="N",
        help="the checkpoint to export (default: the last; not with --to devinterp)",
    )
    parser.set_defaults(handler=_export)


def _export(args) -> None:
    from grokinterp.storage.export import export_run

    out, epoch = export_run(args.run, args.out, args.to, args.epoch)
    print(f"wrote {out} (epoch {epoch})")
