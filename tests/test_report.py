"""The HTML report: self-contained, its numbers are the analysis directory's, it needs nothing
else (not the run), and it draws in Chromium.

The analysis directory here is synthetic (random but plausible values with the schema that
`grokinterp analyze` writes) beside a real tiny run, whose last checkpoint gives the stored
final-model views (tests/helpers.py builds both and drives Chromium).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.numpy import save_file

from grokinterp.errors import UsageError
from grokinterp.presets import preset
from grokinterp.report import page as report
from grokinterp.report.figures import even_subsample, phase_spans
from tests.helpers import (
    CHROMIUM,
    chromium,
    drawn_marker,
    figures_in,
    instrumented_copy,
    png_is_blank,
    write_fake_analysis,
)

# ---- a synthetic analysis beside a real tiny run -------------------------------------------------
TINY = dict(p=11, train_frac=0.5, d_model=16, n_heads=2, d_mlp=32, epochs=20, save_every=10)


@pytest.fixture(scope="module")
def tiny_analysis(tmp_path_factory) -> Path:
    from grokinterp.training.loop import train_runs

    root = tmp_path_factory.mktemp("report")
    cfg = preset("small").replace(preset="tiny", **TINY)
    train_runs([cfg], [root / "run"], progress=False)
    # 100 checkpoints, so that the slider subsamples them; the run itself needs only its last
    return write_fake_analysis(
        root / "tiny-run", root / "run", cfg, list(range(0, 2000, 20)), [2, 5]
    )


@pytest.fixture(scope="module")
def page(tiny_analysis, tmp_path_factory) -> tuple[Path, str]:
    path = report.write_report(tiny_analysis, tmp_path_factory.mktemp("out") / "r.html")
    return path, path.read_text()


# ---- reading the page back --------------------------------------------------------------------
def _traces(figure: dict) -> dict[str, dict]:
    return {trace.get("name"): trace for trace in figure["data"]}


# ---- the page is self-contained ---------------------------------------------------------------
def test_page_loads_nothing_from_outside_and_inlines_plotly_once(page):
    from plotly.offline import get_plotlyjs

    _, text = page
    bundle = get_plotlyjs()
    assert text.count(bundle[:300]) == 1 and text.count("plotly.js v") == 1
    assert re.search(r"<script[^>]*\bsrc\s*=", text, re.I) is None
    assert re.search(r"<link\b", text, re.I) is None
    own = text.replace(bundle, "")  # plotly.js names URLs in strings; the rest names none
    assert re.search(r"https?://|//cdn|@import|url\(", own, re.I) is None
    assert len(re.findall(r"<script>", own)) == 2  # plotly.js and the drawing script
    assert set(figures_in(text)) == set(report.SECTIONS)


def test_default_path_mirrors_the_analysis_directory(tiny_analysis, tmp_path, monkeypatch):
    """analyses/<x> -> reports/<x>.html; an analysis outside the working directory by its
    absolute path, so two analyses of the same name never share a page."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_analysis, tmp_path / "analyses" / "A" / "tiny-run")
    path = report.write_report(Path("analyses/A/tiny-run"))
    assert path == Path("reports") / "A" / "tiny-run.html" and path.is_file()
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp file left
    elsewhere = report.write_report(tiny_analysis)
    assert elsewhere == Path("reports") / tiny_analysis.relative_to("/").with_suffix(".html")


# ---- the numbers are the analysis table's -----------------------------------------------------
def test_epoch_figures_hold_the_table(tiny_analysis, page):
    figs = figures_in(page[1])
    m = pd.read_csv(tiny_analysis / "measures.csv")
    epochs = m.epoch.to_numpy()
    wanted = {
        "loss": {"train": "train_loss", "test": "test_loss"},
        "progress": {
            "restricted loss (all pairs)": "restricted_loss",
            "restricted loss (test pairs)": "restricted_loss_test",
            "excluded loss (train pairs)": "excluded_loss",
            "train loss": "train_loss",
            "test loss": "test_loss",
        },
        "weights": {
            "weight norm": "weight_norm",
            "Gini of W_E": "gini_W_E",
            "Gini of W_L": "gini_W_L",
            "logit FVE (key frequencies)": "logit_fve",
            "neurons clustered": "fve_share",
        },
    }
    for name, columns in wanted.items():
        traces = _traces(figs[name])
        assert set(traces) == set(columns)
        for trace_name, column in columns.items():
            np.testing.assert_array_equal(traces[trace_name]["x"], epochs)
            np.testing.assert_array_equal(traces[trace_name]["y"], m[column].to_numpy())
    assert figs["loss"]["layout"]["yaxis"]["type"] == "log"
    assert figs["loss"]["layout"]["xaxis"]["title"]["text"] == "epoch"
    assert figs["loss"]["layout"]["yaxis"]["title"]["text"] == "loss (nats)"
    summary = json.loads((tiny_analysis / "summary.json").read_text())
    shaded = [(s["x0"], s["x1"]) for s in figs["loss"]["layout"]["shapes"]]
    ends = list(summary["phases"].values())
    assert shaded == list(zip([0] + ends[:-1], ends, strict=True))


