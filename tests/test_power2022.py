"""Power et al.'s (2022) model and the `power2022` preset, against their code (openai/grok at
3d64b1d: grok/transformer.py, grok/data.py, grok/training.py) and closed forms: a forward written
out here as their modules compute it equals grokinterp's fast and hooked forwards; the init is
nn.Embedding's and nn.Linear's; the positions are their table; the preset's values are theirs;
the batch size follows n_train as their `calculate_batchsize`; the division task has their
equations; a tiny run trains and resumes to the bit; a flag that changes their model is refused
in one line."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from grokinterp import data
from grokinterp.cli import main
from grokinterp.config import FIELDS
from grokinterp.errors import UsageError
from grokinterp.models import architecture
from grokinterp.models.layers import sinusoidal_positions
from grokinterp.presets import PRESETS, preset, resolve
from grokinterp.storage import store
from grokinterp.sweep.spec import read_spec
from grokinterp.tasks.modular import label_table
from tests.test_minibatch import checkpoint_tensors
from tests.test_train_mistakes import refused

# ---- their model, written out as grok/transformer.py computes it ---------------------------------


def their_positions(context_len: int, d_model: int) -> Tensor:
    """`Transformer._position_encoding`: Python floats from numpy's sin and cos, then a tensor."""
    rows = [
        [
            np.sin(pos / (10000 ** (i / d_model)))
            if i % 2 == 0
            else np.cos(pos / (10000 ** ((i - 1) / d_model)))
            for i in range(d_model)
        ]
        for pos in range(context_len)
    ]
    return torch.tensor(rows, dtype=torch.float32)


def their_forward(params: dict[str, Tensor], tokens: Tensor, cfg, masked: bool = True) -> Tensor:
    """Logits [batch, pos, classes] of their `Transformer.forward` with grokinterp's weights in
    nn.Linear's [out, in] layout: embedding + positions; per block, per head q, k, v by
    Linear(bias=False), causal `masked_fill(mask == 0, -inf)`, softmax, heads concatenated through
    Wo, x = LN(x + attn); x = LN(x + ffn) (ReLU, no biases); logits by Linear(bias=False)."""
    n = tokens.shape[-1]
    x = F.embedding(tokens, params["embed.W_E"]) + their_positions(50, cfg.d_model)[:n]
    mask = (torch.ones(50, 50).tril() if masked else torch.ones(50, 50))[:n, :n]
    d_key = cfg.d_model // cfg.n_heads
    for layer in range(cfg.n_layers):
        p = {k.split(".", 2)[2]: v for k, v in params.items() if k.startswith(f"blocks.{layer}.")}
        heads = []
        for h in range(cfg.n_heads):
            q, k, v = (F.linear(x, p[f"attn.W_{w}"][h].T) for w in "QKV")
            attn = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(d_key)
            attn = attn.masked_fill(mask == 0, float("-inf")).softmax(dim=-1)
            heads.append(torch.matmul(attn, v))
        a1 = F.linear(torch.cat(heads, dim=-1), p["attn.W_O"].flatten(0, 1).T)
        x = F.layer_norm(x + a1, (cfg.d_model,), p["ln1.w"], p["ln1.b"], 1e-5)
        a2 = F.linear(F.relu(F.linear(x, p["mlp.W_in"].T)), p["mlp.W_out"].T)
        x = F.layer_norm(x + a2, (cfg.d_model,), p["ln2.w"], p["ln2.b"], 1e-5)
    return F.linear(x, params["unembed.W_U"].T)


def small_power(**changes):
    """Their model on x / y mod 7 (the batch size derived for its 21 training pairs)."""
    changes = {"p": 7, **changes}
    return resolve(PRESETS["power2022"].replace(**changes), changes).validate()


def test_the_position_table_is_theirs():
    torch.testing.assert_close(sinusoidal_positions(50, 128), their_positions(50, 128))


