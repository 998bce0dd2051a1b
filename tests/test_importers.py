"""`grokinterp import`: runs rewritten into the foreign layouts import back to the same analysis."""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest
import torch

from grokinterp.analysis.analyze import Summary, analyze_run, load_measures
from grokinterp.cli import main
from grokinterp.errors import UsageError
from grokinterp.models import architecture
from grokinterp.storage import store
from grokinterp.storage.importers import Options, import_run
from grokinterp.storage.run import open_run

COMPARED = ("train_loss", "test_loss", "all_loss", "train_acc", "test_acc")
COMPARED += ("restricted_loss", "restricted_loss_test", "excluded_loss")
EPOCHS = [0, 10, 20, 40]


def paper_reference_split(p: int, frac: float, seed: int) -> list[int]:
    """gen_train_test of the paper's transformers.py, as it runs: the global random module."""
    state = random.getstate()
    triples = [(i, j, p) for i in range(p) for j in range(p)]
    random.seed(seed)
    random.shuffle(triples)
    random.setstate(state)
    return sorted(i * p + j for i, j, _ in triples[: int(frac * len(triples))])


def random_states(cfg, epochs, zero_biases: bool) -> list[dict]:
    """grokinterp state dicts with random weights (the paper's model: attention and unembedding
    biases zero)."""
    states = []
    for _ in epochs:
        params = {
            name: 0.3 * torch.randn(shape)
            for name, shape in architecture(cfg).param_shapes().items()
        }
        if zero_biases:
            params.update(
                {name: torch.zeros_like(params[name]) for name in architecture(cfg).zero_biases()}
            )
        states.append(architecture(cfg).state_dict_of(params))
    return states


def native_run(run_dir, cfg, split, epochs, states):
    store.write_run_files(run_dir, cfg, torch.tensor(sorted(split)))
    for epoch, state in zip(epochs, states, strict=True):
        store.save_checkpoint(run_dir, cfg, epoch, state)
    return run_dir


def to_paper(state: dict, cfg) -> dict:
    """A grokinterp state dict in the layout of the paper's transformers.py."""
    h, dh, d = cfg.n_heads, cfg.d_head, cfg.d_model
    attn, mlp = "blocks.0.attn.", "blocks.0.mlp."
    eq_output = 5.0 * torch.randn(d, 1)  # the paper's extra output for `=`, which must be dropped
    return {
        "embed.W_E": state["embed.W_E"].T.contiguous(),
        "pos_embed.W_pos": state["pos_embed.W_pos"].clone(),
        **{f"{attn}W_{x}": state[f"{attn}W_{x}"].transpose(1, 2).contiguous() for x in "KQV"},
        f"{attn}W_O": state[f"{attn}W_O"].reshape(h * dh, d).T.contiguous(),
        f"{attn}mask": torch.tril(torch.ones(3, 3)),
        f"{mlp}W_in": state[f"{mlp}W_in"].T.contiguous(),
        f"{mlp}b_in": state[f"{mlp}b_in"].clone(),
        f"{mlp}W_out": state[f"{mlp}W_out"].T.contiguous(),
        f"{mlp}b_out": state[f"{mlp}b_out"].clone(),
        "unembed.W_U": torch.cat([state["unembed.W_U"], eq_output], dim=1),
    }


def paper_logits(sd: dict, tokens: torch.Tensor) -> torch.Tensor:
    """The forward pass of the paper's `Transformer` (transformers.py), from its einsum specs."""
    x = torch.einsum("dbp->bpd", sd["embed.W_E"][:, tokens]) + sd["pos_embed.W_pos"][:3]
    k, q, v = (torch.einsum("ihd,bpd->biph", sd[f"blocks.0.attn.W_{n}"], x) for n in "KQV")
    scores = torch.einsum("biph,biqh->biqp", k, q)
    scores = torch.tril(scores) - 1e10 * (1 - sd["blocks.0.attn.mask"])
    pattern = torch.softmax(scores / math.sqrt(k.shape[-1]), dim=-1)
    z = torch.einsum("biph,biqp->biqh", v, pattern)
    z_flat = z.permute(0, 2, 1, 3).flatten(2)  # 'b i q h -> b q (i h)'
    x = x + torch.einsum("df,bqf->bqd", sd["blocks.0.attn.W_O"], z_flat)
    pre = torch.einsum("md,bpd->bpm", sd["blocks.0.mlp.W_in"], x) + sd["blocks.0.mlp.b_in"]
    post = torch.einsum("dm,bpm->bpd", sd["blocks.0.mlp.W_out"], torch.relu(pre))
    return (x + post + sd["blocks.0.mlp.b_out"]) @ sd["unembed.W_U"]


