"""The attention rate as Zhong et al. define it (their `attn_coeff` c: c * softmax + (1 - c) on
each key a query may see), and the rule of configs written before it (c * softmax +
(1 - c) / keys), checked against forwards written here."""

from __future__ import annotations

import json
import math

import pytest
import torch

from grokinterp.config import RunConfig
from grokinterp.errors import UsageError
from grokinterp.models import architecture
from grokinterp.presets import preset

TINY = dict(p=11, train_frac=0.5, d_model=12, n_heads=3, d_mlp=20, epochs=20, save_every=10)
TOKENS_A = torch.tensor([0, 3, 10, 7])
TOKENS_B = torch.tensor([4, 3, 1, 9])


def tiny(**changes) -> RunConfig:
    return preset("small").replace(preset="tiny", **TINY).replace(**changes).validate()


def hand_weights(cfg: RunConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Every parameter drawn at scale 0.5 (softmax far from uniform), biases too."""
    gen = torch.Generator().manual_seed(seed)
    shapes = architecture(cfg).param_shapes()
    return {name: torch.randn(shape, generator=gen) * 0.5 for name, shape in shapes.items()}


def reference_logits(cfg: RunConfig, w: dict, tokens: torch.Tensor, mix) -> torch.Tensor:
    """A transformer without LayerNorm written out: `mix(softmax, visible)` is the rule under
    test (`visible` [q, key] 1 where the query may attend). Logits at every position, computed
    in float64."""
    w = {name: value.double() for name, value in w.items()}
    n = tokens.shape[1]
    visible = torch.tril(torch.ones(n, n, dtype=torch.float64))
    x = w["embed.W_E"][tokens] + w["pos_embed.W_pos"][:n]
    for layer in range(cfg.n_layers):
        p = f"blocks.{layer}."
        q, k, v = (
            torch.einsum("bpd,hde->bhpe", x, w[p + f"attn.W_{m}"]) + w[p + f"attn.b_{m}"][:, None]
            for m in "QKV"
        )
        scores = q @ k.transpose(-1, -2) / math.sqrt(cfg.d_head)
        scores = scores.masked_fill(visible == 0, -math.inf)
        pattern = mix(scores.softmax(dim=-1), visible)
        z = pattern @ v  # [batch, head, q, d_head]
        x = x + torch.einsum("bhqe,hed->bqd", z, w[p + "attn.W_O"]) + w[p + "attn.b_O"]
        hidden = torch.relu(x @ w[p + "mlp.W_in"] + w[p + "mlp.b_in"])
        x = x + hidden @ w[p + "mlp.W_out"] + w[p + "mlp.b_out"]
    return x @ w["unembed.W_U"] + w["unembed.b_U"]


def zhong(c: float):
    return lambda softmax, visible: softmax * c + (1 - c) * visible


def uniform_mix(r: float):
    return lambda softmax, visible: r * softmax + (1 - r) * visible / visible.sum(-1, True)


def close(got: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal up to float32 rounding (the other rule moves these logits by tens)."""
    torch.testing.assert_close(got, expected, atol=2e-3, rtol=1e-4)


def both_forwards(cfg: RunConfig, w: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The fast forward's logits at `=` [pair, vocab] and the hooked module's at every
    position [pair, pos, vocab]."""
    model = architecture(cfg)
    fast = model.logits({k: v[None] for k, v in w.items()}, TOKENS_A[None], TOKENS_B[None])[0]
    hooked = model.hooked()
    hooked.load_state_dict(model.state_dict_of(w))
    tokens = torch.stack([TOKENS_A, TOKENS_B, torch.full_like(TOKENS_A, cfg.eq_token)], 1)
    with torch.no_grad():
        return fast, hooked(tokens)


def test_rate_zero_sums_the_values_of_the_visible_keys():
    """Zhong's rule at c = 0: each query's attention output is the plain sum over the keys it
    may see of v_k W_O, plus b_O; at `=` all three keys."""
    cfg = tiny(attention_rate=0.0)
    w = hand_weights(cfg)
    model = architecture(cfg)
    hooked = model.hooked()
    hooked.load_state_dict(model.state_dict_of(w))
    tokens = torch.stack([TOKENS_A, TOKENS_B, torch.full_like(TOKENS_A, cfg.eq_token)], 1)
    _, cache = hooked.run_with_cache(tokens)
    x = w["embed.W_E"][tokens] + w["pos_embed.W_pos"]
    values = torch.einsum("bpd,hde->bphe", x, w["blocks.0.attn.W_V"]) + w["blocks.0.attn.b_V"]
    head_out = torch.einsum("bphe,hed->bpd", values, w["blocks.0.attn.W_O"])
    for query in range(3):
        expected = head_out[:, : query + 1].sum(dim=1) + w["blocks.0.attn.b_O"]
        got = cache["blocks.0.hook_attn_out"][:, query]
        close(got, expected)
    # the fast forward: `=` reads x_= + the summed values, then the MLP and the unembedding
    mid = x[:, 2] + head_out.sum(dim=1) + w["blocks.0.attn.b_O"]
    hidden = torch.relu(mid @ w["blocks.0.mlp.W_in"] + w["blocks.0.mlp.b_in"])
    logits = (mid + hidden @ w["blocks.0.mlp.W_out"] + w["blocks.0.mlp.b_out"]) @ w["unembed.W_U"]
    fast, _ = both_forwards(cfg, w)
    close(fast, logits + w["unembed.b_U"])


@pytest.mark.parametrize("n_layers", [1, 2])
@pytest.mark.parametrize("c", [0.0, 0.3, 0.75])
def test_both_forwards_follow_zhongs_formula(n_layers, c):
    cfg = tiny(n_layers=n_layers, attention_rate=c)
    assert cfg.attention_rule == "zhong"  # a new run's rule
    w = hand_weights(cfg)
    tokens = torch.stack([TOKENS_A, TOKENS_B, torch.full_like(TOKENS_A, cfg.eq_token)], 1)
    expected = reference_logits(cfg, w, tokens, zhong(c)).float()
    fast, hooked = both_forwards(cfg, w)
    close(hooked, expected)  # every query position
    close(fast, expected[:, 2])


def old_format(**fields) -> dict:
    """A run config as written before `attention_rule` existed (format version 1)."""
    data = tiny().to_dict()
    data.pop("attention_rule", None)
    return data | {"format_version": 1} | fields


@pytest.mark.parametrize("depth", [{}, {"n_layers": 2}])
def test_an_old_config_keeps_the_uniform_mix(depth):
    data = old_format(attention_rate=0.5, **depth)
    cfg = RunConfig.from_json(json.dumps(data))
    assert cfg.attention_rule == "uniform-mix"
    assert cfg.to_dict() == data  # written back as before: the same JSON, the same fingerprint
    w = hand_weights(cfg)
    tokens = torch.stack([TOKENS_A, TOKENS_B, torch.full_like(TOKENS_A, cfg.eq_token)], 1)
    expected = reference_logits(cfg, w, tokens, uniform_mix(0.5)).float()
    fast, hooked = both_forwards(cfg, w)
    close(hooked, expected)
    close(fast, expected[:, 2])
    assert not torch.allclose(fast, both_forwards(cfg.replace(attention_rule="zhong"), w)[0])


def test_an_old_config_at_rate_one_reads_as_the_uniform_mix_too():
    cfg = RunConfig.from_dict(old_format())
    assert cfg.attention_rule == "uniform-mix"
    assert cfg.same_architecture(tiny())  # at rate 1 the rules are one computation


def test_a_new_config_round_trips_with_its_rule():
    for rule in ("zhong", "uniform-mix"):
        cfg = tiny(attention_rate=0.25, attention_rule=rule)
        assert RunConfig.from_json(cfg.to_json()) == cfg
    assert json.loads(tiny().to_json())["attention_rule"] == "zhong"
    assert not tiny(attention_rate=0.5).same_architecture(
        tiny(attention_rate=0.5, attention_rule="uniform-mix")
    )


@pytest.mark.parametrize(
    "data, message",
    [
        (old_format(attention_rule="zhong"), "format version 1 has no attention_rule"),
        (tiny().to_dict() | {"attention_rule": "pizza"}, "unknown attention_rule 'pizza'"),
    ],
)
def test_bad_rules_are_refused_in_one_line(data, message):
    with pytest.raises(UsageError, match=message):
        RunConfig.from_dict(data)


@pytest.mark.parametrize("c", [0.5, 0.75, 0.9])
def test_zhongs_c_is_the_old_r_with_w_o_rescaled(c):
    """At `=` (three visible keys) Zhong's pattern c s + (1 - c) is (3 - 2c) times the old
    rule's r s + (1 - r) / 3 with r = c / (3 - 2c): the old rule at r equals the new one at c
    with W_O scaled by r / c."""
    r = c / (3 - 2 * c)
    old = tiny(attention_rate=r, attention_rule="uniform-mix")
    w = hand_weights(old)
    scaled = w | {"blocks.0.attn.W_O": w["blocks.0.attn.W_O"] * (r / c)}
    old_fast, old_hooked = both_forwards(old, w)
    new_fast, new_hooked = both_forwards(tiny(attention_rate=c), scaled)
    close(new_fast, old_fast)
    close(new_hooked[:, 2], old_hooked[:, 2])


def test_an_old_sweep_run_at_rate_one_is_not_another_config(tiny_cfg):
    """A run written before the rule was recorded reads as "uniform-mix"; at rate 1 the rules
    compute the same, so a sweep planned today finds no difference, and below rate 1 it does."""
    from grokinterp.sweep.batch import config_difference

    old = tiny_cfg.replace(attention_rule="uniform-mix")
    assert config_difference(old, tiny_cfg) == ""
    half = {"attention_rate": 0.5}
    assert "attention_rule" in config_difference(old.replace(**half), tiny_cfg.replace(**half))
