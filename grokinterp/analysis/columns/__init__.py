"""Every column of measures.csv, one family per module (`base` says what a family module holds),
and the column registry `COLUMNS` that documents them (rendered as docs/columns.md by
`columns_markdown`).

The families in measures.csv's column order: losses, clock_pizza, causes, weights, restricted,
spectra, neurons; then the series columns, measured once the summary's phases are known. A
family that does not apply to a run (`not_applicable`) has no columns in its table.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import torch
from torch import Tensor

from grokinterp.analysis.columns import (
    causes,
    clock_pizza,
    losses,
    neurons,
    restricted,
    spectra,
    weights,
)
from grokinterp.analysis.columns.base import Column
from grokinterp.analysis.context import (
    AnalysisContext,
    Checkpoints,
    forward_on_domain,
    joined_embedding,
)
from grokinterp.bases import Basis
from grokinterp.config import RunConfig
from grokinterp.models import architecture
from grokinterp.tasks import task_of

__all__ = [
    "COLUMNS",
    "FAMILIES",
    "Column",
    "columns_markdown",
    "forward_on_domain",
    "joined_embedding",
    "measure",
    "measure_checkpoints",
    "measures_table",
    "required_columns",
]

FAMILIES = (losses, clock_pizza, causes, weights, restricted, spectra, neurons)
"""The column families in measures.csv's order."""

EPOCH = Column("epoch", "the checkpoint's epoch", ">= 0", "int64", family="checkpoint")

COLUMNS: tuple[Column, ...] = (
    EPOCH,
    *(replace(c, family=f.NAME) for f in FAMILIES for c in f.COLUMNS),
    *(replace(c, family=weights.NAME) for c in weights.SERIES_COLUMNS),
)
"""The column registry: every measures.csv column (or pattern of columns), in the table's
order."""


def measure(ctx: AnalysisContext, ckpts: Checkpoints, families=FAMILIES) -> dict[str, Tensor]:
    """The columns of every family in `families` that applies to the run, in their order:
    name -> tensor [ckpt] (float64, counts int64)."""
    out: dict[str, Tensor] = {}
    for family in families:
        if family.not_applicable(ctx) is None:
            out |= family.columns(ctx, ckpts)
    return out


def required_columns(ctx: AnalysisContext) -> tuple[str, ...]:
    """The single columns (`Column.fixed`) of every family that applies to the run: a stored
    table that lacks one was written before its measure existed."""
    return tuple(
        c.name for f in FAMILIES if f.not_applicable(ctx) is None for c in f.COLUMNS if c.fixed
    )


def measures_table(ctx: AnalysisContext, ckpts: Checkpoints) -> pd.DataFrame:
    """The measures.csv rows of a batch (the series columns aside): `epoch`, then `measure`."""
    columns = {name: value.numpy() for name, value in measure(ctx, ckpts).items()}
    return pd.DataFrame({"epoch": ckpts.epochs, **columns})


def measure_checkpoints(
    cfg: RunConfig,
    states: list[dict[str, Tensor]],
    train: Tensor,
    keys: list,
    basis: Basis | None = None,
    previous: list[dict[str, Tensor] | None] | None = None,
) -> tuple[pd.DataFrame, Tensor | None]:
    """Every per-checkpoint measure of a batch of state dicts of one run (its config and
    training pairs `train`), in `basis` (default the task's own; a task without one: the
    basis-free measures only), with `keys` the key components. With `previous` (`previous[i]`
    the state dict of the checkpoint before `states[i]`, None for the first, whose
    `update_cos` is NaN), the `update_cos` column too.

    Returns the table rows (no epoch column) and the neurons' FVE by component
    [ckpt, hidden_layers * d_mlp, spectrum], the hidden layers one after another (None without
    a basis)."""
    task = task_of(cfg)
    basis = basis or (task.basis() if task.bases else None)
    ctx = AnalysisContext(cfg, task, architecture(cfg), train, basis, keys)
    ckpts = Checkpoints(ctx, list(range(len(states))), states, previous)
    table = pd.DataFrame({name: value.numpy() for name, value in measure(ctx, ckpts).items()})
    fve = torch.cat(ckpts.fve_by_layer, dim=1) if ctx.basis is not None else None
    return table, fve


def columns_markdown() -> str:
    """docs/columns.md: the registry as a Markdown table, with the naming conventions."""
    lines = [
        "# measures.csv columns",
        "",
        "Generated from the column registry `grokinterp.analysis.columns.COLUMNS` (a test checks "
        "that this page is its rendering). One row per checkpoint; the columns below, in this "
        "order. A family that does not apply to a run has no columns (the summary's "
        "`not_applicable` says why): `restricted`, `spectra` and `neurons` need a basis of the "
        "task, `clock_pizza` a commutative group operation.",
        "",
        "`<c>` stands for a basis spectrum component's name (`k3` for frequency 3, an irrep's "
        "name such as `3a` for a group), `<parameter>` for a parameter's HookedTransformer name. "
        "The per-layer columns of hidden layer l >= 1 (`gini_W_L`, `W_L.<c>`, `fve_share`, "
        "`cluster.<c>`) carry the prefix `L<l>.` (`L1.cluster.k3`); those without a prefix are "
        "the first hidden layer's. Floats are written with 10 significant digits.",
        "",
        "| column | family | meaning | unit, range | dtype | per layer |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in COLUMNS:
        names = ", ".join(f"`{name.strip()}`" for name in c.name.split(","))
        layered = "yes" if c.per_layer else ""
        lines.append(f"| {names} | {c.family} | {c.meaning} | {c.unit} | {c.dtype} | {layered} |")
    return "\n".join(lines) + "\n"