def assert_same_analysis(native, imported, tmp_path):
    ours = analyze_run(native, tmp_path / "analysis-native", progress=False).path
    theirs = analyze_run(imported, tmp_path / "analysis-imported", progress=False).path
    a, b = load_measures(ours), load_measures(theirs)
    assert list(a["epoch"]) == list(b["epoch"])
    for column in COMPARED:
        np.testing.assert_allclose(b[column], a[column], rtol=1e-6, err_msg=column)
    pd.testing.assert_frame_equal(a, b, rtol=1e-6)  # and every other measure
    assert Summary.load(theirs).key_frequencies == Summary.load(ours).key_frequencies


def paper_file(path, cfg, states, epochs, config=None, **extra):
    data = {"state_dicts": [to_paper(s, cfg) for s in states], "epochs": list(epochs), **extra}
    if config is not None:
        data["config"] = config
    torch.save(data, path)
    return data


def test_paper_layout_imports_to_the_same_analysis(tiny_cfg, tmp_path):
    seed, cfg = 3, tiny_cfg.replace(seed=3, data_seed=3)
    split = paper_reference_split(cfg.p, cfg.train_frac, seed)
    states = random_states(cfg, EPOCHS, zero_biases=True)
    native = native_run(tmp_path / "native", cfg, split, EPOCHS, states)
    curves = {"train_losses": [4.0, 3.5, 3.0], "test_losses": [4.1, 4.2, 4.3]}
    config = {"p": cfg.p, "frac_train": cfg.train_frac, "seed": seed, "lr": 3e-3, "use_ln": False}
    source = tmp_path / "full_run.pth"
    data = paper_file(source, cfg, states, EPOCHS, config, **curves)

    out = tmp_path / "imported"
    assert main(["import", str(source), "--layout", "paper", "--out", str(out)]) == 0
    run = open_run(out)
    assert run.train_indices.tolist() == split  # the random.seed/shuffle rule, rebuilt
    assert run.epochs == EPOCHS
    assert run.config.preset == "imported-paper" and run.config.lr == 3e-3
    assert (run.config.epochs, run.config.save_every, run.config.warmup_steps) == (40, 10, 10)
    assert (run.config.d_model, run.config.n_heads, run.config.d_mlp) == (16, 2, 32)
    assert_same_analysis(native, out, tmp_path)

    tokens = torch.tensor([[a, b, cfg.p] for a in range(cfg.p) for b in range(cfg.p)])
    theirs = paper_logits(data["state_dicts"][-1], tokens)[:, -1, :-1]  # their analysis' logits
    with torch.no_grad():
        ours = run.model(epoch=40)(tokens)[:, -1]
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)

    metrics = run.metrics()  # the recorded curves; accuracies unknown, so NaN
    assert metrics.index.tolist() == [0, 1, 2]
    assert metrics["train_loss"].tolist() == curves["train_losses"]
    assert metrics["test_loss"].tolist() == curves["test_losses"]
    assert metrics[["train_acc", "test_acc", "test_acc_unseen"]].isna().all().all()
    assert np.isnan(store.read_metrics_array(out)[:, 3:]).all()


def test_paper_file_without_config_takes_flags(tiny_cfg, tmp_path):
    states = random_states(tiny_cfg, [7], zero_biases=True)
    source = tmp_path / "final.pth"
    torch.save({"model": to_paper(states[0], tiny_cfg), "epoch": 7}, source)
    options = Options(p=tiny_cfg.p, train_frac=0.4, seed=11)
    run = open_run(import_run(source, tmp_path / "run", "paper", options)[0])
    assert run.train_indices.tolist() == paper_reference_split(tiny_cfg.p, 0.4, 11)
    assert (run.config.train_frac, run.config.seed, run.config.data_seed) == (0.4, 11, 11)
    assert run.epochs == [7] and (run.config.epochs, run.config.save_every) == (7, 7)
    assert run.metrics().empty  # no loss curves in the file: the header alone


