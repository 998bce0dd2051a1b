"""The chughtai, gromov, devinterp and zhong layouts: a grokinterp run written by hand into each
foreign layout (their key names and shapes, their element order) imports back to the same logits,
and each foreign network's own forward pass, written here from its public code, agrees."""

from __future__ import annotations

import json

import numpy as np
import torch
import torch.nn.functional as F

from grokinterp.cli import main
from grokinterp.data import all_tokens
from grokinterp.models import architecture
from grokinterp.storage.run import open_run
from grokinterp.tasks.groups import build_group
from tests.test_importers import native_run

SPLIT = list(range(2, 36, 3))


def model_logits(run_dir) -> torch.Tensor:
    """float64 logits of the run's final checkpoint on all grid pairs (grid order a * n + b)."""
    run = open_run(run_dir)
    return run.model().double()(all_tokens(run.config))[:, -1]


def random_run(tmp_path, cfg):
    model = architecture(cfg)
    params = {n: 0.5 * torch.randn(s) for n, s in model.param_shapes().items()}
    params |= {n: torch.zeros_like(params[n]) for n in getattr(model, "zero_biases", list)()}
    state = architecture(cfg).state_dict_of(params)
    return native_run(tmp_path / "run", cfg, SPLIT, [30], [state]), state


def imported(tmp_path, source, layout, *flags):
    out = tmp_path / "back"
    assert main(["import", str(source), "--layout", layout, "--out", str(out), *flags]) == 0
    return out


def sympy_s3():
    """Chughtai et al.'s S_3: their element i is sympy's i-th generated permutation; x * y is
    sympy's product (x first)."""
    from sympy.combinatorics import Permutation
    from sympy.combinatorics.named_groups import SymmetricGroup

    elements = list(SymmetricGroup(3).generate())
    table = [[elements.index(Permutation(x) * Permutation(y)) for y in elements] for x in elements]
    return [tuple(e.array_form) for e in elements], np.array(table)


