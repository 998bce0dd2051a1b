"""`grokinterp import` on the files researchers actually have (issue 20): uneven curves, the
optimizer's hyperparameters, a missing epoch, a wrong split seed, a final model after the
checkpoint list, and other operations. Each file is built here, with its expected values
computed independently (the paper's forward pass, a real torch AdamW, grokinterp's training)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from grokinterp.cli import main
from grokinterp.storage import environment
from grokinterp.storage.importers import Options, import_run
from grokinterp.storage.importers.common import IMPORT_RECORD
from grokinterp.storage.run import open_run
from tests.conftest import tiny_config
from tests.test_importers import paper_logits, paper_reference_split, random_states, to_paper


def paper_train_loss(paper_state: dict, p: int, split: list[int], labels) -> float:
    """Float64 cross-entropy of the paper's own forward pass over the split's pairs."""
    tokens = torch.tensor([[i // p, i % p, p] for i in split])
    logits = paper_logits(paper_state, tokens)[:, -1, :-1].double()
    return float(F.cross_entropy(logits, torch.tensor([labels(i // p, i % p) for i in split])))


def paper_final(cfg, seed: int = 3, **extra) -> tuple[dict, list[int]]:
    """A paper final.pth of random weights; its split and the dict to extend."""
    state = to_paper(random_states(cfg, [0], zero_biases=True)[0], cfg)
    config = {"p": cfg.p, "frac_train": cfg.train_frac, "seed": seed}
    return {"model": state, "config": config, **extra}, paper_reference_split(
        cfg.p, cfg.train_frac, seed
    )


def add_labels(p):
    return lambda a, b: (a + b) % p


def test_test_curve_every_10_epochs_keeps_both_curves(tiny_cfg, tmp_path, capsys):
    p, n = tiny_cfg.p, 31  # train loss at epochs 0..30, test loss at 0, 10, 20, 30
    data, split = paper_final(tiny_cfg, epoch=n)
    train = np.linspace(4.0, 2.0, n).tolist()
    train[-1] = paper_train_loss(data["model"], p, split, add_labels(p))  # the final weights'
    data |= {"train_losses": train, "test_losses": [4.5, 4.4, 4.3, 4.2]}
    torch.save(data, tmp_path / "final.pth")
    out = tmp_path / "run"
    assert (
        main(["import", str(tmp_path / "final.pth"), "--layout", "paper", "--out", str(out)]) == 0
    )
    assert "test_loss recorded every 10 epochs" in capsys.readouterr().out
    metrics = open_run(out).metrics()
    assert metrics.index.tolist() == list(range(n))
    np.testing.assert_array_equal(metrics["train_loss"], train)
    recorded = metrics["test_loss"].dropna()
    assert recorded.index.tolist() == list(range(0, n, 10))
    assert recorded.tolist() == [4.5, 4.4, 4.3, 4.2]
    assert open_run(out).epochs == [n]
    assert [r["event"] for r in environment.records(out)] == ["import"]


def test_curve_lengths_of_the_papers_main_run_give_cadence_10():
    from grokinterp.storage.importers.curves import cadence

    assert cadence(107_791, 10_780) == 10
    assert len(range(0, 107_791, 10)) == 10_780  # the same, counted
    assert cadence(31, 4) == 10  # epochs 0, 10, 20, 30
    assert cadence(101, 34) == 3  # 0, 3, ..., 99: the only c with ceil(101 / c) == 34
    assert cadence(35, 4) is None  # 9, 10 and 11 all fit, and 34 / 3 is no whole number


def adamw_state(lr: float, weight_decay: float, betas: tuple[float, float]) -> dict:
    """The state dict of a real AdamW under the paper's warm-up schedule, after 12 steps."""
    params = [torch.nn.Parameter(torch.randn(3))]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=betas)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(step / 10, 1))
    for _ in range(12):
        params[0].sum().backward()
        optimizer.step()
        scheduler.step()
    return optimizer.state_dict()


@pytest.mark.parametrize("weight_decay", [0.1, 0.0])
def test_hyperparameters_come_from_the_optimizer_state(weight_decay, tiny_cfg, tmp_path, capsys):
    data, _ = paper_final(tiny_cfg, epoch=5, optimizer=adamw_state(3e-3, weight_decay, (0.8, 0.95)))
    data["config"]["weight_decay"] = 1.0  # the config contradicts the optimizer
    torch.save(data, tmp_path / "final.pth")
    out = tmp_path / "run"
    assert (
        main(["import", str(tmp_path / "final.pth"), "--layout", "paper", "--out", str(out)]) == 0
    )
    cfg = open_run(out).config
    assert (cfg.weight_decay, cfg.lr, cfg.beta1, cfg.beta2) == (weight_decay, 3e-3, 0.8, 0.95)
    printed = capsys.readouterr().out
    assert (
        f"weight_decay: the file's config says 1.0 but its optimizer state {weight_decay}"
        in printed
    )
    notes = json.loads((out / IMPORT_RECORD).read_text())["notes"]
    assert any("weight_decay" in note for note in notes)


