"""The delay laws (grokinterp.prediction.laws): each fitted on synthetic runs that follow it
exactly gives back the constants they were made with, and `grokinterp forecast --law` refuses
a run that lacks the law's inputs in one line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from grokinterp.cli import main
from grokinterp.errors import UsageError
from grokinterp.prediction import laws
from grokinterp.prediction.laws import first_passage, norm_separation, pinned_norm


def _facts(**kw) -> laws.RunFacts:
    base = dict(
        name="synthetic",
        optimizer="adamw",
        lr=1e-3,
        weight_decay=1.0,
        p=11,
        fixed_norm=None,
        epochs=10**6,
        t_mem=100,
        seen=100,
        norm_epochs=np.array([100]),
        norms=np.array([50.0]),
    )
    return laws.RunFacts(**(base | kw))


def test_norm_separation_recovers_c_and_the_post_norm():
    c = 0.7
    runs = []
    for v_mem, v_post, lr, wd in [(90.0, 30.0, 1e-3, 1.0), (200.0, 25.0, 3e-3, 0.5),
                                  (60.0, 28.0, 1e-2, 2.0), (400.0, 33.0, 1e-3, 3.0)]:  # fmt: skip
        delay = c * math.log(v_mem / v_post) / (lr * wd)
        runs.append(_facts(lr=lr, weight_decay=wd, norms=np.array([v_mem]),
                           t_grok=100 + delay, v_grok=v_post))  # fmt: skip
    fitted = norm_separation.fit(runs)
    assert fitted["c"] == pytest.approx(c, rel=1e-12)
    log_v_post = np.mean(np.log([30.0, 25.0, 28.0, 33.0]))
    assert fitted["log_v_post"] == pytest.approx(log_v_post, rel=1e-12)
    assert fitted["optimizers"] == ["adamw"] and fitted["n_runs"] == 4
    # a held-out run whose generalising norm is the fitting runs' geometric mean
    held = _facts(norms=np.array([150.0]), lr=2e-3, weight_decay=1.5)
    expected = 100 + c * (math.log(150.0) - log_v_post) / 3e-3
    answer = laws.forecast(held, norm_separation, fitted)
    assert answer.epoch == pytest.approx(expected, rel=1e-12)


def test_first_passage_recovers_kappa_and_the_threshold():
    kappa, v_star = 0.25, 2500.0
    runs = []
    for v_mem, lr, wd in [(9000.0, 1e-3, 1.0), (6000.0, 3e-3, 0.5), (20000.0, 1e-3, 2.0)]:
        rate = 2 * kappa * lr * wd
        t_grok = 100 + math.log(v_mem / v_star) / rate
        epochs = np.arange(100, int(t_grok), 50)
        runs.append(_facts(lr=lr, weight_decay=wd, norm_epochs=epochs, seen=int(t_grok),
                           norms=v_mem * np.exp(-rate * (epochs - 100)),
                           t_grok=t_grok, v_grok=v_star))  # fmt: skip
    fitted = first_passage.fit(runs)
    assert fitted["kappa"] == pytest.approx(kappa, rel=1e-9)
    assert math.exp(fitted["log_v_star"]) == pytest.approx(v_star, rel=1e-9)
    assert fitted["log_ratio_low"] == pytest.approx(0, abs=1e-9)
    held = _facts(norms=np.array([12000.0]), lr=2e-3, weight_decay=1.0)
    expected = 100 + math.log(12000.0 / v_star) / (2 * kappa * 2e-3)
    answer = laws.forecast(held, first_passage, fitted)
    assert (answer.epoch, answer.low, answer.high) == pytest.approx((expected,) * 3, rel=1e-9)


def test_first_passage_published_constants_are_the_papers():
    assert first_passage.PUBLISHED["kappa"] == 0.252
    assert math.exp(first_passage.PUBLISHED["log_v_star"]) == pytest.approx(2501.0)
    # V_mem = V* e^1 with eta lambda = 1e-3: the delay is 1 / (2 kappa 1e-3) epochs
    run = _facts(norms=np.array([2501.0 * math.e]))
    epoch = laws.forecast(run, first_passage, first_passage.PUBLISHED).epoch
    assert epoch == pytest.approx(100 + 1 / (2 * 0.252 * 1e-3))


def test_pinned_norm_recovers_alpha_the_prefactor_and_the_critical_norms():
    alpha, a, w_c = 7.5, 20.0, {11: 5.0, 13: 7.0}
    free = [_facts(p=p, t_grok=500, v_grok=w**2) for p, w in w_c.items()]
    pinned = [
        _facts(p=p, fixed_norm=rho * w, t_grok=a * math.exp(alpha * rho), v_grok=(rho * w) ** 2)
        for p, w in w_c.items()
        for rho in (0.8, 1.0, 1.3)
    ]
    fitted = pinned_norm.fit(free + pinned)
    assert fitted["alpha"] == pytest.approx(alpha, rel=1e-9)
    assert math.exp(fitted["log_a"]) == pytest.approx(a, rel=1e-9)
    assert fitted["w_c"] == pytest.approx({"11": 5.0, "13": 7.0}, rel=1e-12)
    assert fitted["r_squared"] == pytest.approx(1.0)
    held = _facts(p=13, fixed_norm=1.1 * 7.0)
    epoch = laws.forecast(held, pinned_norm, fitted).epoch
    assert epoch == pytest.approx(a * math.exp(alpha * 1.1), rel=1e-9)


def test_each_law_refuses_a_run_without_its_inputs():
    with pytest.raises(UsageError, match="holds its norm"):
        pinned_norm.needs(_facts())
    for module in (norm_separation, first_passage):
        with pytest.raises(UsageError, match="needs weight decay"):
            module.needs(_facts(weight_decay=0.0))
    sgd_only = {"law": norm_separation.NAME, "c": 1.0, "log_v_post": 0.0, "optimizers": ["sgd"]}
    with pytest.raises(UsageError, match="hold for sgd runs.*trained with adamw"):
        laws.forecast(_facts(), norm_separation, sgd_only)
    with pytest.raises(UsageError, match="hold for adamw runs.*trained with sgd"):
        laws.forecast(_facts(optimizer="sgd"), first_passage, first_passage.PUBLISHED)
    other_p = {"law": pinned_norm.NAME, "alpha": 7.5, "log_a": 0.0, "w_c": {"13": 7.0},
               "optimizers": ["adamw"]}  # fmt: skip
    with pytest.raises(UsageError, match="no W_c for p = 11"):
        laws.forecast(_facts(fixed_norm=5.0), pinned_norm, other_p)
    with pytest.raises(UsageError, match="no published constants"):
        laws.load_constants(None, pinned_norm)
    with pytest.raises(ValueError, match="2 norms or more"):
        pinned_norm.fit([_facts(t_grok=500, v_grok=25.0)])


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """A free and a pinned tiny run (p = 11) that memorise (epochs 71 and 79 on this CPU's
    torch) and have not grokked in their 120 epochs."""
    import sys
    from pathlib import Path

    from grokinterp.training.loop import train_runs

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import tiny_config

    root = tmp_path_factory.mktemp("laws")
    train_runs([tiny_config().replace(epochs=120)], [root / "free"], progress=False)
    pinned = tiny_config().replace(epochs=120, fixed_norm=20.0)
    train_runs([pinned], [root / "pinned"], progress=False)
    return root


def _one_line_error(capsys, *args) -> str:
    assert main(["forecast", *map(str, args)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("grokinterp: error: ") and err.count("\n") == 1
    return err


def test_forecast_law_command(tiny_runs, tmp_path, capsys):
    free, pinned = tiny_runs / "free", tiny_runs / "pinned"
    err = _one_line_error(capsys, free, "--law", "pinned-norm")
    assert "needs a run that holds its norm (fixed_norm)" in err
    sgd = tmp_path / "sgd.json"
    sgd.write_text(json.dumps({"law": "norm-separation", "c": 1.0, "log_v_post": 0.0,
                               "optimizers": ["sgd"], "source": "sgd runs"}))  # fmt: skip
    err = _one_line_error(capsys, free, "--law", "norm-separation", "--constants", sgd)
    assert "hold for sgd runs" in err and "trained with adamw" in err
    assert "no published constants" in _one_line_error(capsys, free, "--law", "norm-separation")
    assert "unknown law 'nope'" in _one_line_error(capsys, free, "--law", "nope")
    assert "--constants goes with --law" in _one_line_error(capsys, free, "--constants", sgd)
    assert "'norm-separation' law, not 'first-passage'" in _one_line_error(
        capsys, free, "--law", "first-passage", "--constants", sgd
    )

    assert main(["forecast", str(free), "--law", "first-passage"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("free: seen up to epoch 120, memorised at epoch ")
    assert lines[1].split()[0] == "first-passage"

    w_c = tmp_path / "pinned.json"
    w_c.write_text(json.dumps({"law": "pinned-norm", "alpha": 7.5, "log_a": math.log(10.0),
                               "w_c": {"11": 20.0}, "optimizers": ["adamw"]}))  # fmt: skip
    assert main(["forecast", str(pinned), "--law", "pinned-norm", "--constants", str(w_c)]) == 0
    # rho = 1: 10 e^7.5 = 18,080 epochs, past the run's 120
    line = capsys.readouterr().out.splitlines()[1]
    assert "no grokking predicted within the run's 120 epochs" in line and "18,080" in line
