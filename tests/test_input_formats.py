"""Input formats `[a, b, =]`, `[a, b]` and `[a, op, b, =]`: the tokens and vocabulary each one
means, a transformer written out here with plain torch ops that grokinterp's forwards must
reproduce, training, resume and analysis in each format, old configs unchanged, and the formats
a family cannot take refused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from grokinterp import data
from grokinterp.analysis.analyze import analyze_run
from grokinterp.analysis.measures.clock_pizza import operand_gradients
from grokinterp.cli import main
from grokinterp.config import RunConfig
from grokinterp.errors import UsageError
from grokinterp.models import architecture
from grokinterp.storage import store
from grokinterp.storage.analysis_dir import run_fingerprint
from grokinterp.storage.analysis_format import load_measures
from grokinterp.storage.run import open_run
from grokinterp.training.loop import resume_runs, train_runs
from tests.conftest import tiny_config
from tests.helpers import killed_at_step

ROOT = Path(__file__).parents[1]
NEW_FORMATS = ("a-b", "a-op-b-eq")


def hand_tokens(fmt: str, a: int, b: int, n: int) -> list[int]:
    """A pair written out by hand: `=` is the token n, `op` the token n + 1."""
    return {"a-b-eq": [a, b, n], "a-b": [a, b], "a-op-b-eq": [a, n + 1, b, n]}[fmt]


@pytest.mark.parametrize(
    ("fmt", "group", "expected"),
    [
        ("a-b-eq", None, (12, 3, {"=": 11})),
        ("a-b", None, (11, 2, {})),
        ("a-op-b-eq", None, (13, 4, {"=": 11, "op": 12})),
        ("a-b", "S3", (6, 2, {})),
        ("a-op-b-eq", "S3", (8, 4, {"=": 6, "op": 7})),
    ],
)
def test_each_format_has_its_vocabulary_and_positions(fmt, group, expected):
    cfg = tiny_config().replace(input_format=fmt)
    if group:
        cfg = cfg.replace(group=group, operation="compose")
    cfg.validate()
    assert (cfg.d_vocab, cfg.n_ctx, cfg.symbol_ids) == expected
    assert cfg.d_vocab_out == cfg.n_elements
    n = cfg.n_elements
    want = [hand_tokens(fmt, a, b, n) for a in range(n) for b in range(n)]
    assert data.all_tokens(cfg).tolist() == want
    shapes = architecture(cfg).param_shapes()
    assert shapes["embed.W_E"] == (expected[0], cfg.d_model)
    assert shapes["pos_embed.W_pos"] == (expected[1], cfg.d_model)


def random_weights(cfg: RunConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Every parameter drawn at scale 0.5 (softmax far from uniform), biases and LayerNorm
    weights included, so that a wrong token id or position moves the logits."""
    gen = torch.Generator().manual_seed(seed)
    shapes = architecture(cfg).param_shapes()
    return {name: torch.randn(shape, generator=gen) * 0.5 for name, shape in shapes.items()}


