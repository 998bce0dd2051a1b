"""One writer per run directory: a second writer (train --resume, train --out, a batch, a sweep
worker) is refused in one line naming the live process, the run stays whole, and a lock left
by a killed process never blocks a resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from grokinterp.cli import main
from grokinterp.errors import UsageError
from grokinterp.storage import run_lock, store, sweep_dir
from grokinterp.sweep.batch import run_batch
from grokinterp.training import batch_state
from grokinterp.training.loop import train_runs
from tests.helpers import held_by_another_process, killed_at_step
from tests.test_sweep import REPO, tiny_configs
from tests.test_train import TINY_ARGS
from tests.test_train_mistakes import one_line, refused, tree

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
ANALYSIS_OFF = {"analyze": False, "report": False, "basis": None}


def test_a_held_run_refuses_resume_and_the_same_command_naming_the_holder(
    tiny_cfg, tmp_path, capsys
):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt), killed_at_step(20):
        train_runs([tiny_cfg], [run], progress=False)
    with held_by_another_process(run) as holder:
        live = f"{run} is being trained by process {holder.pid}"
        line = refused(capsys, tmp_path, ["train", "--resume", str(run), "--quiet"])
        assert live in line
        line = refused(capsys, tmp_path, ["train", *TINY_ARGS, "--out", str(run), "--quiet"])
        assert live in line and "unfinished" not in line and "killed" not in line
    assert (run / run_lock.LOCK_FILE).exists()  # the killed holder's, which blocks nobody
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert batch_state.status(run).finished and not (run / run_lock.LOCK_FILE).exists()


def test_a_batch_is_refused_whole_when_one_of_its_runs_is_held(tmp_path, capsys):
    out = tmp_path / "sweep"
    with held_by_another_process(out / "small-seed1") as holder:
        args = ["train", *TINY_ARGS, "--seeds", "0,1", "--out", str(out), "--quiet"]
        line = refused(capsys, tmp_path, args)
    assert f"is being trained by process {holder.pid}" in line
    assert not (out / "small-seed0").exists()


def test_a_finished_run_leaves_no_lock_and_a_refused_lock_leaves_nothing(tiny_cfg, tmp_path):
    train_runs([tiny_cfg], [tmp_path / "done"], progress=False)
    assert not (tmp_path / "done" / run_lock.LOCK_FILE).exists()
    with held_by_another_process(tmp_path / "a" / "b"):
        before = tree(tmp_path)
        with pytest.raises(UsageError, match="is being trained by process"):
            train_runs([tiny_cfg], [tmp_path / "new" / "run", tmp_path / "a" / "b"])
        assert tree(tmp_path) == before  # new/run, created to hold its lock, is gone again


def test_the_sweep_worker_leaves_a_run_held_by_another_process_alone(tiny_cfg, tmp_path):
    cfgs = tiny_configs(tiny_cfg, 2)
    runs = [("a", cfgs[0].to_dict()), ("b", cfgs[1].to_dict())]
    sweep = tmp_path / "sweep"
    with held_by_another_process(sweep_dir.run_dir(sweep, "b")):
        result = run_batch(sweep, "g000", runs, ANALYSIS_OFF, "cpu")
    assert result["busy"] == ["b"] and result["trained"] == ["a"]
    assert store.run_files(sweep_dir.run_dir(sweep, "b")) == []


def train_command(out: Path) -> list[str]:
    long = ["--epochs", "100000", "--save-every", "10"]
    return [sys.executable, "-m", "grokinterp.cli", "train", *TINY_ARGS, *long, "--out", str(out)]


def test_two_trains_of_one_out_started_together_give_one_winner(tmp_path, capsys):
    """The loser is refused at once, naming the winner; a resume while the winner trains is
    refused too; after the winner is killed the run's rows are whole and in order, and it
    resumes."""
    out = tmp_path / "run"
    procs = [
        subprocess.Popen(
            [*train_command(out), "--quiet"], env=ENV, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    try:
        deadline = time.time() + 120
        while all(proc.poll() is None for proc in procs) and time.time() < deadline:
            time.sleep(0.05)
        (loser,) = [proc for proc in procs if proc.poll() is not None]
        (winner,) = [proc for proc in procs if proc is not loser]
        err = loser.stderr.read().strip().splitlines()
        assert loser.returncode == 2 and len(err) == 1
        assert f"{out} is being trained by process {winner.pid}" in err[0]
        while (batch_state.status(out) or batch_state.BatchState((), None, False)).step is None:
            assert time.time() < deadline and winner.poll() is None
            time.sleep(0.05)
        assert main(["train", "--resume", str(out), "--quiet"]) == 2
        assert f"is being trained by process {winner.pid}" in one_line(capsys)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    step = batch_state.status(out).step
    epochs = store.read_metrics_array(out)[:, 0]
    assert np.array_equal(epochs[: step + 1], np.arange(step + 1))
    assert np.all(np.diff(epochs) == 1)
    assert main(["train", "--resume", str(out), "--epochs", str(step + 10), "--quiet"]) == 0
    assert np.array_equal(store.read_metrics_array(out)[:, 0], np.arange(step + 11))
