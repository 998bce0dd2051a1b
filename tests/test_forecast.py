"""The grokking-epoch forecasters (grokinterp.prediction.forecast), the `forecast` and `indicators`
commands, and a 4-run version of the evaluation harness (grokinterp.prediction.evaluate)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from grokinterp.cli import main
from grokinterp.prediction import forecast

SPEC = """
preset = "small"
max_batch_runs = 4
[fixed]
p = 7
d_model = 16
n_heads = 2
d_mlp = 32
train_frac = 0.9
data_seed = 1
epochs = 80
save_every = 10
[grid]
weight_decay = [1.0, 2.0]
seed = [0, 1]
[analysis]
analyze = true
report = false
"""
"""Four tiny runs: with p = 7 and 90% of the pairs in training they grok within a few dozen
epochs of memorising (here all four by epoch 78); the tests pick runs by what they did."""


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    (root / "spec.toml").write_text(SPEC)
    assert (
        main(
            [
                "sweep",
                str(root / "spec.toml"),
                "--out",
                str(root / "sweep"),
                "--quiet",
                "--no-time-estimate",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    return root / "sweep"


def _table(norm_mem: float, epochs: list[int], t_mem: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "epoch": epochs,
            "weight_norm": [norm_mem * (2.0 if e < t_mem else 1.0) for e in epochs],
            "spectral_entropy": 0.5,
            "lar_W_L": 0.6,
            "fiedler": 1.0,
            "head_similarity": 0.3,
        }
    )


def _observed(norm_mem: float, lr_wd: float, t_mem: int = 50) -> forecast.Observed:
    epochs = [0, 25, t_mem, t_mem + 25]
    return forecast.Observed(lr_wd, t_mem, t_mem, _table(norm_mem, epochs, t_mem)[:3])


def test_norm_law_recovers_the_law_it_was_fitted_on():
    # runs obeying T_grok = T_mem + 0.5 log(||theta_mem||^2 / 100) / (lr wd) exactly
    c, star = 0.5, math.log(100.0)
    runs = [(400.0, 0.01), (900.0, 0.01), (300.0, 0.03), (2000.0, 0.02)]
    calibration = [(_observed(n, r), 50 + c * (math.log(n) - star) / r) for n, r in runs]
    constants = forecast.fit_constants(calibration, "synthetic")
    law = constants["norm_law"]
    assert law["c"] == pytest.approx(c) and law["log_norm_star"] == pytest.approx(star)
    assert law["r_squared"] == pytest.approx(1.0)
    new = _observed(600.0, 0.015)
    expected = 50 + c * math.log(6.0) / 0.015
    predicted = forecast.norm_law(new, constants, horizon=10_000)
    assert predicted.epoch == pytest.approx(expected)
    assert predicted.low == pytest.approx(expected) and predicted.groks
    late = forecast.norm_law(new, constants, horizon=100)
    assert not late.groks and "no grokking predicted within the run's 100 epochs" in late.line()


def _law_constants() -> dict:
    """Norm-law constants fitted on runs that obey T_grok = T_mem + 0.5 log(||theta_mem||^2 /
    100) / (lr wd) exactly, with an 80% interval of -0.5 to +0.5 on (T_grok - T_mem) lr wd."""
    runs = [(400.0, 0.01), (900.0, 0.01), (300.0, 0.03), (2000.0, 0.02)]
    calibration = [(_observed(n, r), 50 + 0.5 * math.log(n / 100.0) / r) for n, r in runs]
    constants = forecast.fit_constants(calibration, "synthetic")
    constants["norm_law"] |= {"residual_low": -0.5, "residual_high": 0.5}
    return constants


def _printed_epochs(line: str) -> list[int]:
    """Every epoch a forecast line puts forward: the forecast and its interval's ends."""
    found = re.findall(r"(?:epoch|interval|to|up to) (\d[\d,]*)", line)
    return [int(text.replace(",", "")) for text in found]


@pytest.mark.parametrize(
    "seen, expected",
    [
        (60, "norm law    grokking at epoch 110 (80% interval 76 to 143)"),
        (100, "norm law    grokking at epoch 110 (80% interval up to 143, its low end passed)"),
        (
            120,
            "norm law    overdue by 10 epochs; 80% interval up to 143, its low end passed; "
            "no forecast",
        ),
        (
            150,
            "norm law    overdue by 40 epochs; 80% interval passed too, its high end 7 epochs "
            "ago; no forecast",
        ),
    ],
)
def test_a_forecast_never_puts_forward_an_epoch_the_run_has_passed(seen, expected):
    # T_mem 50, ||theta_mem||^2 600, lr wd 0.015: the law says 50 + 0.5 log 6 / 0.015 = 109.7,
    # its interval 50 + (0.5 log 6 -+ 0.5) / 0.015 = 76.4 to 143.0; the run not grokked by `seen`
    table = _table(600.0, [0, 25, 50], 50)
    obs = forecast.Observed(0.015, 50, seen, table)
    line = forecast.norm_law(obs, _law_constants(), horizon=10_000).line()
    assert line == expected
    assert all(epoch > seen for epoch in _printed_epochs(line))


