"""Issue 17's studies of interventions on the grokking delay, from their sweeps: one CSV and one
self-contained plotly page each.

    grokinterp sweep docs/sweeps/interventions/ab.toml --out sweeps/interventions-ab
    python scripts/intervention_study.py ab            # A/B: every arm against tuned AdamW
    python scripts/intervention_study.py norm-delay    # the same sweep's AdamW runs
    python scripts/intervention_study.py stablemax     # sweeps/interventions-stablemax
    python scripts/intervention_study.py temperature   # sweeps/interventions-temperature

Reads the sweep's table (grokinterp.sweep.table) and each run's measures
(SWEEP/analyses/<run>/measures.csv) and writes analyses/interventions-<study>/table.csv,
table.md (the table docs/recipes-and-studies.md links) and report.html (plotly.js inlined). The
grokking epoch is the first epoch with 99% test accuracy (metrics.csv, every epoch); a run that
never gets there is counted as "never" (+inf, censored at the budget), never dropped
(grokinterp.sweep.stats).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from study_rows import write_tables

from grokinterp.storage import store
from grokinterp.storage.analysis_format import load_measures
from grokinterp.sweep import stats
from grokinterp.sweep.table import sweep_table

SWEEPS = {"ab": "ab", "norm-delay": "ab", "stablemax": "stablemax", "temperature": "temperature"}
CONFIDENCE = 0.7
"""With 3 seeds the order-statistic interval is [min, max], of exact coverage 0.75."""
CAUSES = (
    ("test_acc", "test accuracy"),
    ("weight_norm", "weight norm (sum of squares)"),
    ("logit_margin", "logit margin (correct - mean)"),
    ("logit_std", "logit spread (std over classes)"),
    ("softmax_collapse", "float32 softmax-collapse share"),
    ("update_cos", "cos(update, weights) per interval"),
)
DEFAULT = (0.01, 1.0)
"""The small preset's AdamW setting (lr, weight decay): the untuned baseline."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", choices=sorted(SWEEPS))
    parser.add_argument("--sweep", type=Path, help="default: sweeps/interventions-<spec>")
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root")
    args = parser.parse_args()
    sweep = args.sweep or args.root / "sweeps" / f"interventions-{SWEEPS[args.study]}"
    runs = load_runs(sweep)
    table, fig = STUDIES[args.study](runs, sweep)
    out = args.root / "analyses" / f"interventions-{args.study}"
    out.mkdir(parents=True, exist_ok=True)
    html = fig.to_html(include_plotlyjs=True, full_html=True)
    store.atomic_write(out / "report.html", html.encode())
    write_tables(out, table, markdown(table))


# ---- reading -------------------------------------------------------------------------------------
def load_runs(sweep: Path) -> pd.DataFrame:
    """One row per finished run: arm, lr, weight_decay, seed, budget (epochs), t_mem and
    t_grok (first epoch of 99% train and test accuracy, inf = never), final test accuracy."""
    table = sweep_table(sweep)
    table = table[table["status"] == "finished"].copy()
    table["t_grok"] = stats.grok_epochs(table["epoch_test_99"].tolist())
    table["t_mem"] = stats.grok_epochs(table["epoch_train_99"].tolist())
    table["budget"] = table["epochs"].astype(int)
    columns = ["run", "arm", "lr", "weight_decay", "seed", "budget", "t_mem", "t_grok"]
    return table[[*columns, "final_test_acc"]].reset_index(drop=True)


def measures(sweep: Path, run: str) -> pd.DataFrame:
    return load_measures(sweep / "analyses" / run)