def test_fourier_figures_hold_the_table(tiny_analysis, page):
    figs = figures_in(page[1])
    m = pd.read_csv(tiny_analysis / "measures.csv")
    ks = np.arange(1, 6)
    for trace, prefix in zip(figs["spectrum_heatmap"]["data"], ("W_E", "W_L"), strict=True):
        matrix = m[[f"{prefix}.k{k}" for k in ks]].to_numpy().T.astype(np.float32)
        np.testing.assert_array_equal(trace["z"], matrix)
        np.testing.assert_array_equal(trace["y"], ks)
        np.testing.assert_array_equal(trace["x"], m.epoch.to_numpy())
    (bar,) = figs["spectrum_slider"]["data"]
    steps = figs["spectrum_slider"]["layout"]["sliders"][0]["steps"]
    rows = [m.index[m.epoch == int(step["label"])][0] for step in steps]
    assert len(steps) == 50 and rows[0] == 0 and rows[-1] == len(m) - 1
    assert np.all(np.diff(rows) > 0)
    for step, row in zip(steps, rows, strict=True):
        want = m.loc[row, [f"W_E.k{k}" for k in ks]].to_numpy(np.float64)
        np.testing.assert_allclose(step["args"][0]["y"][0], want, rtol=1e-4)  # 5 digits
    assert bar["y"] == steps[-1]["args"][0]["y"][0] and bar["x"] == list(ks)


def test_neuron_figures_hold_the_table(tiny_analysis, page):
    from safetensors.numpy import load_file

    figs = figures_in(page[1])
    m = pd.read_csv(tiny_analysis / "measures.csv")
    lines = _traces(figs["clusters"])
    assert set(lines) == {"k = 2", "k = 5", "other frequencies", "not clustered"}
    np.testing.assert_array_equal(lines["k = 5"]["y"], m["cluster.k5"].to_numpy())
    clustered = m[[f"cluster.k{k}" for k in range(1, 6)]].sum(axis=1).to_numpy()
    np.testing.assert_array_equal(lines["not clustered"]["y"], 32 - clustered)

    neurons = load_file(tiny_analysis / "neurons.safetensors")
    heat = figs["neuron_fve"]["data"][0]
    order = [int(label.split()[-1]) for label in heat["y"]]
    assert sorted(order) == list(range(32))
    assert np.all(np.diff(neurons["dominant_frequency"][-1][order]) >= 0)
    np.testing.assert_array_equal(heat["z"], neurons["final_fve_by_frequency"][order])


def test_final_model_figures_draw_the_stored_views(tiny_analysis, page):
    """The attention, logit-fit and spectra figures hold final_views.safetensors' numbers
    (which tests/test_views.py checks against the hooked model and numpy's FFT)."""
    from safetensors import safe_open

    figs = figures_in(page[1])
    with safe_open(tiny_analysis / "final_views.safetensors", "np") as handle:
        stored = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        metadata = json.loads(handle.metadata()["final_views"])
    attention = figs["attention"]["data"][0]
    assert attention["x"] == metadata["attention_rows"]
    np.testing.assert_array_equal(attention["customdata"], stored["attention.L0"].T)
    np.testing.assert_array_equal(attention["z"], np.abs(stored["attention.L0"].T))
    points = [t for t in figs["logit_fit"]["data"] if t["mode"] == "markers"]
    correct = stored["logit_fit.correct"]
    for trace, mask in zip(points, (~correct, correct), strict=True):
        np.testing.assert_array_equal(trace["x"], stored["logit_fit.fitted"][mask])
        np.testing.assert_array_equal(trace["y"], stored["logit_fit.centred"][mask])
        np.testing.assert_array_equal(trace["customdata"], stored["logit_fit.triples"][mask])
    fve = metadata["logit_fit_fve"]
    assert f"{fve:.1%}" in figs["logit_fit"]["layout"]["title"]["text"]
    bars = {trace["name"]: trace for trace in figs["spectra"]["data"]}
    for entry in metadata["spectra"]:
        bar = bars[entry["title"]]
        assert bar["x"] == entry["labels"]
        np.testing.assert_array_equal(bar["y"], stored[f"spectrum.{entry['name']}"])


