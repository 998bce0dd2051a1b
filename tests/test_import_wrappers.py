"""`grokinterp import` of state dicts in the common wrappers (torch.compile, DDP, a wrapping
module, PyTorch Lightning) and of .safetensors series: each file is built here from known
weights, and the import must give those weights back bit for bit."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from grokinterp.cli import main
from grokinterp.storage.importers import Options, import_run
from grokinterp.storage.run import open_run
from tests.test_importers import (
    EPOCHS,
    assert_same_analysis,
    native_run,
    paper_file,
    paper_reference_split,
    random_states,
)

SPLIT = [3, 8, 14, 21, 30, 47, 52, 66, 71, 85, 90, 99, 104, 117]


def prefixed(state: dict, prefix: str) -> dict:
    return {prefix + name: tensor.clone() for name, tensor in state.items()}


def adamw_state(lr: float, weight_decay: float) -> dict:
    """The state dict of a real AdamW after one step."""
    params = [torch.nn.Parameter(torch.randn(3))]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    params[0].sum().backward()
    optimizer.step()
    return optimizer.state_dict()


def lightning(state: dict, epoch: int, optimizers: list | None = None) -> dict:
    """A PyTorch Lightning checkpoint of a LightningModule holding the model as `self.model`."""
    return {
        "epoch": epoch,
        "global_step": 4 * epoch,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": prefixed(state, "model."),
        "loops": {"fit_loop": {"state_dict": {}}},
        "callbacks": {"ModelCheckpoint{'monitor': None}": {"best_model_path": ""}},
        "optimizer_states": [adamw_state(1e-3, 1.0)] if optimizers is None else optimizers,
        "lr_schedulers": [],
        "hparams_name": "kwargs",
        "hyper_parameters": {"lr": 1e-3},
    }


def write_wrapped(folder, case: str, epoch: int, state: dict) -> None:
    """One checkpoint file of a directory, as code with that wrapper saves it."""
    if case == "torch.compile":
        torch.save(prefixed(state, "_orig_mod."), folder / f"checkpoint_{epoch}.pt")
    elif case == "DDP under 'model'":
        torch.save({"model": prefixed(state, "module.")}, folder / f"ep{epoch}.pth")
    elif case == "compiled DDP":
        torch.save(prefixed(state, "_orig_mod.module."), folder / f"{epoch}.pt")
    elif case == "Lightning":
        torch.save(lightning(state, epoch), folder / f"model_{epoch}.pt")
    elif case == "safetensors":
        save_file(state, folder / f"checkpoint_{epoch}.safetensors")
    elif case == "compiled safetensors":
        save_file(prefixed(state, "_orig_mod."), folder / f"step{epoch}.safetensors")


@pytest.fixture
def known(tiny_cfg, tmp_path):
    """Random weights at EPOCHS and a native run of them."""
    states = random_states(tiny_cfg, EPOCHS, zero_biases=False)
    native = native_run(tmp_path / "native", tiny_cfg, SPLIT, EPOCHS, states)
    return states, native


def assert_same_weights(run_dir, states: list[dict]) -> None:
    run = open_run(run_dir)
    assert run.epochs == EPOCHS
    for epoch, state in zip(EPOCHS, states, strict=True):
        loaded = run.state_dict(epoch=epoch)
        assert set(loaded) == set(state)
        for name, tensor in state.items():
            assert torch.equal(loaded[name], tensor), (epoch, name)


CASES = [
    "torch.compile",
    "DDP under 'model'",
    "compiled DDP",
    "Lightning",
    "safetensors",
    "compiled safetensors",
]


@pytest.mark.parametrize("case", CASES)
def test_directory_of_wrapped_checkpoints(case, known, tmp_path):
    states, native = known
    folder = tmp_path / "ckpts"
    folder.mkdir()
    for epoch, state in zip(EPOCHS, states, strict=True):
        write_wrapped(folder, case, epoch, state)
    (folder / "split.json").write_text(json.dumps(SPLIT))
    out = tmp_path / "imported"
    assert main(["import", str(folder), "--layout", "transformer-lens-dir", "--out", str(out)]) == 0
    assert_same_weights(out, states)
    assert open_run(out).train_indices.tolist() == SPLIT
    if case in ("Lightning", "safetensors"):
        assert_same_analysis(native, out, tmp_path)


def test_demo_file_of_prefixed_checkpoints(known, tmp_path, capsys):
    states, _ = known
    data = {
        "model": prefixed(states[-1], "module."),  # the same final weights: no extra checkpoint
        "checkpoints": [prefixed(state, "module.") for state in states],
        "checkpoint_epochs": EPOCHS,
        "train_indices": torch.tensor(SPLIT),
    }
    torch.save(data, tmp_path / "demo.pth")
    out = tmp_path / "imported"
    assert (
        main(
            ["import", str(tmp_path / "demo.pth"), "--layout", "transformer-lens"]
            + ["--out", str(out)]
        )
        == 0
    )
    assert_same_weights(out, states)
    assert "'module.' (DistributedDataParallel) stripped" in capsys.readouterr().out


def test_lightning_file_gives_its_epoch_and_optimizer(known, tmp_path):
    states, _ = known
    data = lightning(states[-1], 40, [adamw_state(3e-3, 0.5)])
    data["state_dict"] = prefixed(data["state_dict"], "_orig_mod.")  # compiled inside Lightning
    torch.save(data, tmp_path / "last.ckpt")
    options = Options(split_from=None, data_seed=2, train_frac=0.5)
    out, notes = import_run(tmp_path / "last.ckpt", tmp_path / "run", "transformer-lens", options)
    run = open_run(out)
    assert run.epochs == [40]
    assert (run.config.lr, run.config.weight_decay) == (3e-3, 0.5)
    for name, tensor in states[-1].items():
        assert torch.equal(run.state_dict(epoch=40)[name], tensor), name
    assert any("Lightning" in note for note in notes)
    assert any("'_orig_mod.' (torch.compile), 'model.'" in note for note in notes)


def test_paper_file_saved_under_ddp(tiny_cfg, tmp_path):
    states = random_states(tiny_cfg, EPOCHS, zero_biases=True)
    config = {"p": 11, "frac_train": 0.5, "seed": 3}
    data = paper_file(tmp_path / "plain.pth", tiny_cfg, states, EPOCHS, config)
    data["state_dicts"] = [prefixed(state, "module.") for state in data["state_dicts"]]
    torch.save(data, tmp_path / "ddp.pth")
    out, _ = import_run(tmp_path / "ddp.pth", tmp_path / "run", "paper")
    assert_same_weights(out, states)
    assert open_run(out).train_indices.tolist() == paper_reference_split(11, 0.5, 3)


def _refused_file(case: str, state: dict, tmp_path):
    """The source and flags of one refused file."""
    flags = ["--layout", "transformer-lens", "--epoch", "0", "--split-from", "split.json"]
    source = tmp_path / "source.pt"
    if case == "foreign names":
        data = {"encoder.weight": torch.ones(4, 3), "encoder.bias": torch.ones(4)}
    elif case == "unknown prefix":
        data = prefixed(state, "net.")
    elif case == "prefix on some keys":
        data = prefixed(state, "module.")
        data["embed.W_E"] = data.pop("module.embed.W_E")
    elif case == "integer keys":
        data = {0: torch.ones(3), 1: torch.ones(3)}
    elif case == "no checkpoints":
        data = {"weights": state, "step": 3}
    elif case == "paper list under transformer-lens":
        data = {"state_dicts": [state], "epochs": [0]}
    elif case == "two Lightning optimizers":
        data = lightning(state, 0, [adamw_state(1e-3, 1.0)] * 2)
    elif case == "corrupt safetensors":
        source = tmp_path / "ckpts"
        source.mkdir()
        save_file(state, source / "ckpt_0.safetensors")
        (source / "ckpt_10.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
        return source, ["--layout", "transformer-lens-dir", "--split-from", "split.json"]
    torch.save(data, source)
    return source, flags


REFUSALS = {
    "foreign names": ["encoder.weight, encoder.bias", "no layout of grokinterp fits"],
    "unknown prefix": ["net.embed.W_E", "prefix 'net.'", "not stripped"],
    "prefix on some keys": ["found module.pos_embed.W_pos", "prefix 'module.'", "not stripped"],
    "integer keys": ["found 0, 1", "no layout of grokinterp fits"],
    "no checkpoints": ["found weights, step", "expected 'checkpoints'", "no layout of grokinterp"],
    "paper list under transformer-lens": ["found state_dicts, epochs", "--layout paper reads"],
    "two Lightning optimizers": ["2 optimizers"],
    "corrupt safetensors": ["ckpt_10.safetensors: not readable"],
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refusals_name_the_keys_found(case, tiny_cfg, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "split.json").write_text(json.dumps(SPLIT))
    state = random_states(tiny_cfg, [0], zero_biases=False)[0]
    source, flags = _refused_file(case, state, tmp_path)
    before = sorted(tmp_path.rglob("*"))
    assert main(["import", str(source), *flags, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("grokinterp: error: ") and err.count("\n") == 1, err
    for expected in REFUSALS[case]:
        assert expected in err, err
    assert sorted(tmp_path.rglob("*")) == before


def test_per_epoch_folder_of_safetensors(tiny_cfg, tmp_path):
    states = random_states(tiny_cfg, EPOCHS, zero_biases=True)
    folder = tmp_path / "results"
    folder.mkdir()
    data = paper_file(tmp_path / "plain.pth", tiny_cfg, states, EPOCHS)
    for epoch, paper_state in zip(EPOCHS, data["state_dicts"], strict=True):
        save_file(prefixed(paper_state, "module."), folder / f"ep{epoch}.safetensors")
    config = {"p": 11, "frac_train": 0.5, "seed": 2}
    (folder / "result.json").write_text(json.dumps({"config": config}))
    out = tmp_path / "run"
    assert main(["import", str(folder), "--layout", "per-epoch", "--out", str(out)]) == 0
    assert_same_weights(out, states)
    assert open_run(out).train_indices.tolist() == paper_reference_split(11, 0.5, 2)
