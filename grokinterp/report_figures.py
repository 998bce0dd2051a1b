"""The report's figures: plain values in (the measures table, the summary, arrays), a Figure out.

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
from jaxtyping import Bool, Float, Int
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


def frequency_columns(measures: pd.DataFrame, prefix: str) -> list[tuple[int | str, str]]:
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


def _epoch_lines(measures: pd.DataFrame, columns: dict[str, str], unit: str) -> list[go.Scatter]:
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


def _finish(fig: go.Figure, title: str, height: int = HEIGHT, **layout) -> go.Figure:
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
    fig = go.Figure(_epoch_lines(measures, {"train": "train_loss", "test": "test_loss"}, "nats"))
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
    return _finish(fig, "Train and test loss")


def progress_figure(measures: pd.DataFrame, phases: dict) -> go.Figure:
    """Restricted and excluded loss with train and test loss: the progress measures (figure 7)."""
    columns = {
        "restricted loss (all pairs)": "restricted_loss",
        "restricted loss (test pairs)": "restricted_loss_test",
        "excluded loss (train pairs)": "excluded_loss",
        "train loss": "train_loss",
        "test loss": "test_loss",
    }
    fig = go.Figure(_epoch_lines(measures, columns, "nats"))
    _shade(fig, measures, phases)
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="loss (nats)", type="log", exponentformat="power")
    return _finish(fig, "Progress measures: restricted and excluded loss")


def clock_pizza_figure(measures: pd.DataFrame, phases: dict) -> go.Figure:
    """Zhong et al.'s gradient symmetricity and distance irrelevance over epochs, phases shaded:
    a pizza sits near (1, 0), a clock lower in symmetricity and near 1 in irrelevance."""
    columns = {
        "gradient symmetricity": "gradient_symmetricity",
        "distance irrelevance": "distance_irrelevance",
    }
    fig = go.Figure(_epoch_lines(measures, columns, ""))
    _shade(fig, measures, phases)
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="diagnostic", range=[-1.05, 1.05])
    return _finish(fig, "Clock or pizza: gradient symmetricity and distance irrelevance")


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
    return _finish(fig, f"Local learning coefficient, band: one std across chains{note}")


def layer_label(column: str, name: str) -> str:
    """`name`, with the hidden layer of a per-layer column (`L1.fve_share`) when it is not the
    first."""
    layer = re.match(r"^L(\d+)\.", column)
    return f"{name} (layer {layer.group(1)})" if layer else name


def _layer_columns(measures: pd.DataFrame, column: str, name: str) -> dict[str, str]:
    """{label: column} of a per-layer measure in every hidden layer that has it."""
    found = [c for c in measures.columns if re.fullmatch(rf"(L\d+\.)?{column}", c)]
    return {layer_label(c, name): c for c in found}


def weights_figure(measures: pd.DataFrame, phases: dict, kind: str = "frequency") -> go.Figure:
    """Total weight norm, the Gini coefficients of the Fourier norms, and two circuit fractions
    (the per-layer ones for every hidden layer that has them); with the cause measures (analyses
    since issue 17), two more rows: the logit scale, and the softmax-collapse share with the
    update-weight cosine, and the weight norm over its value at the end of memorisation."""
    rows = {
        "sum of squared weights": {"weight norm": "weight_norm"},
        "Gini coefficient": {
            "Gini of W_E": "gini_W_E",
            **_layer_columns(measures, "gini_W_L", "Gini of W_L"),
        },
        "fraction (0 to 1)": {
            f"logit FVE (key {WORDS[kind]['many']})": "logit_fve",
            **_layer_columns(measures, "fve_share", "neurons clustered"),
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
        for trace in _epoch_lines(measures, columns, ""):
            fig.add_trace(trace, row=row, col=1)
        fig.update_yaxes(title=y_title, row=row, col=1)
    fig.update_xaxes(title="epoch", row=len(rows), col=1)
    _shade(fig, measures, phases, subplots=True)
    sparsity = WORDS[kind]["norm"].removesuffix(" norm")
    title = f"Weight norm, {sparsity} sparsity (Gini), circuit fractions"
    if len(rows) > 3:
        title += "; proposed causes: logit scale, softmax collapse, update direction"
    return _finish(fig, title, 760 * len(rows) // 3)


def _frequency_matrix(measures: pd.DataFrame, prefix: str) -> tuple[list, np.ndarray]:
    """Component keys and the [n_components, n_ckpt] matrix of the `<prefix>.<c>` columns."""
    columns = frequency_columns(measures, prefix)
    ks = [k for k, _ in columns]
    return ks, measures[[c for _, c in columns]].to_numpy(np.float64).T


def fourier_heatmap_figure(measures: pd.DataFrame, kind: str = "frequency") -> go.Figure:
    """Fourier norm of W_E and of each layer's W_L per frequency (rows) and epoch (columns);
    per irrep in an irrep basis."""
    words = WORDS[kind]
    keep = even_subsample(len(measures), MAX_HEATMAP_COLUMNS)
    epochs = measures["epoch"].to_numpy()[keep]
    ginis = _layer_columns(measures, "gini_W_L", "").values()
    prefixes = ["W_E", *(column.removesuffix("gini_W_L") + "W_L" for column in ginis)]
    titles = ["embedding W_E"] + [layer_label(p, "neuron-logit map W_L") for p in prefixes[1:]]
    n = len(prefixes)
    fig = make_subplots(
        rows=n, cols=1, shared_xaxes=True, vertical_spacing=0.2 / n, subplot_titles=titles
    )
    for row, prefix in enumerate(prefixes, start=1):
        ks, matrix = _frequency_matrix(measures, prefix)
        fig.add_trace(
            go.Heatmap(
                x=epochs,
                y=np.array(ks),
                z=matrix[:, keep].astype(np.float32),
                coloraxis=f"coloraxis{row if row > 1 else ''}",
                hovertemplate=f"{prefix}<br>epoch %{{x}}<br>{words['one']} %{{y}}"
                "<br>norm %{z:.4g}<extra></extra>",
            ),
            row=row,
            col=1,
        )
        fig.update_yaxes(title=words["axis"], row=row, col=1)
    fig.update_xaxes(title="epoch", row=n, col=1)
    colorbar = {"title": {"text": words["norm"]}, "len": 0.84 / n}
    axes = {
        f"coloraxis{row + 1 if row else ''}": {
            "colorscale": "Viridis",
            "colorbar": {**colorbar, "y": 1 - (row + 0.5) / n},
        }
        for row in range(n)
    }
    return _finish(
        fig,
        f"{words['norm'][0].upper()}{words['norm'][1:]}s per {words['one']} over training",
        380 * n,
        **axes,
    )


def fourier_slider_figure(
    measures: pd.DataFrame,
    key_frequencies: list,
    max_frames: int = MAX_SLIDER_FRAMES,
    kind: str = "frequency",
) -> go.Figure:
    """Bars of W_E's per-frequency Fourier norms at one checkpoint, chosen with a slider.

    One bar trace; each slider step restyles its heights (5 significant digits), which draws
    faster than one hidden trace per checkpoint.
    """
    ks, matrix = _frequency_matrix(measures, "W_E")
    frames = even_subsample(len(measures), max_frames)
    epochs = measures["epoch"].to_numpy()
    heights = [[float(f"{x:.5g}") for x in matrix[:, index]] for index in frames]
    words = WORDS[kind]
    hover = "epoch {}<br>" + words["one"] + " %{{x}}<br>norm %{{y:.4g}}<extra></extra>"
    fig = go.Figure(
        go.Bar(
            x=ks,
            y=heights[-1],
            marker_color=["#d62728" if k in set(key_frequencies) else "#1f77b4" for k in ks],
            hovertemplate=hover.format(epochs[frames[-1]]),
        )
    )
    steps = [
        {
            "label": str(epochs[index]),
            "method": "restyle",
            "args": [{"y": [y], "hovertemplate": hover.format(epochs[index])}, [0]],
        }
        for index, y in zip(frames, heights, strict=True)
    ]
    top = max(max(y, default=0.0) for y in heights)
    fig.update_xaxes(title=words["axis"], dtick=max(1, len(ks) // 14))
    fig.update_yaxes(title=f"{words['norm']} of W_E", range=[0, 1.05 * top if top > 0 else 1])
    slider = {"active": len(frames) - 1, "steps": steps, "pad": {"t": 50}}
    if len(frames) > 20:  # tick labels would overlap: show only the current epoch
        slider["font"] = {"color": "rgba(0, 0, 0, 0)"}
    current = {"prefix": "epoch ", "font": {"color": "#222", "size": 14}}
    return _finish(
        fig,
        f"Embedding {words['norm']}s at one checkpoint (red: key {words['many']})",
        500,
        sliders=[slider | {"currentvalue": current}],
    )


def cluster_figure(
    measures: pd.DataFrame,
    key_frequencies: list,
    d_mlp: int,
    kind: str = "frequency",
    prefix: str = "",
) -> go.Figure:
    """Neurons per key-frequency cluster over epochs, the rest summed (paper, section 4.3), of
    the hidden layer whose columns carry `prefix`."""
    ks, counts = _frequency_matrix(measures, prefix + "cluster")
    by_k = dict(zip(ks, counts, strict=True))
    label = WORDS[kind]["label"]
    named = {label.format(k): by_k[k] for k in key_frequencies if k in by_k}
    others = [by_k[k] for k in ks if k not in set(key_frequencies)]
    one, many = WORDS[kind]["one"], WORDS[kind]["many"]
    named[f"other {many}"] = np.sum(others, axis=0) if others else np.zeros(len(measures))
    named["not clustered"] = d_mlp - counts.sum(axis=0)
    table = pd.DataFrame({"epoch": measures["epoch"].to_numpy(), **named})
    fig = go.Figure(_epoch_lines(table, {name: name for name in named}, "neurons"))
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="neurons", rangemode="tozero")
    title = f"Neuron clusters: neurons whose dominant {one} explains > 85%"
    return _finish(fig, layer_label(prefix, title))


def neuron_fve_figure(
    fve_by_frequency: Float[np.ndarray, "d_mlp n_freq"],
    dominant_frequency: Int[np.ndarray, " d_mlp"],
    fve: Float[np.ndarray, " d_mlp"],
    names: list | None = None,
    kind: str = "frequency",
    prefix: str = "",
) -> go.Figure:
    """Final FVE of each neuron by each frequency, neurons sorted by dominant frequency (by
    component, named by `names` in spectrum order, in another basis); `prefix` names the hidden
    layer."""
    order = np.lexsort((-fve, dominant_frequency))
    n_freq = fve_by_frequency.shape[1]
    one = WORDS[kind]["one"]
    fig = go.Figure(
        go.Heatmap(
            x=np.arange(1, n_freq + 1) if names is None else list(names),
            y=[f"neuron {i}" for i in order],
            z=fve_by_frequency[order].astype(np.float32),
            colorscale="Viridis",
            zmin=0,
            zmax=1,
            colorbar={"title": {"text": "fraction of variance"}},
            hovertemplate="%{y}<br>" + one + " %{x}<br>FVE %{z:.3f}<extra></extra>",
        )
    )
    fig.update_xaxes(title=WORDS[kind]["axis"])
    fig.update_yaxes(
        title=f"neuron (sorted by dominant {one})",
        autorange="reversed",
        showticklabels=len(order) <= 64,
    )
    title = f"Final model: variance of each neuron explained by each {one}"
    return _finish(fig, layer_label(prefix, title), 640)


def attention_figure(
    coefficients: Float[np.ndarray, "p head"],
    names: list[str],
    kind: str = "frequency",
    prefix: str = "",
) -> go.Figure:
    """|Fourier coefficients| of the attention from `=` to a (averaged over b), per head.

    The constant row holds the mean attention and dwarfs the rest, so the colour scale stops at
    the largest non-constant coefficient; hover shows every signed value.
    """
    magnitude = np.abs(coefficients.T)
    top = float(magnitude[:, 1:].max()) if magnitude.shape[1] > 1 else float(magnitude.max())
    heads = [f"head {h}" for h in range(coefficients.shape[1])]
    fig = go.Figure(
        go.Heatmap(
            x=names,
            y=heads,
            z=magnitude.astype(np.float32),
            zmin=0,
            zmax=top or None,
            customdata=coefficients.T.astype(np.float32),
            colorscale="Blues",
            colorbar={"title": {"text": "|coefficient|"}},
            hovertemplate="%{y}<br>%{x}<br>coefficient %{customdata:.4g}<extra></extra>",
        )
    )
    basis = WORDS[kind]["basis"]
    fig.update_xaxes(title=f"{basis} row of the attention to a (function of a)")
    fig.update_yaxes(title="attention head", autorange="reversed")
    title = f"Final model: attention from = to a in the {basis}"
    return _finish(
        fig, layer_label(prefix, title) + " (colour clipped at the largest non-constant row)", 340
    )


def logit_fit_figure(
    fitted: Float[np.ndarray, " n"],
    centred: Float[np.ndarray, " n"],
    triples: Int[np.ndarray, "n 3"],
    correct: Bool[np.ndarray, " n"],
    fve: float,
    kind: str = "frequency",
) -> go.Figure:
    """True centred logits against the fit sum_k alpha_k cos(w_k (a + b - c)) (section 4.1);
    in an irrep basis sum_rho alpha_rho chi_rho(a b c^-1) (Chughtai et al. 2023)."""
    words = WORDS[kind]
    fig = go.Figure()
    for name, mask, colour in (
        ("other classes c", ~correct, "rgba(120, 120, 120, 0.45)"),
        ("correct class c = c', the answer", correct, "rgba(214, 39, 40, 0.75)"),
    ):
        fig.add_scatter(
            x=fitted[mask].astype(np.float32),
            y=centred[mask].astype(np.float32),
            customdata=triples[mask].astype(np.int16),
            mode="markers",
            name=name,
            marker={"size": 4, "color": colour},
            hovertemplate="a %{customdata[0]}, b %{customdata[1]}, c %{customdata[2]}"
            "<br>fit %{x:.3f}<br>logit %{y:.3f}<extra></extra>",
        )
    if len(fitted):
        low = float(min(fitted.min(), centred.min()))
        high = float(max(fitted.max(), centred.max()))
        fig.add_scatter(
            x=[low, high],
            y=[low, high],
            mode="lines",
            name="y = x",
            hoverinfo="skip",
            line={"color": "black", "width": 1, "dash": "dot"},
        )
    fig.update_xaxes(title=f"fitted {words['fit']} (nats)")
    fig.update_yaxes(title="centred logit (nats)")
    kernels = words["kernels"]
    return _finish(
        fig,
        f"Final model: logits against the {kernels} (fit explains {fve:.1%} "
        "of the centred logit variance)",
        560,
    )


def spectra_figure(
    spectra: list[tuple[str, list[str], Float[np.ndarray, " k"], float]],
) -> go.Figure:
    """The final embedding's spectrum in each basis of the elements, side by side: (basis title,
    component labels, norms, Gini) per basis. The task's own basis shows a few peaks; another
    shows the same embedding spread out (a dense additive spectrum for multiplication)."""
    fig = make_subplots(
        rows=1,
        cols=len(spectra),
        subplot_titles=[f"{title}<br>Gini {gini:.3f}" for title, _, _, gini in spectra],
    )
    for col, (title, labels, norms, _) in enumerate(spectra, start=1):
        fig.add_trace(
            go.Bar(
                x=labels,
                y=norms.astype(np.float32),
                name=title,
                hovertemplate="%{x}<br>norm %{y:.4g}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title="component", row=1, col=col)
    fig.update_yaxes(title="norm of W_E's component", row=1, col=1)
    fig.update_annotations(font_size=12)
    return _finish(fig, "Final embedding in each basis of the elements", 460, showlegend=False)