def median_curves(sweep: Path, runs: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, median over the runs) of one measures column; the runs share checkpoints."""
    frames = [measures(sweep, run).set_index("epoch")[column] for run in runs["run"]]
    joined = pd.concat(frames, axis=1)
    return joined.index.to_numpy(), joined.median(axis=1).to_numpy()


# ---- the studies ---------------------------------------------------------------------------------
def settings(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (arm, lr, weight decay): the grokking epochs' median and interval."""
    rows = []
    for (arm, lr, wd), group in runs.groupby(["arm", "lr", "weight_decay"], sort=False):
        interval = stats.median_interval(group["t_grok"].to_numpy(), CONFIDENCE)
        rows.append(
            {
                "arm": arm,
                "lr": lr,
                "weight_decay": wd,
                "runs": interval.n,
                "grokked": interval.grokked,
                "budget": int(group["budget"].max()),
                "median": interval.median,
                "low": interval.low,
                "high": interval.high,
                "median_t_mem": float(np.median(group["t_mem"])),
                "epochs": " ".join(epoch_text(t) for t in group["t_grok"]),
                "median_final_test_acc": float(group["final_test_acc"].median()),
            }
        )
    return pd.DataFrame(rows)


def setting_key(row) -> tuple:
    return (row["arm"], float(row["lr"]), float(row["weight_decay"]))


def ab(runs: pd.DataFrame, sweep: Path) -> tuple[pd.DataFrame, go.Figure]:
    """Every arm at every setting it ran, its best setting marked, against AdamW tuned on the
    grid (its best setting) and at the preset's default."""
    table = settings(runs)
    samples = {setting_key(r): runs_of(runs, setting_key(r))["t_grok"] for _, r in table.iterrows()}
    best = {
        arm: stats.best_setting({k: v for k, v in samples.items() if k[0] == arm})
        for arm in table["arm"].unique()
    }
    table["best_of_arm"] = [setting_key(r) == best[r["arm"]] for _, r in table.iterrows()]
    tuned = interval_of(table, best["adamw"])
    default = interval_of(table, ("adamw", *DEFAULT))
    for name, reference in (("tuned", tuned), ("default", default)):
        ratios = [
            stats.speedup(reference, interval_of(table, setting_key(r)))
            for _, r in table.iterrows()
        ]
        table[f"speedup_vs_{name}_adamw"] = [r[0] for r in ratios]
        table[f"speedup_vs_{name}_adamw_low"] = [r[1] for r in ratios]
        table[f"speedup_vs_{name}_adamw_high"] = [r[2] for r in ratios]
    shown = [best[arm] for arm in best]
    if ("adamw", *DEFAULT) not in shown:
        shown.insert(1, ("adamw", *DEFAULT))
    fig = study_figure(runs, sweep, table, shown, "A/B: interventions against AdamW on its grid")
    return table, fig


def norm_delay(runs: pd.DataFrame, sweep: Path) -> tuple[pd.DataFrame, go.Figure]:
    """T_grok - T_mem against log(||theta_mem||^2 / ||theta_grok||^2) / (lr wd), per AdamW run
    of the A/B sweep (the squared norms read at those epochs from the checkpoints, log-linear
    between them), and the least-squares line over the runs that grokked."""
    rows = []
    for _, run in runs[runs["arm"] == "adamw"].iterrows():
        m = measures(sweep, run["run"])
        epochs, sq = m["epoch"].to_numpy(), m["weight_norm"].to_numpy()
        grokked = math.isfinite(run["t_grok"]) and math.isfinite(run["t_mem"])
        sq_mem = stats.log_interp(epochs, sq, run["t_mem"]) if grokked else math.nan
        sq_grok = stats.log_interp(epochs, sq, run["t_grok"]) if grokked else math.nan
        x = (
            stats.norm_delay_x(sq_mem, sq_grok, run["lr"], run["weight_decay"])
            if grokked
            else math.nan
        )
        rows.append(
            {
                "run": run["run"],
                "lr": run["lr"],
                "weight_decay": run["weight_decay"],
                "seed": run["seed"],
                "t_mem": run["t_mem"],
                "t_grok": run["t_grok"],
                "sq_norm_mem": sq_mem,
                "sq_norm_grok": sq_grok,
                "x_log_ratio_over_lr_wd": x,
                "delay": run["t_grok"] - run["t_mem"] if grokked else math.nan,
            }
        )
    table = pd.DataFrame(rows)
    fit = stats.linear_fit(table["x_log_ratio_over_lr_wd"], table["delay"])
    table["fit_slope"], table["fit_intercept"], table["fit_r2"], table["fit_n"] = (
        fit.slope,
        fit.intercept,
        fit.r2,
        fit.n,
    )
    fig = go.Figure()
    for (lr, wd), group in table.groupby(["lr", "weight_decay"]):
        fig.add_trace(
            go.Scatter(
                x=group["x_log_ratio_over_lr_wd"],
                y=group["delay"],
                mode="markers",
                name=f"lr {lr:g}, wd {wd:g}",
                text=group["run"],
                marker={"size": 10},
            )
        )
    xs = np.linspace(0, np.nanmax(table["x_log_ratio_over_lr_wd"]), 50)
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=fit.slope * xs + fit.intercept,
            mode="lines",
            name=f"fit: slope {fit.slope:.3f}, R^2 {fit.r2:.3f} ({fit.n} runs)",
        )
    )
    fig.update_layout(
        title="Norm and delay across lr x weight decay (AdamW runs of the A/B sweep)",
        xaxis_title="log(||theta_mem||^2 / ||theta_grok||^2) / (lr wd)  [epochs]",
        yaxis_title="T_grok - T_mem [epochs]",
        width=1000,
        height=560,
    )
    return table, fig


