"""The common wrappers around a state dict, taken off before a layout reads it.

- PyTorch Lightning's checkpoint dict holds the LightningModule's weights under 'state_dict',
  next to 'epoch', 'global_step', 'optimizer_states' (one optimizer state dict per optimizer),
  'lr_schedulers', 'callbacks', 'loops' and 'hyper_parameters'. It is read as the file
  {'model': its state_dict, 'epoch': its epoch, 'optimizer': its one optimizer state}.
- A wrapping module prefixes every key of the state dict it saves: `_orig_mod.` (torch.compile),
  `module.` (DistributedDataParallel, DataParallel), `model.` (an attribute of a wrapping module,
  as in a LightningModule holding `self.model`). A prefix is stripped only when every tensor key
  carries it, and again while one does (`_orig_mod.module.`); a key is never renamed onto another.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from grokinterp.errors import UsageError

PREFIXES = {
    "_orig_mod.": "torch.compile",
    "module.": "DistributedDataParallel",
    "model.": "a wrapping module",
}
_LIGHTNING = "state_dict"
_LISTS = ("checkpoints", "state_dicts")
_LIGHTNING_NOTE = "the weights read from the file's 'state_dict' (as PyTorch Lightning saves them)"


def unwrap_file(data: Any) -> tuple[Any, list[str]]:
    """The loaded file, a Lightning checkpoint read as {'model', 'epoch', 'optimizer'} (with a
    note); the prefixes of the state dicts in it are left to `unwrap_state`."""
    if isinstance(data, dict) and _is_lightning(data):
        return _from_lightning(data), [_LIGHTNING_NOTE]
    return data, []


def unwrap_state(state: Any) -> tuple[Any, list[str]]:
    """One checkpoint's state dict out of a Lightning dict and its wrapper prefixes."""
    notes = []
    if isinstance(state, dict) and _is_lightning(state):
        state, notes = state[_LIGHTNING], [_LIGHTNING_NOTE]
    if not isinstance(state, dict):
        return state, notes
    state, stripped = strip_prefixes(state)
    return state, notes + stripped


def _is_lightning(data: dict) -> bool:
    return isinstance(data.get(_LIGHTNING), dict) and not any(
        key in data for key in ("model", *_LISTS)
    )


def _from_lightning(data: dict) -> dict:
    out: dict[str, Any] = {"model": data[_LIGHTNING]}
    if "epoch" in data:
        out["epoch"] = data["epoch"]
    optimizers = data.get("optimizer_states")
    if isinstance(optimizers, list | tuple) and len(optimizers) > 1:
        raise UsageError(
            f"the Lightning checkpoint holds {len(optimizers)} optimizers; grokinterp's runs "
            "train with one AdamW"
        )
    if isinstance(optimizers, list | tuple) and optimizers:
        out["optimizer"] = optimizers[0]
    return out


def strip_prefixes(state: dict) -> tuple[dict, list[str]]:
    """`state` without the known prefixes that every one of its tensor keys carries, outermost
    first; with a note naming them."""
    stripped = []
    while True:
        tensors = [key for key, value in state.items() if isinstance(value, Tensor)]
        prefix = next(
            (p for p in PREFIXES if tensors and all(str(key).startswith(p) for key in tensors)),
            None,
        )
        if prefix is None:
            break
        renamed = {(k[len(prefix) :] if k in tensors else k): v for k, v in state.items()}
        if len(renamed) != len(state):
            break  # stripping would merge two keys: leave the names as they are
        state = renamed
        stripped.append(prefix)
    if not stripped:
        return state, []
    names = ", ".join(f"'{p}' ({PREFIXES[p]})" for p in stripped)
    return state, [f"the key prefix {names} stripped from the state dict"]


def key_list(mapping: dict, limit: int = 6) -> str:
    """Some of the mapping's keys, for a refusal: 'a, b, c, ... (9 in all)'."""
    keys = [str(key) for key in mapping]
    if not keys:
        return "no keys"
    shown = ", ".join(keys[:limit])
    return shown if len(keys) <= limit else f"{shown}, ... ({len(keys)} in all)"


def names_hint(state: dict, missing: list[str], required: set[str]) -> str:
    """Why a state dict missing some `required` names may not fit: a prefix left on its keys, a
    wrong --layout, or no layout of grokinterp at all."""
    for name in missing:
        prefixed = next((str(k) for k in state if str(k).endswith(f".{name}")), None)
        if prefixed is not None:
            return (
                f"its keys carry the prefix '{prefixed[: -len(name)]}', which is not stripped: "
                f"only {', '.join(PREFIXES)} are, when every tensor key carries one"
            )
    if set(state) & required:
        return "is --layout right?"
    return "no layout of grokinterp fits these names"
