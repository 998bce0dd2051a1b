"""Every command the README lists under "The commands" runs, read from the README's text (so the
list cannot drift), at small sizes in a temporary directory: it exits 0 and every path it says it
wrote exists. Every shell block of the docs/ pages runs the same way, command after command, or,
where a command is a CPU-hour study or needs a cluster, is checked in the cheaper way that
`check_docs_command` names for it. Whether the training commands grok at their defaults is
measured, not tested here: the results log (docs/results.md) has each result."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import runpy
import shlex
import shutil
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from grokinterp.cli import build_parser, main
from tests.docs_text import PAGES, README, ROOT, block_id, blocks_of, commands, fenced

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
    "PAPER": "nanda2023",
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
    if command == "train":  # p 23 trains 158 pairs: room for a minibatch of 128
        p = [] if "--group" in argv else ["--p", "23" if "--batch-size" in argv else "11"]
        return SMALL_MODEL + p + ["--quiet"]
    llc = ["--llc-chains", "2", "--llc-draws", "4", "--llc-burnin", "2"]
    if command == "analyze":
        return ["--quiet"] + (llc if "--llc" in argv else [])
    if command == "llc-calibrate":  # one setting, its table also written to a file
        return ["--lrs", "1e-4", "--localizations", "100", *llc, "--out", "calibration.csv"]
    if command == "sweep":
        return ["--no-time-estimate", "--quiet"]
    if command == "reproduce":
        return ["--quiet"]
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


DOC_BLOCKS = blocks_of("bash", PAGES)
TINY_SPEC = {"p": 11, "d_model": 8, "d_mlp": 16, "epochs": 20, "save_every": 10}
"""What a study's spec is shrunk to before a docs block runs it: the tiny model of SMALL_MODEL."""
WHOLE_SCRIPTS = {"scripts/compare_paper.py"}
"""Scripts fast enough to run whole (they read the shipped files only); the page must hold what
they print. Every other script or benchmark is a study or a timing of minutes to hours."""
CLUSTER_EXECUTORS = {"ray", "slurm"}
"""Executors that need a cluster (tests/test_sweep_executors.py runs them on a local one)."""


def toml_text(table: dict, prefix: str = "") -> str:
    """A TOML document of `table` (strings, numbers, booleans, lists of them, nested tables)."""

    def value(item) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, str):
            return json.dumps(item)
        if isinstance(item, list):
            return "[" + ", ".join(value(x) for x in item) + "]"
        return repr(item)

    lines = [f"{key} = {value(item)}" for key, item in table.items() if not isinstance(item, dict)]
    for key, item in table.items():
        if isinstance(item, dict):
            name = f"{prefix}{key}"
            lines += ["", f"[{name}]", toml_text(item, f"{name}.")]
    return "\n".join(lines)


def shrunk_spec(text: str) -> str:
    """A sweep spec cut to one tiny run per arm: TINY_SPEC over its fixed values, each list of
    its grid and arms cut to its first value, no per-run reports."""
    spec = tomllib.loads(text)
    grid = {name: values[:1] for name, values in spec.get("grid", {}).items()}
    tiny = {name: value for name, value in TINY_SPEC.items() if name not in grid}
    spec["fixed"] = {**spec.get("fixed", {}), **tiny}
    spec["grid"] = grid
    for arm in spec.get("arms", {}).values():
        arm.update({name: value[:1] for name, value in arm.items() if isinstance(value, list)})
    spec.setdefault("analysis", {})["report"] = False
    return toml_text(spec) + "\n"


def stage_docs_files(page: Path) -> None:
    """In the working folder: the shipped sweep specs (shrunk) at their docs/ paths, the page's
    own spec blocks (shrunk) under the name in their first line (`# study.toml`), and the
    shipped reference run and its analysis."""
    for spec in (ROOT / "docs" / "sweeps").rglob("*.toml"):
        copy = spec.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(shrunk_spec(spec.read_text()))
    for block in fenced(page.read_text(), "toml"):
        name = re.match(r"# (\S+\.toml)\n", block)
        if name:
            Path(name[1]).write_text(shrunk_spec(block))
    for folder in ("checkpoints", "analyses"):
        Path(folder).mkdir(exist_ok=True)
        (Path(folder) / "reference-canonical").symlink_to(ROOT / folder / "reference-canonical")


def demo_file(run_dir: Path, path: Path) -> None:
    """The run's checkpoints as the TransformerLens grokking demo saves them (no split inside)."""
    from grokinterp.storage.run import open_run

    run = open_run(run_dir)
    states = [run.state_dict(epoch=epoch) for epoch in run.epochs]
    torch.save({"checkpoints": states, "checkpoint_epochs": run.epochs}, path)


def state_dict_folder(run_dir: Path, folder: Path) -> None:
    """The run's checkpoints as a loop of torch.save(model.state_dict(), ...) writes them, with
    the split beside them."""
    from grokinterp.storage.run import open_run

    run = open_run(run_dir)
    folder.mkdir()
    for epoch in run.epochs:
        torch.save(run.state_dict(epoch=epoch), folder / f"checkpoint_{epoch}.pt")
    (folder / "split.json").write_text(json.dumps(run.train_indices.tolist()))


