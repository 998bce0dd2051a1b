"""What every importer shares: the safe loader, input checks, and the atomic run-directory writer.

A foreign file is read with `torch.load(weights_only=True)` and nothing else, so no code it names
ever runs. Importers check everything before anything is written; `write_run` then builds the run
in a hidden sibling directory and renames it into place, so a failure leaves nothing behind.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from grokinterp import store
from grokinterp.config import RunConfig
from grokinterp.errors import UsageError
from grokinterp.models import architecture

_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")
_LAYER_NORM = re.compile(r"(^|\.)ln")


@dataclass(frozen=True)
class Options:
    """What the user tells on the command line because the file may not say it."""

    p: int | None = None
    train_frac: float | None = None
    seed: int | None = None
    data_seed: int | None = None
    split_from: Path | None = None
    metrics: bool = True


@dataclass
class Imported:
    """A foreign run, checked and converted: everything `write_run` needs."""

    cfg: RunConfig
    train_indices: Tensor
    """Sorted pair indices a * p + b (int64)."""
    checkpoints: list[tuple[int, dict[str, Tensor]]]
    """(epoch, grokinterp state dict), by epoch."""
    losses: dict[str, np.ndarray]
    """Per-epoch metric columns (e.g. train_loss) recorded by the foreign code; may be empty."""


def load_source(path: Path) -> Any:
    """The object saved in `path`, refusing any pickle that needs code to rebuild."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        needed = _UNSUPPORTED_GLOBAL.search(str(exc))
        if needed is None:
            raise UsageError(f"{path}: not a file that torch.save wrote") from None
        raise UsageError(
            f"{path}: refused, loading it would run code ({needed.group(1)}); grokinterp reads "
            "only tensors, numbers, strings, lists and dicts: re-save the file with those alone"
        ) from None
    except Exception as exc:  # torch.load fails in many ways on a truncated or foreign file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{path}: not readable ({reason})") from None


