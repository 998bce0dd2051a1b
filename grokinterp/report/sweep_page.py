"""The sweep's HTML report: the study as a whole, one self-contained page.

    SWEEP/sweep-table.csv (the table) -> SWEEP/sweep-report.html

Like the run report (`grokinterp.report.page.render_html`), the page inlines plotly.js once and
loads nothing else; each figure is a JSON payload in a `<script type="application/json"
class="grokinterp-figure">` tag. Figures: epochs to 99% test accuracy against train fraction
(per operation: Power et al. 2022's figure) and against weight decay, and the number of key
components of every run. Every point is one run: its `customdata` is the relative path of the
run's own report, which a click opens; the table below links to the same pages.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from grokinterp.storage import sweep_dir

PALETTE = (
    "#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a",
    "#19d3f3", "#ff6692", "#b6e880", "#ff97ff", "#fecb52",
)  # fmt: skip
"""plotly's default colour sequence: a run's dots and its median line share one colour."""
AXIS_TITLES = {"train_frac": "fraction of pairs used for training", "weight_decay": "weight decay"}
NOT_REACHED = "no 99% test accuracy by the last epoch (plotted at the last epoch)"
SECTIONS = {
    "train_frac": "Epochs until test accuracy first reaches 99%, against the fraction of pairs "
    "used for training, as Power et al. (2022) plot it for their operations. Each dot is "
    "a run (click it for its report); the line joins the medians over the runs that got there.",
    "weight_decay": "Epochs until test accuracy first reaches 99%, against AdamW's weight decay.",
    "key_components": "Number of key components (components of the task's basis holding at "
    "least 5% of the final embedding's norm: frequencies of Z_p, irreps of a finite group) of "
    "every run: one dot per run, stacked.",
}
TABLE_COLUMNS = (
    "status",
    "operation",
    "train_frac",
    "weight_decay",
    "seed",
    "data_seed",
    "epoch_train_99",
    "epoch_test_99",
    "circuit_formation_end",
    "cleanup_end",
    "key_components",
    "fve_share",
    "final_test_loss",
)


def _varied(table: pd.DataFrame, column: str) -> bool:
    return table[column].nunique(dropna=True) > 1


def _label(row: pd.Series, fields: list[str]) -> str:
    names = {"weight_decay": "wd", "train_frac": "frac"}
    parts = [str(row["operation"])]
    parts += [f"{names.get(f, f)} {row[f]:g}" for f in fields]
    return ", ".join(parts)


def _epoch_figure(table: pd.DataFrame, x: str, title: str, split_by: list[str]) -> go.Figure:
    """Epochs to 99% test accuracy against `x`, one colour per operation (and `split_by`
    value); runs that never got there as open markers at their last epoch."""
    figure = go.Figure()
    labels = table.apply(lambda row: _label(row, split_by), axis=1) if len(table) else []
    for i, (label, runs) in enumerate(table.groupby(labels, sort=True)):
        reached = runs[runs["epoch_test_99"].notna()]
        missed = runs[runs["epoch_test_99"].isna() & runs["epochs_trained"].notna()]
        color = PALETTE[i % len(PALETTE)]
        if len(reached):
            medians = reached.groupby(x)["epoch_test_99"].median()
            figure.add_scatter(
                x=medians.index.to_numpy(dtype=float),
                y=medians.to_numpy(dtype=float),
                mode="lines",
                name=f"{label}: median",
                legendgroup=label,
                line={"color": color},
                hoverinfo="skip",
            )
        for part, y, symbol, suffix in (
            (reached, "epoch_test_99", "circle", ""),
            (missed, "epochs_trained", "circle-open", f" ({NOT_REACHED})"),
        ):
            if not len(part):
                continue
            figure.add_scatter(
                x=part[x].to_numpy(dtype=float),
                y=part[y].to_numpy(dtype=float),
                mode="markers",
                name=label + suffix,
                legendgroup=label,
                marker={"symbol": symbol, "size": 9, "color": color},
                hovertext=part["run"].tolist(),
                customdata=part["report"].tolist(),
                hovertemplate="%{hovertext}<br>" + x + " %{x}<br>epoch %{y}<extra></extra>",
            )
    figure.update_layout(
        title=title,
        xaxis_title=AXIS_TITLES[x],
        yaxis_title="epochs to 99% test accuracy",
        yaxis_type="log",
        height=480,
        legend={"groupclick": "toggleitem"},
    )
    return figure


def key_count_figure(table: pd.DataFrame) -> go.Figure:
    """One dot per analysed run at its number of key components, stacked, one colour per
    operation."""
    figure = go.Figure()
    counted = table[table["n_key_components"].notna()]
    for operation, runs in counted.groupby("operation", sort=True):
        runs = runs.sort_values(["n_key_components", "run"])
        height = runs.groupby("n_key_components").cumcount() + 1
        figure.add_scatter(
            x=runs["n_key_components"].to_numpy(dtype=float),
            y=height.to_numpy(dtype=float),
            mode="markers",
            name=str(operation),
            marker={"size": 11},
            hovertext=[
                f"{run}: keys {keys or 'none'}"
                for run, keys in zip(runs["run"], runs["key_components"], strict=True)
            ],
            customdata=runs["report"].tolist(),
            hovertemplate="%{hovertext}<extra></extra>",
        )
    figure.update_layout(
        title="Key components per run, across seeds",
        xaxis_title="number of key components",
        yaxis_title="runs",
        xaxis={"dtick": 1},
        yaxis={"dtick": 1},
        height=420,
    )
    return figure


def build_figures(table: pd.DataFrame) -> tuple[dict[str, go.Figure], list[str]]:
    """The figures that the sweep's grid allows, by section, and notes on those left out."""
    figures, notes = {}, []
    for x, other in (("train_frac", "weight_decay"), ("weight_decay", "train_frac")):
        name = {"train_frac": "train fraction", "weight_decay": "weight decay"}[x]
        if not _varied(table, x):
            value = table[x].iloc[0] if len(table) else "n/a"
            notes.append(f"The sweep does not vary the {name} (all runs at {value}).")
            continue
        split = [other] if _varied(table, other) else []
        title = f"Epochs to generalise against {name}"
        figures[x] = _epoch_figure(table, x, title, split)
    if table["n_key_components"].notna().any():
        figures["key_components"] = key_count_figure(table)
    else:
        notes.append("No run has been analysed in a basis yet: no key-component counts.")
    return figures, notes


