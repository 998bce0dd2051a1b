"""What the study scripts (arch_study.py, group_study.py) tabulate of a trained and analysed
run, and how every study script writes its table.csv and table.md (run them as
`python scripts/<study>.py`, which puts this folder on the import path)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from grokinterp.analysis.analyze import Summary
from grokinterp.storage import store

ACCURACY = 0.99
"""The grokking epoch is the first epoch with this test accuracy (docs/recipes-and-studies.md)."""


def reached(metrics: pd.DataFrame, summary: Summary) -> dict:
    """Epochs trained, the first epoch of 99% test accuracy (None when never) and the final test
    accuracy, from a run's metrics (indexed by epoch)."""
    hit = metrics.index[metrics["test_acc"] >= ACCURACY]
    return {
        "epochs": summary.last_epoch,
        "epoch_99": int(hit[0]) if len(hit) else None,
        "final_test_acc": float(metrics["test_acc"].iloc[-1]),
    }


def circuit(summary: Summary) -> dict:
    """The final circuit: neurons clustered, the clusters (component:neurons), logit FVE, the
    final restricted and test losses."""
    return {
        "neurons_clustered": summary.fve_share,
        "clusters": " ".join(f"{k}:{n}" for k, n in summary.cluster_sizes.items()),
        "logit_fve": summary.logit_fve_final,
        "restricted_loss": summary.final_restricted_loss,
        "test_loss": summary.final_test_loss,
    }


def write_tables(folder: Path, table: pd.DataFrame, markdown: str) -> None:
    """folder/table.csv and folder/table.md, each written atomically; the markdown printed."""
    store.atomic_write(folder / "table.csv", table.to_csv(index=False).encode())
    store.atomic_write(folder / "table.md", markdown.encode())
    print(markdown)
