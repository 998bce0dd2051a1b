"""What every importer shares: the safe loader, input checks, and the atomic run-directory writer.

A foreign file is read with `torch.load(weights_only=True)` (a `.safetensors` file with
`safetensors`) and nothing else, so no code it names ever runs. Importers check everything before
anything is written; `write_run` then builds the run in a hidden sibling directory and renames it
into place, so a failure leaves nothing behind.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from grokinterp.config import RunConfig
from grokinterp.errors import UsageError
from grokinterp.models import architecture
from grokinterp.storage import environment, store
from grokinterp.storage.importers.curves import Curves, final_epoch
from grokinterp.storage.importers.optimizer import HYPERPARAMETERS
from grokinterp.storage.importers.wrappers import key_list, names_hint, unwrap_state
from grokinterp.storage.outputs import check_output_dir

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
    epoch: int | None = None
    """The epoch of a single final model whose file does not record one."""
    operation: str | None = None
    group: str | None = None
    lr: float | None = None
    weight_decay: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    adam_eps: float | None = None
    allow_loss_mismatch: bool = False

    def hyperparameter_flags(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in HYPERPARAMETERS}


@dataclass
class Imported:
    """A foreign run, checked and converted: everything `write_run` needs."""

    cfg: RunConfig
    train_indices: Tensor
    """Sorted pair indices a * n + b (int64)."""
    checkpoints: list[tuple[int, dict[str, Tensor]]]
    """(epoch, grokinterp state dict), by epoch."""
    losses: dict[str, np.ndarray]
    """Per-epoch metric columns (e.g. train_loss) recorded by the foreign code, NaN where not
    recorded; may be empty."""
    notes: list[str] = field(default_factory=list)
    """What the importer inferred or resolved, one line each (printed, and kept in the run's
    import.json)."""
    recorded_train_loss: float | None = None
    """The train loss the file records for the last checkpoint, checked by `import_run`."""
    noisy_labels: dict[int, int] | None = None
    """{grid index: label} of training pairs whose label noise replaced (split.json)."""


def load_source(path: Path) -> Any:
    """The object saved in `path`, refusing any pickle that needs code to rebuild."""
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
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
        raise UsageError(f"{path}: not readable ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    """The first line of an exception's message, else its type."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _load_safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise UsageError(f"{path}: not readable ({_reason(exc)})") from None


