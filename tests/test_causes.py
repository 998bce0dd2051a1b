"""The cause measures on hand-built logits and weights with known answers, and in the table."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from grokinterp.analysis.analyze import weight_norm_ratio
from grokinterp.analysis.measures import causes


def test_logit_scale_closed_form():
    # pair 1: logits (3, 0, 0), answer 0: margin 3 - 1 = 2, std sqrt(2); pair 2: (1, 2, 3),
    # answer 2: margin 3 - 2 = 1, std sqrt(2/3)
    logits = torch.tensor([[[3.0, 0.0, 0.0], [1.0, 2.0, 3.0]]])
    margin, spread = causes.logit_scale(logits, torch.tensor([0, 2]))
    assert margin.item() == pytest.approx(1.5)
    assert spread.item() == pytest.approx((math.sqrt(2) + math.sqrt(2 / 3)) / 2)
    doubled = causes.logit_scale(2 * logits, torch.tensor([0, 2]))
    assert doubled[0].item() == pytest.approx(3.0)


def test_softmax_collapse_counts_exact_float32_one_hots():
    # a gap of 20 nats: exp(-20) ~ 2e-9 is lost in float32's 1 + 2e-9 (eps 1.2e-7); 10 is not
    logits = torch.tensor([[[20.0, 0.0], [10.0, 0.0], [0.0, 30.0], [0.0, 30.0]]])
    collapsed = causes.softmax_collapse(logits, torch.tensor([0, 0, 1, 0]))
    assert collapsed.item() == pytest.approx(2 / 4)
    assert causes.softmax_collapse(logits.double(), torch.tensor([0, 0, 1, 0])).item() == 0.5


def test_update_cosine_closed_form():
    before = {"w": torch.tensor([[[3.0, 4.0]], [[3.0, 4.0]], [[3.0, 4.0]]]), "b": torch.zeros(3, 1)}
    after = {
        "w": torch.tensor([[[1.5, 2.0]], [[-1.0, 3.75]], [[7.0, 4.0]]]),  # shrink, turn, mixed
        "b": torch.tensor([[0.0], [0.0], [3.0]]),
    }
    # updates (-1.5, -2, 0), (-4, -0.25, 0), (4, 0, 3) against (3, 4, 0): -1, -1/|u|, 12/(5*5)
    expected = [-1.0, (-12 - 1) / (5 * math.hypot(4, 0.25)), 12 / 25]
    np.testing.assert_allclose(causes.update_cosine(before, after).numpy(), expected)


def test_weight_norm_ratio_is_one_at_the_end_of_memorisation():
    table = pd.DataFrame({"epoch": [0, 10, 20], "weight_norm": [4.0, 8.0, 2.0]})
    np.testing.assert_allclose(weight_norm_ratio(table, {"memorization_end": 10}), [0.5, 1, 0.25])
    assert np.isnan(weight_norm_ratio(table, {"memorization_end": None})).all()


def test_cause_columns_in_the_measures_table(tiny_cfg, tmp_path):
    from grokinterp.analysis.analyze import analyze_run
    from grokinterp.models import architecture
    from grokinterp.storage.analysis_format import load_measures
    from grokinterp.storage.run import open_run
    from grokinterp.training.loop import train_runs

    cfg = tiny_cfg.replace(epochs=200, save_every=10)  # 21 checkpoints: across analysis chunks
    train_runs([cfg], [tmp_path / "run"], progress=False)
    table = load_measures(analyze_run(tmp_path / "run", tmp_path / "analysis", progress=False).path)
    run = open_run(tmp_path / "run")
    states = [run.state_dict(index=i) for i in range(len(run.epochs))]
    names = list(architecture(cfg).param_shapes())
    for i in (1, 8, 9, 20):
        pair = [{n: s[n][None] for n in names} for s in states[i - 1 : i + 1]]
        assert table["update_cos"].iloc[i] == pytest.approx(causes.update_cosine(*pair).item())
    assert np.isnan(table["update_cos"].iloc[0])
    assert table["softmax_collapse"].between(0, 1).all()
    assert table["logit_margin"].iloc[-1] > table["logit_margin"].iloc[0]
