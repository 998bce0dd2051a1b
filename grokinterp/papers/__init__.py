"""Reproductions of published grokking papers (`grokinterp reproduce PAPER`): one module per
paper declaring the paper, its published rows with their sources, the experiment (from the
paper's preset) and the comparison; `grokinterp.papers.runner` trains, analyses and writes."""

from __future__ import annotations

import importlib

from grokinterp.errors import UsageError

PAPERS = {
    "power2022": "power2022",
    "nanda2023": "nanda2023",
    "zhong2023": "zhong2023",
    "chughtai2023": "chughtai2023",
    "devinterp-grokking": "devinterp_grokking",
}
"""Paper name (the command's argument) -> its module in this package."""


def paper_of(name: str):
    """The `Paper` that `name` names; UsageError listing the known ones otherwise."""
    if name not in PAPERS:
        raise UsageError(f"unknown paper {name!r}; choose one of {', '.join(PAPERS)}")
    return importlib.import_module(f"grokinterp.papers.{PAPERS[name]}").PAPER
