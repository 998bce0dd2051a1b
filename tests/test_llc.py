"""The LLC: SGLD estimates against the closed form of a regular model (d/2) and of one with
degenerate directions, divergence reported as such, and the command line's refusals. The
estimates need devinterp (`pip install 'grokinterp[llc]'`) and skip without it; the refusals
do not."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from grokinterp.analysis.llc.estimator import LLCSettings, estimate_llc, estimate_llc_batched
from grokinterp.cli import main
from grokinterp.training.loop import train_runs

SETTINGS = LLCSettings(lr=1e-3, localization=1.0, chains=4, draws=300, burnin=100, batch_size=1000)


def regression(d: int, duplicated: bool):
    """Least squares y = w.x (Gaussian likelihood, loss (y - w.x)^2 / 2) and its minimum w*,
    n = 1000. With each of d/2 features entered twice, only w_i + w_i' matters: d/2 flat
    directions, LLC d/4 instead of d/2; w* then splits the solution of the d/2 features evenly
    (lstsq of the rank-deficient design itself may return a point off the minimum)."""
    g = torch.Generator().manual_seed(0)
    n = 1000
    base = torch.randn(n, d // 2 if duplicated else d, generator=g, dtype=torch.float64)
    x = torch.cat([base, base], dim=1) if duplicated else base
    y = x @ torch.randn(d, generator=g, dtype=torch.float64) + torch.randn(n, generator=g)
    w = torch.linalg.lstsq(base, y[:, None]).solution[:, 0]
    return x, y, torch.cat([w / 2, w / 2]) if duplicated else w


def regression_llc(d: int, duplicated: bool, settings: LLCSettings = SETTINGS):
    """The LLC of the regression at w*, through devinterp's sampler."""
    x, y, w = regression(d, duplicated)
    linear = nn.Linear(d, 1, bias=False).double()
    with torch.no_grad():
        linear.weight[0] = w
    model = nn.Sequential(linear, nn.Flatten(0))
    return estimate_llc(model, x, y, lambda out, t: 0.5 * ((out - t) ** 2).mean(), settings)


def regression_llc_batched(d: int, duplicated: bool, settings: LLCSettings = SETTINGS):
    """The same estimate with the chains batched (grokinterp.analysis.llc.sgld)."""
    x, y, w = regression(d, duplicated)

    def loss_of(params, index):  # params["w"]: [chains, d]
        residual = x[index] @ params["w"].T - y[index, None]  # [B, chains]
        return 0.5 * (residual**2).mean(dim=0)

    return estimate_llc_batched(loss_of, {"w": w}, len(y), settings)


def test_regular_model_has_llc_d_over_2_and_a_degenerate_one_less():
    regular, degenerate = regression_llc_batched(6, False), regression_llc_batched(6, True)
    assert regular.status == degenerate.status == "ok"
    assert regular.llc_mean == pytest.approx(6 / 2, rel=0.15)
    assert degenerate.llc_mean == pytest.approx(6 / 4, rel=0.15)
    assert degenerate.llc_mean < regular.llc_mean
    assert regular.loss_trace.shape == (4, 300)


def test_diverging_settings_are_reported_not_a_number():
    pytest.importorskip("devinterp")
    settings = LLCSettings(lr=10.0, localization=1.0, chains=2, draws=100, burnin=0)
    for result in regression_llc(6, False, settings), regression_llc_batched(6, False, settings):
        assert result.status.startswith("diverged")
        assert result.llc_mean is None and result.llc_std is None and result.per_chain is None


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from tests.conftest import tiny_config

    run_dir = tmp_path_factory.mktemp("llc") / "run"
    train_runs([tiny_config().replace(epochs=20)], [run_dir], progress=False)
    return run_dir


def test_analyze_llc_writes_every_checkpoint_with_its_settings(tiny_run, tmp_path):
    pytest.importorskip("devinterp")
    out = tmp_path / "analysis"
    args = ["analyze", "--ckpt-dir", str(tiny_run), "--out", str(out), "--quiet", "--llc"]
    assert main([*args, "--llc-chains", "2", "--llc-draws", "5", "--llc-lr", "1e-5"]) == 0
    from grokinterp.analysis.llc.series import load_llc

    table = load_llc(out)
    assert table["epoch"].tolist() == [0, 10, 20]
    assert (table["status"] == "ok").all() and table["llc_mean"].notna().all()
    record = json.loads((out / "llc.json").read_text())
    assert record["settings"]["draws"] == 5 and record["settings"]["lr"] == 1e-5
    assert record["n_train"] > 0 and record["settings"]["nbeta_used"] > 0
    # a step size that blows up: every row says diverged and has no number
    bad = tmp_path / "bad"
    assert main([*args[:-3], str(bad), "--quiet", "--llc", "--llc-lr", "1e3"]) == 0
    table = load_llc(bad)
    assert table["status"].str.startswith("diverged").all() and table["llc_mean"].isna().all()


