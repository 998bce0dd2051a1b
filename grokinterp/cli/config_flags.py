"""Command-line flags for run config fields, generated from `grokinterp.config.FIELDS`: one flag
per field (`--train-frac`, dest `train_frac`), typed by the field's kind, its help the field's
own followed by its allowed values and what the command adds."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable

from grokinterp.config import FIELDS

METAVARS = {int: "N", float: "X", str: "NAME"}


def add_config_flags(
    parser: argparse.ArgumentParser,
    names: Iterable[str],
    note: Callable[[str], str | None] = lambda name: None,
) -> None:
    """A flag for each field of `names` (a bool field a switch; a field with choices lists them
    as its metavar), default None (not given). Its help is the field's, then in parentheses its
    range and `note(name)`, or the field's default where the note is None."""
    for name in names:
        field = FIELDS[name]
        extra = [f"in {field.allowed}" if field.range and field.range.interval else field.allowed]
        extra = [text for text in extra if text and not field.choices]
        told = note(name)
        if told is not None:
            extra.append(told)
        elif field.has_default and field.default is not None and field.kind is not bool:
            extra.append(f"default {field.default}")
        text = field.help + (f" ({'; '.join(extra)})" if extra else "")
        text = text.replace("%", "%%")  # argparse formats help with %
        if field.kind is bool:
            parser.add_argument(field.flag, dest=name, action="store_const", const=True, help=text)
        else:
            metavar = "{" + ",".join(field.choices) + "}" if field.choices else METAVARS[field.kind]
            parser.add_argument(field.flag, dest=name, type=field.kind, metavar=metavar, help=text)


def add_sweep_flags(parser: argparse.ArgumentParser) -> None:
    """The list flag of each field declared `swept` (`--seeds 0-3,7`, dest `seed_list`)."""
    for field in FIELDS.values():
        if field.swept:
            example = "0-3,7" if field.kind is int else "0.3,0.5"
            parser.add_argument(
                field.sweep_flag,
                dest=f"{field.name}_list",
                metavar="LIST",
                help=f"sweep: one run per value of {field.flag}, e.g. {example}: "
                + field.help.replace("%", "%%"),
            )


def given(args: argparse.Namespace, names: Iterable[str]) -> dict[str, object]:
    """{field: value} of the flags among `names` that the command line gave."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}
