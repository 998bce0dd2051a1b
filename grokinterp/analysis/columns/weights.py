"""The weight norm (Nanda et al. 2023, section 5.2: it falls in cleanup), per parameter and in
all, and its ratio to its value at the end of memorisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from torch import Tensor

from grokinterp.analysis.columns.base import Column
from grokinterp.analysis.measures import weights

NAME = "weights"
COLUMNS = (
    Column("weight_norm", "sum of squared weights over all parameters", ">= 0"),
    Column("sq.<parameter>", "sum of squares of one parameter", ">= 0"),
)
SERIES_COLUMNS = (
    Column(
        "weight_norm_ratio",
        "weight_norm / weight_norm at the end of memorisation (the summary's phase); NaN "
        "throughout when the run shows none",
        ">= 0",
    ),
)
"""Columns of the whole series, added once the summary's phases are known."""


def not_applicable(ctx) -> str | None:
    return None


def columns(ctx, ckpts) -> dict[str, Tensor]:
    squares = weights.sum_of_squares(ckpts.params)
    return {"weight_norm": sum(squares.values())} | {
        f"sq.{name}": value for name, value in squares.items()
    }


def weight_norm_ratio(table: pd.DataFrame, located: dict) -> np.ndarray:
    """weight_norm / its value at the end of memorisation (`located["memorization_end"]`;
    NaN throughout when the run shows none), per row."""
    end = located.get("memorization_end")
    if end is None:
        return np.full(len(table), np.nan)
    at_end = table.loc[table["epoch"] == end, "weight_norm"].iloc[0]
    return (table["weight_norm"] / at_end).to_numpy()
