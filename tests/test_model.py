import math

import numpy as np
import pytest
import torch

from grokinterp import data
from grokinterp.models import architecture
from grokinterp.models.hooked_transformer import GrokTransformer
from grokinterp.presets import preset

# The classic HookedTransformer state dict of a one-layer, LayerNorm-free model, typed by hand.
CLASSIC_SHAPES = {
    "embed.W_E": ("d_vocab", "d_model"),
    "pos_embed.W_pos": ("n_ctx", "d_model"),
    "blocks.0.attn.W_Q": ("n_heads", "d_model", "d_head"),
    "blocks.0.attn.W_K": ("n_heads", "d_model", "d_head"),
    "blocks.0.attn.W_V": ("n_heads", "d_model", "d_head"),
    "blocks.0.attn.W_O": ("n_heads", "d_head", "d_model"),
    "blocks.0.attn.b_Q": ("n_heads", "d_head"),
    "blocks.0.attn.b_K": ("n_heads", "d_head"),
    "blocks.0.attn.b_V": ("n_heads", "d_head"),
    "blocks.0.attn.b_O": ("d_model",),
    "blocks.0.attn.mask": ("n_ctx", "n_ctx"),
    "blocks.0.attn.IGNORE": (),
    "blocks.0.mlp.W_in": ("d_model", "d_mlp"),
    "blocks.0.mlp.b_in": ("d_mlp",),
    "blocks.0.mlp.W_out": ("d_mlp", "d_model"),
    "blocks.0.mlp.b_out": ("d_model",),
    "unembed.W_U": ("d_model", "d_vocab_out"),
    "unembed.b_U": ("d_vocab_out",),
}


def random_model(cfg, seed=0, scale=0.5):
    """A model with every float tensor random, biases included."""
    gen = torch.Generator().manual_seed(seed)
    model = GrokTransformer(cfg)
    weights = {
        k: torch.randn(s, generator=gen) * scale
        for k, s in architecture(cfg).param_shapes().items()
    }
    model.load_state_dict({**model.state_dict(), **weights})
    return model, weights


def reference_forward(w, tokens, n_heads):
    """The transformer written out head by head in float64 numpy, independent of model.py."""
    w = {k: v.double().numpy() for k, v in w.items()}
    x = w["embed.W_E"][tokens] + w["pos_embed.W_pos"][None, : tokens.shape[1]]
    n = tokens.shape[1]
    causal = np.tril(np.ones((n, n), dtype=bool))
    attn_out = np.zeros_like(x)
    for h in range(n_heads):
        q = x @ w["blocks.0.attn.W_Q"][h] + w["blocks.0.attn.b_Q"][h]
        k = x @ w["blocks.0.attn.W_K"][h] + w["blocks.0.attn.b_K"][h]
        v = x @ w["blocks.0.attn.W_V"][h] + w["blocks.0.attn.b_V"][h]
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(q.shape[-1])
        scores = np.where(causal, scores, -np.inf)
        pattern = np.exp(scores - scores.max(-1, keepdims=True))
        pattern /= pattern.sum(-1, keepdims=True)
        attn_out += (pattern @ v) @ w["blocks.0.attn.W_O"][h]
    x = x + attn_out + w["blocks.0.attn.b_O"]
    hidden = np.maximum(x @ w["blocks.0.mlp.W_in"] + w["blocks.0.mlp.b_in"], 0)
    x = x + hidden @ w["blocks.0.mlp.W_out"] + w["blocks.0.mlp.b_out"]
    return x @ w["unembed.W_U"] + w["unembed.b_U"]


def test_state_dict_has_the_classic_names_and_shapes():
    cfg = preset("canonical")
    state = GrokTransformer(cfg).state_dict()
    sizes = {name: getattr(cfg, name) for name in ("d_vocab", "d_model", "n_ctx", "n_heads")}
    sizes |= {name: getattr(cfg, name) for name in ("d_head", "d_mlp", "d_vocab_out")}
    expected = {name: tuple(sizes[s] for s in dims) for name, dims in CLASSIC_SHAPES.items()}
    assert {name: tuple(t.shape) for name, t in state.items()} == expected
    assert state["blocks.0.attn.mask"].dtype == torch.bool


@pytest.mark.parametrize("cfg_name", ["small", "canonical"])
def test_forward_equals_an_independent_forward(cfg_name):
    cfg = preset(cfg_name)
    model, weights = random_model(cfg, scale=0.3)
    tokens = torch.randint(0, cfg.d_vocab, (64, 3), generator=torch.Generator().manual_seed(1))
    got = model(tokens).detach().double().numpy()
    want = reference_forward(weights, tokens.numpy(), cfg.n_heads)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_hooks_and_cache():
    cfg = preset("small")
    model, _ = random_model(cfg)
    tokens = data.all_tokens(cfg)[:10]
    logits, cache = model.run_with_cache(tokens)
    assert cache["blocks.0.attn.hook_pattern"].shape == (10, cfg.n_heads, 3, 3)
    assert cache["blocks.0.mlp.hook_post"].shape == (10, 3, cfg.d_mlp)
    assert cache["blocks.0.attn.hook_z"].shape == (10, 3, cfg.n_heads, cfg.d_head)
    unembed = model.unembed
    torch.testing.assert_close(
        cache["blocks.0.hook_resid_post"] @ unembed.W_U + unembed.b_U, logits
    )

    def kill_mlp(post, hook):
        return torch.zeros_like(post)

    ablated = model.run_with_hooks(tokens, fwd_hooks=[("blocks.0.mlp.hook_post", kill_mlp)])
    resid_mid = cache["blocks.0.hook_resid_mid"]
    want = resid_mid + model.blocks[0].mlp.b_out
    torch.testing.assert_close(ablated, want @ unembed.W_U + unembed.b_U)


def test_loss_at_init_is_close_to_ln_p():
    cfg = preset("canonical")
    model = GrokTransformer(cfg)
    model.load_state_dict(architecture(cfg).initial_state_dict())
    with torch.no_grad():
        logits = model(data.all_tokens(cfg))[:, -1].double()
    loss = torch.nn.functional.cross_entropy(logits, data.labels(cfg)).item()
    assert abs(loss - math.log(cfg.p)) < 0.15


def test_init_depends_on_seed_only_and_has_the_stated_scale():
    cfg = preset("canonical")
    first, again = architecture(cfg).init_params(), architecture(cfg).init_params()
    assert all(torch.equal(first[k], again[k]) for k in first)
    other = architecture(cfg.replace(seed=1)).init_params()
    assert not torch.equal(first["embed.W_E"], other["embed.W_E"])
    # paper init: std 1/sqrt(d_model), W_U 1/sqrt(d_vocab); biases zero
    assert abs(first["blocks.0.mlp.W_in"].std().item() * math.sqrt(128) - 1) < 0.02
    assert abs(first["unembed.W_U"].std().item() * math.sqrt(114) - 1) < 0.05
    assert not first["blocks.0.mlp.b_in"].any()