def per_epoch_folder(run_dir: Path, folder: Path) -> None:
    """A folder of the paper's per-epoch weights (tests/test_import_per_epoch.py), of the run's
    config."""
    from grokinterp.storage.run import open_run
    from tests.test_import_per_epoch import paper_folder
    from tests.test_importers import paper_reference_split

    cfg = open_run(run_dir).config
    paper_folder(folder, cfg, paper_reference_split(cfg.p, 0.5, seed=4))


FOREIGN = {
    "final.pth": foreign_file,
    "grokking_demo.pth": demo_file,
    "ckpts/": state_dict_folder,
    "grok_1700000000/": per_epoch_folder,
}
"""The files the docs import, built here from the small run in the layout the page names."""


def environment(line: str) -> tuple[dict[str, str], str]:
    """The `NAME=value` assignments that start a shell line, and the rest of it."""
    env = {}
    while match := re.match(r"([A-Z_]+)=(\S+)\s+", line):
        env[match[1]] = match[2]
        line = line[match.end() :]
    return env, line


def script_output(script: Path, args: list[str], monkeypatch) -> str:
    """What a script prints when run in this process as `python SCRIPT ARGS` (exit 0)."""
    monkeypatch.setattr(sys, "path", [str(script.parent), *sys.path])  # restored after the test
    monkeypatch.setattr(sys, "argv", [str(script), *args])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as stop:
            assert stop.code in (0, None), f"{script.name} {args} exited {stop.code}"
    return out.getvalue()


def check_docs_command(line: str, page: Path, request, monkeypatch) -> None:
    """Run one command of a docs page, or check it where running it is a study of CPU-hours or
    needs a cluster; a command of no known kind fails the test."""
    env, text = environment(line)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    words = shlex.split(re.split(r"\s#\s", text)[0])
    if words[0] == "grokinterp":
        argv = argv_of(text)
        if argv[0] == "sweep" and CLUSTER_EXECUTORS & set(argv):  # the flags parse: no cluster
            build_parser().parse_args(argv)
            return
        if "wandb" in argv:
            wandb = pytest.importorskip("wandb", reason="the tracker needs the wandb extra")
            request.addfinalizer(wandb.teardown)
        if argv[0] == "import" and argv[1] in FOREIGN:
            FOREIGN[argv[1]](Path(PLACEHOLDERS["RUN"]), Path(argv[1]))
        if {"--llc", "llc-calibrate"} & set(argv):
            pytest.importorskip("devinterp", reason="the LLC needs the llc extra")
        if "--plan" in argv:  # it prints where the sweep would go, and writes nothing
            before = sorted(Path().rglob("*"))
            with contextlib.redirect_stdout(io.StringIO()):
                assert main([*argv, *small_flags(argv)]) == 0, line
            assert sorted(Path().rglob("*")) == before, line
            return
        run([*argv, *small_flags(argv)], writes=argv[0] not in ("forecast", "replay"))
    elif words[0] == "python" and words[1].startswith(("scripts/", "benchmarks/")):
        script = ROOT / words[1]
        if words[1] in WHOLE_SCRIPTS:
            printed = script_output(script, words[2:], monkeypatch)
            assert printed.strip() and printed.strip() in page.read_text(), words[1]
            return
        # A study or a benchmark: its --help runs (the script imports and parses its flags), and
        # names every flag the page gives it.
        usage = script_output(script, ["--help"], monkeypatch)
        flags = re.findall(r"(?<![\w-])--[a-z][\w-]*", re.split(r"\s#\s", text)[0])
        assert [flag for flag in flags if flag not in usage] == [], line
    elif words[0].endswith("/pip") and words[1] == "install":  # not run: the extras exist
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
        known = pyproject["project"]["optional-dependencies"]
        extras = re.findall(r"\.\[([\w,]+)\]", text)
        assert extras and all(e in known for group in extras for e in group.split(",")), line
        pins = re.findall(r"torch==\S+", text)
        assert all(pin in README.read_text() for pin in pins), line
    else:
        pytest.fail(f"{page.name}: no way to run or check {line!r}")


@pytest.mark.parametrize(
    "page,block", [(p, b) for p, _, b in DOC_BLOCKS], ids=[block_id(p, i) for p, i, _ in DOC_BLOCKS]
)
def test_a_docs_block_runs_or_is_checked(page, block, request, tmp_path, monkeypatch):
    """In a copy of the small run's folder, with the files the page's commands read."""
    shutil.copytree(request.getfixturevalue("workspace"), tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    stage_docs_files(page)
    for line in commands(block):
        check_docs_command(line, page, request, monkeypatch)


def test_every_page_with_commands_is_covered():
    """The blocks the docs test reads are the shell blocks: no page hides its commands in a block
    of another name."""
    for page in PAGES:
        text = page.read_text()
        other = set(re.findall(r"^```(\w+)", text, re.M)) - {"bash", "python", "toml", "text"}
        assert other == set(), f"{page.name}: blocks of {other}"
