"""metrics.csv I/O over a whole run: the former rewrite of the whole file at every checkpoint
against appending the new rows, timed in the same process.

    python benchmarks/bench_metrics_io.py [--epochs 40000] [--save-every 100,10000]

Times the metrics writer alone on synthetic float64 rows (no training). At each checkpoint the
former writer formats every row so far and atomically replaces the file; `store.append_metrics`
formats and appends only the rows since the previous checkpoint. Both end with the same bytes.
Prints a markdown table: total seconds over the run, the last checkpoint's milliseconds, and the
ratio of the totals.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from grokinterp.presets import preset
from grokinterp.storage import store


def rewrite_whole_file(run_dir: Path, rows: np.ndarray) -> None:
    """The former `store.write_metrics`, the baseline: header and every row, written anew."""
    buffer = io.StringIO()
    buffer.write(",".join(store.METRIC_COLUMNS) + "\n")
    for row in rows:
        buffer.write(f"{int(row[0])}," + ",".join(f"{x:.17g}" for x in row[1:]) + "\n")
    store.atomic_write(run_dir / store.METRICS_FILE, buffer.getvalue().encode())


def time_run(run_dir: Path, rows: np.ndarray, save_epochs: list[int], append: bool):
    """Seconds for all checkpoints and for the last one, and the file written."""
    cfg = preset("small")
    store.write_run_files(run_dir, cfg, torch.arange(10))
    total = last = 0.0
    written = 0
    for epoch in save_epochs:
        start = time.perf_counter()
        if append:
            store.append_metrics(run_dir, rows[written : epoch + 1])
        else:
            rewrite_whole_file(run_dir, rows[: epoch + 1])
        last = time.perf_counter() - start
        total += last
        written = epoch + 1
    return total, last, (run_dir / store.METRICS_FILE).read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=40_000)
    parser.add_argument("--save-every", default="100,10000", help="comma-separated intervals")
    args = parser.parse_args()
    gen = np.random.default_rng(0)
    rows = np.column_stack([np.arange(args.epochs + 1), gen.random((args.epochs + 1, 5))])
    print(f"{args.epochs + 1} metrics rows (float64), files under {tempfile.gettempdir()}\n")
    print("| epochs | save every | checkpoints | rewrite s | append s | rewrite last ms |", end="")
    print(" append last ms | rewrite / append |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for every in (int(x) for x in args.save_every.split(",")):
        save_epochs = preset("small").replace(epochs=args.epochs, save_every=every).save_epochs
        with tempfile.TemporaryDirectory() as folder:
            old, old_last, old_file = time_run(Path(folder) / "old", rows, save_epochs, False)
            new, new_last, new_file = time_run(Path(folder) / "new", rows, save_epochs, True)
        assert old_file == new_file, "the two writers must leave the same file"
        print(
            f"| {args.epochs} | {every} | {len(save_epochs)} | {old:.2f} | {new:.2f} "
            f"| {1000 * old_last:.1f} | {1000 * new_last:.2f} | {old / new:.0f}x |"
        )


if __name__ == "__main__":
    main()
