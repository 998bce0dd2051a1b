"""The per-epoch layout: a folder of one checkpoint file per saved epoch plus the run's curves ->
the paper layout's dict, which `paper.read` then checks and converts.

Layout facts:
- Nanda et al.'s `Trainer` with `save_models` (progress-measures-paper, transformers.py) writes
  a folder `<run_name>/` holding `init.pth` ({'model', 'train_data', 'test_data'}, the data as
  (a, b, p) triples), `<N>.pth` every save_every epochs ({'model', 'train_loss', 'test_loss',
  'epoch'}: the weights after epoch N's step, the losses before it) and `final.pth` ({'model',
  'train_losses', 'test_losses', 'epoch' = the epoch count, 'optimizer', 'scheduler'}), the
  weights in its `Transformer` layout (see `paper.py`).
- Grokking reproductions of that model save the same weights as `ep<N>.pth` (a bare state dict,
  or one under 'model') and the curves as JSON in `result.json`.

What is read:
- every `ep<N>.pth` / `<N>.pth` / `.pt` / `.safetensors`, its epoch N from the name (a file's
  own 'epoch' must agree); any other checkpoint name is refused, so no file is silently left out;
- `final.pth`: its weights as the final model (kept after the list when they differ from the
  last file), its 'epoch', curves, 'train_loss' and 'optimizer' (the hyperparameters);
- `init.pth`: its 'train_data' as the split (its weights, before any step, are not a
  checkpoint of the series: the paper's `0.pth` already holds the weights after epoch 0);
- `result.json`: the curves under the names the paper and the TransformerLens demo use
  (`train_losses`, `test_losses`, `train_accs`, `test_accs`) or their singulars (`train_loss`,
  ...: a list per name), and an optional 'config' dict (p, frac_train, seed, fn_name, lr,
  weight_decay, as the paper's Config names them). A curve in both result.json and final.pth
  must be the same list.
Without final.pth, the last file's 'train_loss' is the recorded loss that the import checks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from grokinterp.errors import UsageError
from grokinterp.storage.importers.common import int_list, load_source
from grokinterp.storage.importers.curves import CURVE_COLUMNS
from grokinterp.storage.importers.folders import numbered_files

_NAME = re.compile(r"^(?:ep)?(\d+)\.(?:pth?|safetensors)$")
SUFFIXES = (".pt", ".pth", ".safetensors")
FINAL, INIT, RESULT = "final.pth", "init.pth", "result.json"
_FINAL_KEYS = ("epoch", "train_loss", "optimizer", *CURVE_COLUMNS)
_SINGULAR = {column: key for key, column in CURVE_COLUMNS.items()}
"""result.json's singular curve names (train_loss, ...) -> the plural keys the importer reads."""


def load(directory: Path) -> dict:
    """The paper layout's dict ({'state_dicts', 'epochs'} and what else the folder records)."""
    found = numbered_files(directory, _NAME, SUFFIXES, frozenset({FINAL, INIT}))
    states, last = [], {}
    for epoch in sorted(found):
        saved = load_source(found[epoch])
        state = saved.get("model") if isinstance(saved, dict) else None
        if isinstance(state, dict):
            stated = saved.get("epoch")
            if stated is not None and int(stated) != epoch:
                raise UsageError(f"{found[epoch].name} says epoch {stated}")
            last = saved
        else:
            state = saved
        states.append(state)
    data: dict[str, Any] = {"state_dicts": states, "epochs": sorted(found)}
    if isinstance(last.get("train_loss"), int | float):
        data["train_loss"] = last["train_loss"]  # recorded before the last saved epoch's step
    if (directory / FINAL).exists():
        data.pop("train_loss", None)  # the last file's, not the final weights'
        data |= _final(load_source(directory / FINAL))
    if (directory / INIT).exists():
        data["train_indices"] = _init_split(load_source(directory / INIT))
    if (directory / RESULT).exists():
        merge_result(data, read_result(directory / RESULT))
    return data


def _final(final: Any) -> dict:
    if not isinstance(final, dict) or not isinstance(final.get("model"), dict):
        raise UsageError(f"{FINAL}: not a dict with the final 'model'")
    return {"model": final["model"], **{k: final[k] for k in _FINAL_KEYS if k in final}}


def _init_split(init: Any) -> list[int]:
    """Pair indices a * p + b of init.pth's 'train_data' triples (a, b, p)."""
    triples = init.get("train_data") if isinstance(init, dict) else None
    if not isinstance(triples, list | tuple) or not triples:
        raise UsageError(f"{INIT}: no 'train_data' list of (a, b, p) triples")
    indices = []
    for triple in triples:
        a, b, p = int_list(list(triple), f"{INIT} train_data")
        if not (0 <= a < p and 0 <= b < p):
            raise UsageError(f"{INIT}: train_data holds {tuple(triple)}, not (a, b, p)")
        indices.append(a * p + b)
    return indices


def read_result(path: Path) -> dict:
    """result.json as a dict; UsageError when unreadable or not an object."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable ({exc})") from None
    if not isinstance(value, dict):
        raise UsageError(f"{path}: not a JSON object of curves")
    return value


def merge_result(data: dict, result: dict) -> None:
    """result.json's curves and config into `data`; a curve final.pth also holds must match."""
    if "config" in result:
        data["config"] = result["config"]
    for name, values in result.items():
        key = name if name in CURVE_COLUMNS else _SINGULAR.get(name)
        if key is None or not isinstance(values, list):
            continue
        if key in data and list(data[key]) != values:
            raise UsageError(f"{RESULT}'s {name} differs from {FINAL}'s {key}")
        data[key] = values
