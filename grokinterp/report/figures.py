"""The report's figures over the epochs (losses, progress measures, weights, clock/pizza, the LLC)
and what every figure shares (style, phase shading, words per basis); the figures of single
components and of the final model are in `report_components`. Plain values in (the measures
table, the summary, arrays), a Figure out.

Every builder is pure, so a notebook can call it on its own. Epoch axes are in epochs (one
full-batch step each), losses in nats; phases follow Nanda et al. 2023, section 5.
Heavy arrays go out as float32, which plotly writes as compact base64 typed arrays.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from jaxtyping import Bool, Int
from plotly.subplots import make_subplots

TEMPLATE = "plotly_white"
HEIGHT = 430
MAX_LINE_POINTS = 2000
"""Line traces longer than this are subsampled evenly (the last epoch is always kept)."""
MAX_HEATMAP_COLUMNS = 400
MAX_SLIDER_FRAMES = 50

PHASES = (
    ("memorisation", "memorization_end", "rgba(31, 119, 180, 0.10)"),
    ("circuit formation", "circuit_formation_end", "rgba(255, 127, 14, 0.13)"),
    ("cleanup", "cleanup_end", "rgba(44, 160, 44, 0.13)"),
)
"""(label, summary key of the phase's last epoch, shading colour), in order (paper, section 5)."""


class PhaseSpan(NamedTuple):
    label: str
    start: int
    end: int


def even_subsample(n: int, limit: int) -> Int[np.ndarray, " k"]:
    """At most `limit` evenly spaced indices into range(n), always the first and the last."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max(limit, 2))).astype(np.int64))


WORDS = {
    "frequency": {
        "axis": "frequency k",
        "one": "frequency",
        "many": "frequencies",
        "norm": "Fourier norm",
        "basis": "Fourier basis",
        "fit": "sum_k alpha_k cos(w_k (c' - c))",
        "kernels": "key-frequency cosines",
        "label": "k = {}",
    },
    "character": {
        "axis": "frequency k of the character",
        "one": "character frequency",
        "many": "character frequencies",
        "norm": "character norm",
        "basis": "multiplicative character basis",
        "fit": "sum_k alpha_k cos(w_k (log c' - log c))",
        "kernels": "key characters' cosines",
        "label": "k = {}",
    },
    "irrep": {
        "axis": "irrep",
        "one": "irrep",
        "many": "irreps",
        "norm": "irrep norm",
        "basis": "irrep basis",
        "fit": "sum_rho alpha_rho chi_rho(c' c^-1)",
        "kernels": "key irreps' characters",
        "label": "irrep {}",
    },
}
"""How the figures and the report name a basis's components (c' is the answer), by
`words_key`; every figure function takes that key as `kind`."""


def words_key(name: str, kind: str) -> str:
    """The `WORDS` entry of a basis (its name and `Basis.kind`): the kind, except `character`
    for the discrete log's basis, whose frequencies are those of multiplicative characters."""
    return "character" if name == "dlog" else kind


def component_columns(measures: pd.DataFrame, prefix: str) -> list[tuple[int | str, str]]:
    """(key, column) of the spectrum columns `<prefix>.<component>`: for frequencies
    (`<prefix>.k<k>`) the int k, by frequency; for other components (irreps) the name, in table
    order."""
    pattern = re.compile(rf"^{re.escape(prefix)}\.k(\d+)$")
    found = [(int(m.group(1)), c) for c in measures.columns if (m := pattern.match(c))]
    named = [c for c in measures.columns if c.startswith(prefix + ".")]
    if len(found) == len(named):
        return sorted(found)
    return [(c[len(prefix) + 1 :], c) for c in named]


def phase_spans(phases: dict, first: int, last: int) -> list[PhaseSpan]:
    """The phases to shade. A phase with no end (null) is still going on at the last epoch."""
    spans, start = [], first
    for label, key, _ in PHASES:
        end = phases.get(key)
        if end is None:
            spans.append(PhaseSpan(f"{label} (not ended)", start, last))
            break
        spans.append(PhaseSpan(label, start, int(end)))
        start = int(end)
    return spans