def compare_arms(title: str, reference: str):
    """A study of arms at one setting each, every arm against `reference`."""

    def study(runs: pd.DataFrame, sweep: Path) -> tuple[pd.DataFrame, go.Figure]:
        table = settings(runs)
        base = interval_of(table, setting_key(table[table["arm"] == reference].iloc[0]))
        ratios = [
            stats.speedup(base, interval_of(table, setting_key(r))) for _, r in table.iterrows()
        ]
        table[f"speedup_vs_{reference}"] = [r[0] for r in ratios]
        table[f"speedup_vs_{reference}_low"] = [r[1] for r in ratios]
        table[f"speedup_vs_{reference}_high"] = [r[2] for r in ratios]
        collapse = [
            first_collapse(sweep, runs_of(runs, setting_key(r))) for _, r in table.iterrows()
        ]
        table["epochs_collapse_half"] = collapse
        shown = [setting_key(r) for _, r in table.iterrows()]
        return table, study_figure(runs, sweep, table, shown, title, per_run=True)

    return study


def first_collapse(sweep: Path, runs: pd.DataFrame) -> str:
    """Per run, the first checkpoint where half the training pairs' float32 softmax has
    collapsed to one-hot ("never" if none)."""
    texts = []
    for run in runs["run"]:
        m = measures(sweep, run)
        hit = m["epoch"][m["softmax_collapse"] >= 0.5]
        texts.append(f"{int(hit.iloc[0])}" if len(hit) else "never")
    return " ".join(texts)


# ---- helpers -------------------------------------------------------------------------------------
def runs_of(runs: pd.DataFrame, key: tuple) -> pd.DataFrame:
    arm, lr, wd = key
    return runs[(runs["arm"] == arm) & (runs["lr"] == lr) & (runs["weight_decay"] == wd)]


def interval_of(table: pd.DataFrame, key: tuple) -> stats.MedianInterval:
    row = table[[setting_key(r) == key for _, r in table.iterrows()]].iloc[0]
    return stats.MedianInterval(
        row["median"], row["low"], row["high"], CONFIDENCE, row["runs"], row["grokked"]
    )


def epoch_text(value: float) -> str:
    return f"{int(value):,}" if math.isfinite(value) else "never"


def label(key: tuple) -> str:
    arm, lr, wd = key
    return f"{arm} lr {lr:g} wd {wd:g}"


