import hashlib
import io
import os

import numpy as np
import pytest
import torch
from safetensors.torch import save

from grokinterp.cli import main
from grokinterp.errors import UsageError
from grokinterp.models import architecture
from grokinterp.storage import store
from grokinterp.storage.run import open_run
from grokinterp.training import batch_state
from grokinterp.training.loop import train_runs


def test_checkpoint_round_trip_is_exact(tiny_cfg, tmp_path):
    state = architecture(tiny_cfg).initial_state_dict()
    path = store.save_checkpoint(tmp_path, tiny_cfg, 30, state)
    assert path.name == "epoch_0000030.safetensors"
    loaded, epoch, cfg = store.load_checkpoint(path)
    assert epoch == 30 and cfg == tiny_cfg
    assert list(loaded) == list(state)
    for name, tensor in state.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor)
    assert loaded["embed.W_E"].dtype == torch.float32
    assert loaded["blocks.0.attn.mask"].dtype == torch.bool


def test_interrupted_write_leaves_no_file(tiny_cfg, tmp_path, monkeypatch):
    state = architecture(tiny_cfg).initial_state_dict()

    def die_mid_write(fd):  # the process dies after the bytes went out, before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", die_mid_write)
    with pytest.raises(KeyboardInterrupt):
        store.save_checkpoint(tmp_path, tiny_cfg, 10, state)
    assert not store.checkpoint_path(tmp_path, 10).exists()
    assert store.list_checkpoints(tmp_path) == []


def test_listing_ignores_temporary_and_foreign_files(tiny_cfg, tmp_path):
    state = architecture(tiny_cfg).initial_state_dict()
    for epoch in (20, 0, 10):
        store.save_checkpoint(tmp_path, tiny_cfg, epoch, state)
    folder = tmp_path / store.CHECKPOINT_DIR
    (folder / ".epoch_0000030.safetensors.tmp-123").write_bytes(b"partial")
    (folder / "notes.txt").write_text("hi")
    assert [e for e, _ in store.list_checkpoints(tmp_path)] == [0, 10, 20]


def test_truncated_or_foreign_file_is_named(tiny_cfg, tmp_path):
    state = architecture(tiny_cfg).initial_state_dict()
    path = store.save_checkpoint(tmp_path, tiny_cfg, 0, state)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(UsageError, match=path.name):
        store.load_checkpoint(path)
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(UsageError, match=path.name):
        store.load_checkpoint(path)


def random_metrics(n: int) -> np.ndarray:
    """n float64 rows: epochs 0 .. n - 1, then five values spread over many magnitudes."""
    gen = np.random.default_rng(0)
    values = gen.random((n, 5)) * 10.0 ** gen.integers(-12, 3, (n, 5))
    values[::7, 2:] = 1.0
    return np.column_stack([np.arange(n, dtype=np.float64), values])


def whole_file(rows: np.ndarray) -> bytes:
    """metrics.csv as the former writer made it in one piece, header and every row."""
    out = io.BytesIO()
    header = "epoch,train_loss,test_loss,train_acc,test_acc,test_acc_unseen"
    np.savetxt(out, rows, fmt=["%d"] + ["%.17g"] * 5, delimiter=",", header=header, comments="")
    return out.getvalue()


def test_appended_metrics_equal_the_whole_file_writer(tiny_cfg, tmp_path):
    rows = random_metrics(60)
    store.write_run_files(tmp_path, tiny_cfg, torch.arange(10))
    path = tmp_path / store.METRICS_FILE
    assert path.read_bytes() == whole_file(rows[:0])
    written = 0
    for epoch in (0, 1, 10, 11, 37, 59):  # checkpoints
        store.append_metrics(tmp_path, rows[written : epoch + 1])
        written = epoch + 1
        assert path.read_bytes() == whole_file(rows[:written])
    assert np.array_equal(store.read_metrics_array(tmp_path), rows)


def write_torn_metrics(run_dir, cfg, rows: np.ndarray, complete: int) -> None:
    """metrics.csv with `complete` rows and then part of the next one, as a kill leaves it."""
    store.write_run_files(run_dir, cfg, torch.arange(10))
    store.append_metrics(run_dir, rows[:complete])
    torn = whole_file(rows[: complete + 1])[len(whole_file(rows[:complete])) :][:-9]
    with open(run_dir / store.METRICS_FILE, "ab") as handle:
        handle.write(torn)