def test_llc_series_estimates_only_new_checkpoints_until_the_settings_change(
    tiny_run, tmp_path, monkeypatch
):
    pytest.importorskip("devinterp")
    import shutil

    from grokinterp.analysis.llc import series as llc_series
    from grokinterp.storage import store

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    last = store.list_checkpoints(run)[-1][1]
    held = tmp_path / last.name
    shutil.move(last, held)  # the run as it was one checkpoint earlier
    estimated = []
    real = llc_series.llc_of_state

    def counting(cfg, state, *args, **kwargs):
        estimated.append(state)
        return real(cfg, state, *args, **kwargs)

    monkeypatch.setattr(llc_series, "llc_of_state", counting)
    settings = LLCSettings(lr=1e-5, chains=2, draws=4, burnin=2)

    def estimate(out, settings=settings):
        estimated.clear()
        llc_series.llc_run(run, out, settings, progress=False)
        return len(estimated), llc_series.load_llc(out)

    out = tmp_path / "analysis"
    assert estimate(out)[0] == 2
    shutil.move(held, last)
    count, table = estimate(out)
    assert count == 1 and table["epoch"].tolist() == [0, 10, 20]
    assert estimate(out)[0] == 0
    fresh_count, fresh = estimate(tmp_path / "fresh")  # kept rows are what a fresh run gives
    assert fresh_count == 3
    pd.testing.assert_frame_equal(table, fresh)
    pd.testing.assert_frame_equal(estimate(out)[1], fresh)
    count, table = estimate(out, replace(settings, draws=5))  # new settings: all again
    assert count == 3 and json.loads((out / "llc.json").read_text())["settings"]["draws"] == 5
    assert load_file(out / "llc_traces.safetensors")["loss_trace"].shape == (3, 2, 5)


def test_batched_chains_match_devinterp_step_for_step(tiny_run):
    """grokinterp.analysis.llc.sgld against devinterp's sampler on one checkpoint: the same batches
    (short last batch, new shuffle per pass), the same noise per chain, hence the same loss at every
    draw (devinterp keeps float32) and the same LLC per chain."""
    pytest.importorskip("devinterp")
    from grokinterp.analysis.llc.series import (
        AnswerLogits,
        answer_loss,
        llc_of_state,
        training_data,
    )
    from grokinterp.models import architecture
    from grokinterp.storage.run import open_run

    run = open_run(tiny_run)
    data, state = training_data(run), run.state_dict(epoch=10)
    assert len(data[1]) % 16 != 0  # a short batch at the end of every pass
    settings = LLCSettings(lr=3e-4, localization=100.0, chains=3, draws=10, burnin=5, batch_size=16)
    batched = llc_of_state(run.config, state, data, settings)
    module = AnswerLogits(architecture(run.config), state)
    reference = estimate_llc(module, *data, answer_loss, settings)
    assert batched.status == reference.status == "ok"
    assert batched.init_loss == pytest.approx(reference.init_loss, rel=1e-5)
    np.testing.assert_allclose(batched.loss_trace, reference.loss_trace, rtol=2e-5)
    assert batched.per_chain == pytest.approx(reference.per_chain, rel=1e-3, abs=1e-3)
    assert len(set(batched.per_chain)) == 3  # the chains' noise differs


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--llc-lr", "-1"], "step size"),
        (["--llc-draws", "0"], "draws"),
        (["--llc-localization", "-2"], "localization"),
        (["--llc-chains", "0"], "chains"),
    ],
)
def test_bad_llc_settings_are_one_line_exit_2_nothing_written(
    tiny_run, tmp_path, capsys, flags, words
):
    out = tmp_path / "analysis"
    assert main(["analyze", "--ckpt-dir", str(tiny_run), "--out", str(out), "--llc", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and words in err
    assert not out.exists()


def test_llc_without_devinterp_says_how_to_install(tiny_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "devinterp", None)  # import devinterp now fails
    out = tmp_path / "analysis"
    assert main(["analyze", "--ckpt-dir", str(tiny_run), "--out", str(out), "--llc"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "pip install 'grokinterp[llc]'" in err
    assert not out.exists()
    assert main(["analyze", "--ckpt-dir", str(tiny_run), "--out", str(out), "--quiet"]) == 0


def test_llc_of_a_run_without_training_pairs_is_refused(tiny_run, tmp_path, capsys):
    import shutil

    pytest.importorskip("devinterp")
    empty = tmp_path / "empty"
    shutil.copytree(tiny_run, empty)
    (empty / "split.json").write_text(json.dumps({"train_indices": []}))
    out = tmp_path / "analysis"
    assert main(["analyze", "--ckpt-dir", str(empty), "--out", str(out), "--llc"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no training pairs" in err
    assert not out.exists()
