"""`grokinterp import`: checkpoints saved by other code -> ordinary grokinterp run directories.

IMPORTERS maps each layout name to a function (the loaded file, Options) -> Imported that checks
everything and converts the weights; `import_run` loads the file without running any code in it,
calls the importer and only then writes the run directory, atomically.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from grokinterp.errors import UsageError
from grokinterp.importers import paper, transformer_lens
from grokinterp.importers.common import (
    Imported,
    Options,
    check_fresh_out,
    load_source,
    write_run,
)

IMPORTERS: dict[str, Callable[[dict, Options], Imported]] = {
    "paper": paper.read,
    "transformer-lens": transformer_lens.read,
}

__all__ = ["IMPORTERS", "Options", "import_run"]


def import_run(
    source: str | Path, out_dir: str | Path, layout: str, options: Options | None = None
) -> Path:
    """Convert the checkpoint file `source` of the given layout into the new run `out_dir`."""
    importer = IMPORTERS.get(layout)
    if importer is None:
        raise UsageError(f"unknown layout {layout!r}; choose one of {', '.join(IMPORTERS)}")
    out_dir = Path(out_dir)
    check_fresh_out(out_dir)
    data = load_source(Path(source))
    if not isinstance(data, dict):
        raise UsageError(f"{source}: holds a {type(data).__name__}, not a dict")
    return write_run(importer(data, options or Options()), out_dir)