def test_fast_and_hooked_forwards_equal_their_model():
    cfg = small_power()
    model = architecture(cfg)
    params = model.init_params()
    generator = torch.Generator().manual_seed(1)
    for name in params:  # LayerNorm away from (1, 0), so its weight and bias count
        if ".ln" in name:
            params[name] = params[name] + torch.randn(params[name].shape, generator=generator)
    a, b = torch.meshgrid(torch.arange(7), torch.arange(1, 7), indexing="ij")
    a, b = a.flatten(), b.flatten()
    tokens = data.tokens(cfg, a, b)
    expected = their_forward(params, tokens, cfg)

    fast = model.forward({k: v[None] for k, v in params.items()}, a[None], b[None]).logits[0]
    torch.testing.assert_close(fast, expected[:, -1], rtol=1e-4, atol=1e-5)
    hooked = model.hooked()
    hooked.load_state_dict(model.state_dict_of(params), strict=True)
    torch.testing.assert_close(hooked(tokens), expected, rtol=1e-4, atol=1e-5)
    # the comparison can fail: without the causal mask the earlier positions change
    unmasked = their_forward(params, tokens, cfg, masked=False)
    assert not torch.allclose(unmasked[:, 0], expected[:, 0])


def test_no_bias_but_layernorms_trains():
    model = architecture(small_power())
    trained = set(model.trained)
    biases = {n for n in model.param_shapes() if n.rsplit(".", 1)[1].startswith("b")}
    assert {n for n in biases if n in trained} == {n for n in biases if ".ln" in n}
    assert "pos_embed.W_pos" not in model.param_shapes()  # a buffer
    torch.testing.assert_close(model.buffers()["pos_embed.W_pos"], their_positions(4, 128))
    hooked = model.hooked()
    grads = {n for n, p in hooked.named_parameters() if p.requires_grad}
    assert grads == trained


def test_the_init_is_pytorchs_default_for_their_layers():
    """nn.Embedding and nn.Linear(bias=False), drawn in grokinterp's state-dict order from the
    global generator seeded as the run: the same numbers."""
    cfg = small_power(seed=5)
    model = architecture(cfg)
    params = model.init_params()
    torch.manual_seed(5)
    d, h, dh, m = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp
    for name in model.param_shapes():
        kind = name.rsplit(".", 1)[1]
        if kind in ("w", "b") or kind.startswith("b_"):
            continue
        if kind == "W_E":
            expected = nn.Embedding(cfg.d_vocab, d).weight
        elif kind in ("W_Q", "W_K", "W_V"):  # one Linear(d_model, d_key) per head
            expected = torch.stack([nn.Linear(d, dh, bias=False).weight.T for _ in range(h)])
        elif kind == "W_O":  # Linear(d_model, d_model) over the concatenated heads
            expected = nn.Linear(h * dh, d, bias=False).weight.T.reshape(h, dh, d)
        elif kind == "W_in":
            expected = nn.Linear(d, m, bias=False).weight.T
        elif kind == "W_out":
            expected = nn.Linear(m, d, bias=False).weight.T
        else:
            assert kind == "W_U"
            expected = nn.Linear(d, cfg.d_vocab_out, bias=False).weight.T
        assert torch.equal(params[name], expected.detach()), name


