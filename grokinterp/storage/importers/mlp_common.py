"""What the layouts of foreign MLPs (`chughtai`, `gromov`, `devinterp`) and of Zhong et al.'s
transformer share: a bare state dict with a sidecar config, and a split that only the file or the
user can give (their code draws it unseeded or does not save it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import Tensor

from grokinterp.config import RunConfig
from grokinterp.errors import UsageError
from grokinterp.storage.importers.common import (
    Imported,
    Options,
    check_series,
    checkpoint_series,
    int_list,
    load_source,
    read_split_json,
)
from grokinterp.storage.importers.curves import Curves, read_curves
from grokinterp.storage.importers.task_choice import check_split
from grokinterp.tasks import Task


def load_with_config(source: Path, config_name: str, what: str) -> dict:
    """{'model': the state dict of `source`, 'config': the JSON `config_name` beside it}; SOURCE
    may also be the folder holding both (then its only .pt/.pth file is the model)."""
    source = Path(source)
    if source.is_dir():
        models = sorted(p for p in source.iterdir() if p.suffix in (".pt", ".pth"))
        if len(models) != 1:
            raise UsageError(f"{source}: expected one .pt/.pth model file, found {len(models)}")
        source = models[0]
    config_path = source.parent / config_name.format(stem=_run_id(source))
    try:
        config = json.loads(config_path.read_text())
    except OSError:
        raise UsageError(
            f"{source}: {what} states its task in {config_path.name}, not found"
        ) from None
    except ValueError as exc:
        raise UsageError(f"{config_path}: not JSON ({exc})") from None
    if not isinstance(config, dict):
        raise UsageError(f"{config_path}: not a JSON object")
    return {"model": load_source(source), "config": config}


def _run_id(path: Path) -> str:
    """`<id>` of a file named `model_<id>.pt` (Zhong et al.), else the file's stem."""
    return path.stem.removeprefix("model_")


def given_split(data: dict, opts: Options, task: Task, why: str) -> Tensor:
    """The file's train_indices, else --split-from; UsageError saying `why` when neither."""
    if "train_indices" in data:
        if opts.split_from is not None:
            raise UsageError("the file records its split (train_indices); drop --split-from")
        return check_split(int_list(data["train_indices"], "train_indices"), task)
    if opts.split_from is not None:
        return check_split(read_split_json(opts.split_from), task)
    raise UsageError(f"{why}: pass --split-from (a JSON list of train pair indices a * n + b)")


def refuse_flags(opts: Options, names: tuple[str, ...], layout: str) -> None:
    """UsageError for flags that the layout's file states or that do not apply to it."""
    given = [name for name in names if getattr(opts, name) is not None]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise UsageError(f"{flags} does not apply to the {layout} layout (its files state it)")


def read_series(
    data: dict, opts: Options, names: set[str]
) -> tuple[list[tuple[int, dict]], Curves, list[str]]:
    """(epoch, state dict) by epoch from 'checkpoints' + 'checkpoint_epochs', 'model' or a bare
    state dict; the file's curves; notes. UsageError unless the first state holds exactly
    `names` (their shapes are the layout's to check)."""
    curves = read_curves(data, opts.metrics)
    series, notes = checkpoint_series(data, "checkpoints", "checkpoint_epochs", opts.epoch, curves)
    check_series(series[:1], {}, names, set())
    return series, curves, notes


def mlp_config(**fields: Any) -> RunConfig:
    """A validated MLP RunConfig of the foreign layouts' common shape: inputs [a, b], the
    operands' embeddings concatenated, `paper` init, no warm-up; `fields` give the rest."""
    shape = dict(input_format="a-b", model="mlp", combine="concat", n_heads=1, init="paper")
    return RunConfig(**shape, warmup_steps=1, **fields).validate()


def imported_run(
    cfg: RunConfig,
    train: Tensor,
    series: list[tuple[int, dict]],
    convert: Callable[[dict, RunConfig], dict[str, Tensor]],
    curves: Curves,
    notes: list[str],
) -> Imported:
    """The Imported run: each checkpoint converted by `convert(their_state, cfg)`, the curves'
    columns, the notes followed by the curves'."""
    checkpoints = [(epoch, convert(state, cfg)) for epoch, state in series]
    return Imported(cfg, train, checkpoints, curves.columns, notes + curves.notes)
