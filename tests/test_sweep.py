"""Sweeps with the local executor (what CI runs): spec checks, plan, runs, resume after SIGKILL,
failure isolation, the sweep table and report. The Ray and submitit executors are tested in
tests/test_sweep_executors.py when installed."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from grokinterp.cli import main
from grokinterp.storage import store, sweep_dir
from grokinterp.storage.analysis_format import Summary
from grokinterp.storage.run import open_run
from grokinterp.sweep.spec import read_spec
from grokinterp.sweep.table import sweep_table
from grokinterp.training import batch_state
from grokinterp.training.loop import SHARED_FIELDS, train_runs
from tests.helpers import (
    CHROMIUM,
    chromium,
    drawn_marker,
    figures_in,
    instrumented_copy,
    killed_at_step,
)

TINY = {"p": 11, "d_model": 16, "n_heads": 2, "d_mlp": 32, "epochs": 30, "save_every": 10}
REPO = Path(__file__).resolve().parents[1]


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def write_spec(path: Path, grid: dict, fixed: dict | None = None, **tables) -> Path:
    """A spec file: the tiny model unless `fixed` says otherwise; `tables` go in as given,
    dicts as TOML tables and other values as top-level keys."""
    lines = [f"{k} = {toml_value(v)}" for k, v in tables.items() if not isinstance(v, dict)]
    lines.append("[fixed]")
    chosen = {k: v for k, v in {**TINY, **(fixed or {})}.items() if k not in grid}
    lines += [f"{k} = {toml_value(v)}" for k, v in chosen.items()]
    lines.append("[grid]")
    lines += [f"{k} = {toml_value(v)}" for k, v in grid.items()]
    for name, table in tables.items():
        if isinstance(table, dict):
            lines.append(f"[{name}]")
            lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def final_weights(run_dir) -> dict[str, torch.Tensor]:
    return open_run(run_dir).state_dict()


def assert_same_run(first: Path, second: Path, exact: bool = False) -> None:
    """Same config, split, checkpoints and metrics; weights and metrics bit-identical with
    `exact`, else within the batched tolerance of tests/test_train.py."""
    assert store.read_config(first) == store.read_config(second)
    assert torch.equal(store.read_split(first), store.read_split(second))
    assert open_run(first).epochs == open_run(second).epochs
    a, b = final_weights(first), final_weights(second)
    for name in a:
        if exact or not a[name].is_floating_point():
            assert torch.equal(a[name], b[name]), name
        else:
            torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)
    ma, mb = store.read_metrics_array(first), store.read_metrics_array(second)
    if exact:
        np.testing.assert_array_equal(ma, mb)
    else:
        np.testing.assert_allclose(ma, mb, rtol=1e-4, atol=1e-6)


def saved_step(run_dir: Path) -> tuple[int, bool] | None:
    """(step, finished) of a run's group, as another process sees it while the group trains;
    None before its first commit."""
    group = batch_state.status(run_dir)
    return None if group is None or group.step is None else (group.step, group.finished)


def mtimes(path: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in sorted(path.rglob("*")) if p.is_file()}


# ---- the spec ----------------------------------------------------------------------------------
def test_spec_plans_runs_and_batchable_groups(tmp_path):
    grid = {"train_frac": [0.4, 0.6], "seed": [0, 1], "weight_decay": [0.5, 1], "d_mlp": [32, 64]}
    spec = read_spec(write_spec(tmp_path / "s.toml", grid, max_batch_runs=3))
    assert len(spec.runs) == 16 and spec.name == "s"
    names = [run.name for run in spec.runs]
    assert names[:3] == [
        "frac0.4-seed0-wd0.5-dmlp32",
        "frac0.4-seed0-wd0.5-dmlp64",
        "frac0.4-seed0-wd1-dmlp32",
    ]
    assert len(set(names)) == 16
    first = spec.runs[1].config
    assert (first.train_frac, first.seed, first.weight_decay, first.d_mlp) == (0.4, 0, 0.5, 64)
    assert isinstance(spec.runs[2].config.weight_decay, float) and first.p == 11
    # 8 runs per d_mlp, at most 3 a group: 3 + 3 + 2 each; groups never mix architectures
    assert sorted(len(g.runs) for g in spec.batches) == [2, 2, 3, 3, 3, 3]
    for group in spec.batches:
        for run in group.runs:
            assert run.batch == group.id
            for name in SHARED_FIELDS:
                assert getattr(run.config, name) == getattr(group.shared, name)
        # packed by training-set size: padding stays small
        sizes = [run.config.n_train for run in group.runs]
        assert sizes == sorted(sizes)
    assert sorted(r.name for g in spec.batches for r in g.runs) == sorted(names)
    assert spec.analysis == {"analyze": True, "report": True, "basis": None, "llc": None}


def test_operation_and_string_fields_name_runs(tmp_path):
    grid = {"operation": ["add", "sub"], "init": ["paper", "transformer_lens"]}
    spec = read_spec(write_spec(tmp_path / "s.toml", grid))
    assert [r.name for r in spec.runs] == [
        "add-init-paper",
        "add-init-transformer_lens",
        "sub-init-paper",
        "sub-init-transformer_lens",
    ]
    # operation is a shared field: add and sub never train together
    assert len(spec.batches) == 2


def test_arms_cross_the_grid_with_their_own_values_and_lists(tmp_path):
    arms = (
        "[arms.adamw]\n"
        "[arms.filtered]\ngrad_filter = 'ema'\nperpendicular_grad = true\n"
        "[arms.fixed]\nfixed_norm = 30\nweight_decay = 0\nlr = [0.003]\n"
    )
    path = write_spec(tmp_path / "s.toml", {"lr": [0.01, 0.003], "seed": [0, 1]})
    path.write_text(path.read_text() + arms)
    spec = read_spec(path)
    names = [run.name for run in spec.runs]
    assert names[:4] == [
        "adamw-lr0.01-seed0",
        "adamw-lr0.01-seed1",
        "adamw-lr0.003-seed0",
        "adamw-lr0.003-seed1",
    ]
    assert names[4:8] == [f"filtered-{n.split('-', 1)[1]}" for n in names[:4]]
    assert names[8:] == ["fixed-lr0.003-seed0", "fixed-lr0.003-seed1"]
    by_name = {run.name: run for run in spec.runs}
    filtered = by_name["filtered-lr0.003-seed1"]
    assert filtered.arm == "filtered" and filtered.config.grad_filter == "ema"
    assert filtered.config.perpendicular_grad is True and filtered.config.lr == 0.003
    fixed = by_name["fixed-lr0.003-seed0"].config
    assert (fixed.fixed_norm, fixed.weight_decay, fixed.grad_filter) == (30.0, 0.0, "none")
    assert by_name["adamw-lr0.01-seed0"].config == spec.base.replace(lr=0.01, seed=0)
    # recipes are shared fields: one batch per arm
    assert sorted(len(g.runs) for g in spec.batches) == [2, 4, 4]
    assert all(len({run.arm for run in g.runs}) == 1 for g in spec.batches)


BAD_SPECS = [
    ("[grid]\nsed = [0, 1]\n", "unknown run config field grid.sed"),
    ("[fixed]\nepohcs = 5\n[grid]\nseed = [0]\n", "unknown run config field fixed.epohcs"),
    ('[grid]\nseed = [0, "1"]\n', "grid.seed[1] must be an integer"),
    ("[grid]\nseed = [true]\n", "grid.seed[0] must be an integer"),
    ("[fixed]\np = 59.5\n[grid]\nseed = [0]\n", "fixed.p must be an integer"),
    ('[grid]\ntrain_frac = ["0.3"]\n', "grid.train_frac[0] must be a number"),
    ("[grid]\noperation = [1]\n", "grid.operation[0] must be a string"),
    ("[grid]\n", "empty grid"),
    ("preset = 'small'\n", "empty grid"),
    ("[grid]\nseed = []\n", "grid.seed is an empty list"),
    ("[grid]\nseed = 0\n", "grid.seed must be a list"),
    ("[grid]\nseed = [0, 0]\n", "lists a value twice"),
    ("grdi = 1\n[grid]\nseed = [0]\n", "unknown key 'grdi'"),
    ("preset = 'huge'\n[grid]\nseed = [0]\n", "unknown preset 'huge'"),
    ("max_batch_runs = 0\n[grid]\nseed = [0]\n", "max_batch_runs must be at least 1"),
    ("max_group_size = 4\n[grid]\nseed = [0]\n", "max_group_size is now max_batch_runs"),
    ("[grid]\nseed = [0]\n[slurm]\ngroups_per_task = 2\n", "groups_per_task is now batches_per"),
    ("[grid]\np = [11, 12]\n", "run p12: p must be a prime"),
    ("[grid]\ntrain_frac = [0.3, 1.5]\n", "train_frac must lie in (0, 1)"),
    ("[grid]\noperation = ['pow']\n", "unknown operation 'pow'"),
    ("[grid]\npreset = ['small']\n", "grid.preset"),
    ("[fixed]\nseed = 1\n[grid]\nseed = [0]\n", "both under [fixed] and under [grid]"),
    ("[grid]\nseed = [0]\n[analysis]\nrepot = true\n", "unknown key analysis.repot"),
    ("[grid]\nseed = [0]\n[analysis]\nanalyze = false\n", "report = true needs"),
    ("[grid]\nseed = [0]\n[analysis]\nbasis = 'dlog'\n", "analysis.basis"),
    ("[grid]\nseed = [0]\n[analysis.llc]\ndraw = 5\n", "unknown key analysis.llc.draw"),
    ("[grid]\nseed = [0]\n[analysis.llc]\ndraws = 0\n", "analysis.llc: LLC draws must be"),
    ("[grid]\nseed = [0]\n[analysis.llc]\nlr = -1\n", "analysis.llc: LLC step size"),
    ("[grid]\nseed = [0]\n[ray]\nnum_gpu = 1\n", "unknown key ray.num_gpu"),
    ("[grid]\nseed = [0]\n[slurm]\ntimeout_min = 'long'\n", "slurm.timeout_min must be"),
    ("[grid\nseed = [0]\n", "not valid TOML"),
    ("[grid]\nseed = [0]\n[arms.a]\noptimiser = 'sgd'\n", "unknown run config field arms.a.opt"),
    ("[grid]\nseed = [0]\n[arms.a]\nperpendicular_grad = 1\n", "must be true or false"),
    ("[grid]\nseed = [0]\n[arms.a]\nfixed_norm = 'big'\n", "arms.a.fixed_norm must be a num"),
    ("[grid]\nseed = [0]\n[arms.a]\nseed = []\n", "arms.a.seed is an empty list"),
    ("[fixed]\nlr = 1\n[grid]\nseed = [0]\n[arms.a]\nlr = 2\n", "both under [fixed] and"),
    ("[grid]\nseed = [0]\n[arms]\na = 1\n", "arms.a must be a table"),
    ("[grid]\nseed = [0]\n[arms.a]\ntemperature = -1\n", "run a-seed0: temperature"),
    ("[grid]\nseed = [0]\n[arms.'a b']\n", "arm name 'a b'"),
]


@pytest.mark.parametrize("text, words", BAD_SPECS)
def test_spec_mistake_is_one_line_exit_2_and_starts_nothing(text, words, tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    out = tmp_path / "sweep"
    assert main(["sweep", str(spec), "--out", str(out), "--quiet"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert captured.out == ""  # no plan printed: nothing started
    assert not out.exists()


@pytest.mark.parametrize(
    "args, words",
    [
        (["--executor", "ray"], "pip install 'grokinterp[ray]'"),
        (["--executor", "slurm"], "pip install 'grokinterp[slurm]'"),
        (["--executor", "dask"], "unknown executor 'dask'"),
        (["--address", "10.0.0.1:6379"], "goes with --executor ray"),
        (["--device", "tpu"], "unknown device"),
    ],
)
def test_bad_executor_is_one_line_exit_2(args, words, tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    missing = {"ray", "submitit"}
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in missing else real(name, *a)
    )
    spec = write_spec(tmp_path / "s.toml", {"seed": [0]})
    out = tmp_path / "sweep"
    assert main(["sweep", str(spec), "--out", str(out), *args]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert captured.out == "" and not out.exists()


def test_missing_spec_and_non_sweep_folders(tmp_path, capsys):
    assert main(["sweep", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read the sweep spec" in capsys.readouterr().err
    spec = write_spec(tmp_path / "s.toml", {"seed": [0]})
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["sweep", str(spec), "--out", str(other)]) == 2
    assert "holds other files" in capsys.readouterr().err
    assert main(["sweep-report", str(tmp_path / "none")]) == 2
    assert "no such sweep folder" in capsys.readouterr().err
    assert main(["sweep-report", str(other)]) == 2
    assert "plan.json: missing; is" in capsys.readouterr().err


# ---- a local sweep, shared by the tests below ----------------------------------------------------
@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """Four tiny runs (two train fractions x two seeds) in two groups, analysed and reported."""
    root = tmp_path_factory.mktemp("local")
    spec = write_spec(
        root / "study.toml",
        {"train_frac": [0.4, 0.6], "seed": [0, 1]},
        max_batch_runs=2,
    )
    sweep = root / "sweep"
    assert main(["sweep", str(spec), "--out", str(sweep), "--quiet"]) == 0
    return spec, sweep


def test_local_sweep_writes_ordinary_runs_equal_to_train(local_sweep, tmp_path, capsys):
    spec_path, sweep = local_sweep
    spec = read_spec(spec_path)
    assert sorted(p.name for p in (sweep / "runs").iterdir()) == sorted(r.name for r in spec.runs)
    for run in spec.runs:
        run_dir = sweep_dir.run_dir(sweep, run.name)
        assert store.read_config(run_dir) == run.config
        assert batch_state.load_state(run_dir)[1:] == (run.config.epochs, True)
        assert Summary.load(sweep_dir.analysis_dir(sweep, run.name)).last_epoch == 30
        assert sweep_dir.report_path(sweep, run.name).stat().st_size > 1_000_000
    # each group is exactly what `train_runs` makes of it
    group = spec.batches[0]
    dirs = [tmp_path / run.name for run in group.runs]
    train_runs([run.config for run in group.runs], dirs, progress=False)
    for run, run_dir in zip(group.runs, dirs, strict=True):
        assert_same_run(sweep_dir.run_dir(sweep, run.name), run_dir, exact=True)
    assert (
        json.loads((sweep / sweep_dir.PLAN_FILE).read_text())["runs"][0]["name"] == "frac0.4-seed0"
    )
    assert (sweep / sweep_dir.SPEC_COPY).read_text() == spec_path.read_text()
    assert not (sweep / sweep_dir.FAILURES_FILE).exists()


def test_rerunning_a_finished_sweep_touches_nothing(local_sweep, capsys):
    spec, sweep = local_sweep
    before = mtimes(sweep / "runs") | mtimes(sweep / "analyses") | mtimes(sweep / "reports")
    assert main(["sweep", str(spec), "--out", str(sweep), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "0 to train, 0 to resume, 4 finished" in out and "nothing to do" in out
    after = mtimes(sweep / "runs") | mtimes(sweep / "analyses") | mtimes(sweep / "reports")
    assert after == before


def test_plan_prints_estimates_and_writes_nothing(local_sweep, tmp_path, capsys):
    spec, sweep = local_sweep
    out = tmp_path / "planned"
    assert main(["sweep", str(spec), "--out", str(out), "--plan"]) == 0
    text = capsys.readouterr().out
    assert not out.exists()
    assert "4 runs in 2 batch(es)" in text and "4 to train" in text
    assert re.search(r"time\s+about [\d.]+ (s|min|h) of training left on this machine's cpu", text)
    disk = re.search(r"disk\s+about ([\d.]+) (KB|MB|GB)", text)
    estimate = float(disk.group(1)) * {"KB": 1e3, "MB": 1e6, "GB": 1e9}[disk.group(2)]
    used = sum(
        p.stat().st_size
        for name in ("runs", "analyses", "reports")
        for p in (sweep / name).rglob("*")
        if p.is_file()
    )
    assert 0.5 < estimate / used < 2, (estimate, used)


def test_changed_spec_is_refused_before_anything_runs(local_sweep, tmp_path, capsys):
    spec, sweep = local_sweep
    changed = write_spec(
        tmp_path / "study.toml",
        {"train_frac": [0.4, 0.6], "seed": [0, 1]},
        fixed={"epochs": 40},
        max_batch_runs=2,
    )
    before = mtimes(sweep)
    assert main(["sweep", str(changed), "--out", str(sweep), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds a run of another config (epochs 30 != 40)" in err[0]
    assert mtimes(sweep) == before


# ---- the sweep table and report ---------------------------------------------------------------
def test_sweep_report_table_and_page(local_sweep, capsys):
    spec, sweep = local_sweep
    assert main(["sweep-report", str(sweep)]) == 0
    out, err = capsys.readouterr()
    assert "different environments" not in err  # all four trained here, in this process
    table = pd.read_csv(sweep / sweep_dir.TABLE_CSV)
    assert list(table["run"]) == [
        "frac0.4-seed0",
        "frac0.4-seed1",
        "frac0.6-seed0",
        "frac0.6-seed1",
    ]
    assert set(table["status"]) == {"finished"} and set(table["sweep_group"]) == {"g000", "g001"}
    assert list(table["train_frac"]) == [0.4, 0.4, 0.6, 0.6] and set(table["p"]) == {11}
    for _, row in table.iterrows():
        metrics = open_run(sweep_dir.run_dir(sweep, row["run"])).metrics()
        reached = metrics.index[metrics["train_acc"] >= 0.99]
        expected = reached[0] if len(reached) else None
        assert (None if pd.isna(row["epoch_train_99"]) else row["epoch_train_99"]) == expected
        below = metrics.index[metrics["test_loss"] < 1.0]
        got = row["epoch_test_loss_1"]
        assert (None if pd.isna(got) else got) == (below[0] if len(below) else None)
        assert row["final_test_acc"] == metrics["test_acc"].iloc[-1]
        summary = Summary.load(sweep_dir.analysis_dir(sweep, row["run"]))
        keys = "" if pd.isna(row["key_components"]) else str(row["key_components"])  # none: empty
        assert keys.split() == [str(k) for k in summary.key_components]
        assert row["n_key_components"] == len(summary.key_components)
        assert row["final_test_loss"] == pytest.approx(summary.final_test_loss, rel=1e-12)
        assert row["fve_share"] == pytest.approx(summary.fve_share)
        assert row["report"] == f"reports/{row['run']}.html"
    from grokinterp.sweep.table import has_pyarrow

    if not has_pyarrow():
        assert "Parquet needs pyarrow" in out
    else:
        parquet = pd.read_parquet(sweep / sweep_dir.TABLE_PARQUET)
        assert list(parquet["run"]) == list(table["run"])
        assert parquet["epoch_test_99"].dtype == "Int64"

    page = (sweep / sweep_dir.REPORT_FILE).read_text()
    from plotly.offline import get_plotlyjs

    assert page.count(get_plotlyjs()[:300]) == 1 and page.count("plotly.js v") == 1
    assert "<link" not in page and 'src="http' not in page
    figures = figures_in(page)
    assert set(figures) == {"train_frac", "key_components"}
    assert "does not vary the weight decay (all runs at 1.0)" in page
    links = []
    for figure in figures.values():
        for trace in figure["data"]:
            links += trace.get("customdata", [])
    assert len(links) == 2 * len(table)  # every run in the train-fraction and key-count figures
    assert all((sweep / link).is_file() for link in links)
    key_counts = [t for t in figures["key_components"]["data"]]
    assert sum(len(t["x"]) for t in key_counts) == 4
    for trace in key_counts:  # one dot per run, stacked 1, 2, ... at its count
        assert list(trace["x"]) == sorted(trace["x"]) and min(trace["y"]) == 1
    frac_points = [t for t in figures["train_frac"]["data"] if t["mode"] == "markers"]
    xs = sorted(x for t in frac_points for x in t["x"])
    assert xs == [0.4, 0.4, 0.6, 0.6]
    for name in table["run"]:
        assert f'href="reports/{html.escape(name)}.html"' in page


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing (apt-get install chromium)")
def test_sweep_report_draws_in_headless_chromium(local_sweep, tmp_path):
    from grokinterp.report.sweep_page import write_sweep_report

    _, sweep = local_sweep
    page = write_sweep_report(sweep, sweep_table(sweep))
    copy = instrumented_copy(page, tmp_path / "checked.html")
    dom = chromium(["--virtual-time-budget=20000", "--dump-dom", copy.as_uri()], tmp_path / "a")
    marker = drawn_marker(dom)
    assert marker["errors"] == [] and marker["resources"] == []
    assert marker["plots"] == marker["drawn"] == 2


TABLE_FIT = """<script>window.addEventListener("load",function(){
var table=document.querySelector("table.runs"),box=table.parentElement;
var out=document.createElement("pre");out.id="table-fit";
out.textContent=JSON.stringify({right:table.getBoundingClientRect().right,
window:window.innerWidth,scroll:box.scrollWidth,width:box.clientWidth});
document.body.appendChild(out);
});</script>"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing (apt-get install chromium)")
def test_sweep_run_table_fits_a_1400_pixel_window(local_sweep, tmp_path):
    """Every column of the run table is in view in a 1,400-pixel-wide window, unscrolled."""
    from grokinterp.report.sweep_page import write_sweep_report

    _, sweep = local_sweep
    copy = tmp_path / "fit.html"
    copy.write_text(
        write_sweep_report(sweep, sweep_table(sweep))
        .read_text()
        .replace("</body>", TABLE_FIT + "</body>")
    )
    args = ["--window-size=1400,900", "--virtual-time-budget=5000", "--dump-dom", copy.as_uri()]
    found = re.search(r'<pre id="table-fit">(.*?)</pre>', chromium(args, tmp_path / "a"), re.S)
    fit = json.loads(html.unescape(found.group(1)))
    assert fit["window"] == 1400 and fit["right"] <= fit["window"]
    assert fit["scroll"] <= fit["width"], fit


