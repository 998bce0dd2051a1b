"""Training: determinism, resume after SIGKILL, engines and batched runs, and user errors."""

import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from grokinterp.cli import main
from grokinterp.presets import preset
from grokinterp.storage import store
from grokinterp.storage.run import open_run
from grokinterp.training import batch_state
from grokinterp.training.loop import resume_runs, train_runs
from tests.helpers import killed_at_step


def final_weights(run_dir):
    return open_run(run_dir).state_dict()


def test_run_directory_is_complete(tiny_cfg, tmp_path):
    train_runs([tiny_cfg], [tmp_path / "run"], progress=False)
    run = open_run(tmp_path / "run")
    assert run.config == tiny_cfg
    assert run.epochs == tiny_cfg.save_epochs == [0, 10, 20, 30, 40]
    metrics = run.metrics()
    assert list(metrics.index) == list(range(41))
    assert metrics["train_loss"].dtype == np.float64
    assert len(run.train_indices) == tiny_cfg.n_train
    model = run.model(epoch=20)
    torch.testing.assert_close(model.embed.W_E, run.state_dict(index=2)["embed.W_E"])
    # the metrics row of a checkpoint's epoch is that checkpoint's loss
    from grokinterp.analysis.columns import measure_checkpoints

    table, _ = measure_checkpoints(tiny_cfg, [run.state_dict(epoch=20)], run.train_indices, [1])
    assert abs(table["train_loss"][0] - metrics.loc[20, "train_loss"]) < 1e-6