def test_the_init_has_the_closed_form_bounds():
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) has variance bound^2 / 3; N(0, 1) variance 1. With
    12,000 or more draws the sample variance is within 5% of it (6 standard errors and more; the
    seed is fixed besides)."""
    cfg = PRESETS["power2022"]
    params = architecture(cfg).init_params()
    fan_in = {"W_Q": 128, "W_K": 128, "W_V": 128, "W_O": 128, "W_in": 128, "W_out": 512}
    fan_in["W_U"] = 128
    for name, weight in params.items():
        kind = name.rsplit(".", 1)[1]
        if kind == "W_E":
            assert abs(float(weight.var()) - 1.0) < 0.1  # 99 x 128 draws
        elif kind in fan_in:
            bound = 1 / math.sqrt(fan_in[kind])
            assert float(weight.abs().max()) <= bound
            assert abs(float(weight.var()) / (bound**2 / 3) - 1) < 0.05, name
        else:  # LayerNorm and the biases
            assert torch.equal(weight, torch.ones_like(weight) if kind == "w" else 0 * weight)


# ---- the preset ----------------------------------------------------------------------------------

THEIRS = [
    # field, value, source (openai/grok at 3d64b1d unless the paper)
    ("p", 97, "grok/data.py: MODULUS = 97"),
    ("operation", "div", "the paper's Fig. 1: x / y mod 97"),
    ("train_frac", 0.5, "the paper's Fig. 1 (left): 50% of the data"),
    ("input_format", "a-op-b-eq", "grok/data.py: `a op b = c`, c predicted at `=`"),
    ("model", "transformer", "grok/transformer.py: Transformer (decoder only)"),
    ("n_layers", 2, "grok/training.py: --n_layers 2"),
    ("d_model", 128, "grok/training.py: --d_model 128"),
    ("n_heads", 4, "grok/training.py: --n_heads 4"),
    ("d_mlp", 4 * 128, "grok/transformer.py FFN: multiplier 4 * d_model"),
    ("activation", "relu", "grok/training.py: --non_linearity relu"),
    ("layer_norm", "post", "grok/transformer.py DecoderBlock: LN(x + attn), LN(x + ffn)"),
    ("positional", "sinusoidal", "grok/transformer.py: _position_encoding buffer"),
    ("biases", "none", "grok/transformer.py: Linear(..., bias=False) throughout"),
    ("attention_rate", 1.0, "grok/transformer.py: plain softmax attention"),
    ("init", "pytorch", "grok/transformer.py: no init code"),
    ("lr", 1e-3, "grok/training.py: --max_lr 1e-3"),
    ("weight_decay", 1.0, "the paper's Fig. 2: AdamW, weight decay 1"),
    ("beta1", 0.9, "grok/training.py: betas=(0.9, 0.98)"),
    ("beta2", 0.98, "grok/training.py: betas=(0.9, 0.98)"),
    ("adam_eps", 1e-8, "grok/training.py: eps=1e-8"),
    ("warmup_steps", 10, "grok/training.py: --warmup_steps 10"),
    ("batch_size", 512, "grok/data.py: min(512, ceil(4656 / 2))"),
    ("epochs", 100_000 // 10, "grok/training.py: --max_steps 100000; 10 steps an epoch"),
    ("optimizer", "adamw", "grok/training.py: CustomAdamW"),
]


@pytest.mark.parametrize("field, value, source", THEIRS)
def test_the_preset_holds_their_value(field, value, source):
    assert getattr(PRESETS["power2022"], field) == value, source


def test_the_preset_is_valid_and_of_their_size():
    cfg = PRESETS["power2022"].validate()
    assert cfg.n_train == 4656 and math.ceil(cfg.n_train / cfg.batch_size) == 10
    assert cfg.d_head == 32
    model = architecture(cfg)
    non_embedding = sum(
        math.prod(s) for n, s in model.param_shapes().items() if n.split(".")[0] == "blocks"
    )
    # per block: W_Q, W_K, W_V, W_O (4 d^2), W_in and W_out (2 d d_mlp), two LayerNorms (4 d),
    # and the frozen zero biases kept in the state dict (3 d + d + d_mlp + d)
    d, m = 128, 512
    assert non_embedding == 2 * (4 * d * d + 2 * d * m + 4 * d + 5 * d + m)


@pytest.mark.parametrize("frac, size", [(0.05, 233), (0.1, 466), (0.3, 512), (0.5, 512)])
def test_the_batch_size_follows_the_training_set(frac, size):
    """min(512, ceil(n_train / 2)), n_train = int(frac * 9312): 465 -> 233, 931 -> 466."""
    cfg = resolve(preset("power2022").replace(train_frac=frac), {"train_frac": frac})
    assert cfg.batch_size == size
    given = resolve(preset("power2022").replace(batch_size=100), {"batch_size": 100})
    assert given.batch_size == 100


def test_train_records_the_derived_batch_size(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--preset", "power2022", "--train-frac", "0.05", "--epochs", "1"]
    assert main([*args, "--save-every", "1", "--out", str(out), "--quiet"]) == 0
    assert store.read_config(out).batch_size == 233


def test_a_sweep_spec_derives_each_runs_batch_size(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('preset = "power2022"\n[fixed]\nepochs = 1\n[grid]\ntrain_frac = [0.05, 0.5]\n')
    assert [run.config.batch_size for run in read_spec(spec).runs] == [233, 512]
    spec.write_text('preset = "power2022"\n[fixed]\nn_layers = 1\n[grid]\nseed = [0]\n')
    with pytest.raises(UsageError, match="contradicts preset power2022"):
        read_spec(spec)


def test_division_has_their_equations():
    """grok/data.py: for a in 0..96 and b in 1..96 the equation `(b a mod 97) / b = a`."""
    theirs = {((b * a) % 97, b, a) for a in range(97) for b in range(1, 97)}
    table = label_table("div", 97)
    ours = {(x, b, int(table[x, b])) for x in range(97) for b in range(97) if table[x, b] >= 0}
    assert len(theirs) == 97 * 96 == 9312
    assert ours == theirs
    assert PRESETS["power2022"].n_pairs == 9312


# ---- a tiny run, and the refusals ----------------------------------------------------------------

TINY = ["train", "--preset", "power2022", "--p", "5", "--save-every", "2", "--quiet"]


def test_a_tiny_run_trains_and_resumes_to_the_bit(tmp_path):
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert main([*TINY, "--epochs", "4", "--out", str(whole)]) == 0
    assert main([*TINY, "--epochs", "2", "--out", str(part)]) == 0
    assert main(["train", "--resume", str(part), "--epochs", "4", "--quiet"]) == 0
    expected, got = checkpoint_tensors(whole), checkpoint_tensors(part)
    assert list(got) == list(expected) and len(got) == 3
    for name in expected:
        for key, tensor in expected[name].items():
            assert torch.equal(got[name][key], tensor), (name, key)
    assert (whole / "metrics.csv").read_text() == (part / "metrics.csv").read_text()
    cfg = store.read_config(whole)
    assert cfg.batch_size == 5  # min(512, ceil(10 / 2)): 20 pairs mod 5, half of them train
    first, last = expected["epoch_0000000.safetensors"], expected["epoch_0000004.safetensors"]
    assert not torch.equal(first["blocks.0.mlp.W_in"], last["blocks.0.mlp.W_in"])
    assert not torch.equal(first["blocks.1.ln2.b"], last["blocks.1.ln2.b"])
    assert torch.equal(last["blocks.0.mlp.b_in"], torch.zeros(512))  # no bias there
    torch.testing.assert_close(last["pos_embed.W_pos"], their_positions(4, 128))


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--n-layers", "1"),
        ("--d-model", "64"),
        ("--layer-norm", "pre"),
        ("--positional", "learned"),
        ("--biases", "mlp"),
        ("--init", "paper"),
        ("--input-format", "a-b-eq"),
        ("--model", "mlp"),
    ],
)
def test_a_flag_that_changes_their_model_is_refused(flag, value, tmp_path, capsys):
    args = ["train", "--preset", "power2022", flag, value, "--out", str(tmp_path / "r")]
    line = refused(capsys, tmp_path, args)
    assert line.startswith(f"grokinterp: error: {flag} {value} contradicts preset power2022")


def test_flags_of_the_task_and_the_optimiser_are_taken():
    given = {"seed": 3, "train_frac": 0.3, "p": 59, "lr": 3e-4, "n_layers": 2, "operation": "add"}
    cfg = resolve(preset("power2022").replace(**given), given)
    assert (cfg.seed, cfg.p, cfg.lr, cfg.n_layers, cfg.batch_size) == (3, 59, 3e-4, 2, 512)


def test_old_configs_do_not_gain_the_new_fields():
    for name in ("positional", "biases"):
        assert FIELDS[name].sparse
        assert name not in PRESETS["canonical"].to_dict()
