"""The sweep plan's time estimate (grokinterp.sweep.plan) for batches, with the timings
replaced by a hand-built cost curve: an epoch of B runs trained together costs FIXED + PER_RUN B
seconds and a checkpoint save SAVE seconds per run."""

from __future__ import annotations

import pytest

from grokinterp.sweep import plan
from grokinterp.sweep.batch import DONE, NEW, PARTIAL, RunState
from grokinterp.sweep.spec import read_spec

FIXED, PER_RUN, SAVE = 0.004, 0.001, 0.02
SPEC = """
preset = "small"
max_batch_runs = 8
[fixed]
p = 11
d_model = 8
d_mlp = 16
epochs = 100
save_every = 10
[grid]
seed = [0, 1, 2, 3, 4, 5, 6, 7]
[analysis]
analyze = false
report = false
"""


@pytest.fixture
def timings(monkeypatch):
    """Every timing plan makes, replaced by the cost curve; returns the batch sizes timed."""
    timed = []

    def step_seconds(cfg, device="auto", budget=0.3, runs=1):
        timed.append(runs)
        return FIXED + PER_RUN * runs

    monkeypatch.setattr(plan, "step_seconds", step_seconds)
    monkeypatch.setattr(plan, "save_seconds", lambda cfg, repeats=3: SAVE, raising=False)
    return timed


@pytest.fixture
def spec(tmp_path):
    (tmp_path / "spec.toml").write_text(SPEC)
    spec = read_spec(tmp_path / "spec.toml")
    assert len(spec.batches) == 1 and len(spec.batches[0].runs) == 8
    return spec


def test_a_batched_group_costs_one_epoch_of_the_batch_not_the_sum_of_its_runs(timings, spec):
    states = {run.name: RunState(NEW) for run in spec.runs}
    (seconds,) = plan.time_estimate(spec, states, "cpu").values()
    saves = 11  # epochs 0, 10, ..., 90 and the last, 100
    assert seconds == pytest.approx(100 * (FIXED + 8 * PER_RUN) + saves * 8 * SAVE)
    solo = sum(plan.training_seconds([run.config], 0, "cpu") for run in spec.runs)
    assert solo == pytest.approx(8 * (100 * (FIXED + PER_RUN) + saves * SAVE))
    assert seconds < solo
    assert max(timings) <= 8


def test_finished_runs_cost_nothing_and_killed_ones_resume_together(timings, spec):
    names = [run.name for run in spec.runs]
    states = {name: RunState(NEW) for name in names[:3]}
    states |= {name: RunState(PARTIAL, 60) for name in names[3:6]}
    states |= {name: RunState(DONE) for name in names[6:]}
    (seconds,) = plan.time_estimate(spec, states, "cpu").values()
    new = 100 * (FIXED + 3 * PER_RUN) + 11 * 3 * SAVE
    resumed = 40 * (FIXED + 3 * PER_RUN) + 4 * 3 * SAVE  # saves at 70, 80, 90 and 100
    assert seconds == pytest.approx(new + resumed)
    done = {name: RunState(DONE) for name in names}
    assert plan.time_estimate(spec, done, "cpu") == {spec.batches[0].id: 0.0}


def test_the_train_command_plan_times_its_runs_as_one_batch(timings, spec):
    from grokinterp.cli.train import sweep_plan

    line = sweep_plan([run.config for run in spec.runs], "cpu")
    # 100 epochs at 0.012 s and 88 saves at 0.02 s: 2.96 s (8.8 s for the runs one by one)
    assert "about 3 s of training on cpu" in line
