"""`Column`: one entry of the column registry (`grokinterp.analysis.columns.COLUMNS`).

A column family is a module of this package with:

    NAME                             the family's name in the registry
    COLUMNS                          its columns (`Column`), in measures.csv's order
    not_applicable(ctx) -> str|None  why the family does not apply to the run, or None
    columns(ctx, ckpts) -> dict      name -> tensor [ckpt] for a `Checkpoints` batch

In a column name, `<c>` stands for a basis spectrum component's name (`k3` for frequency 3, an
irrep's name such as `3a` for a group), `<parameter>` for a parameter's HookedTransformer name,
and a per-layer column of hidden layer l >= 1 carries the prefix `L<l>.` (`L1.cluster.k3`;
none for the first hidden layer).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """A measures.csv column (or a pattern of columns) and what it holds."""

    name: str
    meaning: str
    """What it measures, with its formula where it has one."""
    unit: str
    """Its unit and range."""
    dtype: str = "float64"
    """The dtype it is measured in (and written as, `%.10g` for floats)."""
    per_layer: bool = False
    """One column per hidden layer, that of layer l >= 1 prefixed `L<l>.`."""
    family: str = ""
    """The column family that measures it (filled in by the registry)."""

    @property
    def fixed(self) -> bool:
        """Whether `name` is one column's name (not a pattern, not per layer)."""
        return "<" not in self.name and "," not in self.name and not self.per_layer
