"""The sweep table: one row per run, from its run directory and its analysis.

    run, sweep_group, status, report    name, batch, finished / unfinished / failed /
                                        not started, relative path of its report ("" if none)
    arm                                 the spec's arm the run belongs to ("" without arms)
    <every RunConfig field>             the run's config
    epochs_trained                      the last epoch in metrics.csv
    epoch_train_99, epoch_test_99       first epoch with train (test) accuracy >= 0.99, from
                                        metrics.csv (empty when never reached)
    epoch_test_loss_1, epoch_test_loss_3e-6
                                        first epoch with test loss < 1 and < 3e-6 nats, the
                                        thresholds of Nanda et al.'s train-fraction sweep
    final_train_acc, final_test_acc     accuracies of the last metrics row
    memorization_end, circuit_formation_end, cleanup_end    the analysis's phase boundaries
    key_components, n_key_components    the key frequencies (space-separated) and their number
    final_train_loss, final_test_loss, final_restricted_loss, final_excluded_loss,
    logit_fve_final, fve_share, unexplained_neurons         from the analysis summary

Written as SWEEP/sweep-table.csv and, when pyarrow is installed (the `parquet` extra),
SWEEP/sweep-table.parquet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from grokinterp.config import RunConfig
from grokinterp.errors import UsageError
from grokinterp.storage import store, sweep_dir

ACCURACY = 0.99
TEST_LOSSES = {"epoch_test_loss_1": 1.0, "epoch_test_loss_3e-6": 3e-6}
"""Nanda et al.'s train-fraction sweep reads the epochs to test loss < 1 and < 3e-6."""
SUMMARY_VALUES = (
    "final_train_loss",
    "final_test_loss",
    "final_restricted_loss",
    "final_excluded_loss",
    "logit_fve_final",
    "fve_share",
    "unexplained_neurons",
)
PHASES = ("memorization_end", "circuit_formation_end", "cleanup_end")
EPOCH_COLUMNS = ("epochs_trained", "epoch_train_99", "epoch_test_99", *TEST_LOSSES, *PHASES)
EPOCH_COLUMNS += ("n_key_components", "unexplained_neurons")


def _first_epoch(metrics: np.ndarray, reached: np.ndarray) -> int | None:
    """The epoch of the first row where `reached` (bool per metrics row) holds."""
    rows = np.flatnonzero(reached)
    return int(metrics[rows[0], 0]) if len(rows) else None


def _status(run_dir: Path, failed: set[str], name: str) -> str:
    from grokinterp.training import batch_state

    try:
        if (group := batch_state.status(run_dir)) is not None and group.finished:
            return "finished"
    except UsageError:  # a damaged group: not finished
        pass
    if name in failed:
        return "failed"
    return "unfinished" if (run_dir / store.CONFIG_FILE).exists() else "not started"


def run_row(sweep: Path, name: str, cfg: RunConfig, group: str, failed: set[str]) -> dict:
    """One row of the table (see the module docstring)."""
    from grokinterp.storage.analysis_format import Summary

    run_dir = sweep_dir.run_dir(sweep, name)
    page = sweep_dir.report_path(sweep, name)
    row: dict = {
        "run": name,
        "sweep_group": group,
        "status": _status(run_dir, failed, name),
        "report": page.relative_to(sweep).as_posix() if page.exists() else "",
    }
    row |= {k: v for k, v in cfg.to_dict().items() if k != "format_version"}
    metrics = store.read_metrics_array(run_dir) if run_dir.is_dir() else np.empty((0, 6))
    columns = store.METRIC_COLUMNS
    if len(metrics):
        row["epochs_trained"] = int(metrics[-1, 0])
        accuracy = {c: metrics[:, columns.index(c)] >= ACCURACY for c in ("train_acc", "test_acc")}
        row["epoch_train_99"] = _first_epoch(metrics, accuracy["train_acc"])
        row["epoch_test_99"] = _first_epoch(metrics, accuracy["test_acc"])
        test_loss = metrics[:, columns.index("test_loss")]
        row |= {k: _first_epoch(metrics, test_loss < v) for k, v in TEST_LOSSES.items()}
        row["final_train_acc"] = float(metrics[-1, columns.index("train_acc")])
        row["final_test_acc"] = float(metrics[-1, columns.index("test_acc")])
    try:
        summary = Summary.load(sweep_dir.analysis_dir(sweep, name))
    except UsageError:
        summary = None
    if summary is not None:
        row |= {phase: summary.phases.get(phase) for phase in PHASES}
        row["key_components"] = " ".join(map(str, summary.key_components))
        row["n_key_components"] = len(summary.key_components) if summary.basis else None
        row |= {key: getattr(summary, key) for key in SUMMARY_VALUES}
    return row


COLUMN_ORDER = (
    "run",
    "arm",
    "sweep_group",
    "status",
    *(f for f in RunConfig.__dataclass_fields__),
    "epochs_trained",
    "epoch_train_99",
    "epoch_test_99",
    *TEST_LOSSES,
    "final_train_acc",
    "final_test_acc",
    *PHASES,
    "key_components",
    "n_key_components",
    *SUMMARY_VALUES,
    "report",
)


def sweep_table(sweep: str | Path) -> pd.DataFrame:
    """Every run of the sweep's plan (then any other run directory under SWEEP/runs/)."""
    sweep = Path(sweep)
    plan = sweep_dir.read_plan(sweep)
    groups = {run["name"]: run["group"] for run in plan["runs"]}
    configs = dict(plan["configs"])
    runs_folder = sweep / sweep_dir.RUNS
    extra = sorted(
        p.name
        for p in (runs_folder.iterdir() if runs_folder.is_dir() else [])
        if p.name not in configs and (p / store.CONFIG_FILE).exists()
    )
    for name in extra:
        configs[name] = store.read_config(runs_folder / name)
    failed = {run for f in sweep_dir.read_failures(sweep).values() for run in f.get("runs", [])}
    arms = {run["name"]: run.get("arm", "") for run in plan["runs"]}
    rows = [
        run_row(sweep, name, cfg, groups.get(name, ""), failed) | {"arm": arms.get(name, "")}
        for name, cfg in configs.items()
    ]
    table = pd.DataFrame(rows)
    for column in COLUMN_ORDER:
        if column not in table:
            table[column] = None
    table = table[list(COLUMN_ORDER)]
    for column in EPOCH_COLUMNS:
        table[column] = pd.array(
            [None if v is None or pd.isna(v) else int(v) for v in table[column]], dtype="Int64"
        )
    for column in ("arm", "key_components", "report"):
        table[column] = table[column].fillna("").astype(str)
    return table


def has_pyarrow() -> bool:
    """Whether pandas can write Parquet here (through pyarrow, the `parquet` extra)."""
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def write_table(sweep: str | Path) -> tuple[pd.DataFrame, list[Path], str]:
    """Write the CSV (and Parquet, when pyarrow is there); return the table, the files written
    and a note on what was left out."""
    sweep = Path(sweep)
    table = sweep_table(sweep)
    csv = sweep / sweep_dir.TABLE_CSV
    store.atomic_write(csv, table.to_csv(index=False).encode())
    written, note = [csv], ""
    if not has_pyarrow():
        note = (
            f"{sweep_dir.TABLE_PARQUET} not written: Parquet needs pyarrow, "
            "pip install 'grokinterp[parquet]'"
        )
    else:
        import io

        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        store.atomic_write(sweep / sweep_dir.TABLE_PARQUET, buffer.getvalue())
        written.append(sweep / sweep_dir.TABLE_PARQUET)
    return table, written, note
