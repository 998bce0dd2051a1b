"""The analysis of a grokked small-preset run, incremental re-runs, and bad input."""

import json
import re
import shutil

import numpy as np
import pytest
import torch

from grokinterp import data
from grokinterp.analysis import analyze
from grokinterp.analysis.analyze import Summary, analyze_run, load_measures
from grokinterp.analysis.measures import embedding
from grokinterp.cli import main
from grokinterp.errors import UsageError
from grokinterp.presets import preset
from grokinterp.report.page import write_report
from grokinterp.storage import analysis_format, store


def final_embedding(run_dir):
    """The number tokens' rows of the final checkpoint's W_E (float64, numpy, [p, d_model])."""
    from grokinterp.storage.run import open_run

    run = open_run(run_dir)
    return run.state_dict()["embed.W_E"][: run.config.p].double().numpy()


def dft_shares(W_E):
    """Share of frequency k = 1..(p-1)/2 (index k - 1) in the squared norm of the embedding's
    non-constant part, by numpy's FFT along the token axis (p odd: k and p - k carry the same
    power, so the one-sided spectrum gives the shares)."""
    power = (np.abs(np.fft.rfft(W_E, axis=0)[1:]) ** 2).sum(axis=1)
    return power / power.sum()


def dft_keys(W_E, margin=1e-4):
    """The key frequencies by the documented rule (a share of at least 5%), from `dft_shares`;
    None when a share lies within `margin` of 5%, where float32 rounding could decide it."""
    share = dft_shares(W_E)
    if np.any(np.abs(share - 0.05) < margin):
        return None
    return (np.flatnonzero(share >= 0.05) + 1).tolist()