def test_chughtai_s3_imports_with_their_element_order(tiny_cfg, tmp_path, capsys):
    cfg = tiny_cfg.replace(
        model="mlp", group="S3", operation="compose", embedding="separate",
        input_format="a-b", d_model=4, d_mlp=8, n_heads=1, train_frac=0.5,
    )  # fmt: skip
    run, state = random_run(tmp_path, cfg)
    perms = [tuple(p.tolist()) for p in build_group("S3").perms]
    theirs, their_table = sympy_s3()
    g = [perms.index(t) for t in theirs]  # their element i is grokinterp's g[i]
    # their (x, y) with x applied first is grokinterp's (a, b) = (y, x); hand conversion:
    e = cfg.d_model
    w_in = state["blocks.0.mlp.W_in"]
    folder = tmp_path / "S3_task"
    folder.mkdir()
    sd = {
        "W_x": state["embed.W_E_b"][g].clone(),
        "W_y": state["embed.W_E_a"][g].clone(),
        "W": torch.cat([w_in[e:], w_in[:e]]).clone(),
        "W_U": state["unembed.W_U"][:, g].clone(),
    }
    torch.save(sd, folder / "model.pt")
    cfg_json = {
        "lr": 0.001, "weight_decay": 1, "betas": [0.9, 0.98], "model": "OneLayerMLP",
        "layers": {"embed_dim": e, "hidden_dim": cfg.d_mlp}, "group": "SymmetricGroup",
        "group_parameter": 3, "frac_train": 0.5, "seed": 1, "num_epochs": 30,
    }  # fmt: skip
    (folder / "cfg.json").write_text(json.dumps(cfg_json))
    back = imported(tmp_path, folder / "model.pt", "chughtai")
    # their network on their inputs, from models.py's OneLayerMLP.forward, in float64
    x, y = torch.arange(36) // 6, torch.arange(36) % 6
    sd64 = {k: v.double() for k, v in sd.items()}
    hidden = torch.relu(torch.hstack([sd64["W_x"][x], sd64["W_y"][y]]) @ sd64["W"])
    their = hidden @ sd64["W_U"]
    got = model_logits(back)
    gt = torch.tensor(g)
    mapped = got[gt[y] * 6 + gt[x]][
        :, gt
    ]  # grokinterp pair (a, b) = (y, x), classes in their order
    torch.testing.assert_close(mapped, their, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(got, model_logits(run), rtol=1e-6, atol=1e-6)
    # their labels, mapped, are grokinterp's labels: the argmax agrees with the task
    labels = open_run(back).task.table.flatten()
    assert torch.equal(labels[gt[y] * 6 + gt[x]], gt[torch.as_tensor(their_table)[x, y]])
    # their split: torch.manual_seed(1), randperm(36), the first 18 rows
    rows = torch.randperm(36, generator=torch.Generator().manual_seed(1))[:18]
    expected = sorted((gt[rows % 6] * 6 + gt[rows // 6]).tolist())
    assert open_run(back).train_indices.tolist() == expected


def test_chughtai_refuses_a_missing_cfg_json_in_one_line(tmp_path, capsys):
    torch.save({"W_x": torch.zeros(6, 2)}, tmp_path / "model.pt")
    assert main(["import", str(tmp_path / "model.pt"), "--layout", "chughtai", "--out", "o"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cfg.json" in err[0] and not (tmp_path / "o").exists()


def test_gromov_imports_as_an_identity_embedding(tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace(model="mlp", input_format="a-b", activation="quadratic", d_mlp=8)
    p = cfg.p
    fc1, fc2 = torch.randn(8, 2 * p), torch.randn(p, 8)
    torch.save({"fc1.weight": fc1, "fc2.weight": fc2}, tmp_path / "gromov.pt")
    (tmp_path / "split.json").write_text(json.dumps(SPLIT))
    flags = ["--split-from", str(tmp_path / "split.json"), "--epoch", "5"]
    back = imported(tmp_path, tmp_path / "gromov.pt", "gromov", *flags)
    a, b = torch.arange(p * p) // p, torch.arange(p * p) % p
    onehots = torch.cat([F.one_hot(a, p), F.one_hot(b, p)], dim=1).double()
    their = ((onehots @ fc1.double().T) ** 2) @ fc2.double().T  # fc2(act(fc1(x))), act = x^2
    torch.testing.assert_close(model_logits(back), their, rtol=1e-6, atol=1e-5)
    assert open_run(back).config.activation == "quadratic"


def test_devinterp_imports_with_per_operand_biases(tiny_cfg, tmp_path):
    from grokinterp.presets import preset

    cfg = preset("devinterp-grokking").replace(p=11, d_model=4, d_mlp=8, batch_size=8)
    run, state = random_run(tmp_path, cfg.replace(train_frac=len(SPLIT) / 121))
    e = cfg.d_model
    w = state["blocks.0.mlp.W_in"]
    sd = {
        "embedding.weight": state["embed.W_E"].clone(),
        "linear1l.weight": w[:e].T.clone(),
        "linear1l.bias": state["blocks.0.mlp.b_in_a"].clone(),
        "linear1r.weight": w[e:].T.clone(),
        "linear1r.bias": state["blocks.0.mlp.b_in_b"].clone(),
        "linear2.weight": state["unembed.W_U"].T.clone(),
    }
    torch.save({"model": sd, "train_indices": SPLIT, "epoch": 30}, tmp_path / "devinterp.pt")
    back = imported(tmp_path, tmp_path / "devinterp.pt", "devinterp")
    a, b = torch.arange(121) // 11, torch.arange(121) % 11
    s = {k: v.double() for k, v in sd.items()}
    x1 = s["embedding.weight"][a] @ s["linear1l.weight"].T + s["linear1l.bias"]
    x2 = s["embedding.weight"][b] @ s["linear1r.weight"].T + s["linear1r.bias"]
    their = F.gelu(x1 + x2) @ s["linear2.weight"].T  # the notebook's MLP.forward
    torch.testing.assert_close(model_logits(back), their, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(model_logits(back), model_logits(run), rtol=1e-6, atol=1e-6)


def zhong_files(tmp_path, cfg, state, **config):
    """A grokinterp one-layer run written as Zhong et al.'s model_<id>.pt and config_<id>.json."""
    h, dh, d = cfg.n_heads, cfg.d_head, cfg.d_model
    attn, mlp = "blocks.0.attn.", "blocks.0.mlp."
    sd = {
        "embed.W_E": state["embed.W_E"].T.contiguous(),
        "pos_embed.W_pos": state["pos_embed.W_pos"].clone(),
        **{f"{attn}W_{x}": state[f"{attn}W_{x}"].transpose(1, 2).contiguous() for x in "KQV"},
        f"{attn}W_O": state[f"{attn}W_O"].reshape(h * dh, d).T.contiguous(),
        f"{attn}mask": torch.tril(torch.ones(2, 2)),
        f"{mlp}W_in": state[f"{mlp}W_in"].T.contiguous(),
        f"{mlp}b_in": state[f"{mlp}b_in"].clone(),
        f"{mlp}W_out": state[f"{mlp}W_out"].T.contiguous(),
        f"{mlp}b_out": state[f"{mlp}b_out"].clone(),
        "unembed.W_U": state["unembed.W_U"].clone(),
    }
    torch.save(sd, tmp_path / "model_abc.pt")
    full = {
        "funcs": f"lambda x: (x[0]+x[1])%{cfg.p}", "C": cfg.p, "n_heads": h, "d_model": d,
        "n_layers": 1, "act_fn": "ReLU", "epoch": 30, "lr": 0.001, "weight_decay": 2.0,
        "frac": 0.8, "attn_coeff": cfg.attention_rate, "diff_vocab": 0, "eqn_sign": 0,
    }  # fmt: skip
    (tmp_path / "config_abc.json").write_text(json.dumps(full | config))
    (tmp_path / "split.json").write_text(json.dumps(SPLIT))
    return sd


def zhong_forward(sd: dict, tokens: torch.Tensor, coeff: float) -> torch.Tensor:
    """train-main.py's Transformer.forward (no mask applied), last position, float64."""
    s = {k: v.double() for k, v in sd.items()}
    x = s["embed.W_E"][:, tokens].permute(1, 2, 0) + s["pos_embed.W_pos"]
    k, q, v = (torch.einsum("ihd,bpd->biph", s[f"blocks.0.attn.W_{n}"], x) for n in "KQV")
    scores = torch.einsum("biph,biqh->biqp", k, q) / np.sqrt(k.shape[-1])
    attn = F.softmax(scores, dim=-1) * coeff + (1 - coeff)
    z = torch.einsum("biph,biqp->biqh", v, attn)
    z = z.permute(0, 2, 1, 3).flatten(2)
    x = x + torch.einsum("df,bqf->bqd", s["blocks.0.attn.W_O"], z)
    pre = torch.einsum("md,bpd->bpm", s["blocks.0.mlp.W_in"], x) + s["blocks.0.mlp.b_in"]
    x = x + torch.einsum("dm,bpm->bpd", s["blocks.0.mlp.W_out"], F.relu(pre))
    x = x + s["blocks.0.mlp.b_out"]
    return (x @ s["unembed.W_U"])[:, -1]


def test_zhong_keeps_the_attention_rate_and_the_input_without_eq(tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace(input_format="a-b", attention_rate=0.3, d_mlp=4 * tiny_cfg.d_model)
    run, state = random_run(tmp_path, cfg)
    sd = zhong_files(tmp_path, cfg, state)
    flags = ["--split-from", str(tmp_path / "split.json")]
    back = imported(tmp_path, tmp_path / "model_abc.pt", "zhong", *flags)
    got = open_run(back).config
    assert (got.attention_rate, got.attention_rule, got.input_format) == (0.3, "zhong", "a-b")
    their = zhong_forward(sd, all_tokens(cfg), 0.3)
    torch.testing.assert_close(model_logits(back), their, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(model_logits(back), model_logits(run), rtol=1e-6, atol=1e-6)


def test_zhong_refuses_what_grokinterp_cannot_represent(tiny_cfg, tmp_path, capsys):
    cfg = tiny_cfg.replace(input_format="a-b", d_mlp=4 * tiny_cfg.d_model)
    _, state = random_run(tmp_path, cfg)
    for config, words in (({"n_layers": 2}, "causal"), ({"diff_vocab": 1}, "diff_vocab")):
        zhong_files(tmp_path, cfg, state, **config)
        cmd = ["import", str(tmp_path / "model_abc.pt"), "--layout", "zhong", "--out", "o"]
        assert main([*cmd, "--split-from", str(tmp_path / "split.json")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
    zhong_files(tmp_path, cfg, state)
    assert main(["import", str(tmp_path / "model_abc.pt"), "--layout", "zhong", "--out", "o"]) == 2
    assert "--split-from" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