def test_table_without_pyarrow_writes_csv_and_says_so(local_sweep, tmp_path, monkeypatch, capsys):
    import shutil

    _, sweep = local_sweep
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    (copy / sweep_dir.TABLE_PARQUET).unlink(missing_ok=True)
    from grokinterp.sweep import table

    monkeypatch.setattr(table, "has_pyarrow", lambda: False)  # as without the parquet extra
    assert main(["sweep-report", str(copy)]) == 0
    out = capsys.readouterr().out
    assert "Parquet needs pyarrow, pip install 'grokinterp[parquet]'" in out
    assert (copy / sweep_dir.TABLE_CSV).exists() and not (copy / sweep_dir.TABLE_PARQUET).exists()


# ---- what a worker does with one group -----------------------------------------------------------
ANALYSIS_OFF = {"analyze": False, "report": False, "basis": None}


def tiny_configs(tiny_cfg, n: int = 2):
    return [tiny_cfg.replace(seed=s, train_frac=0.4 + 0.1 * s) for s in range(n)]


def test_sweep_estimates_the_llc_its_spec_asks_for_once(tmp_path, capsys):
    pytest.importorskip("devinterp")
    from grokinterp.analysis.llc.series import load_llc

    llc = {"chains": 2, "draws": 3, "burnin": 1, "lr": 1e-5}
    spec = write_spec(tmp_path / "llc.toml", {"seed": [0]}, analysis={"report": False, "llc": llc})
    sweep = tmp_path / "sweep"
    assert main(["sweep", str(spec), "--out", str(sweep), "--quiet"]) == 0
    assert "1 with their LLC estimated" in capsys.readouterr().out
    out = sweep_dir.analysis_dir(sweep, "seed0")
    table = load_llc(out)
    assert table["epoch"].tolist() == [0, 10, 20, 30] and (table["status"] == "ok").all()
    record = json.loads((out / "llc.json").read_text())
    assert {k: record["settings"][k] for k in llc} == llc
    before = mtimes(out)
    assert main(["sweep", str(spec), "--out", str(sweep), "--quiet"]) == 0
    assert "LLC" not in capsys.readouterr().out and mtimes(out) == before


