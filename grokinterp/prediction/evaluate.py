"""Judge the early-warning indicators and the forecasters on one sweep (the prediction harness).

Runs are split by seed: the lower half of the sweep's seeds calibrate (orient each indicator,
choose its alarm threshold, fit the forecasters), the upper half is held out and every number
below is measured on it alone:

- AUROC (Mann-Whitney U / (n_pos n_neg), scipy.stats) of an indicator's value at the last
  checkpoint at or before FRACTION of the budget, separating the runs that grok later within the
  budget from those that never do; runs already grokked by then are left out.
- Alarm: the first checkpoint at or after memorisation where the oriented indicator reaches the
  threshold that maximises (detections - false alarms) / runs on the calibration runs (Youden's
  J). Detection rate: grokking runs alarmed before their grokking epoch; lead time: grokking
  epoch - alarm epoch of those; false-alarm rate: non-grokking runs alarmed at all.
- Forecasters: median absolute percentage error |predicted - actual| / actual of the grokking
  epoch of the held-out runs that grok, seeing each run up to the end of memorisation and up to
  several fractions of the budget (runs already grokked by then are left out). An overdue
  forecast (its epoch at or before the epoch seen; `grokinterp forecast` gives none) is judged
  as grokking at once: its epoch and interval raised to the epoch seen; `overdue` is the share
  of forecasts that were.
Every interval is a 95% percentile bootstrap over runs (scipy.stats.bootstrap, 2,000
resamples, seed 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from grokinterp.prediction import forecast

FRACTION = 0.25
SEEN = ("memorisation", 0.1, 0.25, 0.5)
"""Where the forecasters are judged: the first checkpoint at or after memorisation, and the last
checkpoint at or before these fractions of the budget."""
LOOK_AHEAD = ("restricted_loss", "excluded_loss")
"""Measures computed with the last checkpoint's key frequencies: future information."""
BASELINES = ("weight_norm", "train_loss")
PUBLISHED = {"spectral_entropy": ("below", 0.61)}
"""A fixed published threshold to judge as well: Truong et al. 2026's 0.61, crossed downwards."""
BOOTSTRAP = {"n_resamples": 2000, "method": "percentile", "confidence_level": 0.95}


@dataclass
class Record:
    """One run of the sweep with its indicator table."""

    name: str
    seed: int
    lr_wd: float
    epochs: int
    metrics: pd.DataFrame
    table: pd.DataFrame
    t_grok: int | None = field(init=False)
    """The grokking epoch (test accuracy >= 99%), None when the run never groks."""
    t_mem: int | None = field(init=False)
    """The end of memorisation (train accuracy >= 99%), None when it never memorises."""

    def __post_init__(self) -> None:
        self.t_grok = forecast.grok_epoch(self.metrics)
        self.t_mem = forecast.memorisation_epoch(self.metrics)


def collect(sweep: Path, progress: bool = False) -> list[Record]:
    """Every finished run of a sweep folder, with its indicators (read from
    analyses/<run>/indicators.csv when it covers the run's last checkpoint, else computed, with
    Nanda et al.'s measures joined from the analysis, and written there)."""
    from grokinterp.prediction.indicators.table import run_indicators, with_measures
    from grokinterp.progress import Progress
    from grokinterp.storage import sweep_dir
    from grokinterp.storage.analysis_format import (
        INDICATORS_FILE,
        load_indicators,
        write_indicators,
    )
    from grokinterp.storage.run import open_run

    names = sorted(p.parent.name for p in (Path(sweep) / sweep_dir.RUNS).glob("*/config.json"))
    records = []
    bar = Progress(len(names), enabled=progress, unit="run")
    for i, name in enumerate(names):
        run = open_run(sweep_dir.run_dir(sweep, name))
        out = sweep_dir.analysis_dir(sweep, name)
        table = load_indicators(out) if (out / INDICATORS_FILE).exists() else None
        if table is None or int(table["epoch"].iloc[-1]) != run.epochs[-1]:
            table = with_measures(run_indicators(run), out)
            write_indicators(out, table)
        cfg = run.config
        records.append(
            Record(name, cfg.seed, cfg.lr * cfg.weight_decay, cfg.epochs, run.metrics(), table)
        )
        bar.update(i + 1, lambda: name)  # noqa: B023
    bar.close(lambda: f"{len(names)} runs")
    return records


