"""Size and render time of the HTML report of a canonical-size analysis.

Builds a synthetic analysis with the canonical run's shape (p = 113, d_mlp 512, one checkpoint
every 100 epochs up to 40,000), its final-model views computed from a run directory that holds
only a random-weight final checkpoint, writes the report (from the analysis directory alone),
and opens it in headless Chromium a few times. The page time is measured inside the page
(performance.now() when every plot is drawn, counted from navigation start); the wall time is
that of the whole Chromium process. Targets: 15 MB, 5 s.

    OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/bench_report.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grokinterp import data  # noqa: E402
from grokinterp.models import architecture  # noqa: E402
from grokinterp.presets import preset  # noqa: E402
from grokinterp.report import page as report  # noqa: E402
from grokinterp.storage import store  # noqa: E402
from tests.helpers import (  # noqa: E402
    CHROMIUM,
    chromium,
    drawn_marker,
    instrumented_copy,
    write_fake_analysis,
)

SIZE_TARGET_MB, TIME_TARGET_S = 15.0, 5.0
KEY_FREQUENCIES = [14, 35, 41, 42, 52]  # the paper's


def build(root: Path) -> Path:
    """A canonical-size synthetic analysis directory (and its run directory) under `root`."""
    cfg = preset("canonical")
    run_dir = root / "run"
    store.write_run_files(run_dir, cfg, data.train_indices(cfg))
    store.save_checkpoint(run_dir, cfg, cfg.epochs, architecture(cfg).initial_state_dict())
    epochs = cfg.save_epochs[1:]  # 400 checkpoints
    return write_fake_analysis(root / "canonical-synthetic", run_dir, cfg, epochs, KEY_FREQUENCIES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="Chromium runs (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        analysis = build(root)
        start = time.perf_counter()
        page = report.write_report(analysis, root / "report.html")
        write_s = time.perf_counter() - start
        size_mb = page.stat().st_size / 1e6
        rows = [("file size (MB)", size_mb, SIZE_TARGET_MB)]
        print(f"report written in {write_s:.1f} s (Python): {page.stat().st_size:,} bytes")
        if CHROMIUM.exists():
            checked = instrumented_copy(page, root / "checked.html")
            in_page, wall = [], []
            for i in range(args.repeats):
                start = time.perf_counter()
                dom = chromium(["--dump-dom", checked.as_uri()], root / f"profile{i}", 120)
                wall.append(time.perf_counter() - start)
                marker = drawn_marker(dom)
                assert not marker["errors"] and marker["drawn"] == marker["plots"], marker
                in_page.append(marker["drawn_ms"] / 1000)
            print(
                f"chromium runs: in page {', '.join(f'{t:.2f}' for t in in_page)} s; "
                f"wall {', '.join(f'{t:.2f}' for t in wall)} s; "
                f"{marker['plots']} plots drawn"
            )
            rows.append(
                ("all plots drawn, in page (s, median)", statistics.median(in_page), TIME_TARGET_S)
            )
            rows.append(
                ("chromium process wall (s, median)", statistics.median(wall), TIME_TARGET_S)
            )
        else:
            print(f"{CHROMIUM} missing: render time not measured (apt-get install chromium)")
    print(f"\n| {'measure':38} | {'value':>7} | {'target':>6} | {'ratio':>5} |")
    print(f"| {'-' * 38} | {'-' * 6}: | {'-' * 5}: | {'-' * 4}: |")
    for name, value, target in rows:
        print(f"| {name:38} | {value:7.2f} | {target:6.1f} | {value / target:5.2f} |")


if __name__ == "__main__":
    main()
