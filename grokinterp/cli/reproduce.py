"""`grokinterp reproduce PAPER`: a published experiment trained at the paper's setting,
analysed, and set against the paper's numbers (`grokinterp.papers.runner`)."""

from __future__ import annotations

from pathlib import Path

from grokinterp.cli.config_flags import add_config_flags
from grokinterp.papers import PAPERS


def add_reproduce(sub) -> None:
    parser = sub.add_parser(
        "reproduce",
        help="reproduce a paper's experiment and compare with its published numbers",
        description=(
            "Train the paper's experiment at its setting (its preset; fewer seeds or a shorter "
            "budget only where stated, never a smaller model), analyse every run, and write "
            "analyses/papers/PAPER/: table.csv and table.md (published / measured / agrees or "
            "why not) and page.html (plotly, self-contained). The runs go to "
            "checkpoints/papers/PAPER/; a killed reproduction resumes. Papers: "
            + ", ".join(PAPERS)
            + "."
        ),
    )
    parser.add_argument("paper", metavar="PAPER", help=", ".join(PAPERS))
    parser.add_argument("--seeds", help="seeds, e.g. 0-3 or 0,5 (default: the paper module's)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the same models, fewer seeds and values and a much shorter budget, into "
        "analyses/papers/PAPER-quick/ (never replaces a full result)",
    )
    add_config_flags(
        parser, ["epochs"], note=lambda name: "default: the paper's; a cut is stated in the table"
    )
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root (default .)")
    parser.add_argument(
        "--replace", action="store_true", help="overwrite a result already in the output folder"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(handler=_reproduce)


def _reproduce(args) -> None:
    from grokinterp.cli.lists import parse_list
    from grokinterp.papers.runner import reproduce

    seeds = parse_list(args.seeds, int) if args.seeds is not None else None
    out = reproduce(
        args.paper,
        args.root,
        seeds=seeds,
        quick=args.quick,
        epochs=args.epochs,
        replace=args.replace,
        progress=not args.quiet,
    )
    for name in ("table.md", "page.html"):
        print(f"wrote {out / name}")