def check_fresh_out(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UsageError(f"{out_dir} already exists and is not empty; choose another --out")


def pick(stated: dict, key: str, flag_value: Any, flag: str, kind: type) -> Any:
    """The value the file's config states for `key` or the flag gives (None when neither);
    the two must agree when both are there."""
    value = stated.get(key)
    kinds = (int, float) if kind is float else kind
    if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
        raise UsageError(f"the file's config has {key}={value!r}, not a {kind.__name__}")
    if value is not None and flag_value is not None and value != flag_value:
        raise UsageError(f"the file's config says {key}={value!r} but {flag} says {flag_value!r}")
    return flag_value if value is None else value


def config_dict(data: dict) -> dict:
    """The file's own config, when it saved one as a plain dict."""
    config = data.get("config", {})
    if not isinstance(config, dict):
        raise UsageError("the file's 'config' is not a dict")
    return config


def check_stated(config: dict, needed: dict[str, tuple]) -> None:
    """Refuse a config that states a model grokinterp does not have (e.g. GELU, LayerNorm)."""
    for key, allowed in needed.items():
        if key in config and config[key] not in allowed:
            wanted = " or ".join(repr(a) for a in allowed)
            raise UsageError(
                f"the file's config has {key}={config[key]!r}; grokinterp needs {wanted}"
            )


def checkpoint_series(data: dict, list_key: str, epochs_key: str) -> list[tuple[int, Any]]:
    """(epoch, state dict) pairs: a list with its epochs, else one 'model' (its 'epoch', or 0),
    else the file itself as a bare state dict at epoch 0."""
    if list_key in data:
        states = data[list_key]
        epochs = int_list(data.get(epochs_key), epochs_key)
        if not isinstance(states, list | tuple) or len(states) != len(epochs):
            raise UsageError(f"'{list_key}' must be a list as long as '{epochs_key}'")
        if not states:
            raise UsageError(f"'{list_key}' is empty")
        series = sorted(zip(epochs, states, strict=True), key=lambda pair: pair[0])
    elif "model" in data:
        series = [(int_list([data.get("epoch", 0)], "epoch")[0], data["model"])]
    elif "embed.W_E" in data:
        series = [(0, data)]
    else:
        raise UsageError(
            f"no checkpoints in the file: expected '{list_key}' with '{epochs_key}', "
            "'model', or a bare state dict"
        )
    epochs = [epoch for epoch, _ in series]
    if epochs[0] < 0 or len(set(epochs)) != len(epochs):
        raise UsageError(f"checkpoint epochs must be distinct and non-negative, got {epochs}")
    for epoch, state in series:
        if not isinstance(state, dict):
            raise UsageError(f"checkpoint at epoch {epoch} is not a state dict")
    return series


def int_list(value: Any, what: str) -> list[int]:
    """A list or 1-D tensor of integers as Python ints."""
    if isinstance(value, Tensor):
        if value.dim() > 1 or value.is_floating_point() or value.dtype == torch.bool:
            raise UsageError(f"'{what}' is not a list of integers")
        return [int(x) for x in value.flatten().tolist()]
    if not isinstance(value, list | tuple):
        raise UsageError(f"'{what}' is missing or not a list of integers")
    out = []
    for x in value:
        if isinstance(x, Tensor) and x.dim() == 0 and not x.is_floating_point():
            x = int(x)
        if isinstance(x, bool) or not isinstance(x, int):
            raise UsageError(f"'{what}' holds {x!r}, not an integer")
        out.append(x)
    return out


def loss_curves(data: dict, enabled: bool) -> dict[str, np.ndarray]:
    """The per-epoch 'train_losses' / 'test_losses' (entry e = epoch e) the file recorded."""
    curves = {}
    for key, column in (("train_losses", "train_loss"), ("test_losses", "test_loss")):
        if enabled and key in data:
            try:
                curves[column] = np.asarray([float(x) for x in data[key]], dtype=np.float64)
            except (TypeError, ValueError, RuntimeError):
                raise UsageError(f"'{key}' is not a list of numbers") from None
    if len({len(curve) for curve in curves.values()}) > 1:
        raise UsageError(
            "'train_losses' and 'test_losses' differ in length, so they are not both one value per "
            "epoch; pass --no-metrics to import without them"
        )
    return curves


def tensor_shape(state: dict, name: str, ndim: int, where: str) -> tuple[int, ...]:
    """The shape of a floating-point tensor of `state`, which must have `ndim` dimensions."""
    tensor = state[name]
    if not isinstance(tensor, Tensor) or not tensor.is_floating_point():
        raise UsageError(f"{where}: {name} is not a floating-point tensor")
    if tensor.dim() != ndim:
        raise UsageError(f"{where}: {name} has shape {tuple(tensor.shape)}, expected {ndim} dims")
    return tuple(tensor.shape)


def check_names(state: dict, required: set[str], optional: set[str], where: str) -> None:
    """Refuse missing weights, LayerNorm weights and any other tensor the model does not have."""
    missing = sorted(required - set(state))
    if missing:
        raise UsageError(f"{where}: missing weights {', '.join(missing)} (is --layout right?)")
    extra = sorted(set(state) - required - optional)
    layer_norm = [name for name in extra if _LAYER_NORM.search(name)]
    if layer_norm:
        raise UsageError(
            f"{where}: has LayerNorm weights ({', '.join(layer_norm)}); grokinterp's model has none"
        )
    if extra:
        raise UsageError(f"{where}: unexpected tensors {', '.join(extra)} (is --layout right?)")


def check_series(
    series: list[tuple[int, dict]],
    expected: dict[str, tuple[int, ...]],
    required: set[str],
    optional: set[str],
) -> None:
    """Every checkpoint has the required names, no others, and the expected shapes."""
    for epoch, state in series:
        where = f"checkpoint at epoch {epoch}"
        check_names(state, required, optional, where)
        for name, shape in expected.items():
            if name in state:
                found = tensor_shape(state, name, len(shape), where)
                if found != shape:
                    raise UsageError(f"{where}: {name} has shape {found}, expected {shape}")


def check_heads(d_model: int, n_heads: int, d_head: int) -> None:
    if n_heads * d_head != d_model:
        raise UsageError(
            f"{n_heads} heads of width {d_head} do not make d_model {d_model}; grokinterp's "
            "model needs d_head = d_model / heads"
        )


def grokinterp_state(cfg: RunConfig, params: dict[str, Tensor]) -> dict[str, Tensor]:
    """A complete float32 state dict; biases the foreign model does not have are zeros."""
    model = architecture(cfg)
    shapes = model.param_shapes()
    return model.state_dict_of({n: params.get(n, torch.zeros(s)) for n, s in shapes.items()})


def read_split_json(path: Path) -> list[int]:
    """`--split-from`: a JSON list of train pair indices, or a split.json holding one."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable split ({exc})") from None
    if isinstance(value, dict):
        value = value.get("train_indices")
    return int_list(value, str(path))


def check_split(indices: list[int], p: int) -> Tensor:
    """Sorted int64 train pair indices, refusing duplicates and indices outside the p^2 pairs."""
    if len(set(indices)) != len(indices) or not all(0 <= i < p * p for i in indices):
        raise UsageError(f"the split must list distinct pair indices in [0, {p * p})")
    if not 0 < len(indices) < p * p:
        raise UsageError(f"the split has {len(indices)} training pairs of {p * p}")
    return torch.tensor(sorted(indices), dtype=torch.int64)


def train_frac_for(n_train: int, p: int, stated: float | None) -> float:
    """The train fraction of a split of `n_train` pairs (so that RunConfig.n_train == n_train);
    a stated fraction must agree with it."""
    if stated is not None:
        if int(stated * p * p) != n_train:
            raise UsageError(f"train fraction {stated} does not give the split's {n_train} pairs")
        return stated
    frac = n_train / (p * p)
    return frac if int(frac * p * p) == n_train else math.nextafter(frac, 1.0)


def schedule(epochs: list[int]) -> dict[str, int]:
    """RunConfig's epochs (the last checkpoint's) and save_every (the smallest spacing)."""
    last = max(epochs[-1], 1)
    gaps = [b - a for a, b in zip(epochs, epochs[1:], strict=False)]
    return {"epochs": last, "save_every": max(min(gaps, default=last), 1)}


def write_metrics(run_dir: Path, columns: dict[str, np.ndarray]) -> None:
    """metrics.csv from per-epoch columns, NaN in the columns the source did not record.

    The single call site of store's metrics writer."""
    n = len(next(iter(columns.values())))
    rows = np.full((n, len(store.METRIC_COLUMNS)), np.nan)
    rows[:, 0] = np.arange(n)
    for name, values in columns.items():
        rows[:, store.METRIC_COLUMNS.index(name)] = values
    store.append_metrics(run_dir, rows)


def write_run(imported: Imported, out_dir: Path) -> Path:
    """Write the run into a hidden sibling directory, then rename it to `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.import-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        store.write_run_files(tmp, imported.cfg, imported.train_indices)
        for epoch, state in imported.checkpoints:
            store.save_checkpoint(tmp, imported.cfg, epoch, state)
        if imported.losses:
            write_metrics(tmp, imported.losses)
        try:
            os.replace(tmp, out_dir)  # replaces an empty directory, refuses a non-empty one
        except OSError as exc:
            raise UsageError(
                f"{out_dir}: cannot move the imported run into place ({exc})"
            ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
