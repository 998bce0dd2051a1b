"""Crash safety of a batch: killed at every write of its files (half-way through each),
or by SIGKILL mid-save, a group resumes as one batch and ends byte for byte equal to an unbroken
run, through `train --resume` and through the sweep's group worker (which every executor runs)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load

from grokinterp.errors import UsageError
from grokinterp.storage import environment, store, sweep_dir
from grokinterp.sweep.batch import run_batch
from grokinterp.training import batch_state
from grokinterp.training import loop as training_loop
from grokinterp.training.loop import resume_runs, train_runs
from tests.helpers import Killed, killed_at_write
from tests.test_sweep import REPO, write_spec

NAMES = ("a", "b")
ANALYSIS_OFF = {"analyze": False, "report": False, "basis": None}


def contents(root: Path) -> dict[str, bytes]:
    """Every run file's bytes, but environment.json: a log of each train and resume
    (tests/test_environment.py), so a resumed run holds one more record than an unbroken one."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.name != environment.ENVIRONMENT_FILE
    }


def assert_same_files(root: Path, expected: dict[str, bytes], where: str) -> None:
    got = contents(root)
    assert sorted(got) == sorted(expected), where
    for name, data in expected.items():
        assert got[name] == data, f"{where}: {name} differs"


@pytest.fixture
def batch_cfgs(tiny_cfg):
    """Two runs of one batch whose splits differ in size (so the batch pads one of them)."""
    cfg = tiny_cfg.replace(epochs=10, save_every=5)
    return [cfg.replace(seed=1, train_frac=0.4), cfg.replace(seed=2, train_frac=0.6)]


def test_a_group_killed_at_any_write_resumes_to_the_unbroken_run(batch_cfgs, tmp_path):
    with killed_at_write(None) as count:
        train_runs(batch_cfgs, [tmp_path / "whole" / name for name in NAMES], progress=False)
    expected = contents(tmp_path / "whole")
    assert count[0] >= 2 * 4 + 3 * 2 * 4  # run files and record, then 3 saves of 4 files a run
    for n in range(1, count[0] + 1):
        root = tmp_path / f"killed-{n}"
        dirs = [root / name for name in NAMES]
        with pytest.raises(Killed), killed_at_write(n):
            train_runs(batch_cfgs, dirs, progress=False)
        group = batch_state.status(dirs[0])
        if group is None or group.step is None:  # killed before the first commit: start again
            shutil.rmtree(root)
            train_runs(batch_cfgs, dirs, progress=False)
        elif group.finished:  # killed in the last commit: completed, nothing to train
            with pytest.raises(UsageError, match="already finished"):
                resume_runs(dirs[1:], progress=False)
        else:  # naming one run resumes its whole group
            resume_runs(dirs[1:], progress=False)
        assert_same_files(root, expected, f"killed at write {n}")


def test_a_sweep_group_killed_at_any_write_is_finished_by_its_worker(batch_cfgs, tmp_path):
    runs = [(name, cfg.to_dict()) for name, cfg in zip(NAMES, batch_cfgs, strict=True)]
    with killed_at_write(None) as count:
        run_batch(tmp_path / "whole", "g000", runs, ANALYSIS_OFF, "cpu")
    expected = contents(tmp_path / "whole" / sweep_dir.RUNS)
    for n in range(1, count[0] + 1, 3):  # every third write: the test above covers each one
        sweep = tmp_path / f"killed-{n}"
        with pytest.raises(Killed), killed_at_write(n):
            run_batch(sweep, "g000", runs, ANALYSIS_OFF, "cpu")
        result = run_batch(sweep, "g000", runs, ANALYSIS_OFF, "cpu")
        assert sorted(result["trained"] + result["resumed"] + result["done"]) == list(NAMES)
        assert_same_files(sweep / sweep_dir.RUNS, expected, f"killed at write {n}")


def test_a_group_resumes_in_its_own_batch_order(batch_cfgs, tmp_path, monkeypatch):
    """Runs named in another order, and runs of two groups, resume as the batches they were."""
    dirs = {name: tmp_path / "whole" / name for name in (*NAMES, "c")}
    train_runs(batch_cfgs, [dirs["a"], dirs["b"]], progress=False)
    train_runs(batch_cfgs[:1], [dirs["c"]], progress=False)
    killed = {name: tmp_path / "killed" / name for name in dirs}
    with pytest.raises(Killed), killed_at_write(2 * 4 + 2 * 4 + 1):  # group ab saved epoch 0
        train_runs(batch_cfgs, [killed["a"], killed["b"]], progress=False)
    with pytest.raises(Killed), killed_at_write(4 + 4 + 1):  # run c saved epoch 0
        train_runs(batch_cfgs[:1], [killed["c"]], progress=False)

    batches = []
    loop = training_loop._loop

    def spy(cfgs, run_dirs, *args):
        batches.append([Path(run_dir).name for run_dir in run_dirs])
        loop(cfgs, run_dirs, *args)

    monkeypatch.setattr(training_loop, "_loop", spy)
    resume_runs([killed["b"], killed["c"], killed["a"]], progress=False)
    assert batches == [["a", "b"], ["c"]]
    assert_same_files(tmp_path / "killed", contents(tmp_path / "whole"), "resumed out of order")


