"""Shared fixtures: a tiny config for quick checks and one trained small-preset run."""

from __future__ import annotations

import os
import subprocess

import pytest
import torch

from grokinterp.config import RunConfig
from grokinterp.presets import preset


@pytest.fixture(autouse=True)
def seeded_torch():
    """Every test sees the same global torch RNG, so random test inputs are reproducible."""
    torch.manual_seed(0)


def tiny_config() -> RunConfig:
    """A model small enough that a few dozen steps take well under a second."""
    return preset("small").replace(
        preset="tiny",
        p=11,
        train_frac=0.5,
        d_model=16,
        n_heads=2,
        d_mlp=32,
        epochs=40,
        save_every=10,
    )


@pytest.fixture
def tiny_cfg() -> RunConfig:
    """`tiny_config()`, for one test."""
    return tiny_config()


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """The small preset trained once for the whole session (about 30 s on 2 CPU cores), on two
    threads whatever the machine or OMP_NUM_THREADS say, so that one machine gives one run. The
    tests that read it compare with recomputations from its files, never with recorded values
    (another machine's rounding, amplified by grokking, may give another run)."""
    from grokinterp.training.loop import train_runs

    run_dir = tmp_path_factory.mktemp("runs") / "small"
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train_runs([preset("small")], [run_dir], progress=False)
    finally:
        torch.set_num_threads(threads)
    return run_dir


@pytest.fixture(scope="session")
def small_analysis(small_run, tmp_path_factory):
    """The analysis of `small_run`."""
    from grokinterp.analysis.analyze import analyze_run

    return analyze_run(
        small_run, tmp_path_factory.mktemp("analyses") / "small", progress=False
    ).path


@pytest.fixture
def read_only(tmp_path):
    """A folder that nobody can write in: a read-only tmpfs for root (for whom permission bits
    say nothing), else a folder without write permission."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True
        )
        if done.returncode:
            pytest.skip("root without mount: no read-only folder to test with")
        yield folder
        subprocess.run(["umount", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
