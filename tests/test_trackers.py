"""Trackers (issue 20): the metrics.jsonl stream every run writes, `--log-to` refusals when the
extra is absent, and, when installed, trackio (local store) and wandb (offline mode) receiving
exactly the rows of the run.

The tracker tests skip without their extras; run them with
    .venv/bin/pip install -e ".[test,wandb,trackio]"
    .venv/bin/python -m pytest -q tests/test_trackers.py
"""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest

from grokinterp.cli import main
from grokinterp.storage import store

TINY = ["--p", "11", "--d-model", "16", "--n-heads", "2", "--d-mlp", "16", "--quiet"]


def train(out, epochs: int, *extra: str) -> int:
    args = ["train", *TINY, "--epochs", str(epochs), "--save-every", "5", "--out", str(out)]
    return main([*args, *extra])


def test_metrics_stream_holds_the_csv_rows_and_survives_a_resume(tmp_path):
    assert train(tmp_path / "whole", 20) == 0
    stream = store.read_metrics_stream(tmp_path / "whole")
    table = store.read_metrics_array(tmp_path / "whole")
    assert [row["epoch"] for row in stream] == list(range(21))
    for row, values in zip(stream, table, strict=True):
        assert [row[c] for c in store.METRIC_COLUMNS[1:]] == values[1:].tolist()  # bit for bit
    assert train(tmp_path / "part", 10) == 0
    (tmp_path / "part" / store.METRICS_STREAM).unlink()  # as a run made before the stream
    assert main(["train", "--resume", str(tmp_path / "part"), "--epochs", "20", "--quiet"]) == 0
    whole = (tmp_path / "whole" / store.METRICS_STREAM).read_bytes()
    assert (tmp_path / "part" / store.METRICS_STREAM).read_bytes() == whole


@pytest.mark.parametrize("command", ["train", "analyze", "replay"])
def test_an_absent_tracker_is_one_line_before_anything_is_written(
    command, tmp_path, monkeypatch, capsys
):
    assert train(tmp_path / "run", 5) == 0
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    capsys.readouterr()
    args = {
        "train": ["train", *TINY, "--epochs", "5", "--out", str(tmp_path / "new")],
        "analyze": ["analyze", "--ckpt-dir", str(tmp_path / "run"), "--out", str(tmp_path / "a")],
        "replay": ["replay", str(tmp_path / "run"), "--to", "wandb"],
    }[command]
    flag = [] if command == "replay" else ["--log-to", "wandb"]
    assert main([*args, *flag]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'grokinterp[wandb]'" in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def expected_logs(run_dir, prefix: str = "") -> list[tuple[int, dict]]:
    """(step, values) the tracker should hold: the run's metrics rows, unrecorded ones left out."""
    rows = store.read_metrics_stream(run_dir)
    return [
        (row["epoch"], {prefix + k: v for k, v in row.items() if k != "epoch" and v is not None})
        for row in rows
    ]


@pytest.fixture(scope="module")
def trackio_dir(tmp_path_factory):
    """trackio reads TRACKIO_DIR once, at import: set it before the first import."""
    pytest.importorskip("trackio", reason="the trackio extra is not installed")
    path = tmp_path_factory.mktemp("trackio")
    old = os.environ.get("TRACKIO_DIR")
    os.environ["TRACKIO_DIR"] = str(path)
    yield path
    if old is None:
        del os.environ["TRACKIO_DIR"]
    else:
        os.environ["TRACKIO_DIR"] = old


def trackio_logs(project: str, run: str) -> list[tuple[int, dict]]:
    from trackio.sqlite_storage import SQLiteStorage

    return [
        (log["step"], {k: v for k, v in log.items() if k not in ("step", "timestamp")})
        for log in SQLiteStorage.get_logs(project, run)
    ]


def test_trackio_receives_the_rows_live_and_on_replay(trackio_dir, tmp_path):
    run = tmp_path / "tiny-run"
    assert train(run, 10, "--log-to", "trackio", "--project", "live") == 0
    assert trackio_logs("live", "tiny-run") == expected_logs(run)
    analysis = tmp_path / "analysis"
    assert main(["analyze", "--ckpt-dir", str(run), "--out", str(analysis), "--quiet"]) == 0
    args = ["replay", str(run), "--to", "trackio", "--project", "later"]
    assert main([*args, "--analysis", str(analysis)]) == 0
    assert trackio_logs("later", "tiny-run") == expected_logs(run)
    from grokinterp.analysis.analyze import load_measures

    measures = load_measures(analysis).select_dtypes("number")
    logged = dict(trackio_logs("later", "tiny-run-analysis"))
    assert sorted(logged) == measures["epoch"].tolist()
    for row in measures.to_dict("records"):
        for key, value in row.items():
            if key != "epoch" and not np.isnan(value):
                assert logged[int(row["epoch"])][f"analysis/{key}"] == pytest.approx(value)


def test_wandb_offline_receives_every_row(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="the wandb extra is not installed")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "tiny-run"
    assert train(run, 5) == 0
    assert main(["replay", str(run), "--to", "wandb"]) == 0
    import wandb

    wandb.teardown()  # what the command's exit does: wandb's service finishes writing the log
    (log,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    data = log.read_bytes()  # the offline log holds each value as JSON text (one 32 KB block)
    assert len(data) < 32_768
    for _, values in expected_logs(run):
        for key, value in values.items():
            assert key.encode() in data and json.dumps(value).encode() in data, (key, value)