def test_small_preset_key_frequencies_are_a_direct_dft_of_the_final_embedding(
    small_run, small_analysis
):
    """Regression test on the small run's key frequencies: whatever frequencies this machine's
    run lands on ([3, 20] and [3, 20, 29] on this project's machines; rounding differs between
    BLAS builds and thread counts, and grokking amplifies it), the analysis must report exactly
    those numpy's FFT of the final W_E gives, and its W_E.k columns must be those norms (the
    basis is orthonormal: ||W_E.k||^2 = 2 / p sum_d |FFT_k|^2)."""
    assert embedding.KEY_SHARE == 0.05  # the rule these tests write out
    W_E = final_embedding(small_run)
    want = dft_keys(W_E)
    if not want:
        pytest.fail("precondition: the final embedding has key frequencies, none at 5% share")
    assert Summary.load(small_analysis).key_frequencies == want
    p = W_E.shape[0]
    power = (np.abs(np.fft.rfft(W_E, axis=0)[1:]) ** 2).sum(axis=1)
    final = load_measures(small_analysis).iloc[-1]
    norms = np.array([final[f"W_E.k{k}"] for k in range(1, (p - 1) // 2 + 1)])
    np.testing.assert_allclose(norms**2, 2 / p * power, rtol=1e-5)


def planted_embedding(p, d_model, amplitudes):
    """[p, d_model]: element x as (a_k cos w_k x, a_k sin w_k x) for each planted k in the first
    2 * len(amplitudes) columns, zeros elsewhere; frequency k's share is a_k^2 / sum a^2."""
    x = np.arange(p)[:, None] * 2 * np.pi / p
    W_E = np.zeros((p, d_model))
    for j, (k, a) in enumerate(amplitudes.items()):
        W_E[:, 2 * j], W_E[:, 2 * j + 1] = a * np.cos(k * x[:, 0]), a * np.sin(k * x[:, 0])
    return W_E


def test_planted_frequencies_are_the_key_frequencies(small_run, tmp_path):
    """The small run's final weights with an embedding of known frequencies planted: shares
    1 / 2.29, 1 / 2.29, 0.25 / 2.29 (11%) and 0.04 / 2.29 (1.7%, under the 5% rule), so the
    analysis must report exactly 5, 13 and 22; the test's DFT agrees on the closed form."""
    planted = {5: 1.0, 13: 1.0, 22: 0.5, 27: 0.2}
    cfg = store.read_config(small_run)
    state = store.load_checkpoint(store.list_checkpoints(small_run)[-1][1])[0]
    W_E = state["embed.W_E"].clone()
    W_E[: cfg.p] = torch.from_numpy(planted_embedding(cfg.p, cfg.d_model, planted))
    run = tmp_path / "planted"
    store.write_run_files(run, cfg, store.read_split(small_run))
    for epoch in (0, 50):
        store.save_checkpoint(run, cfg, epoch, state | {"embed.W_E": W_E})
    share = dft_shares(final_embedding(run))
    total = sum(a * a for a in planted.values())
    np.testing.assert_allclose(
        share[[k - 1 for k in planted]],
        [1 / total, 1 / total, 0.25 / total, 0.04 / total],
        rtol=1e-5,
    )
    assert dft_keys(final_embedding(run)) == [5, 13, 22]
    assert analyze_run(run, tmp_path / "analysis", progress=False).key_frequencies == [5, 13, 22]


def test_phases_and_paper_checks_follow_the_documented_rule(small_analysis):
    """The phase boundaries and the paper's claims, derived again here from measures.csv by the
    rule as `phases.RULE` words it (not by calling it). Whether the claims held on this run (the
    restricted loss falls first, the excluded loss rises, the weight norm falls) is for the
    report's captions to say: on another machine's run a noisy phase can tip a trend."""
    summary, table = Summary.load(small_analysis), load_measures(small_analysis)
    assert len(table) == len(preset("small").save_epochs) == summary.n_checkpoints
    epochs = table["epoch"].to_numpy()
    memorised = np.flatnonzero(table["train_acc"].to_numpy() >= 1.0)
    if not len(memorised):
        pytest.fail("precondition: the small run reaches 100% train accuracy")
    log_test = np.log(table["test_loss"].to_numpy())
    peak = memorised[0] + np.argmax(log_test[memorised[0] :])
    drop = log_test[peak] - log_test[peak:].min()
    formed, want = len(epochs) - 1, {"circuit_formation_end": None, "cleanup_end": None}
    if drop >= np.log(10):
        later = np.arange(len(epochs)) > peak
        progress = (log_test[peak] - log_test) / drop
        formed = np.flatnonzero(later & (progress >= 0.1))[0]
        want["circuit_formation_end"] = epochs[formed]
        want["cleanup_end"] = epochs[np.flatnonzero(later & (progress >= 0.9))[0]]
    excluded = table["excluded_loss"].to_numpy()
    want["memorization_end"] = epochs[np.argmin(excluded[: formed + 1])]
    assert summary.phases == want

    def first_below_tenth(column):
        values = table[column].to_numpy()
        below = np.flatnonzero(values < values[0] / 10)
        return epochs[below[0]] if len(below) else None

    def slope(column, start, end):
        inside = (epochs >= start) & (epochs <= end)
        return np.polyfit(epochs[inside], table[column].to_numpy()[inside], 1)[0]

    mem, circ, clean = (
        want[k] for k in ("memorization_end", "circuit_formation_end", "cleanup_end")
    )
    checks = summary.checks
    assert checks["restricted_loss_below_tenth"] == first_below_tenth("restricted_loss")
    assert checks["test_loss_below_tenth"] == first_below_tenth("test_loss")
    if circ is not None:
        assert checks["excluded_loss_slope_in_circuit_formation"] == pytest.approx(
            slope("excluded_loss", mem, circ), rel=1e-9
        )
        assert checks["weight_norm_slope_in_cleanup"] == pytest.approx(
            slope("weight_norm", circ, clean), rel=1e-9
        )


def test_neuron_clusters_are_a_direct_fft_of_the_hooked_activations(small_run, small_analysis):
    """Each final neuron's FVE by frequency from numpy's 2-D FFT of its activation over the
    (a, b) grid (the hooked model's blocks.0.mlp.hook_post at `=`): the energy in the terms of
    frequency k and the constant in a and in b, less the constant-constant term, over the
    energy less that term. The stored FVE, fve_share (FVE > 0.85) and the cluster sizes must be
    what it gives; neurons within 1e-4 of the threshold or of a tie may go either way."""
    from safetensors.torch import load_file

    from grokinterp.storage.run import open_run

    run = open_run(small_run)
    p = run.config.p
    with torch.no_grad():
        _, cache = run.model().run_with_cache(data.all_tokens(run.config))
    grid = cache["blocks.0.mlp.hook_post"][:, -1].double().numpy().reshape(p, p, -1)
    energy = np.abs(np.fft.fft2(grid, axes=(0, 1))) ** 2
    total = energy.sum(axis=(0, 1)) - energy[0, 0]
    fve = (
        np.stack(
            [
                energy[np.ix_([0, k, p - k], [0, k, p - k])].sum(axis=(0, 1)) - energy[0, 0]
                for k in range(1, (p - 1) // 2 + 1)
            ],
            axis=1,
        )
        / total[:, None]
    )
    stored = load_file(small_analysis / analysis_format.NEURONS_FILE)["final_fve_by_frequency"]
    np.testing.assert_allclose(stored.double().numpy(), fve, atol=1e-5)

    top2 = np.sort(fve, axis=1)[:, -2:]
    clear = (np.abs(top2[:, 1] - 0.85) > 1e-4) & (top2[:, 1] - top2[:, 0] > 1e-4)
    clustered = top2[:, 1] > 0.85
    summary = Summary.load(small_analysis)
    n = len(fve)
    assert abs(summary.fve_share * n - clustered.sum()) <= (~clear).sum()
    sizes = {int(k): v for k, v in summary.cluster_sizes.items()}
    dominant = fve.argmax(axis=1) + 1
    for k in range(1, (p - 1) // 2 + 1):
        sure = (clustered & clear & (dominant == k)).sum()
        assert sure <= sizes.get(k, 0) <= sure + (~clear).sum()


def test_logit_fve_is_a_direct_projection_of_the_hooked_logits(small_run, small_analysis):
    """logit_fve_final: the share of the class-centred final logits' squared norm in the
    kernels cos(w_k (a + b - c)) of the key frequencies (orthogonal for distinct k), numpy."""
    summary = Summary.load(small_analysis)
    logits, labels = hooked_logits(small_run)
    p = logits.shape[1]
    centred = logits - logits.mean(axis=1, keepdims=True)
    explained = 0.0
    for k in summary.key_frequencies:
        kernel = np.cos(2 * np.pi * k * (labels[:, None] - np.arange(p)[None, :]) / p)
        explained += (centred * kernel).sum() ** 2 / (kernel**2).sum()
    assert summary.logit_fve_final == pytest.approx(explained / (centred**2).sum(), rel=1e-4)


def test_the_training_curves_are_the_checkpoints_accuracies(small_run):
    """The memorisation and generalisation epochs are read from metrics.csv (the phases, the
    forecasters): its train and test accuracy at each checkpoint's epoch must be that
    checkpoint's, recomputed with the hooked model on the run's split (a near-tie's argmax
    may flip between the two forwards: one pair's worth of slack)."""
    from grokinterp.storage.run import open_run

    run = open_run(small_run)
    metrics = run.metrics()
    for split, column in (("train", "train_acc"), ("test", "test_acc")):
        tokens, labels = run.inputs(split)
        for epoch in run.epochs:
            with torch.no_grad():
                logits = run.model(epoch=epoch)(tokens)[:, -1]
            accuracy = (logits.argmax(-1) == labels).double().mean().item()
            assert metrics.loc[epoch, column] == pytest.approx(accuracy, abs=1.5 / len(labels))


def test_rerun_measures_only_new_checkpoints(small_run, small_analysis, tmp_path, monkeypatch):
    """The growing run's key frequencies (those of its last checkpoint) must equal the full
    run's, or every row is measured again: the cut is the latest epoch up to 3500 (else the
    earliest after it) whose embedding's DFT gives the final key frequencies."""
    growing = tmp_path / "run"
    shutil.copytree(small_run, growing)
    series = store.list_checkpoints(growing)
    final_keys = Summary.load(small_analysis).key_frequencies
    p = store.read_config(small_run).p
    order = [e for e, _ in reversed(series) if e <= 3500] + [e for e, _ in series[:-1] if e > 3500]
    cut = next(
        (
            epoch
            for epoch in order
            if dft_keys(
                store.load_checkpoint(dict(series)[epoch])[0]["embed.W_E"][:p].double().numpy()
            )
            == final_keys
        ),
        None,
    )
    if cut is None:
        pytest.fail("precondition: an earlier checkpoint has the final key frequencies")
    late = [path for epoch, path in series if epoch > cut]
    held_back = tmp_path / "later"
    held_back.mkdir()
    for path in late:
        shutil.move(path, held_back / path.name)
    out = tmp_path / "analysis"
    analyze_run(growing, out, progress=False)
    assert Summary.load(out).key_frequencies == final_keys

    measured = []
    original = analyze.measures_table

    def counting(ctx, ckpts):
        measured.extend(ckpts.epochs)
        return original(ctx, ckpts)

    monkeypatch.setattr(analyze, "measures_table", counting)
    for path in held_back.iterdir():
        shutil.move(path, growing / store.CHECKPOINT_DIR / path.name)
    analyze_run(growing, out, progress=False)
    assert len(measured) == len(late)
    again, fresh = load_measures(out), load_measures(small_analysis)
    assert list(again["epoch"]) == list(fresh["epoch"])
    np.testing.assert_allclose(again.to_numpy(), fresh.to_numpy(), rtol=1e-6, atol=1e-12)


def run_cli(args, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def test_bad_inputs_get_one_line_and_overwrite_nothing(small_run, tiny_cfg, tmp_path, capsys):
    out = tmp_path / "analysis"
    out.mkdir()
    (out / "summary.json").write_text("keep me")

    empty = tmp_path / "empty"
    store.write_run_files(empty, tiny_cfg, torch.arange(10))
    code, err = run_cli(["analyze", "--ckpt-dir", str(empty), "--out", str(out), "--quiet"], capsys)
    assert code == 2 and len(err) == 1 and "no checkpoints" in err[0] and "empty" in err[0]

    broken = tmp_path / "broken"
    shutil.copytree(small_run, broken)
    victim = store.list_checkpoints(broken)[3][1]
    victim.write_bytes(victim.read_bytes()[:1000])
    code, err = run_cli(
        ["analyze", "--ckpt-dir", str(broken), "--out", str(out), "--quiet"], capsys
    )
    assert code == 2 and len(err) == 1 and victim.name in err[0]

    mixed = tmp_path / "mixed"
    shutil.copytree(small_run, mixed)
    other = store.list_checkpoints(mixed)[5]
    cfg = preset("small").replace(seed=99)
    state = store.load_checkpoint(other[1])[0]
    store.save_checkpoint(mixed, cfg, other[0], state)
    code, err = run_cli(["analyze", "--ckpt-dir", str(mixed), "--out", str(out), "--quiet"], capsys)
    assert code == 2 and len(err) == 1 and "holds an unreadable analysis" in err[0]
    fresh = tmp_path / "fresh"
    cmd = ["analyze", "--ckpt-dir", str(mixed), "--out", str(fresh), "--quiet"]
    code, err = run_cli(cmd, capsys)
    assert code == 2 and len(err) == 1 and other[1].name in err[0] and "config" in err[0]
    assert not fresh.exists()

    assert (out / "summary.json").read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]


def test_summary_json_has_the_documented_fields(small_analysis):
    raw = json.loads((small_analysis / analysis_format.SUMMARY_FILE).read_text())
    for field in ("key_components", "phases", "final_train_loss", "final_test_loss", "basis"):
        assert field in raw
    assert set(raw["phases"]) == {"memorization_end", "circuit_formation_end", "cleanup_end"}
    assert all(isinstance(k, int) for k in raw["key_components"])
    assert raw["basis"]["name"] == "fourier" and raw["task"]["formula"] == "(a + b) mod 59"


def hooked_logits(run_dir, index=-1):
    """The `=` logits (float64, numpy, [p^2, p]) of every pair a * p + b under one checkpoint of
    the run, through the hooked model's own forward (the analysis measures with the batched
    forward), and the pairs' labels (a + b) mod p."""
    from grokinterp.storage.run import open_run

    run = open_run(run_dir)
    p = run.config.p
    with torch.no_grad():
        logits = run.model(index=index)(data.all_tokens(run.config))[:, -1].double().numpy()
    a, b = np.divmod(np.arange(p * p), p)
    return logits, (a + b) % p


def cross_entropy(logits, labels):
    """Per-row -log softmax(logits)[label], written out in numpy."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels]


def test_excluded_loss_by_frequency_matches_a_direct_computation(small_run, small_analysis):
    """Project one frequency out of the hooked model's logits over all p^2 pairs (numpy)."""
    summary = Summary.load(small_analysis)
    logits, labels = hooked_logits(small_run)
    p, train = store.read_config(small_run).p, store.read_split(small_run).numpy()
    a, b = np.divmod(np.arange(p * p), p)
    for k in summary.key_frequencies:
        basis = np.stack([np.cos(2 * np.pi * k * (a + b) / p), np.sin(2 * np.pi * k * (a + b) / p)])
        basis /= np.linalg.norm(basis, axis=1, keepdims=True)
        kept = logits - basis.T @ (basis @ logits)
        want = cross_entropy(kept[train], labels[train]).mean()
        assert summary.excluded_loss_by_component[str(k)] == pytest.approx(want, rel=1e-3)
    waves = [
        f(2 * np.pi * k * (a + b) / p) for k in summary.key_frequencies for f in (np.cos, np.sin)
    ]
    basis = np.stack(waves) / np.linalg.norm(np.stack(waves), axis=1, keepdims=True)
    kept = logits - basis.T @ (basis @ logits)
    want = cross_entropy(kept[train], labels[train]).mean()
    assert summary.final_excluded_loss == pytest.approx(want, rel=1e-3)
    want = cross_entropy(logits[train], labels[train]).mean()
    assert summary.final_train_loss == pytest.approx(want, rel=1e-3)


def test_a_copy_with_another_split_is_measured_again_not_reused(
    small_run, small_analysis, tmp_path
):
    """Stale reuse: a copy of a run with another split, analysed into the first run's analysis
    directory, must get its own numbers (before the fix it kept the original's train loss). Every
    row's train and test loss must be the copy's weights' loss on the copy's split, recomputed
    here with the hooked forward; the precondition checks that the original split's loss (what a
    reused row would hold) differs from it at that precision."""
    out = tmp_path / "shared"
    shutil.copytree(small_analysis, out)
    copy = tmp_path / "copy"
    shutil.copytree(small_run, copy)
    cfg = store.read_config(copy)
    other_split = data.train_indices(cfg.replace(data_seed=7)).numpy()
    store.write_run_files(copy, cfg, torch.from_numpy(other_split))
    with pytest.raises(UsageError, match="holds the analysis of another run"):
        analyze_run(copy, out, progress=False)
    analyze_run(copy, out, progress=False, replace=True)
    again, original = load_measures(out), load_measures(small_analysis)
    old_split = store.read_split(small_run).numpy()
    domain = np.arange(cfg.p * cfg.p)
    splits = {
        "train_loss": (other_split, old_split),
        "test_loss": (np.setdiff1d(domain, other_split), np.setdiff1d(domain, old_split)),
    }
    told_apart = []
    for row in range(len(again)):
        losses = cross_entropy(*hooked_logits(copy, index=row))
        for column, (new, old) in splits.items():
            want, reused = losses[new].mean(), losses[old].mean()
            assert original[column].iloc[row] == pytest.approx(reused, rel=1e-3)
            assert again[column].iloc[row] == pytest.approx(want, rel=1e-3)
            told_apart.append(reused != pytest.approx(want, rel=1e-2))
    if not any(told_apart):
        pytest.fail("precondition: on some checkpoint the two splits' losses differ by 1%")


def test_a_changed_checkpoint_is_measured_again(small_run, small_analysis, tmp_path):
    """Reuse needs the same checkpoint digest: other weights under the same epoch are measured."""
    out = tmp_path / "shared"
    shutil.copytree(small_analysis, out)
    copy = tmp_path / "copy"
    shutil.copytree(small_run, copy)
    cfg = store.read_config(copy)
    series = store.list_checkpoints(copy)
    first = store.load_checkpoint(series[0][1])[0]
    store.save_checkpoint(
        copy, cfg, series[10][0], first
    )  # epoch 500 now holds the initial weights
    with pytest.raises(UsageError, match="differ from"):
        analyze_run(copy, out, progress=False)
    analyze_run(copy, out, progress=False, replace=True)
    again, original = load_measures(out), load_measures(small_analysis)
    assert again["train_loss"].iloc[10] == pytest.approx(original["train_loss"].iloc[0], rel=1e-6)
    others = np.arange(len(original)) != 10
    np.testing.assert_allclose(again["train_loss"][others], original["train_loss"][others])


def test_multiplication_learns_the_discrete_log_clock(tmp_path, capsys):
    """`train --operation mul` then `analyze`: key frequencies in the multiplicative basis,
    labelled as such, and exactly those numpy's FFT of the final embedding over the discrete log
    (smallest generator, found here by brute force) gives; the embedding's Gini in each basis is
    that of the same FFT's norms. (How sparse the embedding came out is the run's outcome, not
    checked: 2,000 epochs on this machine's thread count.)"""
    run, out = tmp_path / "mul", tmp_path / "analysis"
    flags = ["--operation", "mul", "--epochs", "2000", "--out", str(run), "--quiet"]
    assert main(["train", *flags]) == 0
    capsys.readouterr()
    assert main(["analyze", "--ckpt-dir", str(run), "--out", str(out), "--quiet"]) == 0
    summary = Summary.load(out)
    printed = capsys.readouterr().out
    keys = ", ".join(map(str, summary.key_components))
    assert f"key character frequencies {keys}" in " ".join(printed.split())
    assert "{" not in printed and "Fourier" not in printed
    page = write_report(out, tmp_path / "report.html").read_text()
    captions = re.findall(r'<p class="note">(.*?)</p>', page)
    assert any("character norm" in caption for caption in captions)
    assert not any("Fourier norm" in caption or "{" in caption for caption in captions)
    assert summary.basis["name"] == "dlog" and "multiplicative" in summary.basis["title"]
    assert summary.task["formula"] == "(a * b) mod 59"
    p = summary.config["p"]
    W_E = final_embedding(run)
    g = next(g for g in range(2, p) if len({pow(g, j, p) for j in range(p - 1)}) == p - 1)
    by_log = W_E[[pow(g, j, p) for j in range(p - 1)]]  # row j: the residue g^j
    dlog_power = (np.abs(np.fft.rfft(by_log, axis=0)[1:]) ** 2).sum(axis=1)
    dlog_power[:-1] *= 2  # k and p - 1 - k, but the sign character k = (p - 1) / 2 is its own
    share = dlog_power / dlog_power.sum()
    if np.any(np.abs(share - 0.05) < 1e-4) or not np.any(share >= 0.05):
        pytest.fail("precondition: the final embedding has key characters, none at 5% share")
    assert summary.key_components == (np.flatnonzero(share >= 0.05) + 1).tolist()

    def gini(norms):  # mean absolute difference over twice the mean
        return np.abs(norms[:, None] - norms[None, :]).sum() / (2 * len(norms) * norms.sum())

    fourier_power = (np.abs(np.fft.rfft(W_E, axis=0)[1:]) ** 2).sum(axis=1)
    assert summary.embedding_gini["dlog"] == pytest.approx(gini(np.sqrt(dlog_power)), rel=1e-6)
    assert summary.embedding_gini["fourier"] == pytest.approx(
        gini(np.sqrt(fourier_power)), rel=1e-6
    )


def test_a_run_with_a_flat_spectrum_names_no_key_frequencies(
    tiny_cfg, tmp_path, capsys, monkeypatch
):
    """Ten epochs of the tiny config (p = 11: five frequencies) leave the embedding near its
    random init, its norm spread over every frequency: no key frequencies, the loss measures
    still measured (with the share rule's components) and marked, and a re-run reuses them."""
    from grokinterp.training.loop import train_runs

    run, out = tmp_path / "run", tmp_path / "analysis"
    train_runs([tiny_cfg.replace(epochs=10, save_every=5)], [run], progress=False)
    assert main(["analyze", "--ckpt-dir", str(run), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    summary = Summary.load(out)
    assert summary.key_components == summary.key_frequencies == []
    assert len(summary.loss_components) > 5 / 2
    assert summary.key_component_note.startswith("no key components: the spectrum is flat (")
    assert "restricted and excluded loss" in summary.key_component_note
    assert re.search(r"key frequencies\s+no key components: the spectrum is flat", printed)
    assert set(summary.excluded_loss_by_component) == set(map(str, summary.loss_components))
    assert np.isfinite(load_measures(out)["restricted_loss"]).all()

    def refuse(*args):
        raise AssertionError("a re-run of an unchanged run measured a checkpoint again")

    monkeypatch.setattr(analyze, "measures_table", refuse)
    analyze_run(run, out, progress=False)
    assert Summary.load(out).loss_components == summary.loss_components
