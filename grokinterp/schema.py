"""The machinery that describes a config's fields once: `Field` (type, section, help, range or
choices, run-name prefix, the condition under which a run reads it, how the JSON writes it),
`setting` to declare one on a frozen dataclass, the check of one value, and the markdown table
of the fields. `grokinterp.config` declares `RunConfig` with it; the train and import flags, the
sweep spec's types, run names and docs/config.md are generated from the resulting `FIELDS`.

Imports nothing heavy: `grokinterp --help` builds its flags from here.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any

from grokinterp.errors import UsageError


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""The default of a field that every preset sets (it has no default of its own)."""

SECTIONS = ("run", "task", "model", "training", "recipe")
"""The sub-configs, in the order the docs list them: the run's name, its task, the model
(each family reads its own part), the optimiser's numbers, schedule and initialisation, and the
training recipe (objective, optimiser kind, gradient filter, norm control, precision)."""


@dataclass(frozen=True)
class Range:
    """An interval of allowed numbers: [low, high] with either end open or absent."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is None:
            return True
        return value < self.high if self.high_open else value <= self.high

    def text(self, whole: bool = False) -> str:
        """`(0, 1)`, `[0, 1)`, `> 0`, `>= 1`; `1..4` for a closed interval of `whole` numbers."""
        low, high = _number(self.low), _number(self.high)
        if self.low is not None and self.high is not None:
            if whole and not (self.low_open or self.high_open):
                return f"{low}..{high}"
            return f"{'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {low}"
        return f"{'<' if self.high_open else '<='} {high}"

    @property
    def interval(self) -> bool:
        return self.low is not None and self.high is not None


POSITIVE = Range(0, low_open=True)
AT_LEAST_ONE = Range(1)
NON_NEGATIVE = Range(0)
FRACTION = Range(0, 1, high_open=True)
"""[0, 1): a decay, a momentum, a share of the pairs."""


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


@dataclass(frozen=True)
class Field:
    """One field of a config, described once.

    `kind` is bool, int, float or str (an int is a float too; a bool never a number); `optional`
    fields also take None. `short` prefixes the field's value in run names (`frac0.3`; "" for the
    value alone). `only_with` (another field, its values) names when a run reads the field: a
    field written only away from its default (`sparse`) is refused away from it otherwise, and a
    flag for it is refused on the command line; a field written in every config keeps the value
    it was written with. `per_run`: runs trained together as one batched model may differ in it.
    `swept`: the train command also takes a list of its values (`--seeds 0-3`)."""

    section: str
    help: str
    name: str = ""
    kind: type = str
    optional: bool = False
    default: Any = REQUIRED
    short: str | None = None
    choices: tuple[str, ...] = ()
    range: Range | None = None
    only_with: tuple[str, tuple[Any, ...]] | None = None
    sparse: bool = False
    per_run: bool = False
    swept: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def sweep_flag(self) -> str:
        """The train command's list flag: the field's flag in the plural."""
        return self.flag + "s"

    @property
    def has_default(self) -> bool:
        return self.default is not REQUIRED

    @property
    def prefix(self) -> str:
        """What precedes the field's value in a run name."""
        return self.name if self.short is None else self.short

    @property
    def allowed(self) -> str:
        """The allowed values as text: the choices, or the range; "" when any value is."""
        if self.choices:
            return ", ".join(self.choices)
        return "" if self.range is None else self.range.text(whole=self.kind is int)

    def check(self, value: Any) -> None:
        """UsageError naming the field when `value` is of the wrong type, outside the range or
        not one of the choices."""
        if value is None and self.optional:
            return
        wanted = {bool: "true or false", int: "a whole number", float: "a finite number"}
        if self.kind is bool:
            good = isinstance(value, bool)
        elif self.kind is int:
            good = isinstance(value, int) and not isinstance(value, bool)
        elif self.kind is float:
            good = isinstance(value, int | float) and not isinstance(value, bool)
            good = good and math.isfinite(value)
        else:
            good = isinstance(value, str)
        if not good:
            raise UsageError(
                f"{self.name} must be {wanted.get(self.kind, 'a string')}, got {value!r}"
            )
        if self.choices and value not in self.choices:
            raise UsageError(
                f"unknown {self.name} {value!r}; choose one of {', '.join(self.choices)}"
            )
        if self.range is not None and value not in self.range:
            verb = "lie in" if self.range.interval else "be"
            raise UsageError(f"{self.name} must {verb} {self.allowed}, got {value}")

    def name_part(self, value: Any) -> str:
        """This field at `value` in a run name: `frac0.3`, `seed1`, `mul`; floats to 6
        significant digits (`lr1e-05`)."""
        text = f"{value:g}" if isinstance(value, float) else str(value)
        return f"{self.prefix}{text}"


def setting(section: str, help: str, default: Any = REQUIRED, **meta: Any) -> Any:
    """A dataclass field described by a `Field` (`meta` as its attributes); the name, kind,
    optional and default are filled in from the class by `fields_of`."""
    if section not in SECTIONS:
        raise ValueError(f"unknown section {section!r}")
    described = Field(section, help, **meta)
    missing = dataclasses.MISSING if default is REQUIRED else default
    return dataclasses.field(default=missing, metadata={"field": described})


def fields_of(cls: type) -> dict[str, Field]:
    """Every field of the dataclass `cls` (declared with `setting`) by name, in class order, with
    its name, kind (from the annotation: `float | None` is an optional float) and default."""
    hints = typing.get_type_hints(cls)
    described = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        options = [t for t in typing.get_args(hint) if t is not type(None)] or [hint]
        described[f.name] = dataclasses.replace(
            f.metadata["field"],
            name=f.name,
            kind=options[0],
            optional=type(None) in typing.get_args(hint),
            default=REQUIRED if f.default is dataclasses.MISSING else f.default,
        )
    return described


def markdown_tables(fields: dict[str, Field]) -> str:
    """One markdown table per section: field, flag, type, default, allowed values, when it is
    read, its run-name prefix and help."""
    blocks = []
    for section in SECTIONS:
        rows = [f for f in fields.values() if f.section == section]
        if not rows:
            continue
        lines = [
            f"### {section}",
            "",
            "| field | flag | type | default | allowed | read | run name | meaning |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for f in rows:
            kind = f.kind.__name__ + (" or null" if f.optional else "")
            default = "preset" if not f.has_default else _cell_value(f.default)
            read = "always"
            if f.only_with is not None:
                other, values = f.only_with
                read = f"{other} is " + " or ".join(_cell_value(v) for v in values)
            prefix = f"`{f.prefix}`" if f.prefix else "(value)"
            cells = [
                f"`{f.name}`",
                f"`{f.flag}`",
                kind,
                default,
                f.allowed or ("finite" if f.kind is float else "any"),
                read,
                prefix,
                f.help.replace("|", "\\|"),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _cell_value(value: Any) -> str:
    return (
        "null" if value is None else f"`{str(value).lower() if isinstance(value, bool) else value}`"
    )