def test_a_run_of_an_older_grokinterp_resumes(tiny_cfg, tmp_path):
    """A run directory with one `state.safetensors` and no group record resumes alone."""
    train_runs([tiny_cfg], [tmp_path / "whole" / "run"], progress=False)
    killed = tmp_path / "killed" / "run"
    with pytest.raises(Killed), killed_at_write(4 + 3 * 4 + 1):  # files, record, 3 saves
        train_runs([tiny_cfg], [killed], progress=False)
    assert batch_state.load_state(killed)[1] == 20
    (killed / batch_state.RECORD_FILE).unlink()
    for _, path in store.list_states(killed):
        path.rename(killed / store.LEGACY_STATE_FILE)
    resume_runs([killed], progress=False)
    assert_same_files(tmp_path / "killed", contents(tmp_path / "whole"), "older layout")


def test_a_damaged_group_is_refused_in_one_line(batch_cfgs, tmp_path, capsys):
    from grokinterp.cli import main

    dirs = [tmp_path / name for name in NAMES]
    with pytest.raises(Killed), killed_at_write(2 * 4 + 2 * 2 * 4):  # 2 saves committed
        train_runs(batch_cfgs, dirs, progress=False)
    shutil.rmtree(dirs[1])
    before = contents(tmp_path)
    assert main(["train", "--resume", str(dirs[0]), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{dirs[1]} does not hold the batch" in err[0]
    assert contents(tmp_path) == before


def test_a_sweep_sigkilled_while_its_group_saves_resumes_exactly(tmp_path):
    """A real SIGKILL while a batch of two saves at every epoch (so most of the time
    goes to saving); running the same sweep again gives the unbroken sweep's files."""
    fixed = {"epochs": 60, "save_every": 1}
    grid = {"train_frac": [0.4, 0.6]}
    spec = write_spec(
        tmp_path / "s.toml", grid, fixed=fixed, analysis={"analyze": False, "report": False}
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}

    def command(out: Path) -> list[str]:
        sweep = [sys.executable, "-m", "grokinterp.cli", "sweep", str(spec), "--out", str(out)]
        return [*sweep, "--quiet", "--no-time-estimate"]

    subprocess.run(command(tmp_path / "whole"), env=env, check=True, capture_output=True)
    expected = contents(tmp_path / "whole" / sweep_dir.RUNS)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(command(killed), env=env, stdout=subprocess.DEVNULL)
    runs = sorted(expected)[0].split("/")[0]
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        checkpoints = store.list_checkpoints(sweep_dir.run_dir(killed, runs))
        if checkpoints and checkpoints[-1][0] >= 20:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    group = batch_state.status(sweep_dir.run_dir(killed, runs))
    assert group is not None and not group.finished, "the kill must land mid-training"
    again = subprocess.run(command(killed), env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "g000: 2 resumed" in again.stdout
    # a state holds the process's torch RNG, which each process seeds at random (nothing in
    # training draws from it): the states are compared without it, all other files byte for byte
    states = sorted(name for name in expected if "/state_" in name)
    assert [name.split("/")[1] for name in states] == ["state_0000060.safetensors"] * 2
    got = contents(killed / sweep_dir.RUNS)
    for name in states:
        ours, theirs = (load(files.pop(name)) for files in (got, expected))
        assert ours.pop("rng").shape == theirs.pop("rng").shape
        assert (
            all(torch.equal(ours[key], theirs[key]) for key in theirs)
            and ours.keys() == theirs.keys()
        )
    assert got == expected


def test_status_read_while_a_commit_lands_sees_a_whole_group(batch_cfgs, tmp_path, monkeypatch):
    """Another process reads the group (a status, a waiting test) while training commits: the
    commit lands after the reader took the records and before it checked the states, which the
    commit has just removed. The reader sees the new step, not a damaged group."""
    dirs = [tmp_path / name for name in NAMES]
    train_runs(batch_cfgs, dirs, progress=False)
    states = [batch_state.load_state(run)[0] for run in dirs]
    read = batch_state._read_record
    reads = []

    def read_then_commit(run_dir):
        record = read(run_dir)
        reads.append(run_dir)
        if len(reads) == len(dirs) + 1:  # every record read: the writer commits step 15 now
            batch_state.commit(dirs, 15, states, finished=False)
        return record

    monkeypatch.setattr(batch_state, "_read_record", read_then_commit)
    assert batch_state.status(dirs[0]) == batch_state.BatchState(tuple(dirs), 15, False)
