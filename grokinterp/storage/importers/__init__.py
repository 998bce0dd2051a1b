"""`grokinterp import`: checkpoints saved by other code -> ordinary grokinterp run directories.

IMPORTERS maps each layout name to a function (the loaded file, Options) -> Imported that checks
everything and converts the weights; `import_run` loads the file without running any code in it,
reads a PyTorch Lightning checkpoint as the dict it wraps (`wrappers`), calls the importer,
checks the recorded final train loss against the rebuilt split (`loss_check`) and only then
writes the run directory, atomically, with an import.json of the notes (also returned, for the
command line to print).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from grokinterp.errors import UsageError
from grokinterp.storage.importers import (
    chughtai,
    devinterp,
    export_dir,
    gromov,
    paper,
    per_epoch,
    tl_directory,
    transformer_lens,
    zhong,
)
from grokinterp.storage.importers.common import (
    Imported,
    Options,
    check_fresh_out,
    load_source,
    write_run,
)
from grokinterp.storage.importers.loss_check import compare, train_loss
from grokinterp.storage.importers.wrappers import unwrap_file

IMPORTERS: dict[str, Callable[[dict, Options], Imported]] = {
    "paper": paper.read,
    "per-epoch": paper.read,
    "transformer-lens": transformer_lens.read,
    "transformer-lens-dir": transformer_lens.read,
    "grokinterp-export": export_dir.read,
    "chughtai": chughtai.read,
    "gromov": gromov.read,
    "devinterp": devinterp.read,
    "zhong": zhong.read,
}
DIRECTORY_LOADERS: dict[str, Callable[[Path], dict]] = {
    "per-epoch": per_epoch.load,
    "transformer-lens-dir": tl_directory.load,
    "grokinterp-export": export_dir.load,
    "chughtai": chughtai.load,
    "zhong": zhong.load,
}
"""Layouts whose SOURCE is a directory or a file with a sidecar config: its loader gathers the
files into the dict the layout's importer reads."""

__all__ = ["IMPORTERS", "Options", "import_run"]


def import_run(
    source: str | Path, out_dir: str | Path, layout: str, options: Options | None = None
) -> tuple[Path, list[str]]:
    """Convert the checkpoint file `source` of the given layout into the new run `out_dir`;
    return it with the importer's notes. UsageError (nothing written) on any mismatch."""
    importer = IMPORTERS.get(layout)
    if importer is None:
        raise UsageError(f"unknown layout {layout!r}; choose one of {', '.join(IMPORTERS)}")
    out_dir = Path(out_dir)
    check_fresh_out(out_dir)
    if layout.startswith("transformer-lens") and export_dir.export_folder(Path(source)):
        layout, importer = "grokinterp-export", export_dir.read  # its own config, not TL's
    loader = DIRECTORY_LOADERS.get(layout)
    data, notes = unwrap_file(loader(Path(source)) if loader else load_source(Path(source)))
    if not isinstance(data, dict):
        raise UsageError(f"{source}: holds a {type(data).__name__}, not a dict")
    options = options or Options()
    imported = importer(data, options)
    imported.notes[:0] = notes
    if imported.recorded_train_loss is not None:
        state = imported.checkpoints[-1][1]
        recomputed = train_loss(imported.cfg, state, imported.train_indices)
        note = compare(recomputed, imported.recorded_train_loss, options.allow_loss_mismatch)
        imported.notes += [note] if note else []
    return write_run(imported, out_dir, Path(source), layout), imported.notes
