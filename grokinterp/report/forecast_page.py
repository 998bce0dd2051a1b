"""The harness's self-contained HTML page (plotly.js inlined once): ROC curves of the indicators
at the stated fraction of the budget, their lead-time distributions, the forecasts against the
actual grokking epochs, and the two tables (grokinterp.prediction.evaluate)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

SHOWN = 8
"""Indicators drawn in the ROC and lead-time figures: the best by held-out AUROC."""


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates of `score >= t` for every distinct t, from (0, 0) to
    (1, 1)."""
    thresholds = np.unique(scores)[::-1]
    pos, neg = max(labels.sum(), 1), max((~labels).sum(), 1)
    tpr = [0.0] + [float((labels & (scores >= t)).sum() / pos) for t in thresholds]
    fpr = [0.0] + [float((~labels & (scores >= t)).sum() / neg) for t in thresholds]
    return np.array(fpr), np.array(tpr)


def write_page(path: Path, result: dict) -> None:
    """Write the evaluation page of `result` (`grokinterp.prediction.evaluate.evaluate`) to path."""
    import plotly.graph_objects as go

    from grokinterp.prediction.evaluate import FRACTION
    from grokinterp.storage.store import atomic_write

    indicators, forecasters = result["indicators"], result["forecasters"]
    predictions, counts, fraction = result["predictions"], result["counts"], FRACTION

    shown = [r for r in indicators if np.isfinite(r["auroc"])][:SHOWN]
    roc = go.Figure(layout={"title": f"ROC at {fraction:.0%} of the budget (held-out runs)"})
    for row in shown:
        fpr, tpr = roc_curve(np.array(row["roc"]), np.array(row["roc_labels"], dtype=bool))
        roc.add_scatter(x=fpr, y=tpr, name=f"{row['indicator']} ({row['auroc']:.2f})")
    roc.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot"}, name="chance")
    roc.update_layout(xaxis_title="false-positive rate", yaxis_title="true-positive rate")
    leads = go.Figure(layout={"title": "Lead time: grokking epoch - alarm epoch (held-out)"})
    for row in shown:
        leads.add_box(y=row["leads"], name=row["indicator"], boxpoints="all")
    leads.update_layout(yaxis_title="epochs", showlegend=False)
    scatter = go.Figure(layout={"title": "Forecast against actual grokking epoch (held-out)"})
    grokked = predictions.dropna(subset=["actual"]) if len(predictions) else None
    for (name, seen), group in (
        grokked.groupby(["forecaster", "seen"], sort=False) if len(predictions) else ()
    ):
        scatter.add_scatter(
            x=group["actual"],
            y=group["predicted"],
            mode="markers",
            name=f"{name}, seen {seen}",
            error_y={
                "type": "data",
                "symmetric": False,
                "array": group["high"] - group["predicted"],
                "arrayminus": group["predicted"] - group["low"],
            },
        )
    top = float(grokked[["actual", "predicted"]].max().max()) if len(predictions) else 1.0
    scatter.add_scatter(x=[0, top], y=[0, top], mode="lines", line={"dash": "dot"}, name="exact")
    scatter.update_layout(xaxis_title="actual epoch", yaxis_title="predicted epoch")
    figures = [
        fig.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False)
        for i, fig in enumerate((roc, leads, scatter))
    ]
    listed = ("leads", "roc", "roc_labels")
    ind = pd.DataFrame([{k: v for k, v in r.items() if k not in listed} for r in indicators])
    facts = ", ".join(f"{k.removeprefix('n_').replace('_', ' ')} {v}" for k, v in counts.items())
    body = (
        "<h1>Predicting grokking: indicators and forecasters</h1>"
        f"<p>Runs: {html.escape(facts)}. Every number is measured on the held-out runs; "
        "definitions in grokinterp.prediction.evaluate.</p>"
        + "".join(figures)
        + "<h2>Indicators</h2>"
        + ind.to_html(index=False, float_format="%.3g")
        + "<h2>Forecasters</h2>"
        + (
            pd.DataFrame(forecasters).to_html(index=False, float_format="%.3g")
            if forecasters
            else "<p>Not fitted: too few grokking calibration runs.</p>"
        )
    )
    head = "<!doctype html><html><head><meta charset='utf-8'><title>predict</title></head>"
    page = f"{head}<body>{body}</body></html>"
    atomic_write(path, page.encode())