def test_logit_fit_agrees_with_the_analysis_measure(tiny_analysis):
    from grokinterp.analysis.measures.logits import fit_logits, logit_fve
    from grokinterp.tasks import task_of

    task = task_of(preset("small").replace(p=11))
    logits = torch.randn(121, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    logits += 3 * torch.cos(2 * torch.pi * 2 * torch.arange(11) / 11)  # some key structure
    fit = fit_logits(logits, task, task.basis(), [2, 5])
    want = float(logit_fve(logits[None], task, task.basis(), [2, 5])[0])
    assert fit.fve == pytest.approx(want)


def test_report_of_a_real_analysis(tiny_analysis, tmp_path):
    from grokinterp.analysis.analyze import analyze_run

    analysis = analyze_run(tiny_analysis.parent / "run", tmp_path / "analysis", progress=False).path
    figs = figures_in(report.write_report(analysis, tmp_path / "r.html").read_text())
    m = pd.read_csv(analysis / "measures.csv")
    lines = _traces(figs["progress"])
    np.testing.assert_array_equal(lines["excluded loss (train pairs)"]["y"], m.excluded_loss)
    np.testing.assert_array_equal(_traces(figs["weights"])["weight norm"]["y"], m.weight_norm)


def test_one_checkpoint_and_no_key_frequencies(tiny_analysis, tmp_path):
    cfg = preset("small").replace(preset="tiny", **TINY)
    one = write_fake_analysis(tmp_path / "one", tiny_analysis.parent / "run", cfg, [20], [])
    figs = figures_in(report.write_report(one, tmp_path / "r.html").read_text())
    assert set(_traces(figs["clusters"])) == {"other frequencies", "not clustered"}
    assert len(figs["spectrum_slider"]["layout"]["sliders"][0]["steps"]) == 1


# ---- pure helpers ------------------------------------------------------------------------------
def test_even_subsample_keeps_the_ends():
    assert list(even_subsample(5, 50)) == [0, 1, 2, 3, 4]
    picked = even_subsample(400, 50)
    assert len(picked) <= 50 and picked[0] == 0 and picked[-1] == 399
    assert np.ptp(np.diff(picked)) <= 1


def test_phase_spans_with_unknown_ends():
    done = {"memorization_end": 10, "circuit_formation_end": 50, "cleanup_end": 70}
    assert [tuple(s) for s in phase_spans(done, 0, 100)] == [
        ("memorisation", 0, 10),
        ("circuit formation", 10, 50),
        ("cleanup", 50, 70),
    ]
    ongoing = {"memorization_end": 10, "circuit_formation_end": None, "cleanup_end": None}
    assert [s.label for s in phase_spans(ongoing, 0, 100)] == [
        "memorisation",
        "circuit formation (not ended)",
    ]
    assert phase_spans(ongoing, 0, 100)[-1].end == 100


# ---- malformed analyses -------------------------------------------------------------------------
def _break_csv_column(d: Path) -> None:
    m = pd.read_csv(d / "measures.csv")
    m.drop(columns=["W_L.k3"]).to_csv(d / "measures.csv", index=False)


def _break_summary_key(d: Path) -> None:
    summary = json.loads((d / "summary.json").read_text())
    del summary["key_frequencies"]
    (d / "summary.json").write_text(json.dumps(summary))


def _bad_key_frequency(d: Path) -> None:
    summary = json.loads((d / "summary.json").read_text())
    (d / "summary.json").write_text(json.dumps(summary | {"key_frequencies": [2, 6]}))


def _break_neuron_shape(d: Path) -> None:
    from safetensors.numpy import load_file

    arrays = load_file(d / "neurons.safetensors")
    arrays["fve"] = arrays["fve"][:, :5].copy()
    save_file(arrays, d / "neurons.safetensors")


def _junk_views(d: Path) -> None:
    (d / "final_views.safetensors").write_bytes(b"junk")


def _views_of_another_epoch(d: Path) -> None:
    from grokinterp.storage.final_views import load_final_views

    views = load_final_views(d)
    (d / "final_views.safetensors").write_bytes(dataclasses.replace(views, epoch=20).to_bytes())


@pytest.mark.parametrize(
    "breakage, file, words",
    [
        (lambda d: (d / "summary.json").unlink(), "summary.json", "missing"),
        (lambda d: (d / "summary.json").write_text("{oops"), "summary.json", "JSON"),
        (_break_summary_key, "summary.json", "key_frequencies"),
        (_bad_key_frequency, "summary.json", "1..(p-1)/2"),
        (lambda d: (d / "measures.csv").unlink(), "measures.csv", "missing"),
        (_break_csv_column, "measures.csv", "W_L.k3"),
        (lambda d: (d / "neurons.safetensors").write_bytes(b"junk"), "neurons.safetensors", ""),
        (_break_neuron_shape, "neurons.safetensors", "fve"),
        (_junk_views, "final_views.safetensors", "safetensors"),
        (_views_of_another_epoch, "final_views.safetensors", "epoch 20"),
    ],
)
def test_malformed_analysis_names_the_file(tiny_analysis, tmp_path, breakage, file, words):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_analysis, broken)
    breakage(broken)
    with pytest.raises(UsageError, match=re.escape(str(broken / file))) as caught:
        report.write_report(broken, tmp_path / "out.html")
    assert words in str(caught.value)
    assert not (tmp_path / "out.html").exists()


