"""One self-contained, offline HTML report of an analysed run.

    analyses/<run>/measures.csv, neurons.safetensors, summary.json  (+ the run's last checkpoint)
        -> reports/<run>.html

The page inlines plotly.js exactly once and loads nothing else: each figure is a JSON payload in
a `<script type="application/json" class="grokinterp-figure">` tag that one small script draws,
so the numbers in the page can be read back without a browser. The figures are built by the pure
functions of `grokinterp.report_figures`; this module reads and checks the analysis, computes the
final model's attention and logit views (Nanda et al. 2023, sections 4.1 and 4.2), and writes the
page atomically.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from torch import Tensor

from grokinterp import report_figures as rf
from grokinterp.config import FORMAT_VERSION, RunConfig
from grokinterp.errors import UsageError
from grokinterp.measures.final_model import attention_to_a_fourier, fit_logit_cosines, model_at_eq

DEFAULT_REPORTS_DIR = Path("reports")
MEASURES_FILE, NEURONS_FILE, SUMMARY_FILE = "measures.csv", "neurons.safetensors", "summary.json"
MEASURE_COLUMNS = (
    "epoch", "train_loss", "test_loss", "restricted_loss", "restricted_loss_test",
    "excluded_loss", "logit_fve", "weight_norm", "gini_W_E", "gini_W_L", "fve_share",
)  # fmt: skip
"""Columns the report draws, besides `W_E.k<k>`, `W_L.k<k>` and `cluster.k<k>` for every k."""
SCATTER_POINTS, SCATTER_CORRECT = 2400, 600
"""Logit scatter: random (a, b, c) triples, plus triples whose c is the right answer."""
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


@dataclass(frozen=True)
class Analysis:
    """The three files of an analysis directory, read and checked."""

    path: Path
    summary: dict[str, Any]
    config: RunConfig
    measures: pd.DataFrame
    neurons: dict[str, np.ndarray]

    @property
    def run_name(self) -> str:
        name = Path(str(self.summary.get("run_name") or "")).name
        return name or self.path.resolve().name


def _fail(path: Path, problem: str) -> UsageError:
    return UsageError(f"{path}: {problem}")


def _read_summary(path: Path) -> tuple[dict[str, Any], RunConfig]:
    try:
        summary = json.loads(path.read_text())
    except OSError:
        raise _fail(path, "missing; run `grokinterp analyze` first") from None
    except ValueError as exc:
        raise _fail(path, f"not valid JSON ({exc})") from None
    if not isinstance(summary, dict):
        raise _fail(path, "must hold a JSON object")
    for key, kind in (("config", dict), ("key_frequencies", list), ("phases", dict)):
        if not isinstance(summary.get(key), kind):
            raise _fail(path, f"`{key}` missing or not a {kind.__name__}")
    ends = [summary["phases"].get(key) for _, key, _ in rf.PHASES]
    known = [end for end in ends if end is not None]
    if not all(isinstance(end, int) for end in known) or known != sorted(known):
        raise _fail(path, f"`phases` must hold increasing integer epochs or null, got {ends}")
    try:
        config = RunConfig.from_dict({"format_version": FORMAT_VERSION, **summary["config"]})
    except UsageError as exc:
        raise _fail(path, f"bad `config`: {exc}") from None
    keys = summary["key_frequencies"]
    if len(set(keys)) != len(keys) or not all(
        isinstance(k, int) and 1 <= k <= (config.p - 1) // 2 for k in keys
    ):
        raise _fail(path, f"`key_frequencies` must be distinct integers in 1..(p-1)/2, got {keys}")
    return summary, config


def _read_measures(path: Path, n_freq: int) -> pd.DataFrame:
    try:
        measures = pd.read_csv(path)
    except OSError:
        raise _fail(path, "missing; run `grokinterp analyze` first") from None
    except (ValueError, pd.errors.ParserError) as exc:
        raise _fail(path, f"not a readable CSV table ({exc})") from None
    needed = list(MEASURE_COLUMNS) + [
        f"{prefix}.k{k}" for prefix in ("W_E", "W_L", "cluster") for k in range(1, n_freq + 1)
    ]
    missing = [column for column in needed if column not in measures.columns]
    if missing:
        raise _fail(path, f"missing columns {', '.join(missing[:5])}" + " ..." * (len(missing) > 5))
    if measures.empty:
        raise _fail(path, "holds no checkpoint rows")
    if not all(pd.api.types.is_numeric_dtype(measures[c]) for c in needed):
        raise _fail(path, "holds non-numeric values")
    epochs = measures["epoch"].to_numpy()
    if np.any(epochs != np.round(epochs)) or np.any(np.diff(epochs) <= 0):
        raise _fail(path, "`epoch` must be increasing integers")
    return measures.assign(epoch=measures["epoch"].astype(np.int64))


def _read_neurons(path: Path, n_ckpt: int, d_mlp: int, n_freq: int) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        arrays = load_file(path)
    except (OSError, SafetensorError, ValueError) as exc:
        kind = "missing" if not path.exists() else f"not a readable safetensors file ({exc})"
        raise _fail(path, kind) from None
    shapes = {
        "epochs": (n_ckpt,),
        "dominant_frequency": (n_ckpt, d_mlp),
        "fve": (n_ckpt, d_mlp),
        "final_fve_by_frequency": (d_mlp, n_freq),
    }
    for name, shape in shapes.items():
        if name not in arrays:
            raise _fail(path, f"no array `{name}`")
        if arrays[name].shape != shape:
            raise _fail(path, f"`{name}` has shape {arrays[name].shape}, expected {shape}")
    return {name: arrays[name] for name in shapes}


def load_analysis(analysis_dir: str | Path) -> Analysis:
    """Read an analysis directory; any missing or malformed file raises UsageError naming it."""
    path = Path(analysis_dir)
    if not path.is_dir():
        raise UsageError(f"{path}: no such analysis directory; run `grokinterp analyze` first")
    summary, config = _read_summary(path / SUMMARY_FILE)
    n_freq = (config.p - 1) // 2
    measures = _read_measures(path / MEASURES_FILE, n_freq)
    neurons = _read_neurons(path / NEURONS_FILE, len(measures), config.d_mlp, n_freq)
    if not np.array_equal(neurons["epochs"], measures["epoch"].to_numpy()):
        raise _fail(path / NEURONS_FILE, f"`epochs` differ from those of {MEASURES_FILE}")
    return Analysis(path, summary, config, measures, neurons)


# ---- the final model ----------------------------------------------------------------------------
def final_model_figures(
    params: dict[str, Tensor], p: int, key_frequencies: list[int]
) -> dict[str, go.Figure]:
    """The attention and logit-fit figures of one model (weights with HookedTransformer names)."""
    from grokinterp.fourier import basis_names

    fit = fit_logit_cosines(model_at_eq(params, p).logits[0].reshape(p, p, p), key_frequencies)
    rng = np.random.default_rng(0)
    chosen = rng.choice(p**3, size=min(SCATTER_POINTS, p**3), replace=False)
    pairs = rng.choice(p * p, size=min(SCATTER_CORRECT, p * p), replace=False)
    index = np.concatenate([chosen, pairs * p + (pairs // p + pairs % p) % p])
    triples = np.stack([index // (p * p), index // p % p, index % p], axis=1)
    return {
        "attention": rf.attention_figure(attention_to_a_fourier(params, p).numpy(), basis_names(p)),
        "logit_fit": rf.logit_fit_figure(
            fit.fitted.reshape(-1)[index].numpy(),
            fit.centred.reshape(-1)[index].numpy(),
            triples,
            triples[:, 2] == (triples[:, 0] + triples[:, 1]) % p,
            fit.fve,
        ),
    }


def _final_params(analysis: Analysis, run_dir: str | Path | None) -> dict[str, Tensor]:
    from grokinterp.run import open_run

    summary_path = analysis.path / SUMMARY_FILE
    if run_dir is None:
        given = analysis.summary.get("run_dir")
        if not isinstance(given, str):
            raise _fail(summary_path, "no `run_dir`, and none was given")
        # a relative path is taken from the working directory, else from the repository root
        given_path = Path(given)
        tries = [given_path]
        if not given_path.is_absolute():
            tries.append(analysis.path.parent.parent / given_path)
        found = [path for path in tries if path.is_dir()]
        if not found:
            raise _fail(
                summary_path,
                f"run directory {given} not found (its last checkpoint "
                "draws the final-model figures)",
            )
        run_dir = found[0]
    run = open_run(run_dir)
    if not run.config.same_architecture(analysis.config):
        raise UsageError(f"{run_dir}: the run's architecture differs from {summary_path}'s config")
    return run.state_dict()


# ---- the page -----------------------------------------------------------------------------------
SECTIONS = {
    "loss": "Train and test loss. Shading: the phases detected by the analysis (paper, section 5).",
    "progress": "Restricted loss keeps only the key-frequency directions of the logits; excluded "
    "loss removes them and is taken on the training pairs. Restricted loss falls before test loss: "
    "the generalising circuit forms before the model generalises (paper, figure 7).",
    "weights": "Sum of squared weights (falls in cleanup), Gini coefficients of the Fourier norms "
    "of W_E and W_L (rise as they become sparse), the logits' variance explained by the "
    "key-frequency cosines, and the share of neurons clustered by frequency.",
    "fourier_heatmap": "Fourier norm of the embedding and of the neuron-logit map per frequency.",
    "fourier_slider": "The embedding's Fourier norms at one checkpoint; move the slider.",
    "clusters": "Neurons whose dominant frequency explains more than the FVE threshold of their "
    "activation variance, per key frequency (paper, section 4.3).",
    "neuron_fve": "Final model: the fraction of each neuron's activation variance explained by "
    "each frequency.",
    "attention": "Final model: attention from = to the first operand a (averaged over b), as a "
    "function of a in the Fourier basis, per head.",
    "logit_fit": "Final model: centred logits against sum_k alpha_k cos(w_k(a + b - c)) over the "
    "key frequencies, on a random subsample of (a, b, c) triples (paper, section 4.1).",
}
STYLE = """body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1150px;padding:1em 2em;
color:#222}table{border-collapse:collapse;margin:.4em 0 1em}td,th{border:1px solid #ccc;
padding:2px 8px;text-align:left;font-size:14px}section{margin:2em 0}.note{color:#555}
.columns{display:flex;gap:2em;flex-wrap:wrap}.columns>div{max-width:420px}"""


def build_figures(analysis: Analysis, run_dir: str | Path | None = None) -> dict[str, go.Figure]:
    """Every figure of the report, by section name, in page order."""
    m, s, cfg = analysis.measures, analysis.summary, analysis.config
    keys, neurons = s["key_frequencies"], analysis.neurons
    figures = {
        "loss": rf.loss_figure(m, s["phases"]),
        "progress": rf.progress_figure(m, s["phases"]),
        "weights": rf.weights_figure(m, s["phases"]),
        "fourier_heatmap": rf.fourier_heatmap_figure(m),
        "fourier_slider": rf.fourier_slider_figure(m, keys),
        "clusters": rf.cluster_figure(m, keys, cfg.d_mlp),
        "neuron_fve": rf.neuron_fve_figure(
            neurons["final_fve_by_frequency"], neurons["dominant_frequency"][-1], neurons["fve"][-1]
        ),
    }
    return figures | final_model_figures(_final_params(analysis, run_dir), cfg.p, keys)


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
    """Run name, headline numbers, phases, clusters and the run config, as HTML tables."""
    s, cfg, m = analysis.summary, analysis.config, analysis.measures
    get = s.get
    share = get("fve_share")
    facts = [
        ("last epoch", get("last_epoch")),
        ("checkpoints", get("n_checkpoints")),
        ("final train loss (nats)", get("final_train_loss")),
        ("final test loss (nats)", get("final_test_loss")),
        ("key frequencies", ", ".join(map(str, s["key_frequencies"])) or "none"),
        (
            f"neurons with FVE > {_fmt(get('fve_threshold'))}",
            "n/a" if share is None else f"{share:.1%} of {cfg.d_mlp}",
        ),
        ("unexplained neurons", get("unexplained_neurons")),
        ("logit FVE, final", get("logit_fve_final")),
    ]
    spans = rf.phase_spans(s["phases"], int(m.epoch.iloc[0]), int(m.epoch.iloc[-1]))
    phases = [(span.label, f"{span.start} to {span.end}") for span in spans]
    clusters = [(f"k = {k}", n) for k, n in (get("cluster_sizes") or {}).items()] or [("none", "")]
    excluded = [(f"k = {k}", v) for k, v in (get("excluded_loss_by_frequency") or {}).items()]
    fields = [(k, v) for k, v in cfg.to_dict().items() if k != "format_version"]
    half = (len(fields) + 1) // 2
    config = [a + b for a, b in zip(fields[:half], fields[half:] + [("", "")], strict=False)]
    column = lambda *parts: "<div>" + "".join(parts) + "</div>"  # noqa: E731
    return (
        f"<h1>grokinterp report: {html.escape(analysis.run_name)}</h1><div class=columns>"
        + column("<h3>Summary</h3>", _table(facts))
        + column(
            "<h3>Phases</h3>",
            _table(phases, ("phase", "epochs")),
            _details("how the phases are found", get("phase_rule")),
            "<h3>Key frequencies</h3>",
            f"<p>{_fmt(', '.join(map(str, s['key_frequencies'])) or 'none')}</p>",
            _details("how they are chosen", get("key_frequency_rule")),
        )
        + column(
            "<h3>Neuron clusters</h3>",
            _table(clusters, ("frequency", "neurons")),
            "<h3>Excluded loss by frequency</h3>",
            _table(excluded, ("removed", "loss (nats)")),
        )
        + column("<h3>Run config</h3>", _table(config))
        + "</div>"
    )


def render_html(analysis: Analysis, figures: dict[str, go.Figure]) -> str:
    """The whole page: plotly.js inlined once, one JSON payload per figure, no external file."""
    from plotly.offline import get_plotlyjs

    plotly_js = get_plotlyjs().replace("</script", "<\\/script")
    sections = []
    for name, figure in figures.items():
        payload = figure.to_json().replace("<", "\\u003c")  # never closes the script tag
        sections.append(
            f'<section><p class="note">{html.escape(SECTIONS.get(name, ""))}</p>'
            f'<div class="plot" id="fig-{name}"></div><script type="application/json" '
            f'class="grokinterp-figure" data-target="fig-{name}">{payload}</script></section>'
        )
    draw = (
        "(function(){var config=" + json.dumps(PLOTLY_CONFIG) + ",drawn=[];"
        'document.querySelectorAll("script.grokinterp-figure").forEach(function(node){'
        "var figure=JSON.parse(node.textContent);drawn.push(Plotly.newPlot("
        'node.getAttribute("data-target"),figure.data,figure.layout,config));});'
        "window.grokinterpDrawn=Promise.all(drawn);})();"
    )
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
    """Write the report of `analysis_dir` (default reports/<run-name>.html) and return its path.

    `run_dir` gives the run whose last checkpoint draws the final-model figures; by default the
    `run_dir` recorded in summary.json.
    """
    from grokinterp.store import atomic_write

    analysis = load_analysis(analysis_dir)
    page = render_html(analysis, build_figures(analysis, run_dir))
    out = (
        Path(out_path)
        if out_path is not None
        else DEFAULT_REPORTS_DIR / f"{analysis.run_name}.html"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, page.encode("utf-8"))
    return out