def test_every_seen_epoch_gets_a_line_without_a_passed_epoch():
    table = _table(600.0, [0, 25, 50], 50)
    constants = _law_constants()
    for seen in range(50, 200):
        for horizon in (100, 10_000):
            obs = forecast.Observed(0.015, 50, seen, table)
            line = forecast.norm_law(obs, constants, horizon).line()
            assert all(epoch > seen for epoch in _printed_epochs(line)), line
            assert ("overdue by" in line) == (seen >= 110), line


@pytest.mark.parametrize("p", [0.0001, 0.004, 0.4949, 0.4951, 0.4999, 0.5, 0.5001, 0.996, 0.9999])
def test_the_printed_grok_probability_agrees_with_the_verdict(p):
    f = forecast.Forecast("indicators", 500.0, 400.0, 600.0, 10_000, 100, p)
    printed = re.search(r"P\(grok\) ([<>]?) ?([\d.]+)", f.line())
    side, value = printed[1], float(printed[2])
    assert f.groks == (p >= 0.5) == f.line().startswith("indicators  grokking at epoch 500")
    if f.groks:
        assert side != "<" and value >= 0.5
    else:
        assert side == "<" or value < 0.5
    if not side:  # the plain rounding, unless that would mislead
        assert value == round(p, 2)


def test_a_finished_run_that_never_memorised_is_told_so():
    never = pd.DataFrame({"train_acc": 0.4, "test_acc": 0.1}, index=range(0, 31))
    assert forecast.settled(never, 30) == (
        "never memorised in its 30 epochs (train accuracy below 99% throughout); no forecast"
    )
    assert forecast.settled(never.loc[:20], 30) is None  # still training: too early to say
    grokked = never.assign(test_acc=[0.1] * 25 + [1.0] * 6)
    assert forecast.settled(grokked, 30).startswith("already grokked: test accuracy first reached")


def test_forecast_command_on_a_finished_run_that_never_memorised(tiny_cfg, tmp_path, capsys):
    from grokinterp.training.loop import train_runs

    cfg = tiny_cfg.replace(lr=1e-7, epochs=30)  # 30 steps of 1e-7 cannot fit 30 of 121 pairs
    train_runs([cfg], [tmp_path / "run"], progress=False)
    assert main(["forecast", str(tmp_path / "run")]) == 0
    said = "never memorised in its 30 epochs (train accuracy below 99% throughout); no forecast"
    assert capsys.readouterr().out == f"run: {said}\n"


def test_indicator_model_fits_a_log_linear_target_exactly():
    # log T_grok linear in log(lr wd) alone: least squares must reproduce it on a new run
    runs = [(400.0, 0.01), (900.0, 0.02), (300.0, 0.03), (2000.0, 0.05), (700.0, 0.04)]
    calibration = [(_observed(n, r), 3.0 / r) for n, r in runs]
    constants = forecast.fit_constants(calibration, "synthetic")
    predicted = forecast.indicator_model(_observed(500.0, 0.025), constants, horizon=10_000)
    assert predicted.epoch == pytest.approx(3.0 / 0.025, rel=1e-6)


def test_the_gate_separates_runs_that_grok_from_runs_that_do_not():
    # grokking runs have lr wd >= 0.02, the others <= 0.005: the gate must learn the side
    grokking = [
        (_observed(n, r), 3.0 / r) for n, r in [(400.0, 0.02), (900.0, 0.03), (300.0, 0.05)]
    ]
    stuck = [(_observed(n, r), None) for n, r in [(500.0, 0.004), (800.0, 0.005), (200.0, 0.003)]]
    constants = forecast.fit_constants(grokking + stuck, "synthetic")
    assert constants["gate"]["converged"] and constants["indicators"]["n_points"] == 3
    fast = forecast.indicator_model(_observed(600.0, 0.04), constants, horizon=10_000)
    slow = forecast.indicator_model(_observed(600.0, 0.004), constants, horizon=10_000)
    assert fast.p_grok > 0.5 > slow.p_grok
    assert fast.groks and not slow.groks
    assert slow.line().startswith("indicators  no grokking predicted within the run's 10,000")


def test_observe_refuses_too_few_checkpoints_and_runs_not_yet_memorised():
    metrics = pd.DataFrame({"train_acc": [0.5, 1.0, 1.0], "test_acc": 0.1}, index=[0, 50, 75])
    table = _table(100.0, [0, 10, 25, 50, 75], 50)
    with pytest.raises(forecast.UsageError, match="too few checkpoints: 2"):
        forecast.observe(0.01, metrics, table, 24)
    with pytest.raises(forecast.UsageError, match="too early"):
        forecast.observe(0.01, metrics.loc[:0], table, 49)
    assert forecast.observe(0.01, metrics, table, 75).norm_mem == 100.0