def check_fresh_out(out_dir: Path) -> None:
    """Refuse an --out that exists and is not an empty folder, or cannot be written (it is built
    beside itself and renamed into place)."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UsageError(f"{out_dir} already exists and is not empty; choose another --out")
    check_output_dir(out_dir, "--out", renamed_into_place=True)


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


def checkpoint_series(
    data: dict, list_key: str, epochs_key: str, epoch_flag: int | None, curves: Curves
) -> tuple[list[tuple[int, Any]], list[str]]:
    """(epoch, state dict) pairs by epoch, and notes: a list with its epochs (and 'model' after
    it when its weights differ from the list's last), else one 'model', else the file itself as
    a bare state dict; a single model's epoch from `final_epoch`. Each state dict is taken out
    of its wrappers (`wrappers.unwrap_state`)."""
    notes: list[str] = []
    taken_off: list[str] = []
    if list_key in data:
        states = data[list_key]
        epochs = int_list(data.get(epochs_key), epochs_key)
        if not isinstance(states, list | tuple) or len(states) != len(epochs):
            raise UsageError(f"'{list_key}' must be a list as long as '{epochs_key}'")
        if not states:
            raise UsageError(f"'{list_key}' is empty")
        series = sorted(zip(epochs, states, strict=True), key=lambda pair: pair[0])
        series = [(epoch, _unwrap(state, taken_off)) for epoch, state in series]
        final = _unwrap(data.get("model"), taken_off)
        if isinstance(final, dict) and not _same_state(final, series[-1][1]):
            epoch, note = final_epoch(data, epoch_flag, curves)
            if epoch <= series[-1][0]:
                raise UsageError(
                    f"'model' differs from the last checkpoint (epoch {series[-1][0]}) but its "
                    f"epoch {epoch} is not later; pass --epoch N"
                )
            series.append((epoch, final))
            notes += [note] if note else []
            notes.append(f"the final weights in 'model' kept as the last checkpoint, epoch {epoch}")
        elif epoch_flag is not None:
            raise UsageError(f"the file labels its checkpoints ('{epochs_key}'); drop --epoch")
    elif "model" in data or "embed.W_E" in data or _is_bare(data):
        epoch, note = final_epoch(data, epoch_flag, curves)
        series = [(epoch, _unwrap(data.get("model", data), taken_off))]
        notes += [note] if note else []
    else:
        other = next((f"--layout {v} reads '{k}'" for k, v in _LISTS.items() if k in data), None)
        raise UsageError(
            f"no checkpoints in the file: found {key_list(data)}; expected '{list_key}' with "
            f"'{epochs_key}', 'model', a Lightning 'state_dict', or a bare state dict "
            f"({other or 'no layout of grokinterp fits the file'})"
        )
    notes += taken_off
    epochs = [epoch for epoch, _ in series]
    if epochs[0] < 0 or len(set(epochs)) != len(epochs):
        raise UsageError(f"checkpoint epochs must be distinct and non-negative, got {epochs}")
    for epoch, state in series:
        if not isinstance(state, dict):
            raise UsageError(f"checkpoint at epoch {epoch} is not a state dict")
    return series, notes


_LISTS = {"checkpoints": "transformer-lens", "state_dicts": "paper"}
"""The checkpoint lists of the layouts, by key."""


def _is_bare(data: dict) -> bool:
    return bool(data) and all(isinstance(value, Tensor) for value in data.values())


def _unwrap(state: Any, taken_off: list[str]) -> Any:
    """`state` out of its wrappers; a note of what was taken off joins `taken_off` once."""
    state, found = unwrap_state(state)
    taken_off += [note for note in found if note not in taken_off]
    return state


def _same_state(a: dict, b: Any) -> bool:
    """Whether two state dicts hold the same names and equal tensors."""
    if not isinstance(b, dict) or set(a) != set(b):
        return False
    return all(
        isinstance(x, Tensor) and isinstance(b[k], Tensor) and torch.equal(x, b[k])
        for k, x in a.items()
    )


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
        raise UsageError(
            f"{where}: missing weights {key_list(dict.fromkeys(missing))}; found "
            f"{key_list(state)} ({names_hint(state, missing, required)})"
        )
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


def train_frac_for(n_train: int, n_pairs: int, stated: float | None) -> float:
    """The train fraction of a split of `n_train` of the task's `n_pairs` pairs (so that
    RunConfig.n_train == n_train); a stated fraction must agree with it."""
    if stated is not None:
        if int(stated * n_pairs) != n_train:
            raise UsageError(f"train fraction {stated} does not give the split's {n_train} pairs")
        return stated
    frac = n_train / n_pairs
    return frac if int(frac * n_pairs) == n_train else math.nextafter(frac, 1.0)


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


IMPORT_RECORD = "import.json"
"""In an imported run: {"source", "layout", "notes"}: where it came from and what was inferred."""


def write_run(imported: Imported, out_dir: Path, source: Path, layout: str) -> Path:
    """Write the run (and its import record) into a hidden sibling directory, then rename it to
    `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.import-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        store.write_run_files(tmp, imported.cfg, imported.train_indices, imported.noisy_labels)
        for epoch, state in imported.checkpoints:
            store.save_checkpoint(tmp, imported.cfg, epoch, state)
        if imported.losses:
            write_metrics(tmp, imported.losses)
        environment.record(tmp, "import")
        record = {"source": str(source), "layout": layout, "notes": imported.notes}
        store.atomic_write(tmp / IMPORT_RECORD, json.dumps(record, indent=2).encode())
        try:
            os.replace(tmp, out_dir)  # replaces an empty directory, refuses a non-empty one
        except OSError as exc:
            raise UsageError(
                f"{out_dir}: cannot move the imported run into place ({exc})"
            ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