def test_hyperparameter_flags_fill_what_the_file_lacks(tiny_cfg, tmp_path):
    data, _ = paper_final(tiny_cfg, epoch=5)
    torch.save(data, tmp_path / "final.pth")
    options = Options(weight_decay=0.0, lr=2e-3, beta1=0.85, beta2=0.99)
    out, notes = import_run(tmp_path / "final.pth", tmp_path / "run", "paper", options)
    cfg = open_run(out).config
    assert (cfg.weight_decay, cfg.lr, cfg.beta1, cfg.beta2, cfg.adam_eps) == (
        0,
        2e-3,
        0.85,
        0.99,
        1e-8,
    )
    assert [note.split(" ")[0] for note in notes] == ["adam_eps"]  # the one default taken


def test_epoch_inferred_from_the_curve_length_or_given(tiny_cfg, tmp_path):
    p = tiny_cfg.p
    data, split = paper_final(tiny_cfg)
    final = paper_train_loss(data["model"], p, split, add_labels(p))
    data |= {"train_losses": [4.0] * 24 + [final], "test_losses": [4.0] * 25}
    del data["config"]  # nothing says the epoch
    torch.save(data, tmp_path / "final.pth")
    flags = Options(p=p, train_frac=tiny_cfg.train_frac, seed=3)
    out, notes = import_run(tmp_path / "final.pth", tmp_path / "a", "paper", flags)
    assert open_run(out).epochs == [25]  # 25 recorded epochs, the weights after the 25th step
    assert any("epoch 25" in note and "inferred" in note for note in notes)
    given = dataclasses.replace(flags, epoch=7, metrics=False)
    out, notes = import_run(tmp_path / "final.pth", tmp_path / "b", "paper", given)
    assert open_run(out).epochs == [7]
    assert any("--epoch" in note for note in notes)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Tiny runs of a + b and of a * b mod 11 trained 100 epochs: memorised (train loss ~0.04,
    test loss ~10), so another split's loss is far from the recorded one."""
    from grokinterp.training.loop import train_runs

    base = tiny_config().replace(epochs=100, data_seed=5)
    runs = {}
    for operation in ("add", "mul"):
        run_dir = tmp_path_factory.mktemp("trained") / operation
        train_runs([base.replace(operation=operation)], [run_dir], progress=False)
        runs[operation] = open_run(run_dir)
    return runs


def tl_final(run, **extra) -> dict:
    """A TransformerLens file of the run's final weights and the train loss its training
    recorded for them."""
    return {
        "model": run.state_dict(),
        "epoch": run.epochs[-1],
        "train_loss": float(run.metrics()["train_loss"].iloc[-1]),
        **extra,
    }