def _runs(sweep) -> dict:
    """name -> (T_mem, T_grok, checkpoint epochs) of the sweep's runs."""
    out = {}
    for run in sorted((sweep / "runs").iterdir()):
        metrics = pd.read_csv(run / "metrics.csv").set_index("epoch")
        epochs = sorted(
            int(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("*.safetensors")
        )
        out[run.name] = (forecast.memorisation_epoch(metrics), forecast.grok_epoch(metrics), epochs)
    return out


def test_forecast_command_errors_are_one_line(tiny_sweep, tmp_path, capsys):
    assert main(["forecast", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    name, (_, actual, _) = next((n, r) for n, r in _runs(tiny_sweep).items() if r[1] is not None)
    assert main(["forecast", str(tiny_sweep / "runs" / name), "--upto", "10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("grokinterp: error: too few checkpoints: 2") and err.count("\n") == 1
    assert main(["forecast", str(tiny_sweep / "runs" / name)]) == 0
    out = capsys.readouterr().out
    assert out == f"{name}: already grokked: test accuracy first reached 99% at epoch {actual:,}\n"


def test_forecast_command_on_a_run_not_yet_grokked(tiny_sweep, capsys):
    # the last checkpoint before grokking, when one lies at or after memorisation
    candidates = [
        (name, max(e for e in epochs if t_mem <= e < t_grok), t_mem)
        for name, (t_mem, t_grok, epochs) in _runs(tiny_sweep).items()
        if None not in (t_mem, t_grok) and any(t_mem <= e < t_grok for e in epochs)
    ]
    assert candidates, "no tiny run has a checkpoint between memorising and grokking"
    name, upto, t_mem = candidates[0]
    assert main(["forecast", str(tiny_sweep / "runs" / name), "--upto", str(upto)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{name}: seen up to epoch {upto} (")
    assert lines[0].endswith(f"memorised at epoch {t_mem}")
    assert [line.split()[0] for line in lines[1:]] == ["norm", "indicators"]


def test_indicators_command_writes_into_the_analysis(tiny_sweep, tmp_path, capsys):
    out = tmp_path / "analysis"
    (out).mkdir()
    measures = tiny_sweep / "analyses" / "wd2-seed0" / "measures.csv"
    (out / "measures.csv").write_bytes(measures.read_bytes())
    assert (
        main(
            [
                "indicators",
                "--ckpt-dir",
                str(tiny_sweep / "runs" / "wd2-seed0"),
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    table = pd.read_csv(out / "indicators.csv")
    assert table["epoch"].tolist() == list(range(0, 81, 10))
    assert {"spectral_entropy", "fiedler", "head_similarity", "gini_W_E", "fiedler.ac1"} <= set(
        table.columns
    )
    assert table["spectral_entropy"].between(0, 1).all()


def test_the_harness_on_four_runs(tiny_sweep, tmp_path):
    from grokinterp.prediction.evaluate import PAGE_FILE, TABLE_FILE, evaluate
    from grokinterp.report.forecast_page import write_page

    result = evaluate(tiny_sweep, tmp_path / "out")
    write_page(tmp_path / "out" / PAGE_FILE, result)
    assert (result["n_runs"], result["n_calibration"], result["n_held_out"]) == (4, 2, 2)
    table = pd.read_csv(tmp_path / "out" / TABLE_FILE)
    indicators = table[table["kind"] == "indicator"]
    assert "spectral_entropy < 0.61 (published)" in set(indicators["indicator"])
    assert {"fiedler", "gini_W_E", "train_loss.ac1"} <= set(indicators["indicator"])
    finite = indicators["auroc"].dropna()
    assert finite.between(0, 1).all()
    page = (tmp_path / "out" / PAGE_FILE).read_text()
    assert page.count("<script") >= 3 and "<script src" not in page
    constants = json.loads((tmp_path / "out" / "constants.json").read_text())
    assert "not_fitted" in constants or np.isfinite(constants["norm_law"]["c"])


def test_the_shipped_study_spec_and_constants():
    from pathlib import Path

    from grokinterp.sweep.spec import read_spec

    spec = read_spec(Path(__file__).parents[1] / "docs" / "sweeps" / "predict-study.toml")
    assert len(spec.runs) >= 96 and len(spec.batches) == 1  # one batched model, one core
    assert {"weight_decay", "train_frac", "seed"} <= set(spec.grid)
    constants = forecast.load_constants()
    assert np.isfinite(constants["norm_law"]["c"])
    assert constants["indicators"]["features"] == list(forecast.FEATURES)