def test_a_torn_last_row_is_never_read(tiny_cfg, tmp_path):
    rows = random_metrics(21)
    write_torn_metrics(tmp_path, tiny_cfg, rows, 20)
    assert np.array_equal(store.read_metrics_array(tmp_path), rows[:20])
    table = open_run(tmp_path).metrics()
    assert list(table.index) == list(range(20)) and table.index.dtype == np.int64
    assert list(table.columns) == list(store.METRIC_COLUMNS[1:])
    assert np.array_equal(table.to_numpy(), rows[:20, 1:])


def test_truncation_keeps_the_rows_of_the_saved_state(tiny_cfg, tmp_path):
    rows = random_metrics(21)
    write_torn_metrics(tmp_path, tiny_cfg, rows, 20)
    with pytest.raises(UsageError, match=store.METRICS_FILE):
        store.truncate_metrics(tmp_path, 21)
    assert np.array_equal(store.truncate_metrics(tmp_path, 12), rows[:12])
    assert (tmp_path / store.METRICS_FILE).read_bytes() == whole_file(rows[:12])
    store.append_metrics(tmp_path, rows[12:])
    assert (tmp_path / store.METRICS_FILE).read_bytes() == whole_file(rows)


def flip_tensor_bytes(path, count: int = 64) -> None:
    """Invert `count` bytes in the middle of the tensor data, after the JSON header."""
    data = bytearray(path.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")
    middle = (start + len(data)) // 2
    for i in range(middle, middle + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_checkpoint_digest_is_the_sha256_of_the_tensors(tiny_cfg, tmp_path, monkeypatch):
    state = architecture(tiny_cfg).initial_state_dict()
    path = store.save_checkpoint(tmp_path, tiny_cfg, 10, state)
    hasher = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name]
        dtype = {torch.float32: "F32", torch.bool: "BOOL"}[tensor.dtype]
        shape = ",".join(str(n) for n in tensor.shape)
        hasher.update(f"{name}\0{dtype}\0{shape}\0".encode() + tensor.numpy().tobytes())
    monkeypatch.setattr(store, "load", None)  # the digest comes from the header alone
    assert store.checkpoint_digest(path) == hasher.hexdigest()


def test_flipped_bytes_are_caught(tiny_cfg, tmp_path):
    state = architecture(tiny_cfg).initial_state_dict()
    path = store.save_checkpoint(tmp_path, tiny_cfg, 10, state)
    flip_tensor_bytes(path)
    with pytest.raises(UsageError, match=f"{path.name}: checksum mismatch"):
        store.load_checkpoint(path)
    store.save_state(tmp_path, 10, {"w": torch.randn(40, 8), "rng": torch.get_rng_state()}, False)
    path = store.state_path(tmp_path, 10)
    flip_tensor_bytes(path)
    with pytest.raises(UsageError, match=f"{path.name}: checksum mismatch"):
        store.read_state(path)


def test_format_1_files_without_digest_still_load(tiny_cfg, tmp_path):
    state = architecture(tiny_cfg).initial_state_dict()
    path = store.checkpoint_path(tmp_path, 30)
    path.parent.mkdir()
    legacy = {"format": "grokinterp-checkpoint-1", "epoch": "30", "config": tiny_cfg.to_json()}
    path.write_bytes(save(state, metadata=legacy))
    loaded, epoch, cfg = store.load_checkpoint(path)
    assert epoch == 30 and cfg == tiny_cfg
    assert all(torch.equal(loaded[name], state[name]) for name in state)
    assert store.checkpoint_digest(path) is None
    legacy = {"format": "grokinterp-state-1", "step": "30", "finished": "False"}
    (tmp_path / store.LEGACY_STATE_FILE).write_bytes(save({"w": torch.ones(3)}, metadata=legacy))
    tensors, step, finished = batch_state.load_state(tmp_path)  # a group of one
    assert torch.equal(tensors["w"], torch.ones(3)) and step == 30 and not finished


def test_analyze_refuses_a_corrupt_checkpoint(tiny_cfg, tmp_path, capsys):
    run_dir = tmp_path / "run"
    train_runs([tiny_cfg], [run_dir], progress=False)
    last = store.list_checkpoints(run_dir)[-1][1]
    flip_tensor_bytes(last)
    args = ["analyze", "--ckpt-dir", str(run_dir), "--out", str(tmp_path / "analysis"), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(last) in err[0] and "checksum mismatch" in err[0]