def study_figure(runs, sweep, table, shown, title, per_run=False) -> go.Figure:
    """Row 1: every run's grokking epoch per setting ("never" drawn at the budget as an x),
    each setting's median and interval; the share of runs grokked by each epoch. Then the
    cause measures over the epochs, the median over seeds of each shown setting (each run with
    `per_run`)."""
    titles = [
        f"grokking epoch (x: never, at the budget; bar: median, {CONFIDENCE:.0%} interval)",
        "share of runs grokked by epoch",
    ]
    titles += [name for _, name in CAUSES]
    rows = 1 + math.ceil(len(CAUSES) / 2)
    fig = make_subplots(rows=rows, cols=2, subplot_titles=titles, vertical_spacing=0.1)
    names = [label(setting_key(r)) for _, r in table.iterrows()]
    for (_, row), name in zip(table.iterrows(), names, strict=True):
        group = runs_of(runs, setting_key(row))
        budget = row["budget"]
        shown_y = np.where(np.isfinite(group["t_grok"]), group["t_grok"], budget)
        symbols = ["circle" if math.isfinite(t) else "x" for t in group["t_grok"]]
        fig.add_trace(
            go.Scatter(
                x=[name] * len(group),
                y=shown_y,
                mode="markers",
                showlegend=False,
                marker={"symbol": symbols, "size": 9, "color": "grey"},
                text=[
                    f"{r}: {epoch_text(t)}"
                    for r, t in zip(group["run"], group["t_grok"], strict=True)
                ],
            ),
            row=1,
            col=1,
        )
        median = min(row["median"], budget)
        low = min(row["low"], budget) if math.isfinite(row["low"]) else budget
        high = min(row["high"], budget)
        fig.add_trace(
            go.Scatter(
                x=[name],
                y=[median],
                mode="markers",
                showlegend=False,
                marker={"symbol": "line-ew-open", "size": 24, "color": "black"},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [high - median],
                    "arrayminus": [median - low],
                },
                text=[
                    f"median {epoch_text(row['median'])}, {CONFIDENCE:.0%} interval "
                    f"[{epoch_text(row['low'])}, {epoch_text(row['high'])}]"
                ],
            ),
            row=1,
            col=1,
        )
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
    for i, key in enumerate(shown):
        colour = colours[i % len(colours)]
        group = runs_of(runs, key)
        epochs, share = stats.share_grokked(group["t_grok"].to_numpy(), group["budget"].max())
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([[0], epochs]),
                y=np.concatenate([[0], share]),
                line_shape="hv",
                name=label(key),
                legendgroup=label(key),
                line={"color": colour},
            ),
            row=1,
            col=2,
        )
        for j, (column, _) in enumerate(CAUSES):
            where = {"row": 2 + j // 2, "col": 1 + j % 2}
            curves = (
                [(run, *single_curve(sweep, run, column)) for run in group["run"]]
                if per_run
                else [(label(key), *median_curves(sweep, group, column))]
            )
            for text, x, y in curves:
                fig.add_trace(
                    go.Scatter(
                        x=x,
                        y=y,
                        mode="lines",
                        name=text,
                        legendgroup=label(key),
                        showlegend=False,
                        line={"color": colour, "width": 1.5},
                    ),
                    **where,
                )
    fig.update_yaxes(type="log", row=2, col=2)
    for j in range(len(CAUSES)):
        fig.update_xaxes(title_text="epoch", row=2 + j // 2, col=1 + j % 2)
    fig.update_layout(title=title, height=330 * rows, width=1200)
    return fig


def single_curve(sweep: Path, run: str, column: str) -> tuple[np.ndarray, np.ndarray]:
    m = measures(sweep, run)
    return m["epoch"].to_numpy(), m[column].to_numpy()


def markdown(table: pd.DataFrame) -> str:
    """The table as markdown: numbers rounded, inf as "never"."""

    def cell(value) -> str:
        if isinstance(value, bool | np.bool_):
            return "yes" if value else ""
        if isinstance(value, float | np.floating):
            if math.isnan(value):
                return "-"
            if math.isinf(value):
                return "never" if value > 0 else "-inf"
            return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
        return str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)
    ]
    return "\n".join(lines) + "\n"


STUDIES = {
    "ab": ab,
    "norm-delay": norm_delay,
    "stablemax": compare_arms("StableMax + ⊥AdamW against AdamW, no weight decay", "adamw"),
    "temperature": compare_arms(
        "Output temperature at a fixed norm against a raised norm", "norm30"
    ),
}

if __name__ == "__main__":
    main()
