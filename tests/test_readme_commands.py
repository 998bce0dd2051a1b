"""Every command the README lists under "The commands" runs, read from the README's text (so the
list cannot drift), at small sizes in a temporary directory: it exits 0 and every path it says it
wrote exists. Whether the training commands grok at their defaults is measured, not tested
here: the README's table under the list states each result."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
from pathlib import Path

import pytest

from grokinterp.cli import build_parser, main

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = README.read_text().split("\n## The commands\n", 1)[1].split("\n## ", 1)[0]
COMMANDS = [line for line in re.search(r"```bash\n(.*?)```", SECTION, re.S)[1].splitlines() if line]

SMALL_MODEL = ["--d-model", "8", "--d-mlp", "16", "--epochs", "20", "--save-every", "10"]
"""Appended to every training command: a model and a run small enough for a second or two."""
PLACEHOLDERS = {
    "RUN": "checkpoints/small-seed0",
    "SOURCE": "theirs.pth",
    "DIR": "imported",
    "SPEC.toml": "study.toml",
    "SWEEP": "sweeps/study",
}
"""The README's names for what the user supplies, and what this test supplies."""
SPEC = """preset = "small"
[fixed]
p = 11
d_model = 8
d_mlp = 16
epochs = 20
save_every = 10
[grid]
seed = [0, 1]
[analysis]
report = false
"""


def argv_of(line: str) -> list[str]:
    """The command of a README line: its comment dropped, each optional part `[...]` kept when it
    is concrete (no choice `a|b`, no `...`, no placeholder in capitals), the first of each
    choice, the placeholders replaced; a bare `...` (any such command) dropped."""
    text = re.split(r"\s#\s", line)[0]

    def optional(match: re.Match) -> str:
        inner = match[1]
        vague = "|" in inner or "..." in inner or re.search(r"\b[A-Z]+\b", inner)
        return "" if vague else f" {inner}"

    text = re.sub(r"\s\[([^\[\]]*)\]", optional, text)
    words = [re.sub(r"\[.*?\]", "", word.split("|")[0]) for word in shlex.split(text)]
    assert words[0] == "grokinterp", line
    return [PLACEHOLDERS.get(word, word) for word in words[1:] if word != "..."]


def small_flags(argv: list[str]) -> list[str]:
    """Flags appended to shrink a command (later flags win in argparse)."""
    command = argv[0]
    if command == "train" and "--resume" in argv:
        return ["--epochs", "30", "--quiet"]
    if command == "train":
        return SMALL_MODEL + ([] if "--group" in argv else ["--p", "11"]) + ["--quiet"]
    llc = ["--llc-chains", "2", "--llc-draws", "4", "--llc-burnin", "2"]
    if command == "analyze":
        return ["--quiet"] + (llc if "--llc" in argv else [])
    if command == "llc-calibrate":  # one setting, its table also written to a file
        return ["--lrs", "1e-4", "--localizations", "100", *llc, "--out", "calibration.csv"]
    if command == "sweep":
        return ["--no-time-estimate", "--quiet"]
    return []


def run(argv: list[str], writes: bool = True) -> list[Path]:
    """Run one command in this process; its exit code must be 0. The paths it says it wrote
    (`wrote PATH`, `-> PATH`), each of which must exist, and at least one when it `writes`."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    command = f"grokinterp {shlex.join(argv)}"
    assert code == 0, f"{command} exited {code}:\n{err.getvalue()}"
    text = out.getvalue()
    claimed = re.findall(r"^wrote (\S+)", text, re.M) + re.findall(r"-> (\S+)$", text, re.M)
    assert claimed or not writes, f"{command} says it wrote nothing:\n{text}"
    for path in claimed:
        assert Path(path).exists(), f"{command} says it wrote {path}, which is not there"
    return [Path(path) for path in claimed]


@pytest.fixture(scope="module", autouse=True)
def no_fsync():
    """Files reach the disk when the OS likes: durability is tests/test_crash.py's business, and
    fsync was a third of these commands' time."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "fsync", lambda fd: None)
        yield


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The README's first command, `grokinterp train`, at small size: checkpoints/small-seed0,
    analysed into analyses/small-seed0, the names the other commands use."""
    from grokinterp.analysis.analyze import analyze_run

    argv = argv_of(COMMANDS[0])
    root = tmp_path_factory.mktemp("readme")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        assert run([*argv, *small_flags(argv)]) == [Path("checkpoints/small-seed0")]
        analyze_run(Path("checkpoints/small-seed0"), progress=False)
    return root


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A folder after the README's `grokinterp sweep` command on a spec of two tiny runs, and
    the paths that the command said it wrote."""
    (line,) = [line for line in COMMANDS if argv_of(line)[0] == "sweep"]
    argv = argv_of(line)
    root = tmp_path_factory.mktemp("readme-sweep")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        Path(PLACEHOLDERS["SPEC.toml"]).write_text(SPEC)
        return root, [root / path for path in run([*argv, *small_flags(argv)])]


