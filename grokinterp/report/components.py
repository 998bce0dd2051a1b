"""The report's figures of components and of the final model: the spectrum of the embedding and
neuron-logit map per checkpoint (heatmap, slider), neuron clusters and their FVE, the attention
at `=`, the logit fit and the final spectra. Pure builders, as in `report_figures`: plain
values in, a Figure out; heavy arrays as float32.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from jaxtyping import Bool, Float, Int
from plotly.subplots import make_subplots

from grokinterp.report.figures import (
    MAX_HEATMAP_COLUMNS,
    MAX_SLIDER_FRAMES,
    WORDS,
    component_columns,
    epoch_lines,
    even_subsample,
    finish,
    layer_columns,
    layer_label,
)


def _component_matrix(measures: pd.DataFrame, prefix: str) -> tuple[list, np.ndarray]:
    """Component keys and the [n_components, n_ckpt] matrix of the `<prefix>.<c>` columns."""
    columns = component_columns(measures, prefix)
    ks = [k for k, _ in columns]
    return ks, measures[[c for _, c in columns]].to_numpy(np.float64).T


def spectrum_heatmap_figure(measures: pd.DataFrame, kind: str = "frequency") -> go.Figure:
    """The component norms of W_E and of each layer's W_L (rows: the basis's components, e.g.
    Fourier norm per frequency, irrep norm per irrep; columns: epochs)."""
    words = WORDS[kind]
    keep = even_subsample(len(measures), MAX_HEATMAP_COLUMNS)
    epochs = measures["epoch"].to_numpy()[keep]
    ginis = layer_columns(measures, "gini_W_L", "").values()
    prefixes = ["W_E", *(column.removesuffix("gini_W_L") + "W_L" for column in ginis)]
    titles = ["embedding W_E"] + [layer_label(p, "neuron-logit map W_L") for p in prefixes[1:]]
    n = len(prefixes)
    fig = make_subplots(
        rows=n, cols=1, shared_xaxes=True, vertical_spacing=0.2 / n, subplot_titles=titles
    )
    for row, prefix in enumerate(prefixes, start=1):
        ks, matrix = _component_matrix(measures, prefix)
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
    return finish(
        fig,
        f"{words['norm'][0].upper()}{words['norm'][1:]}s per {words['one']} over training",
        380 * n,
        **axes,
    )


def spectrum_slider_figure(
    measures: pd.DataFrame,
    key_components: list,
    max_frames: int = MAX_SLIDER_FRAMES,
    kind: str = "frequency",
) -> go.Figure:
    """Bars of W_E's component norms at one checkpoint, chosen with a slider (red: the key
    components).

    One bar trace; each slider step restyles its heights (5 significant digits), which draws
    faster than one hidden trace per checkpoint.
    """
    ks, matrix = _component_matrix(measures, "W_E")
    frames = even_subsample(len(measures), max_frames)
    epochs = measures["epoch"].to_numpy()
    heights = [[float(f"{x:.5g}") for x in matrix[:, index]] for index in frames]
    words = WORDS[kind]
    hover = "epoch {}<br>" + words["one"] + " %{{x}}<br>norm %{{y:.4g}}<extra></extra>"
    fig = go.Figure(
        go.Bar(
            x=ks,
            y=heights[-1],
            marker_color=["#d62728" if k in set(key_components) else "#1f77b4" for k in ks],
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
    return finish(
        fig,
        f"Embedding {words['norm']}s at one checkpoint (red: key {words['many']})",
        500,
        sliders=[slider | {"currentvalue": current}],
    )


def cluster_figure(
    measures: pd.DataFrame,
    key_components: list,
    d_mlp: int,
    kind: str = "frequency",
    prefix: str = "",
) -> go.Figure:
    """Neurons per key-component cluster over epochs, the rest summed (paper, section 4.3), of
    the hidden layer whose columns carry `prefix`."""
    ks, counts = _component_matrix(measures, prefix + "cluster")
    by_k = dict(zip(ks, counts, strict=True))
    label = WORDS[kind]["label"]
    named = {label.format(k): by_k[k] for k in key_components if k in by_k}
    others = [by_k[k] for k in ks if k not in set(key_components)]
    one, many = WORDS[kind]["one"], WORDS[kind]["many"]
    named[f"other {many}"] = np.sum(others, axis=0) if others else np.zeros(len(measures))
    named["not clustered"] = d_mlp - counts.sum(axis=0)
    table = pd.DataFrame({"epoch": measures["epoch"].to_numpy(), **named})
    fig = go.Figure(epoch_lines(table, {name: name for name in named}, "neurons"))
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="neurons", rangemode="tozero")
    title = f"Neuron clusters: neurons whose dominant {one} explains > 85%"
    return finish(fig, layer_label(prefix, title))


def neuron_fve_figure(
    fve_by_component: Float[np.ndarray, "d_mlp n_components"],
    dominant_component: Int[np.ndarray, " d_mlp"],
    fve: Float[np.ndarray, " d_mlp"],
    names: list | None = None,
    kind: str = "frequency",
    prefix: str = "",
) -> go.Figure:
    """Final FVE of each neuron by each component of the basis, neurons sorted by dominant
    component (components numbered from 1, or named by `names` in spectrum order); `prefix`
    names the hidden layer."""
    order = np.lexsort((-fve, dominant_component))
    n_components = fve_by_component.shape[1]
    one = WORDS[kind]["one"]
    fig = go.Figure(
        go.Heatmap(
            x=np.arange(1, n_components + 1) if names is None else list(names),
            y=[f"neuron {i}" for i in order],
            z=fve_by_component[order].astype(np.float32),
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
    return finish(fig, layer_label(prefix, title), 640)


def attention_figure(
    coefficients: Float[np.ndarray, "p head"],
    names: list[str],
    kind: str = "frequency",
    prefix: str = "",
) -> go.Figure:
    """|Coefficients| in the task's basis of the attention from `=` to a (averaged over b),
    per head (`names`: the basis's rows).

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
    return finish(
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
    return finish(
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
    return finish(fig, "Final embedding in each basis of the elements", 460, showlegend=False)