def test_missing_analysis_dir(tmp_path):
    with pytest.raises(UsageError, match="no such analysis directory"):
        report.write_report(tmp_path / "nowhere")


def test_the_report_needs_only_the_analysis_directory(tiny_analysis, tmp_path):
    """The report of a real analysis is the same page, figure for figure, after its run
    directory is moved, and after it is deleted."""
    from grokinterp.analysis.analyze import analyze_run

    run = tmp_path / "run"
    shutil.copytree(tiny_analysis.parent / "run", run)
    analysis = analyze_run(run, tmp_path / "analysis", progress=False).path
    first = report.write_report(analysis, tmp_path / "first.html").read_text()
    assert {"attention", "logit_fit", "spectra"} <= set(figures_in(first))
    run.rename(tmp_path / "moved")
    moved = report.write_report(analysis, tmp_path / "moved.html").read_text()
    shutil.rmtree(tmp_path / "moved")
    deleted = report.write_report(analysis, tmp_path / "deleted.html").read_text()
    assert moved == first and deleted == first


def test_an_analysis_from_before_the_views(tiny_analysis, tmp_path):
    """An analysis without final_views.safetensors renders the rest, says in one caption which
    figures need `grokinterp analyze` again; re-analysing adds the views and leaves the measures
    table and the summary byte for byte."""
    from grokinterp.analysis.analyze import analyze_run

    run = tiny_analysis.parent / "run"
    analysis = analyze_run(run, tmp_path / "analysis", progress=False).path
    full = figures_in(report.write_report(analysis, tmp_path / "full.html").read_text())
    before = {name: (analysis / name).read_bytes() for name in ("measures.csv", "summary.json")}
    (analysis / "final_views.safetensors").unlink()
    page = report.write_report(analysis, tmp_path / "old.html").read_text()
    assert set(figures_in(page)) == set(full) - {"attention", "logit_fit", "spectra"}
    notes = [n for n in re.findall(r'<p class="note">(.*?)</p>', page) if "Not drawn" in n]
    assert len(notes) == 1
    assert "embedding spectra, attention, logit fit" in notes[0]
    assert "`grokinterp analyze`" in notes[0]
    analyze_run(run, analysis, progress=False)
    assert (analysis / "final_views.safetensors").is_file()
    assert {name: (analysis / name).read_bytes() for name in before} == before
    again = report.write_report(analysis, tmp_path / "again.html").read_text()
    assert set(figures_in(again)) == set(full) and "Not drawn" not in again


