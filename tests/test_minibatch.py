"""Minibatch training (`batch_size`): the epoch's order is a pure function of (seed, epoch); one
batch covering the training set is full batch to the bit; the weights equal a plain torch loop
with torch.optim.AdamW over the same batches; a killed run resumes to the unbroken run's files;
bad batch sizes, a batch of unequal training sets and `--compile on` are answered in one
line."""

from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path

import pytest
import torch
from torch.func import functional_call

from grokinterp import data
from grokinterp.cli import main
from grokinterp.errors import UsageError
from grokinterp.models import architecture
from grokinterp.storage import store
from grokinterp.training import batch_state
from grokinterp.training.loop import epoch_batches, epoch_order, resume_runs, train_runs
from tests.helpers import Killed, killed_at_write
from tests.test_crash import assert_same_files, contents
from tests.test_train import TINY_ARGS
from tests.test_train_mistakes import refused


def checkpoint_tensors(run_dir: Path) -> dict[str, dict[str, torch.Tensor]]:
    """Every checkpoint's tensors by file name (the metadata, which holds the config, left out)."""
    return {
        path.name: store.load_checkpoint(path)[0]
        for path in sorted((run_dir / store.CHECKPOINT_DIR).iterdir())
    }


def test_the_order_is_a_pure_function_of_seed_and_epoch(tiny_cfg):
    cfg = tiny_cfg.replace(batch_size=16)
    n = cfg.n_train
    first = epoch_order(cfg, 3)
    torch.manual_seed(12345)  # the global generator plays no part
    assert torch.equal(epoch_order(cfg, 3), first)
    assert torch.equal(first.sort().values, torch.arange(n))  # every pair once
    others = [epoch_order(cfg, 4), epoch_order(cfg.replace(seed=cfg.seed + 1), 3)]
    assert all(not torch.equal(other, first) for other in others)
    # the documented seed mixing, written out again
    digest = hashlib.sha256(f"grokinterp minibatch {cfg.seed} 3".encode()).digest()
    seed = int.from_bytes(digest[:8], "little") & (2**63 - 1)
    assert torch.equal(first, torch.randperm(n, generator=torch.Generator().manual_seed(seed)))
    batches = epoch_batches(cfg, 3)
    assert [len(b) for b in batches] == [16] * (n // 16) + [n % 16] * (n % 16 > 0)
    assert len(batches) == math.ceil(n / 16)
    for k, batch in enumerate(batches):  # consecutive slices of the order, as sets
        assert batch.tolist() == sorted(first[16 * k : 16 * (k + 1)].tolist())


def test_one_batch_of_the_whole_training_set_is_full_batch_to_the_bit(tiny_cfg, tmp_path):
    cfgs = [tiny_cfg.replace(seed=s, epochs=20) for s in (1, 2)]  # a batched pair of runs
    train_runs(cfgs, [tmp_path / "full" / str(s) for s in (1, 2)], progress=False)
    whole = [cfg.replace(batch_size=cfg.n_train) for cfg in cfgs]
    train_runs(whole, [tmp_path / "mini" / str(s) for s in (1, 2)], progress=False)
    for s in ("1", "2"):
        full, mini = tmp_path / "full" / s, tmp_path / "mini" / s
        assert (full / store.METRICS_FILE).read_bytes() == (mini / store.METRICS_FILE).read_bytes()
        expected, got = checkpoint_tensors(full), checkpoint_tensors(mini)
        assert sorted(expected) == sorted(got)
        for name, tensors in expected.items():
            for key, value in tensors.items():
                assert torch.equal(got[name][key], value), (s, name, key)


def test_minibatch_weights_equal_a_plain_torch_adamw_loop(tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace(epochs=6, save_every=6, batch_size=16)  # 60 pairs: 4 batches
    train_runs([cfg], [tmp_path / "run"], progress=False)
    model = architecture(cfg)
    module = model.hooked()
    weights = model.init_params()
    trained = [weights[name].requires_grad_(True) for name in model.trained]
    optimiser = torch.optim.AdamW(
        trained,
        lr=cfg.lr,
        betas=(cfg.beta1, cfg.beta2),
        eps=cfg.adam_eps,
        weight_decay=cfg.weight_decay,
        foreach=False,
    )
    grid = data.train_indices(cfg)
    a, b = grid // cfg.p, grid % cfg.p
    label = (a + b) % cfg.p
    step = 0
    for epoch in range(cfg.epochs):
        order = epoch_order(cfg, epoch)  # the run's order (its mixing: the test above)
        for k in range(math.ceil(cfg.n_train / cfg.batch_size)):
            ix = order[k * cfg.batch_size : (k + 1) * cfg.batch_size]
            tokens = torch.stack([a[ix], b[ix], torch.full_like(ix, cfg.p)], dim=1)
            logits = functional_call(module, weights, (tokens,))[:, -1]
            loss = torch.nn.functional.cross_entropy(logits.double(), label[ix])
            for group in optimiser.param_groups:
                group["lr"] = cfg.lr * min((step + 1) / cfg.warmup_steps, 1.0)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            step += 1
    assert step == cfg.epochs * 4
    got = store.load_checkpoint(store.checkpoint_path(tmp_path / "run", cfg.epochs))[0]
    moved = 0.0
    for name in model.trained:
        torch.testing.assert_close(got[name], weights[name].detach(), rtol=1e-4, atol=1e-5)
        moved = max(moved, float((got[name] - model.init_params()[name]).abs().max()))
    assert moved > 1e-2  # the weights did move, so the comparison says something


def test_a_minibatch_group_killed_at_any_write_resumes_to_the_unbroken_run(tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace(epochs=10, save_every=5, batch_size=16)
    cfgs = [cfg.replace(seed=1), cfg.replace(seed=2, data_seed=1)]
    with killed_at_write(None) as count:
        train_runs(cfgs, [tmp_path / "whole" / name for name in "ab"], progress=False)
    expected = contents(tmp_path / "whole")
    for n in range(1, count[0] + 1):
        root = tmp_path / f"killed-{n}"
        dirs = [root / name for name in "ab"]
        with pytest.raises(Killed), killed_at_write(n):
            train_runs(cfgs, dirs, progress=False)
        group = batch_state.status(dirs[0])
        if group is None or group.step is None:
            shutil.rmtree(root)
            train_runs(cfgs, dirs, progress=False)
        elif group.finished:  # killed in the last commit: resume tidies it, nothing to train
            with pytest.raises(UsageError, match="already finished"):
                resume_runs(dirs, progress=False)
        else:
            resume_runs(dirs, progress=False)
        assert_same_files(root, expected, f"killed at write {n}")


@pytest.mark.parametrize(
    "size, says", [("0", ">= 1, got 0"), ("-3", ">= 1, got -3"), ("61", "1..60")]
)
def test_a_bad_batch_size_is_refused_in_one_line(size, says, tmp_path, capsys):
    args = ["train", *TINY_ARGS, "--batch-size", size, "--out", str(tmp_path / "run")]
    line = refused(capsys, tmp_path, [*args, "--quiet"])
    assert "batch_size" in line and says in line


def test_runs_of_unequal_training_sets_are_not_batched_together(tiny_cfg, tmp_path, capsys):
    cfgs = [tiny_cfg.replace(batch_size=8, train_frac=f) for f in (0.4, 0.6)]
    with pytest.raises(UsageError, match="as many training pairs"):
        train_runs(cfgs, [tmp_path / "a", tmp_path / "b"], progress=False)
    args = ["train", *TINY_ARGS, "--epochs", "2", "--batch-size", "8", "--train-fracs", "0.4,0.6"]
    assert main([*args, "--out", str(tmp_path / "sweep"), "--quiet"]) == 0
    assert "2 groups one after another" in capsys.readouterr().err
    runs = sorted((tmp_path / "sweep").iterdir())
    assert len(runs) == 2
    for run in runs:  # each its own group of one, finished
        group = batch_state.status(run)
        assert list(group.runs) == [run] and group.finished


def test_compile_on_trains_a_minibatch_run_eagerly_and_says_why(tiny_cfg, tmp_path, capsys):
    cfg = tiny_cfg.replace(epochs=2, batch_size=16)
    train_runs([cfg], [tmp_path / "run"], device="cpu", compile="on", progress=False)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "compile on: training eagerly, since minibatch training (--batch-size) has "
        "no compiled epoch"
    ]