def test_sweep_llc_without_devinterp_says_how_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "devinterp", None)  # import devinterp now fails
    spec = write_spec(tmp_path / "llc.toml", {"seed": [0]}, analysis={"llc": {}})
    assert main(["sweep", str(spec), "--out", str(tmp_path / "sweep"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "pip install 'grokinterp[llc]'" in err
    assert not (tmp_path / "sweep").exists()


def test_failed_group_is_reported_and_the_rest_goes_on(tmp_path, capsys):
    spec = write_spec(
        tmp_path / "s.toml",
        {"seed": [0, 1, 2]},
        max_batch_runs=1,
        analysis={"analyze": False, "report": False},
    )
    sweep = tmp_path / "sweep"
    # seed 1's run was killed earlier and its saved state has since been damaged
    cfg = read_spec(spec).runs[1].config
    broken = sweep_dir.run_dir(sweep, "seed1")
    with pytest.raises(KeyboardInterrupt), killed_at_step(20):
        train_runs([cfg], [broken], progress=False)
    state = store.list_states(broken)[-1][1]
    data = bytearray(state.read_bytes())
    data[-5] ^= 0xFF
    state.write_bytes(bytes(data))
    sweep_dir.write_plan(sweep, read_spec(spec))

    with pytest.raises(SystemExit) as stopped:
        main(["sweep", str(spec), "--out", str(sweep), "--quiet", "--no-time-estimate"])
    assert stopped.value.code == 1
    captured = capsys.readouterr()
    assert "g001: FAILED: UsageError" in captured.err and "checksum mismatch" in captured.err
    assert "1 of 3 group(s) failed" in captured.err
    for name in ("seed0", "seed2"):
        assert batch_state.load_state(sweep_dir.run_dir(sweep, name))[2]
    failures = json.loads((sweep / sweep_dir.FAILURES_FILE).read_text())
    assert list(failures) == ["g001"] and failures["g001"]["runs"] == ["seed1"]
    assert "checksum mismatch" in failures["g001"]["traceback"]
    assert main(["sweep-report", str(sweep)]) == 0
    table = pd.read_csv(sweep / sweep_dir.TABLE_CSV)
    assert list(table["status"]) == ["finished", "failed", "finished"]

    import shutil

    shutil.rmtree(broken)  # the user moves the damaged run away and runs the command again
    assert main(["sweep", str(spec), "--out", str(sweep), "--quiet", "--no-time-estimate"]) == 0
    assert "1 to train, 0 to resume, 2 finished" in capsys.readouterr().out
    assert batch_state.load_state(broken)[2] and not (sweep / sweep_dir.FAILURES_FILE).exists()


# ---- a sweep killed with SIGKILL, then run again ------------------------------------------------
def test_sweep_killed_mid_way_resumes_and_reruns_nothing(tmp_path):
    """The sweep process is killed while its second group trains: re-running the same command
    skips the finished group, resumes the killed run from its saved state (its checkpoints are
    not rewritten) and trains the untouched one; the result equals an unbroken training."""
    fixed = {"epochs": 1500, "save_every": 50}
    spec = write_spec(
        tmp_path / "s.toml",
        {"seed": [0, 1, 2]},
        fixed=fixed,
        max_batch_runs=1,
        analysis={"analyze": False, "report": False},
    )
    sweep = tmp_path / "sweep"
    command = [sys.executable, "-m", "grokinterp.cli", "sweep", str(spec), "--out", str(sweep)]
    command += ["--quiet", "--no-time-estimate"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)

    def state(name):
        return saved_step(sweep_dir.run_dir(sweep, name))

    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        first, second = state("seed0"), state("seed1")
        if first == (1500, True) and second is not None and 200 <= second[0] < 1500:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step, finished = state("seed1")
    assert not finished and step < 1500, "the kill must land while seed1 trains"
    assert state("seed2") is None
    finished_files = mtimes(sweep_dir.run_dir(sweep, "seed0"))
    saved = {
        p: t
        for e, p in store.list_checkpoints(sweep_dir.run_dir(sweep, "seed1"))
        if e <= step
        for t in [p.stat().st_mtime_ns]
    }

    again = subprocess.run(command, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "1 to train, 1 to resume, 1 finished" in again.stdout
    assert "g001: 1 resumed" in again.stdout and "g000" not in again.stdout.split("executor")[1]
    assert mtimes(sweep_dir.run_dir(sweep, "seed0")) == finished_files
    assert {
        p: t for p, t in mtimes(sweep_dir.run_dir(sweep, "seed1")).items() if p in saved
    } == saved
    cfgs = {run.name: run.config for run in read_spec(spec).runs}
    train = [sys.executable, "-m", "grokinterp.cli", "train", "--seed", "1", "--quiet"]
    for flag, value in {**TINY, **fixed}.items():
        train += [f"--{flag.replace('_', '-')}", str(value)]
    subprocess.run([*train, "--out", str(tmp_path / "whole")], env=env, check=True)
    assert_same_run(sweep_dir.run_dir(sweep, "seed1"), tmp_path / "whole", exact=True)
    assert (tmp_path / "whole" / "metrics.csv").read_bytes() == (
        sweep_dir.run_dir(sweep, "seed1") / "metrics.csv"
    ).read_bytes()
    assert all(batch_state.load_state(sweep_dir.run_dir(sweep, n))[2] for n in cfgs)


def test_sweep_report_warns_when_runs_come_from_different_environments(
    local_sweep, tmp_path, capsys
):
    import shutil

    from grokinterp.storage import environment

    _, sweep = local_sweep
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    path = sweep_dir.run_dir(copy, "frac0.6-seed1") / environment.ENVIRONMENT_FILE
    data = json.loads(path.read_text())
    data["records"][-1] |= {"device": "NVIDIA H100 80GB HBM3", "cuda": "12.4"}  # as if elsewhere
    path.write_text(json.dumps(data))
    assert main(["sweep-report", str(copy)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    ours = environment.records(sweep_dir.run_dir(copy, "frac0.4-seed0"))[-1]
    assert len(err) == 1 and "compares runs made on different environments" in err[0]
    assert '"NVIDIA H100 80GB HBM3" (1 runs)' in err[0] and f'"{ours["device"]}" (3 runs)' in err[0]
    assert '"12.4" (1 runs)' in err[0] and "torch" not in err[0]