# ---- in a browser -------------------------------------------------------------------------------
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing (apt-get install chromium)")
def test_page_draws_in_headless_chromium(page, tmp_path):
    copy = instrumented_copy(page[0], tmp_path / "checked.html")
    dom = chromium(["--virtual-time-budget=20000", "--dump-dom", copy.as_uri()], tmp_path / "a")
    marker = drawn_marker(dom)
    assert marker["errors"] == []
    assert marker["plots"] == len(report.SECTIONS) == marker["drawn"]
    assert marker["resources"] == []  # nothing fetched besides the page itself
    shot = tmp_path / "shot.png"
    args = ["--virtual-time-budget=20000", f"--screenshot={shot}", "--window-size=1200,3000"]
    chromium([*args, page[0].as_uri()], tmp_path / "b")
    assert not png_is_blank(shot)


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing (apt-get install chromium)")
def test_report_of_the_grokked_small_run_draws(small_run, small_analysis, tmp_path):
    path = report.write_report(small_analysis, tmp_path / "small.html")
    figs = figures_in(path.read_text())
    table = pd.read_csv(small_analysis / "measures.csv")
    lines = _traces(figs["progress"])
    np.testing.assert_array_equal(lines["restricted loss (all pairs)"]["y"], table.restricted_loss)
    copy = instrumented_copy(path, tmp_path / "checked.html")
    dom = chromium(["--virtual-time-budget=20000", "--dump-dom", copy.as_uri()], tmp_path / "a")
    marker = drawn_marker(dom)
    assert set(figs) == set(report.SECTIONS) - {"llc"}  # every section but the LLC (not asked)
    assert marker["errors"] == [] and marker["plots"] == marker["drawn"] == len(figs)


def test_blank_png_detector(tmp_path):
    def png(pixels: np.ndarray) -> Path:
        height, width, _ = pixels.shape
        rows = b"".join(b"\x00" + pixels[y].tobytes() for y in range(height))
        chunk = lambda kind, body: (  # noqa: E731
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )
        ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        path = tmp_path / f"{pixels.sum()}.png"
        path.write_bytes(
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b"")
        )
        return path

    white = np.full((4, 5, 3), 255, dtype=np.uint8)
    assert png_is_blank(png(white))
    white[2, 3] = 0
    assert not png_is_blank(png(white))


def test_task_without_a_basis_says_which_measures_do_not_apply(tmp_path):
    from grokinterp.analysis.analyze import analyze_run
    from grokinterp.storage.analysis_format import Summary
    from grokinterp.training.loop import train_runs

    cfg = preset("small").replace(preset="tiny", operation="a2_b2", **TINY)
    train_runs([cfg], [tmp_path / "run"], progress=False)
    analysis = analyze_run(tmp_path / "run", tmp_path / "analysis", progress=False).path
    summary = Summary.load(analysis)
    assert summary.basis is None and summary.key_components == []
    assert "restricted and excluded loss" in summary.not_applicable
    assert summary.final_restricted_loss is None and summary.logit_fve_final is None
    assert "restricted_loss" not in pd.read_csv(analysis / "measures.csv")
    assert not (analysis / "neurons.safetensors").exists()
    page = report.write_report(analysis, tmp_path / "r.html").read_text()
    assert "Measures that do not apply" in page and "has no known basis" in page
    assert set(figures_in(page)) == {"loss", "weights", "spectra"}


def test_captions_say_whether_each_claim_held(tiny_analysis):
    from grokinterp.storage.analysis_format import Summary

    summary = Summary.load(tiny_analysis)
    checks = {"restricted_loss_below_tenth": 100, "test_loss_below_tenth": 300}
    checks |= {"excluded_loss_slope_in_circuit_formation": -1.0}
    checks |= {"weight_norm_slope_in_cleanup": None}
    claims = report.claims_held(dataclasses.replace(summary, checks=checks))
    assert "so the first claim held" in claims["progress"]
    assert "circuit formation did not hold" in claims["progress"]
    assert "could not be measured" in claims["weights"]


def test_train_loss_spikes_are_marked():
    """A spike: the train loss more than 10x its value one checkpoint before; a rise of 9x,
    or a fall, is none."""
    import pandas as pd

    from grokinterp.report import figures as rf

    train = [1.0, 0.1, 0.01, 0.2, 0.02, 0.18, 1e-4, 1e-2]  # spikes at epochs 30 and 70
    measures = pd.DataFrame(
        {"epoch": [0, 10, 20, 30, 40, 50, 60, 70], "train_loss": train, "test_loss": [5.0] * 8}
    )
    assert list(measures["epoch"][rf.loss_spikes(measures)]) == [30, 70]
    markers = [t for t in rf.loss_figure(measures, {}).data if t.mode == "markers"]
    assert len(markers) == 1 and list(markers[0].x) == [30, 70]
    assert list(markers[0].y) == [0.2, 1e-2]
    calm = measures.assign(train_loss=[1.0, 0.5, 0.25, 0.2, 0.1, 0.05, 0.02, 0.01])
    assert not [t for t in rf.loss_figure(calm, {}).data if t.mode == "markers"]
