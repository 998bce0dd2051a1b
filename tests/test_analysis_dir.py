"""An analysis directory belongs to one run: default paths that two runs never share, refusals
before any work, a commit that is all or nothing, and measuring that survives a kill or a Ctrl-C."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from grokinterp.analysis import analyze
from grokinterp.cli import main
from grokinterp.storage import analysis_dir
from grokinterp.storage.analysis_format import Summary
from grokinterp.training.loop import train_runs
from tests.helpers import Killed, held_by_another_process

REPO = Path(__file__).resolve().parents[1]


def contents(root: Path) -> dict[str, bytes]:
    """Every file under `root`, by its path relative to `root`."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two different tiny runs both named run1, in A/ and B/ (seeds 0 and 1), 21 checkpoints each
    (three chunks of the analysis)."""
    from tests.conftest import tiny_config

    root = tmp_path_factory.mktemp("two")
    cfg = tiny_config().replace(epochs=200, save_every=10)
    dirs = [root / "A" / "run1", root / "B" / "run1"]
    train_runs([cfg, cfg.replace(seed=1)], dirs, progress=False)
    return root


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# ---- default paths ------------------------------------------------------------------------------
def test_default_paths_mirror_the_run_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    assert analysis_dir.default_analysis_dir("checkpoints/x") == Path("analyses/x")
    assert analysis_dir.default_analysis_dir("x") == Path("analyses/x")
    assert analysis_dir.default_analysis_dir("A/run1") == Path("analyses/A/run1")
    assert analysis_dir.default_analysis_dir("B/run1") == Path("analyses/B/run1")
    outside = tmp_path.parent / "elsewhere" / "run1"
    assert analysis_dir.default_analysis_dir(outside) == Path("analyses") / outside.relative_to("/")
    assert analysis_dir.default_report_path("analyses/A/run1") == Path("reports/A/run1.html")
    assert analysis_dir.default_report_path("analyses/x") == Path("reports/x.html")


def test_two_runs_of_one_name_get_their_own_analysis_and_report(two_runs, monkeypatch, capsys):
    monkeypatch.chdir(two_runs)
    for run in ("A/run1", "B/run1"):
        assert main(["analyze", "--ckpt-dir", run, "--quiet", "--report"]) == 0
    capsys.readouterr()
    a, b = (Summary.load(two_runs / "analyses" / x / "run1") for x in "AB")
    assert a.run_fingerprint != b.run_fingerprint
    assert a.run_dir_abs == str(two_runs / "A" / "run1")
    assert b.run_dir_abs == str(two_runs / "B" / "run1")
    assert (two_runs / "reports" / "A" / "run1.html").is_file()
    assert (two_runs / "reports" / "B" / "run1.html").is_file()
    # the report of one run refuses the other's analysis, whichever way it is asked for
    before = contents(two_runs)
    cmd = ["report", "--ckpt-dir", "A/run1", "--analysis", "analyses/B/run1", "--out", "x.html"]
    assert main(cmd) == 2
    assert "is the analysis of another run" in one_error_line(capsys)
    assert contents(two_runs) == before


def test_another_runs_analysis_is_refused_before_any_work(two_runs, tmp_path, monkeypatch, capsys):
    out = tmp_path / "ana"
    a = str(two_runs / "A/run1")
    assert main(["analyze", "--ckpt-dir", a, "--out", str(out), "--quiet"]) == 0
    (out / "llc.csv").write_text("epoch,llc\n")  # an LLC of run A that must not outlive it
    before = contents(out)

    def no_work(*args, **kwargs):
        raise AssertionError("measured before refusing")

    monkeypatch.setattr(analyze, "measures_table", no_work)
    b = str(two_runs / "B/run1")
    assert main(["analyze", "--ckpt-dir", b, "--out", str(out), "--quiet"]) == 2
    line = one_error_line(capsys)
    assert "holds the analysis of another run" in line and "--replace" in line
    assert contents(out) == before
    monkeypatch.undo()
    assert main(["analyze", "--ckpt-dir", b, "--out", str(out), "--quiet", "--replace"]) == 0
    assert Summary.load(out).run_dir_abs == b
    assert not (out / "llc.csv").exists()


def test_the_shipped_reference_is_never_overwritten_by_the_readme_command(
    tmp_path, monkeypatch, capsys
):
    """`grokinterp analyze --ckpt-dir checkpoints/reference-canonical`, run where the reference
    and its 401-checkpoint analysis are shipped (a copy): refused, nothing changed."""
    for part in ("checkpoints/reference-canonical", "analyses/reference-canonical"):
        shutil.copytree(REPO / part, tmp_path / part)
    monkeypatch.chdir(tmp_path)
    before = contents(tmp_path)
    assert main(["analyze", "--ckpt-dir", "checkpoints/reference-canonical", "--quiet"]) == 2
    line = one_error_line(capsys)
    assert "holds 401 checkpoints, 397 of which" in line and "--replace" in line
    assert contents(tmp_path) == before


def test_a_copy_with_other_weights_is_refused(two_runs, tmp_path, capsys):
    """Same config and split (same fingerprint), other weights: the analysis is not its own."""
    run = tmp_path / "copy"
    shutil.copytree(two_runs / "A/run1", run)
    b_ckpts = two_runs / "B/run1/checkpoints"
    # B's weights under A's config: a tiny state with the same names, other values
    from grokinterp.storage import store

    state, epoch, _ = store.load_checkpoint(sorted(b_ckpts.iterdir())[-1])
    cfg = store.read_config(run)
    store.save_checkpoint(run, cfg, epoch, state)
    out = tmp_path / "ana"
    a = str(two_runs / "A/run1")
    assert main(["analyze", "--ckpt-dir", a, "--out", str(out), "--quiet"]) == 0
    assert main(["analyze", "--ckpt-dir", str(run), "--out", str(out), "--quiet"]) == 2
    assert "differ from" in one_error_line(capsys)


# ---- output paths -------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["file", "under_file", "read_only"])
def test_analyze_refuses_an_unwritable_out_before_measuring(
    where, two_runs, tmp_path, monkeypatch, capsys, request
):
    (tmp_path / "f").write_text("x")
    out = {
        "file": tmp_path / "f",
        "under_file": tmp_path / "f" / "ana",
        "read_only": (request.getfixturevalue("read_only") / "ana") if where == "read_only" else 0,
    }[where]

    def no_work(*args, **kwargs):
        raise AssertionError("measured before refusing")

    monkeypatch.setattr(analyze, "measures_table", no_work)
    run = str(two_runs / "A/run1")
    assert main(["analyze", "--ckpt-dir", run, "--out", str(out), "--quiet"]) == 2
    assert one_error_line(capsys).startswith(f"grokinterp: error: --out {out}: ")
    assert (tmp_path / "f").read_text() == "x"


@pytest.mark.parametrize("where", ["folder", "read_only"])
def test_report_refuses_an_unwritable_out(where, two_runs, tmp_path, capsys, request):
    run, ana = str(two_runs / "A/run1"), tmp_path / "ana"
    assert main(["analyze", "--ckpt-dir", run, "--out", str(ana), "--quiet"]) == 0
    (tmp_path / "page").mkdir()
    if where == "folder":
        out, said = tmp_path / "page", "a folder, not a file"
    else:
        out, said = request.getfixturevalue("read_only") / "r.html", "cannot write in"
    cmd = ["report", "--ckpt-dir", run, "--analysis", str(ana), "--out", str(out)]
    assert main(cmd) == 2
    assert said in one_error_line(capsys)
    assert list((tmp_path / "page").iterdir()) == [] and not out.is_file()


# ---- a Ctrl-C, a kill, a kill during the commit ------------------------------------------------
def interrupted_at_chunk(monkeypatch, n: int, error: type[BaseException]):
    """measures_table raises `error` at its n-th call; returns the list of its calls."""
    calls = []
    measure = analyze.measures_table

    def counted(ctx, ckpts):
        calls.append(len(ckpts.epochs))
        if len(calls) == n:
            raise error
        return measure(ctx, ckpts)

    monkeypatch.setattr(analyze, "measures_table", counted)
    return calls


def test_ctrl_c_keeps_what_was_measured_and_the_next_run_goes_on(
    two_runs, tmp_path, monkeypatch, capsys
):
    run = str(two_runs / "A/run1")
    whole = analyze.analyze_run(run, tmp_path / "whole", progress=False).path
    monkeypatch.setattr(analyze, "PROGRESS_EVERY_S", 1e9)  # kept by the interrupt alone
    calls = interrupted_at_chunk(monkeypatch, 3, KeyboardInterrupt)
    out = tmp_path / "ana"
    assert main(["analyze", "--ckpt-dir", run, "--out", str(out), "--quiet"]) == 130
    line = one_error_line(capsys)
    assert "interrupted: 16 of 21 checkpoints measured are kept" in line
    assert not (out / "summary.json").exists()
    calls.clear()
    assert main(["analyze", "--ckpt-dir", run, "--out", str(out), "--quiet"]) == 0
    assert calls == [5]  # only the five not measured before the Ctrl-C
    for name in ("measures.csv", "summary.json", "neurons.safetensors"):
        assert (out / name).read_bytes() == (whole / name).read_bytes(), name
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in whole.iterdir())


def test_a_kill_while_measuring_leaves_the_analysis_as_before(two_runs, tmp_path, monkeypatch):
    run = two_runs / "A/run1"
    out = tmp_path / "ana"
    # an analysis of the first 11 checkpoints, then the run's others appear
    partial = tmp_path / "partial"
    shutil.copytree(run, partial)
    for path in sorted((partial / "checkpoints").iterdir())[11:]:
        path.unlink()
    analyze.analyze_run(partial, out, progress=False)
    before = contents(out)
    monkeypatch.setattr(analyze, "PROGRESS_EVERY_S", 0.0)  # progress kept after every chunk
    shutil.rmtree(partial)
    shutil.copytree(run, partial)
    interrupted_at_chunk(monkeypatch, 2, Killed)
    with pytest.raises(Killed):
        analyze.analyze_run(partial, out, progress=False)
    after = contents(out)
    kept = {name: data for name, data in after.items() if name != analysis_dir.PROGRESS_FILE}
    assert kept == before  # the committed analysis untouched; the progress file beside it
    assert analysis_dir.PROGRESS_FILE in after


@pytest.mark.parametrize("renamed", [0, 1, 2])
def test_a_kill_during_the_commit_leaves_old_or_new_never_a_mix(
    renamed, two_runs, tmp_path, monkeypatch, capsys
):
    """Killed after the journal, with `renamed` of the three files in place: the next reader
    completes the commit and says so in one line."""
    run = two_runs / "A/run1"
    new = analyze.analyze_run(run, tmp_path / "new", progress=False).path
    out = tmp_path / "ana"
    shutil.copytree(new, out)
    (out / "summary.json").write_text(json.dumps({"old": True}))  # stands for the old analysis
    before = contents(out)
    replace = os.replace
    done = [0]

    def dies(src, dst):
        if Path(src).name.startswith(".staged-"):
            if done[0] == renamed:
                raise Killed
            done[0] += 1
        replace(src, dst)

    monkeypatch.setattr(os, "replace", dies)
    with pytest.raises(Killed):
        analyze.analyze_run(run, out, progress=False, replace=True)
    monkeypatch.setattr(os, "replace", replace)
    capsys.readouterr()
    summary = Summary.load(out)
    err = capsys.readouterr().err.strip().splitlines()
    expected = contents(new)
    assert summary.run_dir_abs == str(run)
    assert err == [f"grokinterp: completed the interrupted commit of the analysis in {out}"]
    assert contents(out) == expected
    assert before != expected


def test_a_kill_before_the_commit_point_keeps_the_old_analysis(two_runs, tmp_path, monkeypatch):
    run = two_runs / "A/run1"
    out = analyze.analyze_run(run, tmp_path / "ana", progress=False).path
    before = contents(out)
    write = analysis_dir.atomic_write

    def dies(path, data):
        if Path(path).name == analysis_dir.JOURNAL_FILE:
            raise Killed
        write(path, data)

    monkeypatch.setattr(analysis_dir, "atomic_write", dies)
    with pytest.raises(Killed):
        analyze.analyze_run(run, out, progress=False, replace=True)
    monkeypatch.setattr(analysis_dir, "atomic_write", write)
    staged = {n for n in contents(out) if n.startswith(".staged-")}
    assert staged and {n: d for n, d in contents(out).items() if n not in staged} == before
    assert Summary.load(out).run_dir_abs == str(run)  # readers see the old analysis
    analyze.analyze_run(run, out, progress=False)  # the next writer sweeps the staged files
    assert sorted(contents(out)) == sorted(before)


# ---- one writer, readers free -------------------------------------------------------------------
def test_a_second_analysis_writer_is_refused_naming_the_first(two_runs, tmp_path, capsys):
    out = tmp_path / "ana"
    out.mkdir()
    with held_by_another_process(out) as holder:
        cmd = ["analyze", "--ckpt-dir", str(two_runs / "A/run1"), "--out", str(out), "--quiet"]
        assert main(cmd) == 2
        assert f"{out} is being analysed by process {holder.pid}" in one_error_line(capsys)
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # the killed holder's own


def test_a_run_being_trained_is_analysed_and_reported(two_runs, tmp_path, capsys):
    run = two_runs / "A/run1"
    out = tmp_path / "ana"
    with held_by_another_process(run):
        assert main(["analyze", "--ckpt-dir", str(run), "--out", str(out), "--quiet"]) == 0
        page = tmp_path / "page.html"
        cmd = ["report", "--ckpt-dir", str(run), "--analysis", str(out), "--out", str(page)]
        assert main(cmd) == 0 and page.is_file()
    (run / ".lock").unlink()
