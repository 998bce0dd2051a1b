"""What the directory layouts share: finding one checkpoint file per epoch by its name."""

from __future__ import annotations

import re
from pathlib import Path

from grokinterp.errors import UsageError


def numbered_files(
    directory: Path, name: re.Pattern, suffixes: tuple[str, ...], skip: frozenset[str]
) -> dict[int, Path]:
    """{epoch: path} of the files in `directory` with one of `suffixes`, the epoch being the
    first group of `name` matched against the file name; files named in `skip` are left to the
    caller. UsageError for a missing directory, a checkpoint file whose name gives no epoch, two
    files of one epoch, or none at all."""
    if not directory.is_dir():
        raise UsageError(f"{directory}: not a directory of checkpoints")
    found: dict[int, Path] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix not in suffixes or path.name in skip:
            continue
        match = name.search(path.name)
        if match is None:
            raise UsageError(f"{path}: no epoch number in the file name")
        epoch = int(match.group(1))
        if epoch in found:
            raise UsageError(f"{found[epoch].name} and {path.name} both name epoch {epoch}")
        found[epoch] = path
    if not found:
        raise UsageError(f"{directory}: no {' or '.join(suffixes)} checkpoint files")
    return found
