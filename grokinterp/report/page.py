"""One self-contained, offline HTML report of an analysed run.

    analyses/<run>/measures.csv, neurons.safetensors, summary.json  (+ the run's last checkpoint)
        -> reports/<run>.html

The page inlines plotly.js exactly once and loads nothing else: each figure is a JSON payload in
a `<script type="application/json" class="grokinterp-figure">` tag that one small script draws,
so the numbers in the page can be read back without a browser. The figures are built by the pure
functions of `grokinterp.report.figures` and `grokinterp.report.components`; this module reads
and checks the analysis, computes the final model's attention and logit views (Nanda et al.
2023, sections 4.1 and 4.2), and writes the page atomically.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from torch import Tensor

from grokinterp.analysis.llc.series import load_llc
from grokinterp.analysis.measures.final_model import attention_to_a, model_at_eq
from grokinterp.analysis.measures.logits import fit_logits
from grokinterp.bases import Basis
from grokinterp.errors import UsageError
from grokinterp.models import Architecture, architecture, foreign_fields
from grokinterp.report import components as rc
from grokinterp.report import figures as rf
from grokinterp.storage.analysis_dir import default_report_path
from grokinterp.storage.analysis_format import (
    CLOCK_PIZZA_COLUMNS,
    SUMMARY_FILE,
    Analysis,
    layer_prefix,
    load_analysis,
)
from grokinterp.tasks import Task, task_of

__all__ = ["load_analysis", "write_report"]

SCATTER_POINTS, SCATTER_CORRECT = 2400, 600
"""Logit scatter: random (a, b, c) triples, plus triples whose c is the right answer."""
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


# ---- the final model ----------------------------------------------------------------------------
def final_model_figures(
    model: Architecture, params: dict[str, Tensor], task: Task, basis: Basis, keys: list
) -> dict[str, go.Figure]:
    """The attention (each layer's, where there is attention) and logit-fit figures of one
    model (its state dict)."""
    classes, n, domain = task.n_classes, task.n_elements, task.domain
    internals = model_at_eq(model, params, task)
    fit = fit_logits(internals.logits[0], task, basis, keys)
    rng = np.random.default_rng(0)
    cells = len(domain) * classes
    chosen = rng.choice(cells, size=min(SCATTER_POINTS, cells), replace=False)
    pairs = rng.choice(len(domain), size=min(SCATTER_CORRECT, len(domain)), replace=False)
    index = np.concatenate([chosen, pairs * classes + task.labels.numpy()[pairs]])
    grid = domain.numpy()[index // classes]
    triples = np.stack([grid // n, grid % n, index % classes], axis=1)
    kind = rf.words_key(basis.name, basis.kind)
    spectra = {"spectra": spectra_figure(model, params, task)} if task.element_bases else {}
    for layer in range(len(internals.patterns)):
        coefficients, basis_a = attention_to_a(internals, task, basis, layer)
        spectra[_section("attention", layer)] = rc.attention_figure(
            coefficients.numpy(), list(basis_a.row_names), kind, layer_prefix(layer)
        )
    return spectra | {
        "logit_fit": rc.logit_fit_figure(
            fit.fitted.reshape(-1)[index].numpy(),
            fit.centred.reshape(-1)[index].numpy(),
            triples,
            task.labels.numpy()[index // classes] == triples[:, 2],
            fit.fve,
            kind,
        ),
    }


def spectra_figure(model: Architecture, params: dict[str, Tensor], task: Task) -> go.Figure:
    """The final W_E's spectrum in each of the task's element bases, with its Gini."""
    from grokinterp.analysis.columns import joined_embedding
    from grokinterp.analysis.measures import embedding, weights

    W_E = joined_embedding(model, {k: v[None] for k, v in params.items()}).double()
    spectra = []
    for basis in task.element_spectra_bases():
        norms = embedding.embedding_norms(W_E, basis)
        labels = [str(c.key) for c in basis.spectrum]
        spectra.append((basis.title, labels, norms[0].numpy(), float(weights.gini(norms)[0])))
    return rc.spectra_figure(spectra)


def _final_params(analysis: Analysis, run_dir: str | Path | None) -> dict[str, Tensor]:
    """The last checkpoint of the run: `run_dir` if given, else where the summary says the run
    was (its absolute path, then its path as given, from the working directory)."""
    from grokinterp.storage.run import open_run

    summary_path = analysis.path / SUMMARY_FILE
    if run_dir is None:
        recorded = [analysis.summary.run_dir_abs, analysis.summary.run_dir]
        found = [Path(given) for given in recorded if given and Path(given).is_dir()]
        if not found:
            raise UsageError(
                f"{summary_path}: run directory {analysis.summary.run_dir} not found (its last "
                "checkpoint draws the final-model figures); give it with --ckpt-dir"
            )
        run_dir = found[0]
    run = open_run(run_dir)
    if not run.config.same_architecture(analysis.config):
        raise UsageError(f"{run_dir}: the run's architecture differs from {summary_path}'s config")
    return run.state_dict(epoch=_analysed_epoch(run, analysis))


def _analysed_epoch(run, analysis: Analysis) -> int | None:
    """The epoch of `run`'s checkpoint that draws the final-model figures: the analysis's last
    (None, the run's last, for an analysis that records no checkpoint digests). UsageError
    unless `run` is the run `analysis` measured: the same fingerprint (config and split) and the
    same digest of that checkpoint."""
    from grokinterp.storage import store
    from grokinterp.storage.analysis_dir import run_fingerprint

    summary, where = analysis.summary, analysis.path / SUMMARY_FILE
    if summary.run_fingerprint and summary.run_fingerprint != run_fingerprint(
        run.config, run.train_indices
    ):
        raise UsageError(
            f"{where} is the analysis of another run ({summary.run_dir_abs or summary.run_dir}), "
            f"not of {run.path}; give this run's analysis with --analysis"
        )
    last = summary.last_epoch
    recorded = summary.checkpoint_digests.get(str(last))
    if not recorded:
        return None
    if last not in run.epochs:
        raise UsageError(
            f"{run.path} has no checkpoint at epoch {last}, the last one {where} measured"
        )
    if recorded != store.checkpoint_digest(run.checkpoint_path(epoch=last)):
        raise UsageError(
            f"{run.path}'s checkpoint at epoch {last} differs from the one {where} measured: "
            "another copy of the run; analyse it with --out, or give its own --analysis"
        )
    return last


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
    "fourier_heatmap": "{Norm} of the embedding and of the neuron-logit map per {one}.",
    "fourier_slider": "The embedding's {norm}s at one checkpoint; move the slider.",
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


def build_figures(analysis: Analysis, run_dir: str | Path | None = None) -> dict[str, go.Figure]:
    """Every figure of the report, by section name, in page order (the basis figures only when
    the task has a basis)."""
    m, s, cfg = analysis.measures, analysis.summary, analysis.config
    figures = {"loss": rf.loss_figure(m, s.phases)}
    if set(CLOCK_PIZZA_COLUMNS) <= set(m.columns):
        figures["clock_pizza"] = rf.clock_pizza_figure(m, s.phases)
    llc = load_llc(analysis.path)
    if llc is not None:
        figures["llc"] = rf.llc_figure(llc, m, s.phases)
    if s.basis is None:
        figures["weights"] = rf.weights_figure(m, s.phases)
        task = task_of(cfg)
        if task.element_bases:
            params = _final_params(analysis, run_dir)
            figures["spectra"] = spectra_figure(architecture(cfg), params, task)
        return figures
    keys, neurons, kind = s.key_components, analysis.neurons, _words_key(s)
    names = [key for key, _ in rf.frequency_columns(m, "W_E")] if kind == "irrep" else None
    figures |= {
        "progress": rf.progress_figure(m, s.phases),
        "weights": rf.weights_figure(m, s.phases, kind),
        "fourier_heatmap": rc.fourier_heatmap_figure(m, kind),
        "fourier_slider": rc.fourier_slider_figure(m, keys, kind=kind),
    }
    model, d_mlp = architecture(cfg), cfg.d_mlp
    for layer in range(model.hidden_layers):
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
    task = task_of(cfg)
    basis = task.basis(s.basis["name"])
    params = _final_params(analysis, run_dir)
    return figures | final_model_figures(model, params, task, basis, keys)


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
    unread = foreign_fields(cfg.model)  # e.g. n_heads of an MLP: kept in the config, never read
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
    title = html.escape(f"grokinterp report: {analysis.run_name}")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style><script>{plotly_js}</script></head><body>{_header(analysis)}"
        + "".join(sections)
        + f"<script>{draw}</script></body></html>"
    )


def write_report(
    analysis_dir: str | Path,
    out_path: str | Path | None = None,
    *,
    run_dir: str | Path | None = None,
) -> Path:
    """Write the report of `analysis_dir` (default `analysis_dir.default_report_path`) and return
    its path.

    `run_dir` gives the run whose last checkpoint draws the final-model figures; by default the
    `run_dir` recorded in summary.json.
    """
    from grokinterp.storage.store import atomic_write

    analysis = load_analysis(analysis_dir)
    page = render_html(analysis, build_figures(analysis, run_dir))
    out = Path(out_path) if out_path is not None else default_report_path(analysis.path)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, page.encode("utf-8"))
    return out
