"""`grokinterp train`'s user mistakes and stops: each ends in one line on stderr, and a mistake
writes nothing; Ctrl-C and a full disk say the epoch saved and a resume command that works."""

from __future__ import annotations

import builtins
import errno
import importlib.machinery
import shlex
import sys
import types
from pathlib import Path

import pytest

from grokinterp.cli import main
from grokinterp.errors import UsageError
from grokinterp.storage import store
from grokinterp.training import batch_state, memory
from tests.helpers import killed_at_step
from tests.test_crash import contents
from tests.test_train import TINY_ARGS


def tree(root: Path) -> dict[str, bytes]:
    """Every path under `root` (directories as None), to check that nothing was written."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes() if p.is_file() else None
        for p in root.rglob("*")
    }


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def refused(capsys, root: Path, args: list[str]) -> str:
    """Run `grokinterp ARGS`; it must exit 2 with one line and leave `root` as it was."""
    before = tree(root)
    assert main(args) == 2
    line = one_line(capsys)
    assert tree(root) == before
    return line


@pytest.mark.parametrize(
    "flag, values",
    [
        ("--seeds", "0,0"),
        ("--seeds", "0-2,1"),
        ("--data-seeds", "3,3"),
        ("--weight-decays", "1,1.0"),
        ("--train-fracs", "0.5,0.3,0.50"),
    ],
)
def test_a_sweep_flag_listing_a_value_twice_is_refused(flag, values, tmp_path, capsys):
    args = ["train", *TINY_ARGS, flag, values, "--out", str(tmp_path / "sweep"), "--quiet"]
    line = refused(capsys, tmp_path, args)
    assert f"{flag} lists a value twice" in line


def test_an_output_path_through_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "FILE").write_text("notes\n")
    for out in ("FILE/run", "FILE"):
        line = refused(capsys, tmp_path, ["train", *TINY_ARGS, "--out", str(tmp_path / out)])
        assert f"{tmp_path / 'FILE'} is a file" in line


def test_a_read_only_output_folder_is_refused(tmp_path, capsys, monkeypatch):
    """A folder where nothing can be created (as root, where permissions never stop a write,
    the refusal of the operating system is simulated)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    mkdir = Path.mkdir

    def denied(path, *args, **kwargs):
        if Path(path).parent == folder:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        mkdir(path, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", denied)
    try:
        line = refused(capsys, tmp_path, ["train", *TINY_ARGS, "--out", str(folder / "run")])
    finally:
        folder.chmod(0o755)
    assert f"{folder / 'run'}" in line and "Permission denied" in line


def test_a_modulus_too_large_for_memory_is_refused_with_the_estimate(tmp_path, capsys):
    """The logits of the p^2 pairs alone take p^3 floats: 20011^3 * 4 bytes = 32 TB."""
    line = refused(capsys, tmp_path, ["train", "--p", "20011", "--out", str(tmp_path / "r")])
    assert line.startswith("grokinterp: error: --p 20011: training needs at least about")
    estimate = float(line.split("at least about ")[1].split(" GB")[0].replace(",", ""))
    assert estimate >= 20011**3 * 4 / 1e9


def test_the_memory_check_refuses_only_what_cannot_fit(tiny_cfg, monkeypatch):
    """With 1 GB available: p = 11 fits; p = 1009 does not, its logits alone taking
    1009^3 float32 values (4.1 GB)."""
    monkeypatch.setattr(memory, "available_bytes", lambda: 10**9)
    memory.check_fits([tiny_cfg], "cpu")
    with pytest.raises(UsageError, match="--p 1009: .* more than the 1.0 GB available"):
        memory.check_fits([tiny_cfg.replace(p=1009)], "cpu")


@pytest.fixture
def wandb_logged_out(monkeypatch):
    """An installed wandb that holds no login (a stand-in module: none is needed here)."""
    fake = types.ModuleType("wandb")
    fake.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
    fake.login = lambda **kwargs: False
    fake.init = lambda **kwargs: pytest.fail("wandb.init reached without a login")
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    return fake


def test_wandb_without_a_login_is_refused_before_a_run_starts(wandb_logged_out, tmp_path, capsys):
    args = ["train", *TINY_ARGS, "--out", str(tmp_path / "r"), "--log-to", "wandb"]
    line = refused(capsys, tmp_path, args)
    assert "wandb login" in line and "WANDB_MODE=offline" in line


def test_replay_to_wandb_without_a_login_is_refused(wandb_logged_out, tiny_cfg, tmp_path, capsys):
    from grokinterp.training.loop import train_runs

    train_runs([tiny_cfg], [tmp_path / "run"], progress=False)
    line = refused(capsys, tmp_path, ["replay", str(tmp_path / "run"), "--to", "wandb"])
    assert "wandb login" in line


def test_wandb_offline_needs_no_login(wandb_logged_out, monkeypatch):
    from grokinterp.storage.trackers import require

    monkeypatch.setenv("WANDB_MODE", "offline")
    require("wandb")


def test_ctrl_c_names_the_epoch_saved_and_a_resume_command_that_finishes(tmp_path, capsys):
    assert main(["train", *TINY_ARGS, "--out", str(tmp_path / "whole" / "run"), "--quiet"]) == 0
    out = tmp_path / "stopped" / "run"
    with killed_at_step(20):
        assert main(["train", *TINY_ARGS, "--out", str(out), "--quiet"]) == 130
    line = one_line(capsys)
    assert line.startswith(f"grokinterp: interrupted: {out} saved epoch 10; go on with: ")
    command = shlex.split(line.split("go on with: ")[1])
    assert command == ["grokinterp", "train", "--resume", str(out)]
    assert main([*command[1:], "--quiet"]) == 0
    assert contents(tmp_path / "stopped") == contents(tmp_path / "whole")


def test_ctrl_c_before_the_first_checkpoint_says_nothing_was_saved(tmp_path, capsys):
    out = tmp_path / "run"
    with killed_at_step(0):
        assert main(["train", *TINY_ARGS, "--out", str(out), "--quiet"]) == 130
    assert "nothing was saved yet" in one_line(capsys)
    assert not out.exists()  # so the same command simply runs again
    assert main(["train", *TINY_ARGS, "--out", str(out), "--quiet"]) == 0


def test_an_occupied_out_holding_no_run_gets_advice_that_works(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    line = refused(capsys, tmp_path, ["train", *TINY_ARGS, "--out", str(out), "--quiet"])
    assert "--resume" not in line and "choose another --out, or move them away" in line
    (out / "notes.txt").rename(tmp_path / "notes.txt")
    assert main(["train", *TINY_ARGS, "--out", str(out), "--quiet"]) == 0


class FullDisk:
    """A file whose disk fills up: the write stores half of the bytes, then fails."""

    def __init__(self, handle):
        self.handle = handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()

    def write(self, data):
        self.handle.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self.handle, name)


@pytest.mark.parametrize(
    "target, nth",
    [
        (".epoch_0000020.safetensors.tmp-", 1),  # the checkpoint of epoch 20
        (store.METRICS_FILE, 3),  # its rows (after those of epochs 0 and 10)
        (".state_0000020.safetensors.tmp-", 1),  # its state, after checkpoint and rows
    ],
)
def test_a_full_disk_mid_save_leaves_the_run_resumable(target, nth, tmp_path, capsys, monkeypatch):
    assert main(["train", *TINY_ARGS, "--out", str(tmp_path / "whole" / "run"), "--quiet"]) == 0
    out = tmp_path / "full" / "run"
    opened, real_open = [], builtins.open

    def filling_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        if Path(path).name.startswith(target) and ("w" in mode or "a" in mode):
            opened.append(path)
            if len(opened) == nth:
                return FullDisk(handle)
        return handle

    monkeypatch.setattr(store, "open", filling_open, raising=False)
    assert main(["train", *TINY_ARGS, "--out", str(out), "--quiet"]) == 2
    monkeypatch.undo()
    line = one_line(capsys)
    assert "No space left on device" in line and f"{out} saved epoch 10; go on with: " in line
    assert batch_state.load_state(out)[1] == 10  # the previous state, intact
    for _, path in store.list_checkpoints(out):  # every checkpoint listed is whole
        store.load_checkpoint(path)
    assert not [p for p in out.rglob(".*") if ".tmp-" in p.name]
    command = shlex.split(line.split("go on with: ")[1])
    assert main([*command[1:], "--quiet"]) == 0
    assert contents(tmp_path / "full") == contents(tmp_path / "whole")
