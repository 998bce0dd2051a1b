"""The final model's views that `grokinterp analyze` stores for the report
(grokinterp.analysis.views, grokinterp.storage.final_views), checked against independent
computations: the hooked model's attention through an explicit Fourier matrix, numpy's
least-squares fit of the logits by the paper's cosines, numpy's FFT of the embedding; and the
file's round trip, and the refusals of `write_final_views`."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from grokinterp.analysis.views import SAMPLE_CORRECT, SAMPLE_POINTS, final_views
from grokinterp.errors import UsageError
from grokinterp.presets import preset
from grokinterp.storage.final_views import (
    FinalViews,
    LogitSample,
    Spectrum,
    load_final_views,
)
from grokinterp.tasks import task_of

TINY = dict(p=11, train_frac=0.5, d_model=16, n_heads=2, d_mlp=32, epochs=20, save_every=10)
KEYS = [2, 5]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    from grokinterp.training.loop import train_runs

    run = tmp_path_factory.mktemp("views") / "run"
    train_runs([preset("small").replace(preset="tiny", **TINY)], [run], progress=False)
    return run


def stored_views(run: Path, where: Path) -> FinalViews:
    """The views of `run`'s last checkpoint in its Fourier basis with KEYS, written to a file
    in `where` and read back."""
    from grokinterp.storage.run import open_run

    opened = open_run(run)
    task = task_of(opened.config)
    views = final_views(task, opened.architecture, opened.state_dict(), 20, task.basis(), KEYS)
    where.mkdir(parents=True, exist_ok=True)
    (where / "final_views.safetensors").write_bytes(views.to_bytes())
    return load_final_views(where)


def test_attention_and_logit_fit_match_the_hooked_model(tiny_run, tmp_path):
    from grokinterp.bases.fourier import basis, basis_names
    from grokinterp.storage.run import open_run

    p = 11
    views = stored_views(tiny_run, tmp_path)
    model = open_run(tiny_run).model().double()
    tokens = torch.stack(torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij"), -1)
    tokens = torch.cat([tokens.reshape(-1, 2), torch.full((p * p, 1), p)], dim=1)
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens)
    to_a = cache["blocks.0.attn.hook_pattern"][:, :, -1, 0].reshape(p, p, -1).mean(dim=1)
    assert views.attention_rows == basis_names(p) and len(views.attention) == 1
    assert views.attention[0].dtype == np.float32
    np.testing.assert_allclose(views.attention[0], (basis(p) @ to_a).numpy(), atol=1e-6)

    logits = logits[:, -1].reshape(p, p, p).numpy()
    centred = logits - logits.mean(axis=-1, keepdims=True)
    a, b, c = np.meshgrid(np.arange(p), np.arange(p), np.arange(p), indexing="ij")
    design = np.stack([np.cos(2 * np.pi * k * (a + b - c) / p).ravel() for k in KEYS], 1)
    alpha, residual = np.linalg.lstsq(design, centred.ravel(), rcond=None)[:2]
    fit = views.logit_fit
    assert len(fit.fitted) == min(SAMPLE_POINTS, p**3) + min(SAMPLE_CORRECT, p * p)
    ta, tb, tc = fit.triples.astype(np.int64).T
    np.testing.assert_allclose(fit.centred, centred[ta, tb, tc], atol=1e-5)
    cosines = [np.cos(2 * np.pi * k * (ta + tb - tc) / p) for k in KEYS]
    fitted = sum(w * x for w, x in zip(alpha, cosines, strict=True))
    np.testing.assert_allclose(fit.fitted, fitted, atol=1e-5)
    np.testing.assert_array_equal(fit.correct, (ta + tb) % p == tc)
    assert fit.correct[-p * p :].all()  # the answer cells of every pair
    assert fit.fve == pytest.approx(1 - residual[0] / (centred**2).sum(), abs=1e-9)


def test_spectra_are_the_fourier_transform_of_the_embedding(tiny_run, tmp_path):
    """Fourier component k of W_E (p odd, orthonormal cos and sin rows): its norm is
    sqrt(2 / p * sum_d |DFT_k|^2); the Gini is the mean absolute difference over twice the mean."""
    from grokinterp.storage.run import open_run

    p = 11
    views = stored_views(tiny_run, tmp_path)
    fourier, dlog = views.spectra
    assert (fourier.name, dlog.name) == ("fourier", "dlog")
    assert fourier.labels == [str(k) for k in range(1, (p - 1) // 2 + 1)]
    W_E = open_run(tiny_run).state_dict()["embed.W_E"][:p].double().numpy()
    spectrum = np.abs(np.fft.rfft(W_E, axis=0)[1:]) ** 2
    norms = np.sqrt(2 / p * spectrum.sum(axis=1))
    assert fourier.norms.dtype == np.float32
    np.testing.assert_allclose(fourier.norms, norms, rtol=1e-6)
    differences = np.abs(norms[:, None] - norms[None, :]).sum()
    assert fourier.gini == pytest.approx(differences / (2 * len(norms) * norms.sum()), abs=1e-12)


def test_logit_fit_agrees_with_the_analysis_measure():
    from grokinterp.analysis.measures.logits import fit_logits, logit_fve

    task = task_of(preset("small").replace(p=11))
    logits = torch.randn(121, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    logits += 3 * torch.cos(2 * torch.pi * 2 * torch.arange(11) / 11)  # some key structure
    fit = fit_logits(logits, task, task.basis(), KEYS)
    want = float(logit_fve(logits[None], task, task.basis(), KEYS)[0])
    assert fit.fve == pytest.approx(want)


def test_the_file_round_trips_with_its_dtypes(tmp_path):
    rng = np.random.default_rng(0)
    views = FinalViews(
        epoch=7,
        attention=[rng.normal(size=(5, 2)).astype(np.float32) for _ in range(2)],
        attention_rows=list("abcde"),
        logit_fit=LogitSample(
            fitted=rng.normal(size=4).astype(np.float32),
            centred=rng.normal(size=4).astype(np.float32),
            triples=rng.integers(0, 5, size=(4, 3)).astype(np.int32),
            correct=np.array([True, False, False, True]),
            fve=0.123456789012345,
        ),
        spectra=[Spectrum("fourier", "F", ["1", "2"], np.array([1.5, 0.25], np.float32), 0.5)],
    )
    (tmp_path / "final_views.safetensors").write_bytes(views.to_bytes())
    back = load_final_views(tmp_path)
    assert back.epoch == 7 and back.attention_rows == views.attention_rows
    for got, want in zip(back.attention, views.attention, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)
    for name in ("fitted", "centred", "triples", "correct"):
        np.testing.assert_array_equal(getattr(back.logit_fit, name), getattr(views.logit_fit, name))
    assert back.logit_fit.triples.dtype == np.int32 and back.logit_fit.correct.dtype == np.bool_
    assert back.logit_fit.fve == views.logit_fit.fve  # the JSON float is exact
    (spectrum,) = back.spectra
    assert (spectrum.name, spectrum.title, spectrum.labels, spectrum.gini) == (
        "fourier",
        "F",
        ["1", "2"],
        0.5,
    )
    np.testing.assert_array_equal(spectrum.norms, [1.5, 0.25])
    bare = FinalViews(epoch=3)  # a task without a basis or element bases
    (tmp_path / "final_views.safetensors").write_bytes(bare.to_bytes())
    assert load_final_views(tmp_path) == bare
    (tmp_path / "final_views.safetensors").unlink()
    assert load_final_views(tmp_path) is None


def test_write_final_views_adds_the_file_alone_for_the_run_measured(tiny_run, tmp_path):
    from grokinterp.analysis.analyze import analyze_run
    from grokinterp.analysis.views import write_final_views
    from grokinterp.storage import store
    from grokinterp.training.loop import train_runs

    analysis = analyze_run(tiny_run, tmp_path / "analysis", progress=False).path
    written = (analysis / "final_views.safetensors").read_bytes()
    (analysis / "final_views.safetensors").unlink()
    others = {p.name: p.read_bytes() for p in analysis.iterdir()}
    assert write_final_views(tiny_run, analysis) == analysis / "final_views.safetensors"
    assert (analysis / "final_views.safetensors").read_bytes() == written
    assert {p.name: p.read_bytes() for p in analysis.iterdir() if p.name in others} == others

    other = tmp_path / "other"
    train_runs([preset("small").replace(preset="tiny", **TINY, seed=1)], [other], progress=False)
    with pytest.raises(UsageError, match="is the analysis of another run"):
        write_final_views(other, analysis)
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    state, epoch, cfg = store.load_checkpoint(store.list_checkpoints(copy)[-1][1])
    store.save_checkpoint(copy, cfg, epoch, {k: v + 1 for k, v in state.items()})
    with pytest.raises(UsageError, match="differs from the one"):
        write_final_views(copy, analysis)
    with pytest.raises(UsageError, match="no such analysis directory"):
        write_final_views(tiny_run, tmp_path / "nowhere")
    assert (analysis / "final_views.safetensors").read_bytes() == written


def test_views_without_a_basis_hold_the_spectra_alone(tiny_run):
    from grokinterp.storage.run import open_run

    opened = open_run(tiny_run)
    views = final_views(opened.task, opened.architecture, opened.state_dict(), 20, None, [])
    assert (views.attention, views.attention_rows, views.logit_fit) == ([], [], None)
    assert [s.name for s in views.spectra] == ["fourier", "dlog"]
