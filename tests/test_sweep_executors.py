"""The Ray and SLURM (submitit) executors on small specs, when installed (`.[ray,slurm]`): the
same run directories as the local executor, a killed Ray worker reported and resumed, and a
preempted submitit task requeued and resumed. Each test skips when its extra is missing."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grokinterp.cli import main
from grokinterp.storage import store, sweep_dir
from grokinterp.storage.analysis_format import Summary
from grokinterp.storage.run_lock import LOCK_FILE
from grokinterp.sweep.spec import read_spec
from tests.test_sweep import REPO, TINY, assert_same_run, mtimes, saved_step, write_spec

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="ray not installed: pip install '.[ray]'"
)
needs_submitit = pytest.mark.skipif(
    importlib.util.find_spec("submitit") is None,
    reason="submitit not installed: pip install '.[slurm]'",
)
"""Marks, so that the local reference sweep is not trained for tests that would skip."""
GRID = {"train_frac": [0.4, 0.6], "seed": [0, 1]}
ENGINES = {"ray": {"local_cpus": 1}, "slurm": {"batches_per_task": 1}}
"""One group at a time on the local Ray instance; two array tasks of one group each."""


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    """The small spec, run by the local executor: what the others must reproduce."""
    root = tmp_path_factory.mktemp("reference")
    spec = write_spec(root / "small.toml", GRID, max_batch_runs=2, **ENGINES)
    sweep = root / "local"
    assert main(["sweep", str(spec), "--out", str(sweep), "--quiet", "--no-time-estimate"]) == 0
    return spec, sweep


def assert_same_sweep(spec: Path, first: Path, second: Path) -> None:
    for run in read_spec(spec).runs:
        assert_same_run(sweep_dir.run_dir(first, run.name), sweep_dir.run_dir(second, run.name))
        ours, theirs = (Summary.load(sweep_dir.analysis_dir(s, run.name)) for s in (first, second))
        assert ours.key_components == theirs.key_components
        assert ours.last_epoch == theirs.last_epoch == run.config.epochs
        assert sweep_dir.report_path(second, run.name).is_file()


def state_of(sweep: Path, name: str):
    return saved_step(sweep_dir.run_dir(sweep, name))


def holder_pid(sweep: Path, name: str) -> int:
    """The pid that the worker training `name` wrote into its run's lock file."""
    return int((sweep_dir.run_dir(sweep, name) / LOCK_FILE).read_text().split()[0])


def wait_mid_training(proc, sweep: Path, name: str, low: int, high: int) -> tuple[int, bool]:
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        state = state_of(sweep, name)
        if state is not None and low <= state[0] < high and not state[1]:
            return state
        time.sleep(0.01)
    raise AssertionError(f"{name} was never seen mid-training (sweep exit {proc.poll()})")


LONG = {"epochs": 1500, "save_every": 50}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def sweep_command(spec: Path, sweep: Path, *flags: str) -> list[str]:
    command = [sys.executable, "-m", "grokinterp.cli", "sweep", str(spec), "--out", str(sweep)]
    return [*command, "--quiet", "--no-time-estimate", *flags]


def reference_run(tmp_path: Path, seed: int) -> Path:
    """The run of `seed` under LONG, trained alone and unbroken."""
    train = [sys.executable, "-m", "grokinterp.cli", "train", "--seed", str(seed), "--quiet"]
    for flag, value in {**TINY, **LONG}.items():
        train += [f"--{flag.replace('_', '-')}", str(value)]
    subprocess.run([*train, "--out", str(tmp_path / "whole")], env=ENV, check=True)
    return tmp_path / "whole"


# ---- Ray ---------------------------------------------------------------------------------------
@needs_ray
def test_ray_executor_matches_local(local_reference, tmp_path):
    pytest.importorskip("ray")
    spec, reference = local_reference
    out = tmp_path / "ray"
    args = ["sweep", str(spec), "--out", str(out), "--executor", "ray", "--quiet"]
    assert main([*args, "--no-time-estimate"]) == 0
    assert_same_sweep(spec, reference, out)