def written_out(cfg: RunConfig, w: dict, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """A transformer forward in plain torch, float64: causal attention whose pattern is
    c * softmax + (1 - c) on every visible key (Zhong et al.'s attn_coeff c), optional
    LayerNorm before each part, ReLU MLP. Returns the token embeddings `embed` (a leaf, for
    gradients) and the logits at every position."""
    w = {name: value.double() for name, value in w.items()}
    pos = tokens.shape[1]
    visible = torch.tril(torch.ones(pos, pos, dtype=torch.float64))
    c = cfg.attention_rate

    def norm(x, name):
        if cfg.layer_norm == "none":
            return x
        centred = x - x.mean(-1, keepdim=True)
        return (
            centred / (centred.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt() * w[f"{name}.w"]
            + w[f"{name}.b"]
        )

    embed = w["embed.W_E"][tokens].requires_grad_(True)
    x = embed + w["pos_embed.W_pos"]
    for layer in range(cfg.n_layers):
        p = f"blocks.{layer}."
        y = norm(x, p + "ln1")
        q, k, v = (
            torch.einsum("bpd,hde->bhpe", y, w[p + f"attn.W_{m}"]) + w[p + f"attn.b_{m}"][:, None]
            for m in "QKV"
        )
        scores = (q @ k.transpose(-1, -2) / math.sqrt(cfg.d_head)).masked_fill(
            visible == 0, -math.inf
        )
        pattern = c * scores.softmax(dim=-1) + (1 - c) * visible
        x = x + torch.einsum("bhqe,hed->bqd", pattern @ v, w[p + "attn.W_O"]) + w[p + "attn.b_O"]
        hidden = torch.relu(norm(x, p + "ln2") @ w[p + "mlp.W_in"] + w[p + "mlp.b_in"])
        x = x + hidden @ w[p + "mlp.W_out"] + w[p + "mlp.b_out"]
    logits = norm(x, "ln_final") @ w["unembed.W_U"] + w["unembed.b_U"]
    return {"embed": embed, "logits": logits}


MODELS = {
    "1 layer": {},
    "1 layer, attention rate 0.4": {"attention_rate": 0.4},
    "2 layers, pre-LN, attention rate 0": {"n_layers": 2, "layer_norm": "pre", "attention_rate": 0},
}
PAIRS = [(0, 4), (3, 3), (10, 1), (7, 9), (5, 0)]
PAIRS_A, PAIRS_B = torch.tensor(PAIRS).T


@pytest.mark.parametrize("model", MODELS.values(), ids=MODELS.keys())
@pytest.mark.parametrize("fmt", ["a-b-eq", *NEW_FORMATS])
def test_both_forwards_reproduce_a_transformer_written_out(fmt, model):
    cfg = tiny_config().replace(input_format=fmt, **model).validate()
    w = random_weights(cfg)
    n = cfg.n_elements
    tokens = torch.tensor([hand_tokens(fmt, a, b, n) for a, b in PAIRS])
    expected = written_out(cfg, w, tokens)["logits"].float()
    arch = architecture(cfg)
    fast = arch.logits({k: v[None] for k, v in w.items()}, PAIRS_A[None], PAIRS_B[None])[0]
    hooked = arch.hooked()
    hooked.load_state_dict(arch.state_dict_of(w))
    assert torch.equal(data.tokens(cfg, PAIRS_A, PAIRS_B), tokens)
    with torch.no_grad():
        every = hooked(tokens)
    close = dict(atol=2e-4 * expected.abs().max().item(), rtol=0)
    torch.testing.assert_close(every, expected, **close)  # every position
    torch.testing.assert_close(fast, expected[:, -1], **close)  # the answer: the last position


@pytest.mark.parametrize("fmt", NEW_FORMATS)
def test_the_fast_internals_are_the_hooked_modules_at_the_answer(fmt):
    """Neurons and attention patterns (what the measures read) in every format: two
    implementations, the batched fast forward and the hooked module's cache."""
    for model in MODELS.values():
        cfg = tiny_config().replace(input_format=fmt, **model).validate()
        w = random_weights(cfg, seed=1)
        arch = architecture(cfg)
        hooked = arch.hooked()
        hooked.load_state_dict(arch.state_dict_of(w))
        a, b = data.pair_operands(cfg.n_elements)
        with torch.no_grad():
            _, cache = hooked.run_with_cache(data.tokens(cfg, a, b))
            fast = arch.forward({k: v[None] for k, v in w.items()}, a[None], b[None])
        for layer in range(cfg.n_layers):
            want = cache[f"blocks.{layer}.mlp.hook_post"][:, -1]
            torch.testing.assert_close(fast.neurons[layer][0], want, atol=1e-5, rtol=1e-5)
            want = cache[f"blocks.{layer}.attn.hook_pattern"][:, :, -1]  # [pair, head, n_ctx]
            assert want.shape[-1] == cfg.n_ctx
            torch.testing.assert_close(fast.patterns[layer][0], want, atol=1e-6, rtol=0)


@pytest.mark.parametrize("fmt", ["a-b-eq", *NEW_FORMATS])
def test_operand_gradients_are_at_a_and_b_positions(fmt):
    """Zhong et al.'s dQ_abc / dE_a and dQ_abc / dE_b: the gradients of the written-out
    forward at the positions that hold a and b (b sits at position 2 in [a, op, b, =])."""
    cfg = tiny_config().replace(input_format=fmt, attention_rate=0.6).validate()
    w = random_weights(cfg, seed=2)
    c = torch.tensor([1, 8, 2, 2, 10])
    n = cfg.n_elements
    tokens = torch.tensor([hand_tokens(fmt, a, b, n) for a, b in PAIRS])
    out = written_out(cfg, w, tokens)
    picked = out["logits"][:, -1].gather(1, c[:, None]).sum()
    (grad,) = torch.autograd.grad(picked, [out["embed"]])
    b_at = {"a-b-eq": 1, "a-b": 1, "a-op-b-eq": 2}[fmt]
    arch = architecture(cfg)
    grad_a, grad_b = operand_gradients(arch, arch.state_dict_of(w), PAIRS_A, PAIRS_B, c)
    torch.testing.assert_close(grad_a, grad[:, 0], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(grad_b, grad[:, b_at], atol=1e-6, rtol=1e-6)


def test_an_mlp_reads_a_and_b_alone_in_either_format():
    """Chughtai et al.'s network, ReLU([E_a, E_b] W_in) W_U, whichever format writes the pair."""
    cfg = tiny_config().replace(model="mlp").validate()
    w = random_weights(cfg)
    a, b = data.pair_operands(cfg.n_elements)
    both = torch.cat([w["embed.W_E"][a], w["embed.W_E"][b]], dim=1)
    expected = torch.relu(both @ w["blocks.0.mlp.W_in"]) @ w["unembed.W_U"]
    for fmt in ("a-b-eq", "a-b"):
        arch = architecture(cfg.replace(input_format=fmt))
        hooked = arch.hooked()
        hooked.load_state_dict(arch.state_dict_of(w))
        tokens = data.tokens(arch.cfg, a, b)
        assert tokens.shape == (len(a), len(hand_tokens(fmt, 0, 0, 0)))
        with torch.no_grad():
            torch.testing.assert_close(hooked(tokens)[:, -1], expected, atol=1e-5, rtol=1e-5)
        fast = arch.logits({k: v[None] for k, v in w.items()}, a[None], b[None])[0]
        torch.testing.assert_close(fast, expected, atol=1e-5, rtol=1e-5)


RUNS = {
    "transformer [a, b]": {"input_format": "a-b"},
    "transformer [a, op, b, =]": {"input_format": "a-op-b-eq"},
    "mlp [a, b]": {"input_format": "a-b", "model": "mlp"},
}


@pytest.mark.parametrize("changes", RUNS.values(), ids=RUNS.keys())
def test_a_run_in_each_format_trains_resumes_and_analyses(changes, tmp_path):
    cfg = tiny_config().replace(**changes).validate()
    whole = tmp_path / "whole"
    train_runs([cfg], [whole], progress=False)
    run = open_run(whole)
    assert run.config == cfg
    assert json.loads((whole / "config.json").read_text())["input_format"] == cfg.input_format
    metrics = run.metrics()
    assert metrics["train_loss"].iloc[-1] < 0.75 * metrics["train_loss"].iloc[0]  # it learns

    # the recorded loss of the last checkpoint, recomputed through Run.inputs and the hooked
    # module: another token path than training's
    tokens, labels = run.inputs("train")
    n = cfg.n_elements
    index = run.train_indices
    want = [hand_tokens(cfg.input_format, int(i) // n, int(i) % n, n) for i in index]
    assert tokens.tolist() == want
    with torch.no_grad():
        logits = run.model()(tokens)[:, -1].double()
    loss = torch.nn.functional.cross_entropy(logits, labels).item()
    assert abs(loss - metrics.loc[cfg.epochs, "train_loss"]) < 1e-5 * max(loss, 1e-3)

    killed = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt), killed_at_step(30):
        train_runs([cfg], [killed], progress=False)
    resume_runs([killed], progress=False)
    again = open_run(killed).state_dict()
    assert all(torch.equal(again[k], v) for k, v in run.state_dict().items())
    assert (killed / store.METRICS_FILE).read_bytes() == (whole / store.METRICS_FILE).read_bytes()

    measures = load_measures(analyze_run(whole, tmp_path / "analysis", progress=False).path)
    assert list(measures["epoch"]) == cfg.save_epochs
    for column in ("restricted_loss", "excluded_loss", "test_loss"):
        assert np.isfinite(measures[column]).all(), column
    train_loss = metrics.loc[cfg.save_epochs, "train_loss"].to_numpy()
    np.testing.assert_allclose(measures["train_loss"], train_loss, rtol=1e-5)


def test_an_old_config_json_reads_and_writes_byte_for_byte():
    """The shipped reference run's config.json, written before input formats, reads as
    [a, b, =], writes back the same bytes, and gives the fingerprint its shipped analysis
    recorded."""
    run_dir = ROOT / "checkpoints" / "reference-canonical"
    text = (run_dir / "config.json").read_bytes()
    cfg = store.read_config(run_dir)
    assert cfg.input_format == "a-b-eq" and (cfg.n_ctx, cfg.d_vocab) == (3, 114)
    assert cfg.to_json().encode() == text
    summary = json.loads((ROOT / "analyses" / "reference-canonical" / "summary.json").read_text())
    assert run_fingerprint(cfg, store.read_split(run_dir)) == summary["run_fingerprint"]


def test_the_format_is_written_only_away_from_its_default():
    cfg = tiny_config()
    assert "input_format" not in cfg.to_dict()
    for fmt in NEW_FORMATS:
        other = cfg.replace(input_format=fmt)
        assert other.to_dict()["input_format"] == fmt
        assert RunConfig.from_json(other.to_json()) == other
        assert not other.same_architecture(cfg)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--model", "mlp", "--input-format", "a-op-b-eq"], "does not take input_format"),
        (["--input-format", "a-b-c"], "unknown input_format 'a-b-c'"),
        (["--input-format", "a op b ="], "unknown input_format"),
    ],
)
def test_a_format_the_model_cannot_take_is_one_line_exit_2_and_writes_nothing(
    args, words, tmp_path, capsys
):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--epochs", "2", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("grokinterp: error: ") and words in err[0], err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_a_config_json_with_an_unknown_format_is_refused():
    data = tiny_config().to_dict() | {"input_format": "eq-a-b"}
    with pytest.raises(UsageError, match="unknown input_format 'eq-a-b'"):
        RunConfig.from_dict(data)
    mlp = tiny_config().replace(model="mlp").to_dict() | {"input_format": "a-op-b-eq"}
    with pytest.raises(UsageError, match="model mlp does not take input_format 'a-op-b-eq'"):
        RunConfig.from_dict(mlp)


def test_a_run_name_says_its_format(tmp_path, capsys):
    args = ["train", "--p", "11", "--d-model", "8", "--n-heads", "2", "--d-mlp", "8"]
    args += ["--epochs", "2", "--seeds", "0", "--input-format", "a-b", "--out", str(tmp_path)]
    assert main([*args, "--quiet"]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["small-a-b-seed0"]
    assert open_run(tmp_path / "small-a-b-seed0").config.input_format == "a-b"


def test_a_transformer_lens_model_of_two_positions_imports_as_a_b(tmp_path, capsys):
    """A HookedTransformer state dict with n_ctx 2 and d_vocab p (Zhong et al.'s [a, b]) is an
    `a-b` run whose logits are the written-out forward's; one of 4 positions is refused, its
    op and `=` ids being unknown."""
    cfg = tiny_config().replace(input_format="a-b").validate()
    w = random_weights(cfg, seed=3)
    torch.save({"model": architecture(cfg).state_dict_of(w)}, tmp_path / "ab.pt")
    flags = ["--layout", "transformer-lens", "--data-seed", "0", "--train-frac", "0.5"]
    flags += ["--epoch", "0"]
    out = tmp_path / "imported"
    assert main(["import", str(tmp_path / "ab.pt"), *flags, "--out", str(out)]) == 0
    run = open_run(out)
    assert (run.config.input_format, run.config.p) == ("a-b", cfg.p)
    tokens = torch.tensor([hand_tokens("a-b", a, b, cfg.p) for a, b in PAIRS])
    with torch.no_grad():
        got = run.model()(tokens)[:, -1]
    expected = written_out(cfg, w, tokens)["logits"][:, -1].float()
    torch.testing.assert_close(got, expected, atol=2e-4 * expected.abs().max().item(), rtol=0)

    four = tiny_config().replace(input_format="a-op-b-eq")
    torch.save({"model": architecture(four).state_dict_of(random_weights(four))}, tmp_path / "x.pt")
    capsys.readouterr()
    refused = tmp_path / "refused"
    assert main(["import", str(tmp_path / "x.pt"), *flags, "--out", str(refused)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pos_embed.W_pos has 4 positions" in err[0], err
    assert not refused.exists()
