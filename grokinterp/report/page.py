"""One self-contained, offline HTML report of an analysed run, from its analysis directory alone.

    analyses/<run>/measures.csv, neurons.safetensors, summary.json, final_views.safetensors
        (+ llc.csv when the LLC was estimated)  -> reports/<run>.html

The page inlines plotly.js exactly once and loads nothing else: each figure is a JSON payload in
a `<script type="application/json" class="grokinterp-figure">` tag that one small script draws,
so the numbers in the page can be read back without a browser. The figures are built by the pure
functions of `grokinterp.report.figures` and `grokinterp.report.components`; this module reads
and checks the analysis (`grokinterp.storage.analysis_format.load_analysis`) and writes the page
atomically. The final model's figures (Nanda et al. 2023, sections 4.1 and 4.2) are drawn from the
views `grokinterp analyze` stored; the run directory is never read, so the report of a moved or
deleted run still renders.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from grokinterp.analysis.llc.series import load_llc
from grokinterp.report import components as rc
from grokinterp.report import figures as rf
from grokinterp.storage.analysis_dir import FINAL_VIEWS_FILE, default_report_path
from grokinterp.storage.analysis_format import (
    CLOCK_PIZZA_COLUMNS,
    Analysis,
    layer_prefix,
    load_analysis,
)
from grokinterp.storage.final_views import FinalViews

__all__ = ["load_analysis", "write_report"]

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


# ---- the final model ----------------------------------------------------------------------------
def final_model_figures(views: FinalViews, kind: str = "frequency") -> dict[str, go.Figure]:
    """The figures of the final model's stored views, those it has: the embedding's spectra,
    each layer's attention and the logit fit; `kind` names the basis's components (`WORDS`)."""
    figures = {}
    if views.spectra:
        figures["spectra"] = rc.spectra_figure(
            [(s.title, s.labels, s.norms, s.gini) for s in views.spectra]
        )
    for layer, coefficients in enumerate(views.attention):
        figures[_section("attention", layer)] = rc.attention_figure(
            coefficients, views.attention_rows, kind, layer_prefix(layer)
        )
    if (fit := views.logit_fit) is not None:
        figures["logit_fit"] = rc.logit_fit_figure(
            fit.fitted, fit.centred, fit.triples, fit.correct, fit.fve, kind
        )
    return figures


def views_missing(analysis: Analysis) -> list[str]:
    """The final-model figures an analysis written before final_views.safetensors cannot draw
    ([] when it has the file, or when none apply to its run)."""
    if analysis.views is not None:
        return []
    s = analysis.summary
    missing = ["embedding spectra"] if s.embedding_gini else []
    if s.basis is not None:
        missing += [] if "attention" in s.not_applicable else ["attention"]
        missing.append("logit fit")
    return missing


# ---- the page -----------------------------------------------------------------------------------
def _section(name: str, layer: int) -> str:
    """The section name of a per-layer figure: `name` for the first layer, `name_L<l>` after."""
    return f"{name}_L{layer}" if layer else name


SECTIONS = {
    "loss": "Train and test loss. Shading: the phases detected by the analysis (paper, section 5). "
    "Triangles: train-loss spikes, where the train loss jumps by more than 10x from one checkpoint "
    "to the next: at a large learning rate, full-batch Adam is thrown off its solution for a few "
    "epochs and falls back (the 'slingshots' of Thilak et al., 2022). A spike is an event inside "
    "a phase, not a phase boundary.",
    "progress": "Restricted loss keeps only the key components' directions of the logits; "
    "excluded loss removes them and is taken on the training pairs. The paper's claims: restricted "
    "loss falls before test loss (the generalising circuit forms before the model generalises, "
    "figure 7), and excluded loss rises during circuit formation.",
    "clock_pizza": "Zhong et al. (2023), section 4: gradient symmetricity, the mean cosine of "
    "the gradients of a logit with respect to the embeddings of a and of b (1 when the network "
    "sees only E_a + E_b, as a pizza does), and distance irrelevance, the mean spread of the "
    "right answer's logit among pairs at one distance a - b over its spread on all pairs (near 1 "
    "for a clock, near 0 for a pizza).",
    "llc": "The local learning coefficient (Lau et al. 2023) of each checkpoint, estimated by "
    "SGLD on the training pairs with the run's own loss (settings in llc.json); the band is "
    "one standard deviation across chains.",
    "weights": "Sum of squared weights (the paper: it falls in cleanup), Gini coefficients of the "
    "component norms of W_E and W_L (rise as they become sparse), the logits' variance explained "
    "by the key components, and the share of neurons clustered by component. Newer analyses "
    "add the measures of the proposed causes of the delay, on the training pairs: the "
    "logit scale (the correct logit above the pair's mean logit, and the logits' spread), the "
    "share of pairs whose float32 softmax is exactly one-hot on the answer (Prieto et al.'s "
    "softmax collapse: their float32 loss and gradient are 0; grokinterp's loss is float64), "
    "the cosine between the net update since the previous checkpoint and the weights there (-1: "
    "pure shrinking), and the weight norm over its value at the end of memorisation.",
    "spectrum_heatmap": "{Norm} of the embedding and of the neuron-logit map per {one}.",
    "spectrum_slider": "The embedding's {norm}s at one checkpoint; move the slider.",
    "clusters": "Neurons whose dominant {one} explains more than the FVE threshold of their "
    "activation variance, per key {one} (paper, section 4.3).",
    "neuron_fve": "Final model: the fraction of each neuron's activation variance explained by "
    "each {one}.",
    "spectra": "Final model: the embedding's spectrum in the additive Fourier basis of Z_p and in "
    "the multiplicative characters of Z_p^* (discrete log), with the Gini coefficient of each: "
    "the basis of the algorithm the model learned is the sparse one.",
    "attention": "Final model: attention from = to the first operand a (averaged over b), as a "
    "function of a in the task's basis, per head.",
    "logit_fit": "Final model: centred logits against their fit by the key components' kernels, "
    "{fit} at the answer c', over the key {many}, on a random subsample of (a, b, c) triples "
    "(paper, section 4.1).",
}
"""Each figure's caption; `{one}`, `{many}`, `{norm}`, `{Norm}` and `{fit}` name the run's basis
(`report_figures.WORDS`)."""
STYLE = """body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1150px;padding:1em 2em;
color:#222}table{border-collapse:collapse;margin:.4em 0 1em}td,th{border:1px solid #ccc;
padding:2px 8px;text-align:left;font-size:14px}section{margin:2em 0}.note{color:#555}
.columns{display:flex;gap:2em;flex-wrap:wrap}.columns>div{max-width:420px}"""


def build_figures(analysis: Analysis) -> dict[str, go.Figure]:
    """Every figure of the report, by section name, in page order (the basis figures only when
    the task has a basis, the final model's only when the analysis stores its views)."""
    m, s, cfg = analysis.measures, analysis.summary, analysis.config
    figures = {"loss": rf.loss_figure(m, s.phases)}
    if set(CLOCK_PIZZA_COLUMNS) <= set(m.columns):
        figures["clock_pizza"] = rf.clock_pizza_figure(m, s.phases)
    llc = load_llc(analysis.path)
    if llc is not None:
        figures["llc"] = rf.llc_figure(llc, m, s.phases)
    kind = _words_key(s) if s.basis else "frequency"
    final = {} if analysis.views is None else final_model_figures(analysis.views, kind)
    if s.basis is None:
        figures["weights"] = rf.weights_figure(m, s.phases)
        return figures | final
    keys, neurons = s.key_components, analysis.neurons
    names = [key for key, _ in rf.component_columns(m, "W_E")] if kind == "irrep" else None
    figures |= {
        "progress": rf.progress_figure(m, s.phases),
        "weights": rf.weights_figure(m, s.phases, kind),
        "spectrum_heatmap": rc.spectrum_heatmap_figure(m, kind),
        "spectrum_slider": rc.spectrum_slider_figure(m, keys, kind=kind),
    }
    d_mlp = cfg.d_mlp
    for layer in range(neurons["fve"].shape[1] // d_mlp):
        prefix, own = layer_prefix(layer), slice(layer * d_mlp, (layer + 1) * d_mlp)
        figures[_section("clusters", layer)] = rc.cluster_figure(m, keys, d_mlp, kind, prefix)
        figures[_section("neuron_fve", layer)] = rc.neuron_fve_figure(
            neurons["final_fve_by_frequency"][own],
            neurons["dominant_frequency"][-1, own],
            neurons["fve"][-1, own],
            names,
            kind,
            prefix,
        )
    return figures | final


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(rows: list[tuple[Any, ...]], head: tuple[str, ...] = ()) -> str:
    cells = lambda row, tag: "".join(f"<{tag}>{_fmt(v)}</{tag}>" for v in row)  # noqa: E731
    top = f"<tr>{cells(head, 'th')}</tr>" if head else ""
    return "<table>" + top + "".join(f"<tr>{cells(row, 'td')}</tr>" for row in rows) + "</table>"


def _details(title: str, text: Any) -> str:
    return f"<details class=note><summary>{title}</summary>{_fmt(text)}</details>"


def _header(analysis: Analysis) -> str:
    """Run name, task and basis, headline numbers, phases, clusters and the run config."""
    s, cfg, m = analysis.summary, analysis.config, analysis.measures
    kind, kinds = "component", "components"
    if s.basis:
        kind, kinds = rf.WORDS[_words_key(s)]["one"], rf.WORDS[_words_key(s)]["many"]
    keys = ", ".join(map(str, s.key_components)) or "none"
    share = s.fve_share
    facts = [
        ("task", s.task.get("formula")),
        ("basis", s.basis["title"] if s.basis else "none known"),
        ("last epoch", s.last_epoch),
        ("checkpoints", s.n_checkpoints),
        ("final train loss (nats)", s.final_train_loss),
        ("final test loss (nats)", s.final_test_loss),
        (f"key {kinds}", keys if s.basis else "n/a"),
        (
            f"neurons with FVE > {_fmt(s.fve_threshold)}",
            "n/a" if share is None else f"{share:.1%} of {cfg.d_mlp}",
        ),
        ("unexplained neurons", s.unexplained_neurons),
        ("logit FVE, final", s.logit_fve_final),
    ]
    spans = rf.phase_spans(s.phases, int(m.epoch.iloc[0]), int(m.epoch.iloc[-1]))
    phases = [(span.label, f"{span.start} to {span.end}") for span in spans]
    clusters = [(f"{kind} {k}", n) for k, n in s.cluster_sizes.items()] or [("none", "")]
    excluded = [(f"{kind} {k}", v) for k, v in s.excluded_loss_by_component.items()]
    absent = [(name, why) for name, why in s.not_applicable.items()]
    unread = analysis.foreign_fields  # e.g. n_heads of an MLP: kept in the config, never read
    fields = [(k, v) for k, v in cfg.to_dict().items() if k != "format_version" and k not in unread]
    half = (len(fields) + 1) // 2
    config = [a + b for a, b in zip(fields[:half], fields[half:] + [("", "")], strict=False)]
    column = lambda *parts: "<div>" + "".join(parts) + "</div>"  # noqa: E731
    deeper = [
        f"<h3>Neuron clusters, hidden layer {layer['layer']}</h3>"
        + _table(
            [(f"{kind} {k}", n) for k, n in layer["cluster_sizes"].items()] or [("none", "")],
            (kind, "neurons"),
        )
        for layer in s.layers[1:]
    ]
    circuit = (
        column(
            "<h3>Neuron clusters</h3>"
            if not deeper
            else "<h3>Neuron clusters, hidden layer 0</h3>",
            _table(clusters, (kind, "neurons")),
            *deeper,
            f"<h3>Excluded loss by {kind}</h3>",
            _table(excluded, ("removed", "loss (nats)")),
        )
        if s.basis
        else column("<h3>Measures that do not apply</h3>", _table(absent, ("measure", "why")))
    )
    return (
        f"<h1>grokinterp report: {html.escape(analysis.run_name)}</h1><div class=columns>"
        + column("<h3>Summary</h3>", _table(facts))
        + column(
            "<h3>Phases</h3>",
            _table(phases, ("phase", "epochs")),
            f"<p class=note>{_fmt(s.phase_note)}</p>" if s.phase_note else "",
            _details("how the phases are found", s.phase_rule),
            f"<h3>Key {kinds}</h3>",
            f"<p>{_fmt(keys)}</p>",
            _details("how they are chosen", s.key_frequency_rule),
        )
        + circuit
        + column("<h3>Run config</h3>", _table(config))
        + "</div>"
    )


def _held(value: bool | None) -> str:
    return "could not be measured" if value is None else ("held" if value else "did not hold")


def _base(section: str) -> str:
    """The caption key of a section (a per-layer section shares its first layer's caption)."""
    return re.sub(r"_L\d+$", "", section)


def claims_held(summary) -> dict[str, str]:
    """For each section whose caption states a claim of the paper: whether it held on this run
    (from the summary's `checks`)."""
    checks = summary.checks or {}
    restricted, test = (
        checks.get(k) for k in ("restricted_loss_below_tenth", "test_loss_below_tenth")
    )
    before = None if restricted is None or test is None else restricted < test
    excluded = checks.get("excluded_loss_slope_in_circuit_formation")
    weight = checks.get("weight_norm_slope_in_cleanup")
    return {
        "progress": f" On this run: restricted loss first below a tenth of its start at epoch "
        f"{_fmt(restricted)}, test loss at {_fmt(test)}, so the first claim {_held(before)}; "
        f"excluded loss rising in circuit formation "
        f"{_held(None if excluded is None else excluded > 0)}.",
        "weights": " On this run: the weight norm falling in cleanup "
        f"{_held(None if weight is None else weight < 0)}.",
    }


def _spike_note(measures) -> str:
    epochs = measures["epoch"][rf.loss_spikes(measures)].tolist()
    shown = ", ".join(map(str, epochs[:12])) + (", ..." if len(epochs) > 12 else "")
    return f" On this run: {len(epochs)} spike(s)" + (f", at epochs {shown}." if epochs else ".")


def _words_key(summary) -> str:
    return rf.words_key(summary.basis["name"], summary.basis["kind"])


def draw_script() -> str:
    """The page's script that draws every `grokinterp-figure` payload with plotly."""
    return (
        "(function(){var config=" + json.dumps(PLOTLY_CONFIG) + ",drawn=[];"
        'document.querySelectorAll("script.grokinterp-figure").forEach(function(node){'
        "var figure=JSON.parse(node.textContent);drawn.push(Plotly.newPlot("
        'node.getAttribute("data-target"),figure.data,figure.layout,config));});'
        "window.grokinterpDrawn=Promise.all(drawn);})();"
    )


def render_html(analysis: Analysis, figures: dict[str, go.Figure]) -> str:
    """The whole page: plotly.js inlined once, one JSON payload per figure, no external file."""
    from plotly.offline import get_plotlyjs

    plotly_js = get_plotlyjs().replace("</script", "<\\/script")
    claims = claims_held(analysis.summary) | {"loss": _spike_note(analysis.measures)}
    words = rf.WORDS[_words_key(analysis.summary)] if analysis.summary.basis else {}
    words = {**words, "Norm": words.get("norm", "").capitalize()}
    sections = []
    for name, figure in figures.items():
        payload = figure.to_json().replace("<", "\\u003c")  # never closes the script tag
        sections.append(
            f'<section><p class="note">{html.escape(SECTIONS.get(_base(name), "").format(**words))}'
            f"{html.escape(claims.get(name, ''))}</p>"
            f'<div class="plot" id="fig-{name}"></div><script type="application/json" '
            f'class="grokinterp-figure" data-target="fig-{name}">{payload}</script></section>'
        )
    draw = draw_script()
    missing = views_missing(analysis)
    if missing:
        sections.append(
            f'<section><p class="note">Not drawn: the final model\'s {", ".join(missing)}. This '
            f"analysis predates {FINAL_VIEWS_FILE}; run `grokinterp analyze` on its run again to "
            "add them (the measures already taken are kept).</p></section>"
        )
    title = html.escape(f"grokinterp report: {analysis.run_name}")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style><script>{plotly_js}</script></head><body>{_header(analysis)}"
        + "".join(sections)
        + f"<script>{draw}</script></body></html>"
    )


def write_report(analysis_dir: str | Path, out_path: str | Path | None = None) -> Path:
    """Write the report of `analysis_dir` (default `analysis_dir.default_report_path`) and return
    its path. Reads the analysis directory only; UsageError naming the file when one is missing
    or malformed (nothing written then)."""
    from grokinterp.storage.store import atomic_write

    analysis = load_analysis(analysis_dir)
    page = render_html(analysis, build_figures(analysis))
    out = Path(out_path) if out_path is not None else default_report_path(analysis.path)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, page.encode("utf-8"))
    return out