@needs_ray
def test_killed_ray_worker_is_reported_then_resumed(tmp_path):
    pytest.importorskip("ray")
    spec = write_spec(
        tmp_path / "s.toml",
        {"seed": [0, 1, 2]},
        fixed=LONG,
        max_batch_runs=1,
        analysis={"analyze": False, "report": False},
        ray={"local_cpus": 1, "max_retries": 0},
    )
    sweep = tmp_path / "sweep"
    command = sweep_command(spec, sweep, "--executor", "ray")
    proc = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    step, _ = wait_mid_training(proc, sweep, "seed1", 200, 1500)
    worker = holder_pid(sweep, "seed1")
    assert worker != proc.pid
    os.kill(worker, signal.SIGKILL)
    out, err = (text.decode() for text in proc.communicate(timeout=300))
    assert proc.returncode == 1, err
    assert "g001: FAILED" in err and "1 of 3 group(s) failed" in err
    assert state_of(sweep, "seed0") == (1500, True) and state_of(sweep, "seed2") == (1500, True)
    killed_at = state_of(sweep, "seed1")
    assert killed_at is not None and not killed_at[1]

    again = subprocess.run(command, env=ENV, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "0 to train, 1 to resume, 2 finished" in again.stdout
    assert "g001: 1 resumed" in again.stdout
    assert_same_run(sweep_dir.run_dir(sweep, "seed1"), reference_run(tmp_path, 1))


# ---- SLURM through submitit ----------------------------------------------------------------------
@needs_submitit
def test_submitit_job_array_matches_local(local_reference, tmp_path, capsys):
    pytest.importorskip("submitit")
    spec, reference = local_reference
    out = tmp_path / "slurm"
    args = ["sweep", str(spec), "--out", str(out), "--executor", "slurm"]
    assert main([*args, "--slurm-cluster", "local", "--quiet", "--no-time-estimate"]) == 0
    assert "submitted job array" in capsys.readouterr().out
    assert_same_sweep(spec, reference, out)
    assert any((out / sweep_dir.SLURM).rglob("*_result.pkl"))


@needs_submitit
def test_preempted_submitit_task_is_requeued_and_resumes(tmp_path):
    """SLURM preempts a task with SIGUSR2 (submitit's signal): submitit checkpoints and requeues
    it, and the requeued task resumes the run from its saved state."""
    pytest.importorskip("submitit")
    spec = write_spec(
        tmp_path / "s.toml",
        {"seed": [1]},
        fixed=LONG,
        analysis={"analyze": False, "report": False},
    )
    sweep = tmp_path / "sweep"
    command = sweep_command(spec, sweep, "--executor", "slurm", "--slurm-cluster", "local")
    proc = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    step, _ = wait_mid_training(proc, sweep, "seed1", 200, 1300)
    task = holder_pid(sweep, "seed1")
    run = sweep_dir.run_dir(sweep, "seed1")
    saved = {p: p.stat().st_mtime_ns for e, p in store.list_checkpoints(run) if e <= step}
    os.kill(task, signal.SIGUSR2)
    out, err = (text.decode() for text in proc.communicate(timeout=300))
    assert proc.returncode == 0, err
    assert "g000: 1 resumed" in out  # the requeued task's result
    logs = "".join(p.read_text() for p in sorted((sweep / sweep_dir.SLURM).rglob("*_log.*")))
    assert "Caught signal SIGUSR2" in logs and "Requeued job" in logs, logs[-2000:]
    assert not (run / LOCK_FILE).exists()  # the requeued task finished and let go of the run
    assert {p: p.stat().st_mtime_ns for p in saved} == saved  # resumed, not restarted
    assert_same_run(run, reference_run(tmp_path, 1), exact=True)
    assert mtimes(run)  # the run directory is complete