def foreign_file(run_dir: Path, path: Path) -> None:
    """The run's checkpoints in the layout of Nanda et al.'s own training script."""
    from grokinterp.storage.run import open_run
    from tests.test_importers import paper_file

    run = open_run(run_dir)
    states = [run.model(epoch=epoch).state_dict() for epoch in run.epochs]
    config = {"p": run.config.p, "frac_train": run.config.train_frac, "seed": 0}
    paper_file(path, run.config, states, run.epochs, config)


def test_the_readme_lists_every_command():
    """Each line is a grokinterp command, and every subcommand of the parser is listed."""
    listed = {argv_of(line)[0] for line in COMMANDS}
    parser = build_parser()
    assert listed == set(parser._subparsers._group_actions[0].choices)


@pytest.mark.parametrize("line", COMMANDS, ids=[" ".join(argv_of(c)[:2]) for c in COMMANDS])
def test_a_readme_command_runs_at_small_size(line, request, tmp_path, monkeypatch):
    """Each in a copy of what it needs: the trained and analysed small run, or a sweep."""
    from grokinterp.storage.run import open_run

    argv = argv_of(line)
    if {"--llc", "llc-calibrate"} & set(argv):
        pytest.importorskip("devinterp", reason="the LLC needs the llc extra")
    if "wandb" in argv:  # the first choice of --log-to and --to
        wandb = pytest.importorskip("wandb", reason="the tracker needs the wandb extra")
        monkeypatch.setenv("WANDB_MODE", "offline")
        monkeypatch.setenv("WANDB_DIR", str(tmp_path))
        request.addfinalizer(wandb.teardown)  # wandb keeps its first settings for the process
    if argv[0] == "sweep":  # run by the fixture, whose runs sweep-report reads
        root, written = request.getfixturevalue("swept")
        assert set(written) == {root / PLACEHOLDERS["SWEEP"]}
        assert len(list(written[0].glob("runs/*/config.json"))) == 2
        return
    source = request.getfixturevalue("swept")[0] if argv[0] == "sweep-report" else None
    shutil.copytree(source or request.getfixturevalue("workspace"), tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    fresh = argv[0] == "train" and "--resume" not in argv
    if fresh:
        shutil.rmtree("checkpoints")  # a first run, in an empty folder
    if argv[0] == "import":
        foreign_file(Path("checkpoints/small-seed0"), Path(PLACEHOLDERS["SOURCE"]))
    if argv[0] == "forecast":  # the tiny run finished without memorising: said in one line
        tiny = open_run(Path(PLACEHOLDERS["RUN"]))
        assert tiny.metrics().train_acc.max() < 0.99 and tiny.epochs[-1] == tiny.config.epochs
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(argv) == 0
        epochs = f"{tiny.config.epochs:,}"
        assert out.getvalue() == (
            f"small-seed0: never memorised in its {epochs} epochs (train accuracy below 99% "
            "throughout); no forecast\n"
        )
        return
    written = run([*argv, *small_flags(argv)], writes=argv[0] != "replay")
    if argv[0] == "train":  # every run trained to its last epoch (resumed: on to 30)
        assert all(open_run(path).epochs[-1] == (20 if fresh else 30) for path in written)
