import os

import pytest
import torch

from grokinterp import store
from grokinterp.errors import UsageError
from grokinterp.params import init_params, state_dict_of


def test_checkpoint_round_trip_is_exact(tiny_cfg, tmp_path):
    state = state_dict_of(tiny_cfg, init_params(tiny_cfg))
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
    state = state_dict_of(tiny_cfg, init_params(tiny_cfg))

    def die_mid_write(fd):  # the process dies after the bytes went out, before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", die_mid_write)
    with pytest.raises(KeyboardInterrupt):
        store.save_checkpoint(tmp_path, tiny_cfg, 10, state)
    assert not store.checkpoint_path(tmp_path, 10).exists()
    assert store.list_checkpoints(tmp_path) == []


def test_listing_ignores_temporary_and_foreign_files(tiny_cfg, tmp_path):
    state = state_dict_of(tiny_cfg, init_params(tiny_cfg))
    for epoch in (20, 0, 10):
        store.save_checkpoint(tmp_path, tiny_cfg, epoch, state)
    folder = tmp_path / store.CHECKPOINT_DIR
    (folder / ".epoch_0000030.safetensors.tmp-123").write_bytes(b"partial")
    (folder / "notes.txt").write_text("hi")
    assert [e for e, _ in store.list_checkpoints(tmp_path)] == [0, 10, 20]


def test_truncated_or_foreign_file_is_named(tiny_cfg, tmp_path):
    state = state_dict_of(tiny_cfg, init_params(tiny_cfg))
    path = store.save_checkpoint(tmp_path, tiny_cfg, 0, state)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(UsageError, match=path.name):
        store.load_checkpoint(path)
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(UsageError, match=path.name):
        store.load_checkpoint(path)
