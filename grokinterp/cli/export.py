"""`grokinterp export`: its flags and handler (registered by `grokinterp.cli`)."""

from __future__ import annotations

from pathlib import Path


def add_export(sub) -> None:
    parser = sub.add_parser(
        "export",
        help="write a run's checkpoint in another library's format",
        description=(
            "Write one checkpoint of a run (the last, or --epoch N) for another library. "
            "--to transformer-lens: OUT/model.safetensors, the classic HookedTransformer state "
            "dict, and OUT/config.json, the TransformerBridgeConfig arguments; TransformerLens 4 "
            "loads it with TransformerBridge.boot_native(config) and "
            "convert_tl_checkpoint(state, config) (see docs/import-export.md). Transformer runs "
            "with relu or gelu and attention rate 1 only: the MLP family has no TransformerLens "
            "model."
        ),
    )
    parser.add_argument("run", type=Path, metavar="RUN", help="the run directory")
    parser.add_argument("--to", required=True, choices=["transformer-lens"], help="the format")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="the new folder (absent or empty)"
    )
    parser.add_argument(
        "--epoch", type=int, metavar="N", help="the checkpoint to export (default: the last)"
    )
    parser.set_defaults(handler=_export)


def _export(args) -> None:
    from grokinterp.storage.export import export_transformer_lens

    out, epoch = export_transformer_lens(args.run, args.out, args.epoch)
    print(f"wrote {out} (epoch {epoch})")
