"""The transformer family: Nanda et al.'s one-layer model by default, plus depth (1..4 blocks),
pre- or post-LayerNorm, another activation, Zhong et al.'s attention rate
(`RunConfig.attention_rule`), and what Power et al.'s (2022) model needs besides: fixed
sinusoidal positions (`RunConfig.positional`, then `pos_embed.W_pos` is a buffer), no trained
bias outside LayerNorm (`RunConfig.biases`) and PyTorch's default init (`init="pytorch"`).
Attention is causal throughout.

Parameter names and shapes are those of TransformerLens's classic `HookedTransformer` state dict
(`embed.W_E`, `blocks.{l}.attn.W_Q`, `blocks.{l}.mlp.W_in`, `blocks.{l}.ln1.w`, `ln_final.w`,
`unembed.W_U`, ...), so a checkpoint loads into it unchanged. The hooked module is in
`grokinterp.models.hooked_transformer`.

Two fast forwards compute the logits at the answer (the last position) alone:
- `_one_layer` (one block, no LayerNorm, the last position holding a symbol: the default and
  Nanda et al.'s model, in the formats `[a, b, =]` and `[a, op, b, =]`): a's and b's positions
  hold number tokens, so their keys and values are per-token tables of n rows, computed once per
  step instead of once per pair; the symbols' keys and values, and the query at `=`, are one
  constant vector per head.
- `_deep` (more blocks, LayerNorm (pre or post), or `[a, b]`, whose query at b's position
  depends on b):
  every position through every block but the last, where only the query and the MLP at the
  last position are computed (from the second block on every position depends on a and b, so
  the per-token tables no longer hold).
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float, Int
from torch import Tensor

from grokinterp import data
from grokinterp.models.base import Architecture, Internals, linear_weight
from grokinterp.models.layers import (
    absent_biases,
    activate,
    constant_attention,
    gather_rows,
    layer_norm,
    mix_attention,
    sinusoidal_positions,
)

OPERANDS = ("a", "b")
"""The input slots that hold an operand; every other slot holds one fixed token (`=`, `op`)."""


def _heads(
    x: Float[Tensor, "run n pos d_model"],
    W: Float[Tensor, "run head d_model d_head"],
    b: Float[Tensor, "run head d_head"],
) -> Float[Tensor, "run n pos head d_head"]:
    """x W + b for every head, as one matmul per run."""
    flat = _linear(x, W.permute(0, 2, 1, 3).flatten(2))  # [run, n, pos, head * d_head]
    return flat.unflatten(-1, (W.shape[1], W.shape[3])) + b[:, None, None]


def _linear(x: Float[Tensor, "run ... d_in"], W: Float[Tensor, "run d_in d_out"]) -> Tensor:
    """x W with one matmul per run (not one per pair and position)."""
    return (x.flatten(1, -2) @ W).unflatten(1, x.shape[1:-1])


class Transformer(Architecture):
    """`n_layers` blocks of causal attention and MLP, learned or sinusoidal positions, untied
    embeddings; LayerNorm before each sublayer and before the unembedding with
    `layer_norm="pre"`, after each residual sum with `layer_norm="post"`."""

    family = "transformer"
    has_attention = True

    @property
    def operand_hooks(self):
        """The token embedding (`hook_embed`) at a's and at b's position of the input format."""
        layout = self.cfg.input_layout
        return (("hook_embed", layout.index("a")), ("hook_embed", layout.index("b")))

    @property
    def ln(self) -> bool:
        """Pre-LayerNorm: ln1 and ln2 before the sublayers, ln_final before the unembedding."""
        return self.cfg.layer_norm == "pre"

    @property
    def post_ln(self) -> bool:
        """Post-LayerNorm: ln1 and ln2 after the residual sums, no ln_final."""
        return self.cfg.layer_norm == "post"

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        cfg = self.cfg
        d, h, dh, m = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp
        shapes: dict[str, tuple[int, ...]] = {"embed.W_E": (cfg.d_vocab, d)}
        if cfg.positional == "learned":
            shapes["pos_embed.W_pos"] = (cfg.n_ctx, d)
        for layer in range(cfg.n_layers):
            block = f"blocks.{layer}."
            if self.ln or self.post_ln:
                shapes |= {block + "ln1.w": (d,), block + "ln1.b": (d,)}
            shapes |= {block + f"attn.W_{x}": (h, d, dh) for x in "QKV"}
            shapes |= {block + "attn.W_O": (h, dh, d)}
            shapes |= {block + f"attn.b_{x}": (h, dh) for x in "QKV"}
            shapes |= {block + "attn.b_O": (d,)}
            if self.ln or self.post_ln:
                shapes |= {block + "ln2.w": (d,), block + "ln2.b": (d,)}
            shapes |= {block + "mlp.W_in": (d, m), block + "mlp.b_in": (m,)}
            shapes |= {block + "mlp.W_out": (m, d), block + "mlp.b_out": (d,)}
        if self.ln:
            shapes |= {"ln_final.w": (d,), "ln_final.b": (d,)}
        shapes |= {"unembed.W_U": (d, cfg.d_vocab_out), "unembed.b_U": (cfg.d_vocab_out,)}
        return shapes

    def zero_biases(self) -> tuple[str, ...]:
        """Biases that HookedTransformer has but the model does not: kept at zero, never
        trained. Only the MLP has biases in Nanda et al.'s code (`biases="mlp"`); none but
        LayerNorm's in Power et al.'s (`biases="none"`)."""
        return absent_biases(self.cfg)

    @property
    def trained(self) -> tuple[str, ...]:
        frozen = set(self.zero_biases())
        return tuple(name for name in self.param_shapes() if name not in frozen)

    def ones(self) -> tuple[str, ...]:
        return tuple(name for name in self.param_shapes() if name.endswith(".w"))

    def init_std(self, name: str) -> float:
        """`paper`: randn / sqrt(d_model) for every matrix, W_U randn / sqrt(d_vocab) (Nanda et
        al.'s code); `zhong`: the same but each W_in randn / sqrt(d_mlp) (Zhong et al.'s code,
        `code/train-main.py`, class MLP); `transformer_lens`: 0.8 / sqrt(d_model) for every
        matrix."""
        if self.cfg.init == "zhong" and name.endswith(".mlp.W_in"):
            return 1.0 / math.sqrt(self.cfg.d_mlp)
        if self.cfg.init in ("paper", "zhong"):
            fan = self.cfg.d_vocab if name == "unembed.W_U" else self.cfg.d_model
            return 1.0 / math.sqrt(fan)
        return 0.8 / math.sqrt(self.cfg.d_model)

    def init_weight(self, name, shape, generator):
        """As `Architecture.init_weight`; with `init="pytorch"` the attention's weights are
        those of Power et al.'s nn.Linear layers: W_Q, W_K, W_V of each head one Linear(d_model,
        d_head) (weight [d_head, d_model]), W_O one Linear(n_heads * d_head, d_model) over the
        concatenated heads."""
        if self.cfg.init != "pytorch" or len(shape) != 3:
            return super().init_weight(name, shape, generator)
        heads, rows, cols = shape
        if name.endswith("attn.W_O"):  # [head, d_head, d_model]
            return linear_weight((cols, heads * rows), generator).T.reshape(shape).contiguous()
        per_head = [linear_weight((cols, rows), generator) for _ in range(heads)]
        return torch.stack(per_head).transpose(1, 2).contiguous()

    def buffers(self) -> dict[str, Tensor]:
        """Each attention's causal mask (bool) and masking value (float32), as in
        HookedTransformer; the sinusoidal position table (float32 [n_ctx, d_model]) as
        `pos_embed.W_pos` with `positional="sinusoidal"`."""
        n = self.cfg.n_ctx
        out = {}
        if self.cfg.positional == "sinusoidal":
            out["pos_embed.W_pos"] = sinusoidal_positions(n, self.cfg.d_model)
        for layer in range(self.cfg.n_layers):
            out[f"blocks.{layer}.attn.mask"] = torch.tril(torch.ones(n, n, dtype=torch.bool))
            out[f"blocks.{layer}.attn.IGNORE"] = torch.tensor(-torch.inf)
        return out

    def hooked(self):
        from grokinterp.models.hooked_transformer import GrokTransformer

        return GrokTransformer(self.cfg)

    # ---- fast forward ----------------------------------------------------------------------
    def forward(self, params, a, b) -> Internals:
        cfg = self.cfg
        if cfg.n_layers == 1 and cfg.layer_norm == "none" and cfg.input_layout[-1] not in OPERANDS:
            return self._one_layer(params, a, b)
        return self._deep(params, a, b)

    def _positions(self, params: dict[str, Tensor]) -> Float[Tensor, "run n_ctx d_model"]:
        """W_pos of every run: the learned one, or the sinusoidal table on the weights' device
        (one leading run, broadcast)."""
        if self.cfg.positional == "learned":
            return params["pos_embed.W_pos"]
        W_E = params["embed.W_E"]
        table = sinusoidal_positions(self.cfg.n_ctx, self.cfg.d_model)
        return table.to(W_E.device, W_E.dtype)[None]

    def _one_layer(
        self,
        params: dict[str, Float[Tensor, "run ..."]],
        a: Int[Tensor, "run n"],
        b: Int[Tensor, "run n"],
    ) -> Internals:
        W_E, W_pos = params["embed.W_E"], self._positions(params)
        W_Q, W_K, W_V = (params[f"blocks.0.attn.W_{x}"] for x in "QKV")
        b_Q, b_K, b_V = (params[f"blocks.0.attn.b_{x}"] for x in "QKV")
        W_O, b_O = params["blocks.0.attn.W_O"], params["blocks.0.attn.b_O"]
        layout, ids, n_el = self.cfg.input_layout, self.cfg.symbol_ids, self.cfg.n_elements
        at = {slot: i for i, slot in enumerate(layout)}

        numbers = W_E[:, :n_el]  # [run, n_el, d_model]
        resid = torch.stack(  # residual stream of a number token at a's and at b's position
            [numbers + W_pos[:, at["a"], None], numbers + W_pos[:, at["b"], None]], dim=1
        )  # [run, 2, n_el, d_model]
        symbols = [s for s in layout if s not in OPERANDS]  # the positions of one fixed token
        resid_sym = torch.stack([W_E[:, ids[s]] + W_pos[:, at[s]] for s in symbols], dim=1)

        query = torch.einsum("rd,rhde->rhe", resid_sym[:, -1], W_Q) + b_Q  # the last symbol's
        keys = torch.einsum("rstd,rhde->rsthe", resid, W_K) + b_K[:, None, None]
        key_sym = torch.einsum("rkd,rhde->rkhe", resid_sym, W_K) + b_K[:, None]
        scale = math.sqrt(W_Q.shape[-1])
        score_tables = torch.einsum("rsthe,rhe->rsth", keys, query) / scale  # [run, 2, n_el, h]
        score_sym = torch.einsum("rkhe,rhe->rkh", key_sym, query) / scale  # [run, k, h]

        values = torch.einsum("rstd,rhde->rsthe", resid, W_V) + b_V[:, None, None]
        value_sym = torch.einsum("rkd,rhde->rkhe", resid_sym, W_V) + b_V[:, None]

        operands = {"a": (0, a), "b": (1, b)}
        score_at, value_at = [], []  # of each position, in input order: [run, n, head(, d_head)]
        for slot in layout:
            if slot in operands:
                table, index = operands[slot]
                score_at.append(gather_rows(score_tables[:, table], index))
                value_at.append(gather_rows(values[:, table], index))
            else:
                k = symbols.index(slot)
                score_at.append(score_sym[:, k, None].expand(-1, a.shape[1], -1))
                value_at.append(value_sym[:, k, None])
        scores = torch.stack(score_at, dim=-1)  # [run, n, head, n_ctx]
        # the query sees every key: a Python constant keeps the old rule's bits
        constant = 1.0 if self.cfg.attention_rule == "zhong" else 1.0 / len(layout)
        pattern = mix_attention(scores.softmax(dim=-1), self.cfg.attention_rate, constant)
        # z as broadcast products (an einsum here becomes a bmm over thousands of tiny matrices,
        # slow on CPU), summed in input order, then all heads through W_O in one matmul.
        z = pattern[..., 0, None] * value_at[0]
        for i in range(1, len(layout)):
            z = z + pattern[..., i, None] * value_at[i]  # [run, n, head, d_head]
        attn_out = z.flatten(2) @ W_O.flatten(1, 2)
        resid_mid = resid_sym[:, -1, None] + attn_out + b_O[:, None]
        post = activate(
            resid_mid @ params["blocks.0.mlp.W_in"] + params["blocks.0.mlp.b_in"][:, None],
            self.cfg.activation,
        )
        resid_post = (
            resid_mid + post @ params["blocks.0.mlp.W_out"] + params["blocks.0.mlp.b_out"][:, None]
        )
        logits = resid_post @ params["unembed.W_U"] + params["unembed.b_U"][:, None]
        return Internals(logits, (post,), (pattern,))

    def _deep(self, params, a, b) -> Internals:
        cfg = self.cfg
        tokens = data.tokens(cfg, a, b)  # [run, n, n_ctx]
        resid = gather_rows(params["embed.W_E"], tokens.flatten(1)).unflatten(1, tokens.shape[1:])
        resid = resid + self._positions(params)[:, None]  # [run, n, n_ctx, d_model]
        neurons, patterns = [], []
        for layer in range(cfg.n_layers):
            prefix = f"blocks.{layer}."
            block = {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}
            # the last block only needs its query and MLP at the answer
            resid, post, pattern = self._block(resid, block, last=layer == cfg.n_layers - 1)
            neurons.append(post[:, :, -1])
            patterns.append(pattern[:, :, :, -1])
        final = resid[:, :, -1]
        if self.ln:
            final = layer_norm(final, *self._ln(params, "ln_final", axis=1))
        logits = final @ params["unembed.W_U"] + params["unembed.b_U"][:, None]
        return Internals(logits, tuple(neurons), tuple(patterns))

    def _block(
        self, resid: Float[Tensor, "run n pos d_model"], p: dict[str, Tensor], last: bool
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One block on every position (`last`: queries and MLP at the answer, the last position,
        alone). Returns the residual stream after it, the neurons [run, n, q, d_mlp] and the
        attention pattern [run, n, head, q, key] of the positions computed."""
        n_ctx = resid.shape[2]
        causal = torch.tril(torch.ones(n_ctx, n_ctx, dtype=torch.bool, device=resid.device))
        constant = constant_attention(causal, self.cfg.attention_rule, resid.dtype)
        if last:
            causal, constant = causal[-1:], constant[-1:]
        x = layer_norm(resid, *self._ln(p, "ln1")) if self.ln else resid
        queries = x[:, :, -1:] if last else x
        q = _heads(queries, p["attn.W_Q"], p["attn.b_Q"])  # [run, n, q, head, d_head]
        k, v = (_heads(x, p[f"attn.W_{w}"], p[f"attn.b_{w}"]) for w in "KV")
        # scores and z as broadcast products: a matmul here is a bmm over run * n * heads
        # matrices of n_ctx rows, far slower on the CPU
        scores = (q[:, :, :, None] * k[:, :, None]).sum(-1) / math.sqrt(self.cfg.d_head)
        scores = scores.masked_fill(~causal[..., None], -torch.inf)  # [run, n, q, key, head]
        pattern = mix_attention(scores.softmax(dim=3), self.cfg.attention_rate, constant[..., None])
        z = (pattern[..., None] * v[:, :, None]).sum(3)  # [run, n, q, head, d_head]
        attn_out = _linear(z.flatten(3), p["attn.W_O"].flatten(1, 2)) + p["attn.b_O"][:, None, None]
        resid = (resid[:, :, -1:] if last else resid) + attn_out
        if self.post_ln:
            resid = layer_norm(resid, *self._ln(p, "ln1"))
        x = layer_norm(resid, *self._ln(p, "ln2")) if self.ln else resid
        pre = _linear(x, p["mlp.W_in"]) + p["mlp.b_in"][:, None, None]
        post = activate(pre, self.cfg.activation)
        resid = resid + _linear(post, p["mlp.W_out"]) + p["mlp.b_out"][:, None, None]
        if self.post_ln:
            resid = layer_norm(resid, *self._ln(p, "ln2"))
        return resid, post, pattern.permute(0, 1, 4, 2, 3)

    @staticmethod
    def _ln(p: dict[str, Tensor], name: str, axis: int = 2) -> tuple[Tensor, Tensor]:
        """A LayerNorm's weight and bias shaped to broadcast over the axes between run and
        d_model (`axis` of them)."""
        shape = lambda t: t.reshape(t.shape[0], *([1] * axis), t.shape[-1])  # noqa: E731
        return shape(p[f"{name}.w"]), shape(p[f"{name}.b"])

    # ---- views for the measures --------------------------------------------------------------
    def embeddings(self, params):
        return {"W_E": params["embed.W_E"]}

    @property
    def direct_layers(self) -> tuple[int, ...]:
        """Every block; with post-LayerNorm the last alone (an earlier block's output passes
        through the later blocks' LayerNorms)."""
        if self.post_ln:
            return (self.cfg.n_layers - 1,)
        return tuple(range(self.cfg.n_layers))

    def neuron_logit_maps(self, params):
        """W_L = W_U^T W_out^T of every block in `direct_layers`: its neurons' direct effect on
        the logits. With LayerNorm the map goes through the centring and weight of the last
        LayerNorm (ln_final, or the last block's ln2 with post-LN); its per-input scale is left
        out."""
        W_U = params["unembed.W_U"].double()
        last_ln = f"blocks.{self.cfg.n_layers - 1}.ln2" if self.post_ln else "ln_final"
        normed = self.ln or self.post_ln
        if normed:
            W_U = W_U * params[f"{last_ln}.w"].double()[..., None]
        maps = {}
        for layer in self.direct_layers:
            W_out = params[f"blocks.{layer}.mlp.W_out"].double()
            if normed:
                W_out = W_out - W_out.mean(dim=-1, keepdim=True)
            maps[layer] = torch.einsum("cmd,cdp->cpm", W_out, W_U)
        return maps
