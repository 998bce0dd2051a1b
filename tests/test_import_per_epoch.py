"""`grokinterp import --layout per-epoch`: folders built here the way the paper's Trainer
(`save_models`) and its reproductions save them (one torch.save per saved epoch, final.pth,
init.pth, result.json), each checked against an independent computation: the paper's own forward
pass, its recorded losses recomputed on the split, a real AdamW's state."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from grokinterp.cli import main
from grokinterp.storage.run import open_run
from tests.conftest import tiny_config
from tests.test_import_fixes import adamw_state, add_labels, paper_train_loss
from tests.test_importers import paper_logits, paper_reference_split, random_states, to_paper

EPOCHS = [0, 10, 20]
N = 30  # epochs trained: curves of 30 values, final.pth labelled 30


def paper_folder(folder, cfg, split):
    """The paper's save_models folder: init.pth with the data, <N>.pth per saved epoch,
    final.pth with the curves and optimizer; result.json of accuracies as a reproduction adds.
    Returns the paper-layout states of the saved epochs and of the final weights."""
    folder.mkdir()
    p = cfg.p
    states = [to_paper(s, cfg) for s in random_states(cfg, [*EPOCHS, N], zero_biases=True)]
    torch.save(
        {"model": states[0], "train_data": [(i // p, i % p, p) for i in split], "test_data": []},
        folder / "init.pth",
    )
    for epoch, state in zip(EPOCHS, states, strict=False):
        loss = paper_train_loss(state, p, split, add_labels(p))  # the paper's: a float
        saved = {"model": state, "train_loss": loss, "test_loss": 4.0, "epoch": epoch}
        torch.save(saved, folder / f"ep{epoch}.pth")
    train = np.linspace(4.0, 1.0, N).tolist()
    train[-1] = paper_train_loss(states[-1], p, split, add_labels(p))
    final = {
        "model": states[-1],
        "train_loss": train[-1],
        "train_losses": train,
        "test_losses": np.linspace(4.5, 3.0, N).tolist(),
        "epoch": N,
        "optimizer": adamw_state(2e-3, 0.3, (0.9, 0.98)),
    }
    torch.save(final, folder / "final.pth")
    result = {"train_accs": np.linspace(0, 1, N).tolist(), "config": {"p": p, "fn_name": "add"}}
    (folder / "result.json").write_text(json.dumps(result))
    return states, train


def test_paper_folder_imports_every_epoch_the_split_and_the_optimizer(tiny_cfg, tmp_path):
    p, split = tiny_cfg.p, paper_reference_split(tiny_cfg.p, 0.5, seed=4)
    states, train = paper_folder(tmp_path / "grok_1", tiny_cfg, split)
    out = tmp_path / "run"
    args = ["import", str(tmp_path / "grok_1"), "--layout", "per-epoch", "--out", str(out)]
    assert main(args) == 0
    run = open_run(out)
    assert run.epochs == [*EPOCHS, N]  # the final weights kept after the last saved epoch
    assert run.train_indices.tolist() == sorted(split)  # init.pth's triples
    assert (run.config.lr, run.config.weight_decay) == (2e-3, 0.3)  # from the optimizer state
    tokens = torch.tensor([[a, b, p] for a in range(p) for b in range(p)])
    for epoch, state in zip(run.epochs, states, strict=True):
        with torch.no_grad():
            ours = run.model(epoch=epoch)(tokens)[:, -1]
        theirs = paper_logits(state, tokens)[:, -1, :-1]
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    metrics = run.metrics()
    np.testing.assert_array_equal(metrics["train_loss"], train)
    np.testing.assert_array_equal(metrics["train_acc"], np.linspace(0, 1, N))


@pytest.fixture(scope="module")
def memorised(tmp_path_factory):
    """A tiny a + b run trained 100 epochs: its train loss is far below its test loss, so the
    loss on another split is far from the one recorded on its own."""
    from grokinterp.training.loop import train_runs

    run_dir = tmp_path_factory.mktemp("memorised") / "run"
    train_runs([tiny_config().replace(epochs=100)], [run_dir], progress=False)
    return open_run(run_dir)


def test_a_split_that_misses_the_recorded_loss_is_refused(memorised, tmp_path, capsys):
    cfg, p = memorised.config, memorised.config.p
    state = to_paper(memorised.state_dict(), cfg)
    recorded = paper_train_loss(state, p, memorised.train_indices.tolist(), add_labels(p))
    wrong = paper_reference_split(p, cfg.train_frac, seed=5)  # init.pth of another split
    recomputed = paper_train_loss(state, p, wrong, add_labels(p))
    paper_folder(tmp_path / "grok_1", cfg, wrong)
    final = torch.load(tmp_path / "grok_1" / "final.pth", weights_only=True)
    final["model"], final["train_loss"] = state, recorded
    torch.save(final, tmp_path / "grok_1" / "final.pth")
    out = tmp_path / "run"
    args = ["import", str(tmp_path / "grok_1"), "--layout", "per-epoch", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{recomputed:.6g}" in err and f"{recorded:.6g}" in err and err.count("\n") == 1
    assert recomputed > 10 * recorded and not out.exists()


def test_reproduction_folder_of_bare_state_dicts_and_result_json(tiny_cfg, tmp_path, capsys):
    folder, p = tmp_path / "results", tiny_cfg.p
    folder.mkdir()
    states = [to_paper(s, tiny_cfg) for s in random_states(tiny_cfg, EPOCHS, zero_biases=True)]
    for epoch, state in zip(EPOCHS, states, strict=True):
        torch.save(state, folder / f"ep{epoch}.pth")
    split = paper_reference_split(p, 0.5, seed=2)
    train = np.linspace(4.0, 2.0, 21).tolist()
    train[-1] = paper_train_loss(states[-1], p, split, add_labels(p))
    config = {"p": p, "frac_train": 0.5, "seed": 2, "weight_decay": 0.0}
    result = {"train_loss": train, "test_loss": [4.4, 4.3, 4.2], "config": config}
    (folder / "result.json").write_text(json.dumps(result))
    out = tmp_path / "run"
    args = ["import", str(folder), "--layout", "per-epoch", "--out", str(out)]
    assert main(args) == 0
    assert "test_loss recorded every 10 epochs" in capsys.readouterr().out
    run = open_run(out)
    assert run.epochs == EPOCHS and run.train_indices.tolist() == sorted(split)
    assert run.config.weight_decay == 0.0
    np.testing.assert_array_equal(run.metrics()["test_loss"].dropna(), [4.4, 4.3, 4.2])

    torch.save(states[0], folder / "best.pth")  # a checkpoint whose epoch the name does not say
    assert main([*args[:-1], str(tmp_path / "other")]) == 2
    assert "best.pth: no epoch number" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_transformer_lens_folder_with_result_json(memorised, tmp_path):
    folder = tmp_path / "tl"
    folder.mkdir()
    for epoch in memorised.epochs:  # HookedTransformer state dicts, as torch.save writes them
        torch.save(memorised.state_dict(epoch=epoch), folder / f"ep{epoch}.pth")
    (folder / "split.json").write_text(json.dumps(memorised.train_indices.tolist()))
    metrics = memorised.metrics()
    result = {
        "train_losses": metrics["train_loss"].tolist(),
        "test_accs": metrics["test_acc"][::10].tolist(),
    }
    (folder / "result.json").write_text(json.dumps(result))
    out = tmp_path / "run"
    assert main(["import", str(folder), "--layout", "transformer-lens-dir", "--out", str(out)]) == 0
    imported = open_run(out)
    assert imported.epochs == memorised.epochs
    np.testing.assert_array_equal(imported.metrics()["train_loss"], metrics["train_loss"])
    recorded = imported.metrics()["test_acc"].dropna()
    assert recorded.index.tolist() == list(range(0, 101, 10))
    np.testing.assert_array_equal(recorded, metrics["test_acc"][::10])