def test_transformer_lens_demo_layout_imports_to_the_same_analysis(tiny_cfg, tmp_path):
    from grokinterp.training.loop import train_runs

    native = tmp_path / "native"
    train_runs([tiny_cfg], [native], progress=False)
    run = open_run(native)
    states = [run.state_dict(epoch=e) for e in run.epochs]
    metrics = run.metrics()
    shuffled = run.train_indices[torch.randperm(len(run.train_indices))]
    source = tmp_path / "grokking_demo.pth"
    torch.save(
        {
            "model": states[-1],
            "checkpoints": states,
            "checkpoint_epochs": run.epochs,
            "train_losses": metrics["train_loss"].tolist(),
            "test_losses": metrics["test_loss"].tolist(),
            "train_indices": shuffled,
        },
        source,
    )
    out = tmp_path / "imported"
    assert main(["import", str(source), "--layout", "transformer-lens", "--out", str(out)]) == 0
    imported = open_run(out)
    assert torch.equal(imported.train_indices, run.train_indices)
    assert imported.config.preset == "imported-tl" and imported.epochs == run.epochs
    assert imported.config.n_train == tiny_cfg.n_train  # train_frac from the split's size
    assert_same_analysis(native, out, tmp_path)
    theirs = imported.metrics()
    pd.testing.assert_series_equal(theirs["train_loss"], metrics["train_loss"])
    pd.testing.assert_series_equal(theirs["test_loss"], metrics["test_loss"])
    assert theirs["train_acc"].isna().all()


def demo_reference_split(p: int, frac: float, data_seed: int) -> list[int]:
    """The grokking demo's split, as it runs: the global torch seed."""
    torch.manual_seed(data_seed)
    indices = torch.randperm(p * p)
    return sorted(indices[: int(p * p * frac)].tolist())


def test_transformer_lens_bare_state_dict(tiny_cfg, tmp_path):
    state = random_states(tiny_cfg, [0], zero_biases=False)[0]
    eq_output = torch.randn(tiny_cfg.d_model, 1)
    state["unembed.W_U"] = torch.cat([state["unembed.W_U"], eq_output], dim=1)  # d_vocab_out p+1
    del state["unembed.b_U"], state["blocks.0.attn.b_Q"]
    source = tmp_path / "model.pt"
    torch.save(state, source)
    options = Options(data_seed=598, train_frac=0.3, seed=999, epoch=0)
    run = open_run(import_run(source, tmp_path / "run", "transformer-lens", options)[0])
    assert run.train_indices.tolist() == demo_reference_split(tiny_cfg.p, 0.3, 598)
    loaded = run.state_dict(epoch=0)
    assert torch.equal(loaded["unembed.W_U"], state["unembed.W_U"][:, : tiny_cfg.p])
    assert not loaded["unembed.b_U"].any() and not loaded["blocks.0.attn.b_Q"].any()
    assert torch.equal(loaded["blocks.0.attn.b_K"], state["blocks.0.attn.b_K"])
    assert (run.config.seed, run.config.data_seed, run.config.p) == (999, 598, tiny_cfg.p)


def test_split_from_json(tiny_cfg, tmp_path):
    state = random_states(tiny_cfg, [0], zero_biases=False)[0]
    torch.save({"model": state}, tmp_path / "model.pt")
    split = [5, 17, 3, 40, 99]
    (tmp_path / "split.json").write_text(str(split))
    options = Options(split_from=tmp_path / "split.json", epoch=0)
    run = open_run(
        import_run(tmp_path / "model.pt", tmp_path / "run", "transformer-lens", options)[0]
    )
    assert run.train_indices.tolist() == sorted(split)
    assert run.config.n_train == len(split)


TRIPPED = []


def _trip():
    TRIPPED.append(True)


class Tripwire:
    """Unpickling this calls `_trip`: code that the importer must never run."""

    def __reduce__(self):
        return (_trip, ())


