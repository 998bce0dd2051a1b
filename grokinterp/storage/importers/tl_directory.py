"""A directory of TransformerLens state dicts, one file per checkpoint -> the TransformerLens
layout's dict, which `transformer_lens.read` then checks and converts.

Layout: DIR/<name><N>.pt, .pth or .safetensors, N the epoch (the last run of digits in the
file name: `checkpoint_100.pt`, `model_ep100.pth`, `100.safetensors`), each file a bare
HookedTransformer state dict (`torch.save(model.state_dict(), path)`,
`safetensors.torch.save_file`), a dict with it under 'model', or either in a wrapper that
`wrappers` takes off. An optional DIR/split.json (a JSON list of train pair indices, or
{"train_indices": [...]}) gives the split; otherwise --split-from or --data-seed with
--train-frac, as for a single file. An optional DIR/result.json gives the curves, read as in the
per-epoch layout (`per_epoch.merge_result`).
"""

from __future__ import annotations

import re
from pathlib import Path

from grokinterp.storage.importers.common import load_source, read_split_json
from grokinterp.storage.importers.folders import numbered_files
from grokinterp.storage.importers.per_epoch import RESULT, merge_result, read_result

_EPOCH = re.compile(r"(\d+)\D*\.\w+$")
SUFFIXES = (".pt", ".pth", ".safetensors")


def load(directory: Path) -> dict:
    """{'checkpoints', 'checkpoint_epochs'[, 'train_indices']} from the directory's files, by
    epoch; UsageError for a file without an epoch in its name, two files of one epoch, or a
    directory without checkpoint files."""
    found = numbered_files(directory, _EPOCH, SUFFIXES, frozenset())
    states = []
    for epoch in sorted(found):
        state = load_source(found[epoch])
        if isinstance(state, dict) and isinstance(state.get("model"), dict):
            state = state["model"]
        states.append(state)
    data = {"checkpoints": states, "checkpoint_epochs": sorted(found)}
    if (directory / "split.json").exists():
        data["train_indices"] = read_split_json(directory / "split.json")
    if (directory / RESULT).exists():
        merge_result(data, read_result(directory / RESULT))
    return data
