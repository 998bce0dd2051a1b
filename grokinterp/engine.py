"""The fast training path: the hooked model's logits at the last position, and nothing else.

The task only reads the logits at `=` (position 2), so the queries and the MLP are needed there
alone. Positions 0 and 1 hold number tokens, so their keys and values are per-token tables of p
rows, computed once per step instead of once per pair; the query at `=` is one constant vector per
head. Heads are mixed by W_O after the value-weighted sum, as in the model. The result is the same
function as `GrokTransformer(tokens)[:, -1]`.

Every tensor carries a leading `run` axis so that many runs of one architecture train as one
batched model (a single run has run = 1). Parameters are passed as a dict keyed by the
HookedTransformer state-dict names of `grokinterp.params`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from jaxtyping import Float, Int
from torch import Tensor


def _gather_rows(table: Tensor, index: Int[Tensor, "run n"]) -> Tensor:
    """table[r, index[r, n], ...] for every run r and pair n."""
    trailing = table.shape[2:]
    expanded = index.reshape(*index.shape, *([1] * len(trailing))).expand(*index.shape, *trailing)
    return table.gather(1, expanded)


class LastPosition(NamedTuple):
    """What the model computes at the `=` position."""

    pattern: Float[Tensor, "run n head 3"]
    """Attention from `=` to positions a, b, `=` (hook_pattern[:, :, -1])."""
    post: Float[Tensor, "run n d_mlp"]
    """MLP neuron activations (hook_post[:, -1])."""
    logits: Float[Tensor, "run n p"]


def last_position_logits(
    params: dict[str, Float[Tensor, "run ..."]],
    a: Int[Tensor, "run n"],
    b: Int[Tensor, "run n"],
) -> Float[Tensor, "run n p"]:
    """Logits at the `=` position of the inputs `[a, b, =]` for every run and pair."""
    return last_position(params, a, b).logits


def last_position(
    params: dict[str, Float[Tensor, "run ..."]],
    a: Int[Tensor, "run n"],
    b: Int[Tensor, "run n"],
) -> LastPosition:
    """Attention pattern, neuron activations and logits at `=` for every run and pair."""
    W_E, W_pos = params["embed.W_E"], params["pos_embed.W_pos"]
    W_Q, W_K, W_V = (params[f"blocks.0.attn.W_{x}"] for x in "QKV")
    b_Q, b_K, b_V = (params[f"blocks.0.attn.b_{x}"] for x in "QKV")
    W_O, b_O = params["blocks.0.attn.W_O"], params["blocks.0.attn.b_O"]
    p = params["unembed.W_U"].shape[-1]

    numbers = W_E[:, :p]  # [run, p, d_model]
    resid = torch.stack(  # residual stream of a number token at position 0 and at position 1
        [numbers + W_pos[:, 0, None], numbers + W_pos[:, 1, None]], dim=1
    )  # [run, 2, p, d_model]
    resid_eq = W_E[:, p] + W_pos[:, 2]  # [run, d_model]: position 2 always holds `=`

    query = torch.einsum("rd,rhde->rhe", resid_eq, W_Q) + b_Q
    keys = torch.einsum("rstd,rhde->rsthe", resid, W_K) + b_K[:, None, None]
    key_eq = torch.einsum("rd,rhde->rhe", resid_eq, W_K) + b_K
    scale = math.sqrt(W_Q.shape[-1])
    score_tables = torch.einsum("rsthe,rhe->rsth", keys, query) / scale  # [run, 2, p, head]
    score_eq = torch.einsum("rhe,rhe->rh", key_eq, query) / scale

    values = torch.einsum("rstd,rhde->rsthe", resid, W_V) + b_V[:, None, None]  # [run,2,p,h,e]
    value_eq = torch.einsum("rd,rhde->rhe", resid_eq, W_V) + b_V

    scores = torch.stack(
        [
            _gather_rows(score_tables[:, 0], a),
            _gather_rows(score_tables[:, 1], b),
            score_eq[:, None].expand(-1, a.shape[1], -1),
        ],
        dim=-1,
    )  # [run, n, head, 3]
    pattern = scores.softmax(dim=-1)
    # z as broadcast products (an einsum here becomes a bmm over thousands of tiny matrices,
    # slow on CPU), then all heads through W_O in one matmul.
    z = (
        pattern[..., 0, None] * _gather_rows(values[:, 0], a)
        + pattern[..., 1, None] * _gather_rows(values[:, 1], b)
        + pattern[..., 2, None] * value_eq[:, None]
    )  # [run, n, head, d_head]
    attn_out = z.flatten(2) @ W_O.flatten(1, 2)
    resid_mid = resid_eq[:, None] + attn_out + b_O[:, None]
    post = torch.relu(
        resid_mid @ params["blocks.0.mlp.W_in"] + params["blocks.0.mlp.b_in"][:, None]
    )
    resid_post = (
        resid_mid + post @ params["blocks.0.mlp.W_out"] + params["blocks.0.mlp.b_out"][:, None]
    )
    logits = resid_post @ params["unembed.W_U"] + params["unembed.b_U"][:, None]
    return LastPosition(pattern, post, logits)
