"""Predictable paths and messages: a missing run directory is named the same way by every
command, and a report's default file is named after the run directory it is given."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grokinterp.cli import main


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--resume"],
        ["analyze", "--ckpt-dir"],
        ["report", "--ckpt-dir"],
        ["indicators", "--ckpt-dir"],
        ["forecast"],
    ],
)
def test_a_missing_run_directory_gets_one_message(command, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*command, "nowhere"]) == 2
    assert capsys.readouterr().err.strip() == "grokinterp: error: nowhere: no such run directory"
    assert list(tmp_path.iterdir()) == []


def test_the_report_is_named_after_the_run_directory(
    small_run, small_analysis, tmp_path, capsys, monkeypatch
):
    run = tmp_path / "renamed"
    shutil.copytree(small_run, run)
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--ckpt-dir", "renamed", "--analysis", str(small_analysis)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {Path('reports') / 'renamed.html'}"
    assert (tmp_path / "reports" / "renamed.html").is_file()
