"""The `grokinterp` command: a thin layer over the Python API, one module per command family
(cli_train, cli_analyze, cli_import, cli_export, cli_replay, cli_llc, cli_sweep, cli_forecast,
cli_reproduce).

User mistakes end in one line on stderr and exit code 2; heavy modules (torch, TransformerLens)
are imported only inside the command that needs them, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import sys

from grokinterp.cli.analyze import add_analyze, add_report
from grokinterp.cli.export import add_export
from grokinterp.cli.forecast import add_forecast, add_indicators
from grokinterp.cli.import_ import add_import
from grokinterp.cli.llc import add_llc_calibrate
from grokinterp.cli.replay import add_replay
from grokinterp.cli.reproduce import add_reproduce
from grokinterp.cli.sweep import add_sweep, add_sweep_report
from grokinterp.cli.train import add_train
from grokinterp.errors import Interrupted, UsageError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="grokinterp",
        description="Train grokking transformers on modular arithmetic, keep dense checkpoint "
        "series, and measure the circuit forming in the task's basis (Nanda et al., ICLR 2023).",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
    add_train(sub)
    add_analyze(sub)
    add_report(sub)
    add_import(sub)
    add_export(sub)
    add_replay(sub)
    add_llc_calibrate(sub)
    add_sweep(sub)
    add_sweep_report(sub)
    add_indicators(sub)
    add_forecast(sub)
    add_reproduce(sub)
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
    except KeyboardInterrupt as exc:
        detail = f": {exc}" if isinstance(exc, Interrupted) else ""
        print(f"grokinterp: interrupted{detail}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