def _shade(fig: go.Figure, measures: pd.DataFrame, phases: dict, subplots: bool = False) -> None:
    """Shade each phase over the epoch axis (every subplot) and name it above the plot."""
    colours = {label: colour for label, _, colour in PHASES}
    epochs = measures["epoch"]
    for span in phase_spans(phases, int(epochs.iloc[0]), int(epochs.iloc[-1])):
        colour = colours[span.label.split(" (")[0]]
        extra = {"row": "all", "col": 1} if subplots else {}
        fig.add_vrect(
            x0=span.start, x1=span.end, fillcolor=colour, line_width=0, layer="below", **extra
        )
        fig.add_annotation(
            x=(span.start + span.end) / 2,
            y=1.0,
            xref="x",
            yref="paper",
            yanchor="bottom",
            text=span.label,
            showarrow=False,
            font={"size": 11, "color": "#555"},
        )


def epoch_lines(measures: pd.DataFrame, columns: dict[str, str], unit: str) -> list[go.Scatter]:
    """One line per (legend name -> column) over epochs; hover shows epoch and value. Columns the
    table lacks (measures that need a basis, for a task without one) are left out."""
    keep = even_subsample(len(measures), MAX_LINE_POINTS)
    epochs = measures["epoch"].to_numpy()[keep]
    return [
        go.Scatter(
            x=epochs,
            y=measures[column].to_numpy(np.float64)[keep],
            name=name,
            mode="lines",
            hovertemplate=f"{name}<br>epoch %{{x}}<br>%{{y:.4g}} {unit}<extra></extra>",
        )
        for name, column in columns.items()
        if column in measures
    ]


def finish(fig: go.Figure, title: str, height: int = HEIGHT, **layout) -> go.Figure:
    fig.update_layout(
        template=TEMPLATE,
        title={"text": title, "y": 0.98},
        height=height,
        margin={"t": 80, "r": 30, "b": 60, "l": 80},
        legend={"orientation": "v"},
        **layout,
    )
    return fig


SPIKE_FACTOR = 10.0
"""A train-loss spike: the train loss more than this many times its value one checkpoint before."""


def loss_spikes(measures: pd.DataFrame) -> Bool[np.ndarray, " ckpt"]:
    """True at each checkpoint where the train loss spikes (`SPIKE_FACTOR`)."""
    loss = measures["train_loss"].to_numpy(np.float64)
    spikes = np.zeros(len(loss), dtype=bool)
    spikes[1:] = loss[1:] > SPIKE_FACTOR * loss[:-1]
    return spikes


def loss_figure(measures: pd.DataFrame, phases: dict) -> go.Figure:
    """Train and test loss on a log scale, phases shaded (paper, figure 1), train-loss spikes
    marked."""
    fig = go.Figure(epoch_lines(measures, {"train": "train_loss", "test": "test_loss"}, "nats"))
    spikes = measures[loss_spikes(measures)]
    if len(spikes):
        fig.add_trace(
            go.Scatter(
                x=spikes["epoch"].to_numpy(),
                y=spikes["train_loss"].to_numpy(np.float64),
                name=f"train-loss spike (> {SPIKE_FACTOR:g}x in one checkpoint)",
                mode="markers",
                marker={"symbol": "triangle-up", "size": 10, "color": "#d62728"},
                hovertemplate="spike<br>epoch %{x}<br>train loss %{y:.4g} nats<extra></extra>",
            )
        )
    _shade(fig, measures, phases)
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="loss (nats)", type="log", exponentformat="power")
    return finish(fig, "Train and test loss")


def progress_figure(measures: pd.DataFrame, phases: dict) -> go.Figure:
    """Restricted and excluded loss with train and test loss: the progress measures (figure 7)."""
    columns = {
        "restricted loss (all pairs)": "restricted_loss",
        "restricted loss (test pairs)": "restricted_loss_test",
        "excluded loss (train pairs)": "excluded_loss",
        "train loss": "train_loss",
        "test loss": "test_loss",
    }
    fig = go.Figure(epoch_lines(measures, columns, "nats"))
    _shade(fig, measures, phases)
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="loss (nats)", type="log", exponentformat="power")
    return finish(fig, "Progress measures: restricted and excluded loss")


