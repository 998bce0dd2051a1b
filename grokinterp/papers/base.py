"""What a paper module declares (`Paper`), what the runner hands back to it (`RunResult`) and
what it answers (`Comparison`: the rows `published` / `measured` / `agrees or why not`, and the
figures beside them).

A paper module holds four things: the paper (title, arXiv id, repository), its published rows
(each value with its source: a figure, a table or a file of the paper's repository), the
experiment (`experiment(quick, seeds)`: the runs, from a preset, in batches that train together)
and the comparison (`compare(results)`: measures read from grokinterp's analysis of each run,
set against the published rows by a stated rule).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from grokinterp.config import RunConfig
from grokinterp.errors import UsageError

AGREES = "agrees"
"""The verdict of a row whose measured value meets its paper's rule."""


@dataclass(frozen=True)
class Published:
    """One published result: the claim, the value and where it is printed or stored."""

    claim: str
    value: str
    source: str


@dataclass(frozen=True)
class Run:
    """One run of an experiment: its name (its folder), config and the swept values that a
    comparison groups it by (e.g. {"attention_rate": 0.2, "seed": 1})."""

    name: str
    cfg: RunConfig
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """The runs of a reproduction, in batches (runs that train together as one batched model:
    one architecture, `grokinterp.training.loop.SHARED_FIELDS`), and what it cuts from the
    paper's setting (fewer seeds, a shorter budget; never a smaller model), in one sentence.

    `analyse`: each run is measured by `grokinterp analyze` (measures.csv, summary.json) before
    the comparison; False where the comparison reads only the run's metrics or final weights.
    `shipped`: runs whose result is a shipped analysis directory (relative to the repository
    root) instead of a training here (the shipped canonical reference)."""

    batches: tuple[tuple[Run, ...], ...]
    cut: str
    analyse: bool = True
    shipped: tuple[tuple[Run, Path], ...] = ()
    quick: bool = False
    """The quick variant: a comparison may measure with cheaper settings too (fewer draws)."""

    @property
    def runs(self) -> list[Run]:
        return [run for batch in self.batches for run in batch]


@dataclass
class RunResult:
    """A trained (or shipped) run as a comparison reads it: its analysis directory (the folder
    of its measurements, holding `grokinterp analyze`'s output where the experiment analyses)
    and, where it was trained here, its run directory."""

    run: Run
    analysis_dir: Path | None
    run_dir: Path | None

    @cached_property
    def measures(self) -> pd.DataFrame:
        """measures.csv of the analysis, one row per checkpoint."""
        from grokinterp.storage.analysis_format import load_measures

        return load_measures(self._analysis())

    @cached_property
    def summary(self):
        """summary.json of the analysis (`grokinterp.storage.analysis_format.Summary`)."""
        from grokinterp.storage.analysis_format import Summary

        return Summary.load(self._analysis())

    @cached_property
    def metrics(self) -> pd.DataFrame:
        """The run's per-epoch metrics (train/test loss and accuracy), indexed by epoch."""
        from grokinterp.storage.run import open_run

        if self.run_dir is None:
            raise ValueError(f"{self.run.name}: a shipped result has no run directory")
        return open_run(self.run_dir).metrics()

    def _analysis(self) -> Path:
        if self.analysis_dir is None:
            raise ValueError(f"{self.run.name}: no analysis directory")
        return self.analysis_dir


@dataclass(frozen=True)
class Row:
    """One line of a paper's table: `verdict` is `AGREES` or the reason it does not."""

    claim: str
    published: str
    source: str
    measured: str
    verdict: str


@dataclass(frozen=True)
class Comparison:
    """A paper's table, its figures by name (in page order, each with its caption) and notes
    on the whole (definitions that differ, what was cut)."""

    rows: tuple[Row, ...]
    figures: dict[str, tuple[go.Figure, str]]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Paper:
    """A paper that `grokinterp reproduce` knows."""

    name: str
    title: str
    arxiv: str
    repository: str
    setting: str
    """The paper's setting in one or two sentences, as its code has it."""
    published: tuple[Published, ...]
    experiment: Callable[[bool, Sequence[int] | None], Experiment]
    """(quick, seeds or None for the paper's) -> the runs."""
    compare: Callable[[Experiment, list[RunResult]], Comparison]
    preset: str
    """The preset the experiment starts from (`grokinterp.presets`)."""

    def source(self, claim: str) -> Published:
        """The published row of `claim`; KeyError names it."""
        for row in self.published:
            if row.claim == claim:
                return row
        raise KeyError(claim)


def seeds_or(seeds: Sequence[int] | None, default: Sequence[int]) -> list[int]:
    """The seeds asked for, else `default`; UsageError for a repeated seed."""
    chosen = list(default if seeds is None else seeds)
    if len(set(chosen)) != len(chosen):
        raise UsageError(f"a seed is given twice: {chosen}")
    return chosen


def published_row(paper: Paper, claim: str, measured: str, verdict: str) -> Row:
    """The table row of a published claim beside its measured value."""
    source = paper.source(claim)
    return Row(claim, source.value, source.source, measured, verdict)


def paper_preset(name: str) -> RunConfig:
    """The preset `name` from the modular presets or the group presets (`grokinterp.presets`);
    UsageError when neither has it."""
    from grokinterp.presets import GROUP_PRESETS, PRESETS

    if name in PRESETS:
        return PRESETS[name]
    if name in GROUP_PRESETS:
        return GROUP_PRESETS[name]
    raise UsageError(f"preset {name!r} is not in this grokinterp (grokinterp.presets)")