def _bad_source(case: str, cfg, tmp_path) -> tuple[list[str], dict]:
    """The flags and file of one user mistake (a paper-layout file unless the case says)."""
    state = random_states(cfg, [0], zero_biases=True)[0]
    paper = to_paper(state, cfg)
    config = {"p": cfg.p, "frac_train": cfg.train_frac, "seed": 0}
    flags = ["--layout", "paper"]
    if case == "unknown layout":
        flags = ["--layout", "keras"]
    elif case == "needs code":
        return flags, {"model": Tripwire(), "config": config}
    elif case == "config without p":
        del config["p"]
    elif case == "flag contradicts config":
        flags += ["--p", "13"]
    elif case == "gelu":
        config["act_type"] = "GeLU"
    elif case == "missing weights":
        del paper["blocks.0.mlp.W_in"]
    elif case == "extra weights":
        paper["blocks.1.attn.W_Q"] = paper["blocks.0.attn.W_Q"]
    elif case == "layer norm":
        flags = ["--layout", "transformer-lens", "--data-seed", "0", "--train-frac", "0.3"]
        return flags, {"model": {**state, "blocks.0.ln1.w": torch.ones(cfg.d_model)}}
    elif case == "wrong shape":
        paper["blocks.0.attn.W_O"] = paper["blocks.0.attn.W_O"][:, :-1]
    elif case == "flag contradicts optimizer":
        flags += ["--weight-decay", "1"]
        group = {"lr": 1e-3, "betas": (0.9, 0.98), "eps": 1e-8, "weight_decay": 0.0}
        return flags, {
            "model": paper,
            "epoch": 100,
            "config": config,
            "optimizer": {"state": {}, "param_groups": [group]},
        }
    elif case == "no epoch":
        return flags, {"model": paper, "config": config}
    elif case == "random labels":
        config["fn_name"] = "rand"
    elif case == "group in paper":
        flags += ["--group", "S3"]
    elif case == "curve past the epoch":
        return flags, {"model": paper, "epoch": 3, "config": config, "train_losses": [1.0] * 9}
    return flags, {"model": paper, "epoch": 100, "config": config}


BAD_CASES = [
    "unknown layout",
    "needs code",
    "config without p",
    "flag contradicts config",
    "gelu",
    "missing weights",
    "extra weights",
    "layer norm",
    "wrong shape",
    "flag contradicts optimizer",
    "no epoch",
    "random labels",
    "group in paper",
    "curve past the epoch",
    "existing out",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_user_mistakes_exit_2_and_write_nothing(case, tiny_cfg, tmp_path, capsys):
    flags, data = _bad_source(case, tiny_cfg, tmp_path)
    source, out = tmp_path / "source.pth", tmp_path / "out"
    torch.save(data, source)
    if case == "existing out":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    before = sorted(tmp_path.iterdir())
    assert main(["import", str(source), *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("grokinterp: error: ") and err.count("\n") == 1, err
    assert sorted(tmp_path.iterdir()) == before  # no run, no temporary directory
    if case == "existing out":
        assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert not TRIPPED


def test_refusal_names_the_code_it_would_run(tiny_cfg, tmp_path):
    torch.save({"model": Tripwire()}, tmp_path / "evil.pth")
    with pytest.raises(UsageError, match="_trip"):
        import_run(tmp_path / "evil.pth", tmp_path / "run", "paper")
    assert not TRIPPED


def test_unreadable_files_are_named(tiny_cfg, tmp_path):
    torch.save(random_states(tiny_cfg, [0], zero_biases=False)[0], tmp_path / "model.pt")
    (tmp_path / "truncated.pt").write_bytes((tmp_path / "model.pt").read_bytes()[:2000])
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    for name in ("truncated.pt", "notes.pt", "missing.pt"):
        with pytest.raises(UsageError, match=name):
            import_run(tmp_path / name, tmp_path / "run", "transformer-lens")
    assert not (tmp_path / "run").exists()


def test_failure_while_writing_leaves_nothing(tiny_cfg, tmp_path, monkeypatch):
    states = random_states(tiny_cfg, EPOCHS, zero_biases=True)
    config = {"p": tiny_cfg.p, "frac_train": tiny_cfg.train_frac, "seed": 0}
    paper_file(tmp_path / "run.pth", tiny_cfg, states, EPOCHS, config)
    save = store.save_checkpoint

    def disk_full_at_epoch_20(run_dir, cfg, epoch, state):
        if epoch == 20:
            raise OSError("No space left on device")
        return save(run_dir, cfg, epoch, state)

    monkeypatch.setattr(store, "save_checkpoint", disk_full_at_epoch_20)
    with pytest.raises(OSError):
        import_run(tmp_path / "run.pth", tmp_path / "out", "paper")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pth"]