def test_a_wrong_split_seed_is_refused_with_both_losses(trained, tmp_path, capsys):
    run = trained["add"]
    torch.save(tl_final(run), tmp_path / "model.pt")
    flags = ["--layout", "transformer-lens", "--train-frac", "0.5"]
    good, bad = tmp_path / "good", tmp_path / "bad"
    assert (
        main(["import", str(tmp_path / "model.pt"), *flags, "--data-seed", "5", "--out", str(good)])
        == 0
    )
    assert torch.equal(open_run(good).train_indices, run.train_indices)
    capsys.readouterr()
    assert (
        main(["import", str(tmp_path / "model.pt"), *flags, "--data-seed", "6", "--out", str(bad)])
        == 2
    )
    err = capsys.readouterr().err
    recorded = run.metrics()["train_loss"].iloc[-1]
    wrong = torch.tensor(
        sorted(torch.randperm(121, generator=torch.Generator().manual_seed(6))[:60].tolist())
    )
    tokens = torch.stack([wrong // 11, wrong % 11, torch.full_like(wrong, 11)], 1)
    with torch.no_grad():
        logits = run.model()(tokens)[:, -1].double()
    expected = float(F.cross_entropy(logits, (wrong // 11 + wrong % 11) % 11))
    assert expected > 5 * recorded  # the wrong split's loss, computed here
    assert f"{expected:.6g}" in err and f"{recorded:.6g}" in err and err.count("\n") == 1
    assert not bad.exists()
    out, notes = import_run(
        tmp_path / "model.pt",
        bad,
        "transformer-lens",
        Options(train_frac=0.5, data_seed=6, allow_loss_mismatch=True),
    )
    assert notes[-1].startswith("WARNING") and out == bad


def test_final_model_after_the_checkpoint_list_is_kept(trained, tmp_path):
    run = trained["add"]
    metrics = run.metrics()
    epochs = run.epochs[:-1]  # the list stops at 90; the final weights (100) only in 'model'
    data = {
        "model": run.state_dict(),
        "checkpoints": [run.state_dict(epoch=e) for e in epochs],
        "checkpoint_epochs": epochs,
        "train_losses": metrics["train_loss"].iloc[:100].tolist(),  # one per step taken
        "test_losses": metrics["test_loss"].iloc[:100].tolist(),
        "train_accs": metrics["train_acc"].iloc[:100].tolist(),
        "test_accs": metrics["test_acc"].iloc[:100].tolist(),
        "train_indices": run.train_indices,
    }
    torch.save(data, tmp_path / "demo.pth")
    out, notes = import_run(tmp_path / "demo.pth", tmp_path / "run", "transformer-lens")
    imported = open_run(out)
    assert imported.epochs == run.epochs  # 100 steps counted from the curves' length
    for epoch in run.epochs:
        assert torch.equal(
            imported.state_dict(epoch=epoch)["embed.W_E"], run.state_dict(epoch=epoch)["embed.W_E"]
        )
    theirs = imported.metrics()
    np.testing.assert_array_equal(theirs["train_acc"], metrics["train_acc"].iloc[:100])
    np.testing.assert_array_equal(theirs["test_acc"], metrics["test_acc"].iloc[:100])
    assert any("kept as the last checkpoint, epoch 100" in note for note in notes)


def test_multiplication_model_needs_its_operation(trained, tmp_path):
    from grokinterp.errors import UsageError

    run = trained["mul"]
    torch.save(tl_final(run, train_indices=run.train_indices), tmp_path / "mul.pt")
    with pytest.raises(UsageError, match="final train loss"):  # read as addition: refused
        import_run(tmp_path / "mul.pt", tmp_path / "as-add", "transformer-lens")
    out, _ = import_run(
        tmp_path / "mul.pt", tmp_path / "run", "transformer-lens", Options(operation="mul")
    )
    assert open_run(out).config.operation == "mul"
    assert open_run(out).config.n_train == len(run.train_indices)


def test_multiplication_over_all_pairs_with_zero_is_refused(trained, tmp_path):
    from grokinterp.errors import UsageError

    run = trained["mul"]
    with_zero = torch.cat([run.train_indices, torch.tensor([0 * 11 + 4])])  # the pair (0, 4)
    torch.save(tl_final(run, train_indices=with_zero), tmp_path / "mul.pt")
    with pytest.raises(UsageError, match=r"outside the domain of \(a \* b\) mod 11 .*a=0, b=4"):
        import_run(
            tmp_path / "mul.pt", tmp_path / "run", "transformer-lens", Options(operation="mul")
        )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("fn_name", "labels"),
    [
        ("subtract", lambda a, b: (a - b) % 11),
        ("x2xyy2", lambda a, b: (a * a + a * b + b * b) % 11),
    ],
)
def test_paper_functions_are_mapped(fn_name, labels, tiny_cfg, tmp_path):
    data, split = paper_final(tiny_cfg, epoch=1)
    data["config"]["fn_name"] = fn_name
    data["train_loss"] = paper_train_loss(data["model"], 11, split, labels)  # checked on import
    torch.save(data, tmp_path / "final.pth")
    out, notes = import_run(tmp_path / "final.pth", tmp_path / "run", "paper")
    assert open_run(out).config.operation == {"subtract": "sub", "x2xyy2": "a2_ab_b2"}[fn_name]
    assert not any("final train loss" in note for note in notes)  # agreed to float32 rounding


def test_directory_of_transformer_lens_state_dicts(trained, tmp_path, capsys):
    run = trained["add"]
    folder = tmp_path / "ckpts"
    folder.mkdir()
    for epoch in run.epochs:  # as a loop of torch.save(model.state_dict(), ...) writes them
        torch.save(run.state_dict(epoch=epoch), folder / f"checkpoint_{epoch}.pt")
    (folder / "split.json").write_text(json.dumps(run.train_indices.tolist()))
    (folder / "notes.txt").write_text("not a checkpoint")
    out = tmp_path / "run"
    args = ["import", str(folder), "--layout", "transformer-lens-dir", "--out", str(out)]
    assert main(args) == 0
    imported = open_run(out)
    assert imported.epochs == run.epochs
    assert torch.equal(imported.train_indices, run.train_indices)
    for epoch in (0, 50, 100):
        for name, tensor in run.state_dict(epoch=epoch).items():
            assert torch.equal(imported.state_dict(epoch=epoch)[name], tensor), (epoch, name)
    torch.save(run.state_dict(epoch=0), folder / "final.pt")  # no epoch in the name
    assert main([*args[:-1], str(tmp_path / "other")]) == 2
    assert "final.pt: no epoch number" in capsys.readouterr().err