def clock_pizza_figure(measures: pd.DataFrame, phases: dict) -> go.Figure:
    """Zhong et al.'s gradient symmetricity and distance irrelevance over epochs, phases shaded:
    a pizza sits near (1, 0), a clock lower in symmetricity and near 1 in irrelevance."""
    columns = {
        "gradient symmetricity": "gradient_symmetricity",
        "distance irrelevance": "distance_irrelevance",
    }
    fig = go.Figure(epoch_lines(measures, columns, ""))
    _shade(fig, measures, phases)
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="diagnostic", range=[-1.05, 1.05])
    return finish(fig, "Clock or pizza: gradient symmetricity and distance irrelevance")


def llc_figure(llc: pd.DataFrame, measures: pd.DataFrame, phases: dict) -> go.Figure:
    """The LLC of every checkpoint (mean over chains) with a band of one standard deviation
    across chains, phases shaded; diverged checkpoints are gaps, counted in the title."""
    epochs = llc["epoch"].to_numpy()
    mean, std = llc["llc_mean"].to_numpy(np.float64), llc["llc_std"].to_numpy(np.float64)
    band = dict(mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip")
    fig = go.Figure(
        [
            go.Scatter(x=epochs, y=mean + std, **band),
            go.Scatter(
                x=epochs, y=mean - std, fill="tonexty", fillcolor="rgba(99,110,250,0.2)", **band
            ),
            go.Scatter(
                x=epochs,
                y=mean,
                name="LLC (mean over chains)",
                mode="lines+markers",
                hovertemplate="epoch %{x}<br>LLC %{y:.4g}<extra></extra>",
            ),
        ]
    )
    _shade(fig, measures, phases)
    diverged = int((~llc["status"].astype(str).eq("ok")).sum())
    note = f" ({diverged} checkpoints diverged: not drawn)" if diverged else ""
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="local learning coefficient")
    return finish(fig, f"Local learning coefficient, band: one std across chains{note}")


def layer_label(column: str, name: str) -> str:
    """`name`, with the hidden layer of a per-layer column (`L1.fve_share`) when it is not the
    first."""
    layer = re.match(r"^L(\d+)\.", column)
    return f"{name} (layer {layer.group(1)})" if layer else name


def layer_columns(measures: pd.DataFrame, column: str, name: str) -> dict[str, str]:
    """{label: column} of a per-layer measure in every hidden layer that has it."""
    found = [c for c in measures.columns if re.fullmatch(rf"(L\d+\.)?{column}", c)]
    return {layer_label(c, name): c for c in found}


def weights_figure(measures: pd.DataFrame, phases: dict, kind: str = "frequency") -> go.Figure:
    """Total weight norm, the Gini coefficients of the component norms, and two circuit fractions
    (the per-layer ones for every hidden layer that has them); with the cause measures (when the
    analysis has those columns), two more rows: the logit scale, and the softmax-collapse share
    with the update-weight cosine, and the weight norm over its value at the end of memorisation."""
    rows = {
        "sum of squared weights": {"weight norm": "weight_norm"},
        "Gini coefficient": {
            "Gini of W_E": "gini_W_E",
            **layer_columns(measures, "gini_W_L", "Gini of W_L"),
        },
        "fraction (0 to 1)": {
            f"logit FVE (key {WORDS[kind]['many']})": "logit_fve",
            **layer_columns(measures, "fve_share", "neurons clustered"),
        },
    }
    if "softmax_collapse" in measures:
        rows["logits (train pairs)"] = {
            "correct - mean logit": "logit_margin",
            "logits' std": "logit_std",
        }
        rows["share, cosine, ratio"] = {
            "softmax collapse (float32)": "softmax_collapse",
            "cos(update, weights)": "update_cos",
            "weight norm / at memorisation": "weight_norm_ratio",
        }
    fig = make_subplots(rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=0.05)
    for row, (y_title, columns) in enumerate(rows.items(), start=1):
        for trace in epoch_lines(measures, columns, ""):
            fig.add_trace(trace, row=row, col=1)
        fig.update_yaxes(title=y_title, row=row, col=1)
    fig.update_xaxes(title="epoch", row=len(rows), col=1)
    _shade(fig, measures, phases, subplots=True)
    sparsity = WORDS[kind]["norm"].removesuffix(" norm")
    title = f"Weight norm, {sparsity} sparsity (Gini), circuit fractions"
    if len(rows) > 3:
        title += "; proposed causes: logit scale, softmax collapse, update direction"
    return finish(fig, title, 760 * len(rows) // 3)