def test_training_is_deterministic(tiny_cfg, tmp_path):
    for name in ("a", "b"):
        train_runs([tiny_cfg], [tmp_path / name], progress=False)
    first, second = final_weights(tmp_path / "a"), final_weights(tmp_path / "b")
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_fast_engine_trains_like_the_hooked_model(tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace(epochs=100, save_every=100)
    train_runs([cfg], [tmp_path / "fast"], progress=False, engine="fast")
    train_runs([cfg], [tmp_path / "hooked"], progress=False, engine="hooked")
    fast, hooked = final_weights(tmp_path / "fast"), final_weights(tmp_path / "hooked")
    for name in fast:
        if fast[name].is_floating_point():
            torch.testing.assert_close(fast[name], hooked[name], rtol=1e-4, atol=1e-5)


def test_batched_sweep_equals_single_runs(tiny_cfg, tmp_path):
    cfgs = [
        tiny_cfg.replace(seed=1),
        tiny_cfg.replace(seed=2, weight_decay=0.3),
        tiny_cfg.replace(seed=3, train_frac=0.7, data_seed=5),
    ]
    train_runs(cfgs, [tmp_path / f"together{i}" for i in range(3)], progress=False)
    for i, cfg in enumerate(cfgs):
        train_runs([cfg], [tmp_path / f"alone{i}"], progress=False)
        together, alone = (
            final_weights(tmp_path / f"together{i}"),
            final_weights(tmp_path / f"alone{i}"),
        )
        for name in alone:
            if alone[name].is_floating_point():
                torch.testing.assert_close(together[name], alone[name], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(
            store.read_metrics_array(tmp_path / f"together{i}"),
            store.read_metrics_array(tmp_path / f"alone{i}"),
            rtol=1e-4,
            atol=1e-6,
        )


def test_resume_after_sigkill_is_bit_identical(tmp_path):
    cfg_args = ["--p", "23", "--d-model", "32", "--d-mlp", "64", "--epochs", "600"]
    cfg_args += ["--save-every", "20", "--quiet"]
    command = [sys.executable, "-m", "grokinterp.cli", "train", *cfg_args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([*command, "--out", str(tmp_path / "whole")], check=True, env=env)

    killed = tmp_path / "killed"
    proc = subprocess.Popen([*command, "--out", str(killed)], env=env)
    deadline = time.time() + 60
    while len(store.list_checkpoints(killed)) < 4 and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, step, finished = batch_state.load_state(killed)
    assert not finished and 0 < step < 600, "the kill must land mid-training"

    resumed = subprocess.run(
        [sys.executable, "-m", "grokinterp.cli", "train", "--resume", str(killed), "--quiet"],
        env=env,
    )
    assert resumed.returncode == 0
    whole, again = final_weights(tmp_path / "whole"), final_weights(killed)
    assert all(torch.equal(whole[k], again[k]) for k in whole)
    metrics = [run / store.METRICS_FILE for run in (tmp_path / "whole", killed)]
    assert metrics[0].read_bytes() == metrics[1].read_bytes()
    assert [e for e, _ in store.list_checkpoints(killed)] == preset("small").replace(
        epochs=600, save_every=20
    ).save_epochs


def test_resume_after_a_kill_mid_append_equals_an_unbroken_run(tiny_cfg, tmp_path):
    train_runs([tiny_cfg], [tmp_path / "whole"], progress=False)
    killed = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt), killed_at_step(30):  # metrics of epoch 30 out
        train_runs([tiny_cfg], [killed], progress=False)
    path = killed / store.METRICS_FILE
    path.write_bytes(path.read_bytes()[:-20])  # the row of epoch 30 torn mid-way
    assert len(store.read_metrics_array(killed)) == 30 and batch_state.load_state(killed)[1] == 20

    resume_runs([killed], progress=False)
    assert path.read_bytes() == (tmp_path / "whole" / store.METRICS_FILE).read_bytes()
    whole, again = final_weights(tmp_path / "whole"), final_weights(killed)
    assert all(torch.equal(whole[k], again[k]) for k in whole)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--p", "91"], "prime"),
        (["--p", "2"], "prime"),
        (["--train-frac", "1.2"], "train_frac must lie in (0, 1)"),
        (["--train-frac", "0"], "train_frac must lie in (0, 1)"),
        (["--epochs", "0"], "epochs"),
        (["--device", "tpu"], "device"),
        (["--preset", "huge"], "preset"),
        (["--engine", "turbo"], "engine"),
        (["--seeds", "x-y"], "list"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args, words, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]
    assert not out.exists()


def test_directory_holding_another_run_is_refused(tiny_cfg, tmp_path, capsys):
    out = tmp_path / "run"
    train_runs([tiny_cfg], [out], progress=False)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert main(["train", "--out", str(out), "--epochs", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "another run" in err[0]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_cli_sweep_names_runs(tmp_path, capsys):
    args = ["train", "--p", "11", "--d-model", "16", "--n-heads", "2", "--d-mlp", "16"]
    args += ["--epochs", "5", "--seeds", "0-1", "--weight-decays", "0.5,1", "--out", str(tmp_path)]
    assert main([*args, "--quiet"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["small-seed0-wd0.5", "small-seed0-wd1", "small-seed1-wd0.5", "small-seed1-wd1"]
    assert open_run(tmp_path / "small-seed1-wd0.5").config.weight_decay == 0.5


def test_training_on_longer_equals_a_longer_run(tiny_cfg, tmp_path, capsys):
    train_runs([tiny_cfg.replace(epochs=40)], [tmp_path / "long"], progress=False)
    train_runs([tiny_cfg.replace(epochs=20)], [tmp_path / "short"], progress=False)
    assert main(["train", "--resume", str(tmp_path / "short"), "--quiet"]) == 2
    assert "already finished" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "short"), "--epochs", "40", "--quiet"]) == 0
    long, extended = final_weights(tmp_path / "long"), final_weights(tmp_path / "short")
    assert all(torch.equal(long[k], extended[k]) for k in long)
    assert open_run(tmp_path / "short").epochs == open_run(tmp_path / "long").epochs
    np.testing.assert_array_equal(
        store.read_metrics_array(tmp_path / "long"), store.read_metrics_array(tmp_path / "short")
    )


def test_a_huge_sweep_needs_an_explicit_flag_and_shows_its_plan(tmp_path, capsys):
    code = main(["train", "--seeds", "0-100000", "--epochs", "1", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--large-sweep" in err[0]
    assert "100001 runs" in err[0] and "GB on disk" in err[0] and "of training on cpu" in err[0]
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("flag", ["--lr", "--weight-decay", "--train-frac"])
def test_non_finite_settings_are_refused(tmp_path, capsys, flag):
    code = main(["train", flag, "nan", "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "finite" in err[0]
    assert not (tmp_path / "r").exists()


TINY_ARGS = ["--p", "11", "--d-model", "16", "--n-heads", "2", "--d-mlp", "32", "--epochs", "40"]
TINY_ARGS += ["--save-every", "10", "--train-frac", "0.5"]


def test_training_says_at_once_what_it_trains_and_where(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY_ARGS, "--out", str(out), "--device", "cpu"]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith(
        "training 1 run(s) of (a + b) mod 11 (transformer: d_model 16, n_heads 2, d_mlp 32)"
    )
    assert first.endswith(f"to epoch 40 on cpu -> {out}")


def test_the_same_command_after_a_kill_names_the_resume_command(tiny_cfg, tmp_path, capsys):
    """Re-running an interrupted command says where the run stands and how to go on; that
    command finishes it as an unbroken run."""
    assert main(["train", *TINY_ARGS, "--out", str(tmp_path / "whole"), "--quiet"]) == 0
    out = tmp_path / "killed"
    with killed_at_step(20):
        assert main(["train", *TINY_ARGS, "--out", str(out), "--quiet"]) == 130
    capsys.readouterr()
    assert main(["train", *TINY_ARGS, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds this same run, unfinished (saved at epoch 10)" in err[0]
    command = err[0].split("resume it with: ")[1]
    assert main([*shlex.split(command)[1:], "--quiet"]) == 0
    whole, again = final_weights(tmp_path / "whole"), final_weights(out)
    assert all(torch.equal(whole[k], again[k]) for k in whole)
    assert main(["train", *TINY_ARGS, "--out", str(out), "--quiet"]) == 2
    assert "already holds this run, finished at epoch 40" in capsys.readouterr().err


def test_constant_attention_trains_and_only_decays_the_query_and_key(tiny_cfg, tmp_path):
    """At attention rate 0 the loss does not reach W_Q and W_K: AdamW with a zero gradient
    leaves only the decay, W(t) = W(0) prod_s (1 - lr_s wd) with the warmed-up lr_s."""
    cfg = tiny_cfg.replace(attention_rate=0.0, epochs=12, save_every=12)
    train_runs([cfg], [tmp_path / "run"], progress=False)
    run = open_run(tmp_path / "run")
    start, end = run.state_dict(epoch=0), run.state_dict(epoch=12)
    decay = np.prod(
        [1 - cfg.lr * min((s + 1) / cfg.warmup_steps, 1) * cfg.weight_decay for s in range(12)]
    )
    for name in ("blocks.0.attn.W_Q", "blocks.0.attn.W_K"):
        torch.testing.assert_close(end[name], start[name] * decay, rtol=1e-5, atol=1e-7)
    assert not torch.equal(end["blocks.0.mlp.W_in"], start["blocks.0.mlp.W_in"])