def split(records: list[Record]) -> tuple[list[Record], list[Record]]:
    """(calibration, held out): the lower and upper half of the sorted distinct seeds."""
    seeds = sorted({r.seed for r in records})
    cut = seeds[: max(1, len(seeds) // 2)]
    return [r for r in records if r.seed in cut], [r for r in records if r.seed not in cut]


def candidates(records: list[Record]) -> list[str]:
    """The indicator columns to judge: every non-metric column the tables share."""
    skip = {"epoch", "train_acc", "test_acc", "test_loss"}
    shared = set.intersection(*(set(r.table.columns) for r in records))
    return [c for c in records[0].table.columns if c in shared and c not in skip]


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for binary `labels`: the Mann-Whitney U of the
    positives over n_pos n_neg, from average ranks (ties count half; scipy.stats.rankdata); NaN
    unless both classes are present, or when a score is NaN."""
    from scipy import stats

    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if not n_pos or not n_neg or np.isnan(scores).any():
        return float("nan")
    ranks = stats.rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _ci(statistic, *samples) -> tuple[float, float]:
    """95% bootstrap interval of statistic(*samples) over paired resamples (NaN, NaN when the
    statistic is undefined on the data or there are fewer than 3 samples)."""
    from scipy import stats

    if len(samples[0]) < 3 or not np.isfinite(statistic(*samples)):
        return float("nan"), float("nan")
    result = stats.bootstrap(
        samples, statistic, paired=True, vectorized=False, random_state=0, **BOOTSTRAP
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def value_at(record: Record, column: str, epoch: float) -> float:
    """The column's value at the last checkpoint at or before `epoch` (NaN before the first)."""
    rows = record.table[record.table["epoch"] <= epoch]
    return float(rows[column].iloc[-1]) if len(rows) else float("nan")


def at_fraction(records: list[Record], column: str, fraction: float):
    """(scores, labels) at `fraction` of each run's budget, over the runs not grokked by then;
    label: the run groks within its budget."""
    kept = [r for r in records if r.t_grok is None or r.t_grok > fraction * r.epochs]
    scores = np.array([value_at(r, column, fraction * r.epochs) for r in kept])
    labels = np.array([r.t_grok is not None for r in kept], dtype=bool)
    return scores, labels


def running_peak(record: Record, column: str, sign: float) -> tuple[np.ndarray, np.ndarray]:
    """The checkpoint epochs from memorisation on (none for a run that never memorises) and the
    running maximum of the oriented indicator sign * value there (NaN never raises it)."""
    t_mem = record.t_mem if record.t_mem is not None else record.epochs + 1
    rows = record.table[record.table["epoch"] >= t_mem]
    oriented = np.nan_to_num(sign * rows[column].to_numpy(dtype=np.float64), nan=-np.inf)
    return rows["epoch"].to_numpy(), np.maximum.accumulate(oriented) if len(rows) else oriented


def alarm_epoch(peak: tuple[np.ndarray, np.ndarray], threshold: float) -> int | None:
    """The first checkpoint of a `running_peak` where the oriented indicator reaches
    `threshold`, or None."""
    epochs, values = peak
    at = int(np.searchsorted(values, threshold, side="left"))
    return int(epochs[at]) if at < len(values) else None


def _outcomes(records, peaks, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per run: grokking run, alarmed (before grokking for a grokking run; at all otherwise),
    lead epochs (NaN unless a grokking run alarmed before grokking)."""
    groks, alarmed, lead = [], [], []
    for record, peak in zip(records, peaks, strict=True):
        alarm = alarm_epoch(peak, threshold)
        groks.append(record.t_grok is not None)
        if record.t_grok is None:
            alarmed.append(alarm is not None)
            lead.append(float("nan"))
        else:
            early = alarm is not None and alarm < record.t_grok
            alarmed.append(early)
            lead.append(float(record.t_grok - alarm) if early else float("nan"))
    return np.array(groks, dtype=bool), np.array(alarmed, dtype=bool), np.array(lead)


def choose_threshold(records: list[Record], column: str, sign: float) -> float:
    """The threshold maximising detection rate - false-alarm rate on `records` (Youden's J; the
    highest such threshold on ties), among 101 quantiles of the oriented values the runs take
    from memorisation on (inf when they take none)."""
    peaks = [running_peak(r, column, sign) for r in records]
    values = np.concatenate([p[1] for p in peaks])
    values = values[np.isfinite(values)]
    if not len(values):
        return float("inf")
    best, best_j = float("inf"), -np.inf
    for threshold in np.quantile(values, np.linspace(0, 1, 101))[::-1]:
        groks, alarmed, _ = _outcomes(records, peaks, threshold)
        j = (alarmed[groks].mean() if groks.any() else 0.0) - (
            alarmed[~groks].mean() if (~groks).any() else 0.0
        )
        if j > best_j:
            best, best_j = float(threshold), j
    return best


def judge_indicator(calibration, held_out, column: str, fixed=None) -> dict:
    """One row of the indicator table: orientation and threshold from `calibration` (or the
    `fixed` (direction, threshold) of a published rule), every number on `held_out`."""
    if fixed is None:
        cal_auc = auroc(*at_fraction(calibration, column, FRACTION))
        sign = -1.0 if cal_auc < 0.5 else 1.0
        threshold = choose_threshold(calibration, column, sign)
        label = column
    else:
        sign = -1.0 if fixed[0] == "below" else 1.0
        threshold = sign * fixed[1]
        label = f"{column} {'<' if sign < 0 else '>'} {fixed[1]} (published)"
    scores, labels = at_fraction(held_out, column, FRACTION)
    auc = auroc(sign * scores, labels)
    auc_ci = _ci(lambda s, y: auroc(s, y.astype(bool)), sign * scores, labels.astype(float))
    peaks = [running_peak(r, column, sign) for r in held_out]
    groks, alarmed, lead = _outcomes(held_out, peaks, threshold)
    leads = lead[np.isfinite(lead)]
    alarmed = alarmed.astype(float)
    false = alarmed[~groks]
    return {
        "indicator": label,
        "look_ahead": column in LOOK_AHEAD,
        "baseline": column in BASELINES,
        "direction": "higher" if sign > 0 else "lower",
        "auroc": auc,
        "auroc_low": auc_ci[0],
        "auroc_high": auc_ci[1],
        "n_grok": int(labels.sum()),
        "n_no_grok": int((~labels).sum()),
        "threshold": sign * threshold,
        "detection_rate": float(alarmed[groks].mean()) if groks.any() else float("nan"),
        "median_lead": float(np.median(leads)) if len(leads) else float("nan"),
        **dict(zip(("lead_low", "lead_high"), _ci(np.median, leads), strict=True)),
        "false_alarm_rate": float(false.mean()) if len(false) else float("nan"),
        **dict(zip(("false_alarm_low", "false_alarm_high"), _ci(np.mean, false), strict=True)),
        "leads": leads.tolist(),
        "roc": (sign * scores).tolist(),
        "roc_labels": labels.tolist(),
    }


def seen_epoch(record: Record, seen) -> int | None:
    """The epoch a forecaster sees a run up to at `seen` (SEEN), or None when the run has not
    memorised by then or has grokked already."""
    table = record.table
    if seen == "memorisation":
        if record.t_mem is None:
            return None
        after = table[table["epoch"] >= record.t_mem]["epoch"]
        epoch = int(after.iloc[0]) if len(after) else None
    else:
        before = table[table["epoch"] <= seen * record.epochs]["epoch"]
        epoch = int(before.iloc[-1]) if len(before) else None
    if epoch is None or record.t_mem is None or epoch < record.t_mem:
        return None
    if record.t_grok is not None and record.t_grok <= epoch:
        return None
    return epoch


def observe(record: Record, epoch: int) -> forecast.Observed:
    return forecast.observe(record.lr_wd, record.metrics.loc[:epoch], record.table, epoch)


def calibration_points(records: list[Record]) -> list[tuple[forecast.Observed, int | None]]:
    """Every (Observed at a checkpoint from memorisation until grokking or the end, grokking
    epoch or None) of the runs that memorise (the first point at memorisation)."""
    points = []
    for r in records:
        start = seen_epoch(r, "memorisation")
        if start is None:
            continue
        end = r.t_grok if r.t_grok is not None else r.epochs + 1
        for epoch in r.table["epoch"]:
            if start <= epoch < end:
                points.append((observe(r, int(epoch)), r.t_grok))
    return points


def judge_forecasters(held_out: list[Record], constants: dict) -> tuple[list[dict], pd.DataFrame]:
    """The forecasters' rows (MdAPE with CI, share overdue and grok / no-grok accuracy per SEEN
    point) and every prediction (one row per run, point and forecaster)."""
    predictions = []
    for r in held_out:
        for seen in SEEN:
            epoch = seen_epoch(r, seen)
            if epoch is None:
                continue
            obs = observe(r, epoch)
            for name, forecaster in forecast.FORECASTERS.items():
                f = forecaster(obs, constants, r.epochs)
                judged = (max(value, epoch) for value in (f.epoch, f.low, f.high))
                predictions.append(
                    {
                        "run": r.name,
                        "seen": str(seen),
                        "seen_epoch": epoch,
                        "forecaster": name,
                        **dict(zip(("predicted", "low", "high"), judged, strict=True)),
                        "overdue": f.overdue,
                        "predicts_grok": f.groks,
                        "actual": r.t_grok,
                    }
                )
    table = pd.DataFrame(predictions)
    rows = []
    for (name, seen), group in table.groupby(["forecaster", "seen"], sort=False):
        grokked = group.dropna(subset=["actual"])
        ape = (np.abs(grokked["predicted"] - grokked["actual"]) / grokked["actual"]).to_numpy()
        low, high = _ci(np.median, ape)
        rows.append(
            {
                "forecaster": name,
                "seen": seen,
                "n_runs": len(group),
                "n_grok": len(grokked),
                "overdue": float(group["overdue"].mean()),
                "mdape": float(np.median(ape)) if len(ape) else float("nan"),
                "mdape_low": low,
                "mdape_high": high,
                "within_80": float(
                    (
                        (grokked["low"] <= grokked["actual"])
                        & (grokked["actual"] <= grokked["high"])
                    ).mean()
                ),
                "grok_call_accuracy": float(
                    (group["predicts_grok"] == group["actual"].notna()).mean()
                ),
            }
        )
    return rows, table


TABLE_FILE, PAGE_FILE, CONSTANTS_FILE = "predict-table.csv", "predict-report.html", "constants.json"


def evaluate(sweep: Path, out: Path, progress: bool = False) -> dict:
    """The whole harness on a sweep folder: write OUT/predict-table.csv (one row per indicator,
    then one per forecaster and point seen) and OUT/constants.json (the forecasters fitted on the
    calibration runs, the shipped file's format). Returns {"indicators": rows, "forecasters": rows,
    "predictions": table, "constants": dict, "counts": {"n_runs": ...}, "n_runs": ...}; the page
    is `grokinterp.report.forecast_page.write_page(OUT / PAGE_FILE, result)`. With fewer than 2
    grokking calibration runs the forecasters are not fitted: no forecaster rows, and constants.json
    says why under "not_fitted"."""
    import json

    from grokinterp.storage.store import atomic_write

    records = collect(sweep, progress)
    calibration, held_out = split(records)
    indicators = [judge_indicator(calibration, held_out, c) for c in candidates(records)]
    for column, rule in PUBLISHED.items():
        if column in candidates(records):
            indicators.append(judge_indicator(calibration, held_out, column, rule))
    indicators.sort(key=lambda row: -np.nan_to_num(row["auroc"], nan=-1))
    seeds = sorted({r.seed for r in calibration})
    try:
        constants = forecast.fit_constants(
            calibration_points(calibration), f"{Path(sweep).name}, calibration seeds {seeds}"
        )
    except ValueError as exc:  # too few grokking calibration runs: indicators only
        constants, forecasters, predictions = {"not_fitted": str(exc)}, [], pd.DataFrame()
    else:
        forecasters, predictions = judge_forecasters(held_out, constants)
    out.mkdir(parents=True, exist_ok=True)
    listed = ("leads", "roc", "roc_labels")
    rows = [
        {"kind": "indicator"} | {k: v for k, v in r.items() if k not in listed} for r in indicators
    ]
    rows += [{"kind": "forecaster"} | r for r in forecasters]
    atomic_write(
        out / TABLE_FILE, pd.DataFrame(rows).to_csv(index=False, float_format="%.6g").encode()
    )
    atomic_write(out / CONSTANTS_FILE, (json.dumps(constants, indent=1) + "\n").encode())
    counts = {
        "n_runs": len(records),
        "n_calibration": len(calibration),
        "n_held_out": len(held_out),
        "n_grok": sum(r.t_grok is not None for r in records),
    }
    return {
        "indicators": indicators,
        "forecasters": forecasters,
        "predictions": predictions,
        "constants": constants,
        "counts": counts,
        **counts,
    }