def _cell(column: str, value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "<td></td>"
    if isinstance(value, float | np.floating):
        return f"<td>{value:.4g}</td>"
    return f"<td>{html.escape(str(value))}</td>"


def _run_table(table: pd.DataFrame) -> str:
    columns = [c for c in TABLE_COLUMNS if c in table]
    # long column names break after their underscores, so every column fits a 1,400-px window
    names = [html.escape(c).replace("_", "_<wbr>") for c in columns]
    head = "<tr><th>run</th>" + "".join(f"<th>{name}</th>" for name in names) + "</tr>"
    rows = []
    for _, row in table.iterrows():
        name = html.escape(row["run"])
        link = (
            f'<a href="{html.escape(row["report"], quote=True)}">{name}</a>'
            if row["report"]
            else name
        )
        rows.append(f"<tr><td>{link}</td>" + "".join(_cell(c, row[c]) for c in columns) + "</tr>")
    return f'<table class="runs">{head}{"".join(rows)}</table>'


def render_sweep_html(name: str, table: pd.DataFrame, spec_text: str) -> str:
    """The whole page: plotly.js inlined once, one JSON payload per figure, click-to-open."""
    from plotly.offline import get_plotlyjs

    from grokinterp.report.page import PLOTLY_CONFIG, STYLE

    figures, notes = build_figures(table)
    plotly_js = get_plotlyjs().replace("</script", "<\\/script")
    sections = []
    for section, figure in figures.items():
        payload = figure.to_json().replace("<", "\\u003c")
        sections.append(
            f'<section><p class="note">{html.escape(SECTIONS[section])}</p>'
            f'<div class="plot" id="fig-{section}"></div><script type="application/json" '
            f'class="grokinterp-figure" data-target="fig-{section}">{payload}</script></section>'
        )
    draw = (
        "(function(){var config=" + json.dumps(PLOTLY_CONFIG) + ",drawn=[];"
        'document.querySelectorAll("script.grokinterp-figure").forEach(function(node){'
        "var figure=JSON.parse(node.textContent);drawn.push(Plotly.newPlot("
        'node.getAttribute("data-target"),figure.data,figure.layout,config).then(function(gd){'
        'gd.on("plotly_click",function(event){var url=event.points[0].customdata;'
        "if(url){window.location.href=url;}});return gd;}));});"
        "window.grokinterpDrawn=Promise.all(drawn);})();"
    )
    counts = table["status"].value_counts()
    grokked = int(table["epoch_test_99"].notna().sum())
    facts = (
        f"{len(table)} runs: {counts.get('finished', 0)} finished, "
        f"{counts.get('unfinished', 0)} unfinished, {counts.get('failed', 0)} failed, "
        f"{counts.get('not started', 0)} not started; {grokked} reached 99% test accuracy."
    )
    title = html.escape(f"grokinterp sweep: {name}")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style><script>{plotly_js}</script></head><body><h1>{title}</h1>"
        f"<p>{html.escape(facts)}</p>"
        + "".join(f'<p class="note">{html.escape(note)}</p>' for note in notes)
        + "".join(sections)
        + f'<section><h3>Runs</h3><div style="overflow-x:auto">{_run_table(table)}</div></section>'
        + f"<details class=note><summary>the sweep spec</summary><pre>{html.escape(spec_text)}"
        "</pre></details>" + f"<script>{draw}</script></body></html>"
    )


def write_sweep_report(sweep: str | Path, table: pd.DataFrame) -> Path:
    """Write SWEEP/sweep-report.html from the sweep's `table` (`grokinterp.sweep.table.sweep_table`)
    and return its path."""
    from grokinterp.storage.store import atomic_write

    sweep = Path(sweep)
    try:
        spec_text = (sweep / sweep_dir.SPEC_COPY).read_text()
    except OSError:
        spec_text = ""
    out = sweep / sweep_dir.REPORT_FILE
    atomic_write(out, render_sweep_html(sweep.resolve().name, table, spec_text).encode("utf-8"))
    return out
