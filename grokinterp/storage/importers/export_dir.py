"""A folder written by `grokinterp export` -> the run it came from.

The export's config.json carries, beside the TransformerBridge keywords, a `grokinterp` block
(`grokinterp.storage.export`): the run's whole config (`config`), its split (`split`: train pair
indices and any noisy labels) and the checkpoint's `epoch`. Read back, they rebuild the run exactly:
the same config, the same split, and the weights of model.safetensors bit for bit at that epoch.
An export written before the block held `config` is not one this layout reads (refused).
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import torch

from grokinterp.config import RunConfig
from grokinterp.errors import UsageError
from grokinterp.models import architecture
from grokinterp.storage.importers.common import Imported, Options, load_source

STATE_FILE, CONFIG_FILE, BLOCK = "model.safetensors", "config.json", "grokinterp"


def export_folder(source: Path) -> Path | None:
    """The export folder that `source` (the folder, or its model.safetensors) belongs to, when
    its config.json carries a run config; else None."""
    folder = source if source.is_dir() else source.parent
    if not source.is_dir() and source.name != STATE_FILE:
        return None
    try:
        block = json.loads((folder / CONFIG_FILE).read_text()).get(BLOCK)
    except (OSError, ValueError, AttributeError):
        return None
    return folder if isinstance(block, dict) and "config" in block else None


def load(source: Path) -> dict:
    """{"block": the export's grokinterp block, "state": its tensors} of an export folder."""
    folder = export_folder(Path(source))
    if folder is None:
        raise UsageError(
            f"{source}: not a grokinterp export (a folder whose {CONFIG_FILE} carries the run's "
            f"config under {BLOCK!r}, as `grokinterp export` writes it)"
        )
    block = json.loads((folder / CONFIG_FILE).read_text())[BLOCK]
    return {"block": block, "state": load_source(folder / STATE_FILE)}


def read(data: dict, opts: Options) -> Imported:
    """The run of an export: its config, split and checkpoint. UsageError when a flag is given
    (the export states everything) or the tensors are not the config's model."""
    given = [f.name for f in fields(Options) if getattr(opts, f.name) != f.default]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise UsageError(f"a grokinterp export states its config, split and epoch; drop {flags}")
    block = data["block"]
    try:
        cfg = RunConfig.from_json(json.dumps(block["config"]))
        epoch = int(block["epoch"])
        split = block["split"]
        train = torch.tensor(sorted(int(i) for i in split["train_indices"]), dtype=torch.int64)
        noisy = {int(k): int(v) for k, v in split.get("noisy_labels", {}).items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"the export's {BLOCK!r} block is incomplete ({exc})") from None
    names = architecture(cfg).state_names()
    state = data["state"]
    if sorted(state) != sorted(names):
        raise UsageError(
            f"the export's tensors ({', '.join(sorted(state)[:4])}, ...) are not those of its "
            f"config's model ({', '.join(names[:4])}, ...)"
        )
    notes = [f"a grokinterp export of {block.get('run', 'a run')}: config, split, epoch restored"]
    return Imported(cfg, train, [(epoch, {n: state[n] for n in names})], {}, notes, None, noisy)
