"""Regenerate the shipped canonical reference run in one command:

    python scripts/make_reference.py            # about 75 min on a 2-core CPU (docs/results.md)

1. trains the `canonical` preset into checkpoints/canonical-seed0/ (resumes a killed run, skips a
   finished one);
2. analyses all of its checkpoints into analyses/canonical-seed0/;
3. copies a compact reference into checkpoints/reference-canonical/ (config, split, metrics, and
   the checkpoints at the detected phase boundaries and the last epoch) and the full analysis into
   analyses/reference-canonical/, pointing at the compact run.

    python scripts/make_reference.py --summary-only   # seconds: no training, no measuring

rewrites only analyses/reference-canonical/summary.json with today's summary rules (format,
phase rule, key components) from the shipped measures table and the compact run's last
checkpoint.

    python scripts/make_reference.py --views-only     # seconds

writes only analyses/reference-canonical/final_views.safetensors (the final model's views that
the report draws) from the compact run's last checkpoint, the other files left byte for byte.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from grokinterp.analysis.analyze import analyze_run, resummarise
from grokinterp.analysis.views import write_final_views
from grokinterp.presets import preset
from grokinterp.storage import store
from grokinterp.storage.analysis_format import SUMMARY_FILE, Summary
from grokinterp.training import batch_state
from grokinterp.training.loop import resume_runs, train_runs

REFERENCE = "reference-canonical"


def ensure_trained(run_dir: Path) -> None:
    if not run_dir.exists():
        # the shipped reference was trained by the eager loop: keep it reproducible bit for bit
        train_runs([preset("canonical")], [run_dir], compile="off")
    elif not batch_state.load_state(run_dir)[2]:
        resume_runs([run_dir], compile="off")


def point_at_compact(analysis_dir: Path) -> None:
    """Make the shipped summary name the compact run by its repository path."""
    raw = json.loads((analysis_dir / SUMMARY_FILE).read_text())
    raw["run_dir"], raw["run_dir_abs"] = f"checkpoints/{REFERENCE}", ""
    (analysis_dir / SUMMARY_FILE).write_text(json.dumps(raw, indent=2))


def export(run_dir: Path, analysis_dir: Path, root: Path) -> None:
    summary = Summary.load(analysis_dir)
    keep = {e for e in summary.phases.values() if e is not None} | {summary.last_epoch}
    compact, compact_analysis = root / "checkpoints" / REFERENCE, root / "analyses" / REFERENCE
    for folder in (compact, compact_analysis):
        shutil.rmtree(folder, ignore_errors=True)
    (compact / store.CHECKPOINT_DIR).mkdir(parents=True)
    for name in (store.CONFIG_FILE, store.SPLIT_FILE, store.METRICS_FILE):
        shutil.copy2(run_dir / name, compact / name)
    for epoch in sorted(keep):
        shutil.copy2(store.checkpoint_path(run_dir, epoch), store.checkpoint_path(compact, epoch))
    shutil.copytree(analysis_dir, compact_analysis)
    point_at_compact(compact_analysis)
    print(f"kept epochs {sorted(keep)} in {compact}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=Path("checkpoints/canonical-seed0"))
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root")
    parser.add_argument("--summary-only", action="store_true", help="re-summarise the shipped one")
    parser.add_argument("--views-only", action="store_true", help="add its final-model views")
    args = parser.parse_args()
    if args.views_only:
        written = write_final_views(
            args.root / "checkpoints" / REFERENCE, args.root / "analyses" / REFERENCE
        )
        print(f"wrote {written} ({written.stat().st_size:,} bytes)")
        return
    if args.summary_only:
        analysis = args.root / "analyses" / REFERENCE
        resummarise(args.root / "checkpoints" / REFERENCE, analysis)
        point_at_compact(analysis)
        return
    ensure_trained(args.run)
    analysis_dir = analyze_run(args.run, args.root / "analyses" / args.run.name).path
    export(args.run, analysis_dir, args.root)


if __name__ == "__main__":
    main()
