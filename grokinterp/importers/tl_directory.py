"""A directory of TransformerLens state dicts, one file per checkpoint -> the TransformerLens
layout's dict, which `transformer_lens.read` then checks and converts.

Layout: DIR/<name><N>.pt or .pth, N the epoch (the last run of digits in the file name:
`checkpoint_100.pt`, `model_ep100.pth`, `100.pt`), each file a bare HookedTransformer state dict
(`torch.save(model.state_dict(), path)`) or a dict with it under 'model'. An optional
DIR/split.json (a JSON list of train pair indices, or {"train_indices": [...]}) gives the split;
otherwise --split-from or --data-seed with --train-frac, as for a single file.
"""

from __future__ import annotations

import re
from pathlib import Path

from grokinterp.errors import UsageError
from grokinterp.importers.common import load_source, read_split_json

_EPOCH = re.compile(r"(\d+)\D*$")
SUFFIXES = (".pt", ".pth")


def load(directory: Path) -> dict:
    """{'checkpoints', 'checkpoint_epochs'[, 'train_indices']} from the directory's files, by
    epoch; UsageError for a file without an epoch in its name, two files of one epoch, or a
    directory without checkpoint files."""
    if not directory.is_dir():
        raise UsageError(f"{directory}: not a directory of state dicts")
    found: dict[int, Path] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix not in SUFFIXES:
            continue
        match = _EPOCH.search(path.stem)
        if match is None:
            raise UsageError(f"{path}: no epoch number in the file name")
        epoch = int(match.group(1))
        if epoch in found:
            raise UsageError(f"{found[epoch].name} and {path.name} both name epoch {epoch}")
        found[epoch] = path
    if not found:
        raise UsageError(f"{directory}: no .pt or .pth files")
    states = []
    for epoch in sorted(found):
        state = load_source(found[epoch])
        if isinstance(state, dict) and isinstance(state.get("model"), dict):
            state = state["model"]
        states.append(state)
    data = {"checkpoints": states, "checkpoint_epochs": sorted(found)}
    if (directory / "split.json").exists():
        data["train_indices"] = read_split_json(directory / "split.json")
    return data
