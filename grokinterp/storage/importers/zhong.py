"""Zhong, Liu, Tegmark, Andreas 2023 ("The clock and the pizza") -> a grokinterp run.

Layout facts, from fjzzq2002/pizza (code/train-main.py, code/save/):
- `torch.save(model.state_dict(), f'save/model_{run_name}.pt')` beside
  `save/config_{run_name}.json` (C, funcs, n_heads, d_model, n_layers, act_fn, epoch, lr,
  weight_decay, frac, attn_coeff, diff_vocab, eqn_sign, runid; d_head when not d_model / n_heads).
- The state dict has the progress-measures names and shapes (`paper` layout): embed.W_E
  [d_model, vocab], pos_embed.W_pos [n_ctx, d_model], blocks.{l}.attn.W_Q/W_K/W_V [heads, d_head,
  d_model], W_O [d_model, heads * d_head], the buffer blocks.{l}.attn.mask, blocks.{l}.mlp.W_in
  [4 d_model, d_model], b_in, W_out [d_model, 4 d_model], b_out, unembed.W_U [d_model, vocab].
- `MyAddDataSet`: vocab = C, doubled by diff_vocab (b is written as b + C, its own tokens), plus
  one `=` token (id vocab - 1) and position by eqn_sign: eqn_sign 0 is `[a, b]` (grokinterp's
  input_format a-b), 1 is `[a, b, =]` (a-b-eq). The loss is over all vocab outputs at the last
  position; grokinterp keeps the C element outputs (an `=` output is dropped, with a note).
- Attention: softmax(scores / sqrt(d_head)) * attn_coeff + (1 - attn_coeff), no mask applied (the
  mask buffer is unused): grokinterp's attention_rate with attention_rule `zhong`. At the last
  position a causal mask hides nothing, so one layer is the same network; with more layers the
  earlier positions would see later ones, which grokinterp's causal model cannot (refused).
- AdamW(lr, weight_decay, betas (0.9, 0.98)), LambdaLR min(step / 10, 1): warm-up 10. The split is
  `torch.utils.data.random_split` without a seed and is not saved: --split-from gives it.
"""

from __future__ import annotations

import re

from grokinterp.config import RunConfig
from grokinterp.errors import UsageError
from grokinterp.storage.importers.common import (
    Imported,
    Options,
    check_heads,
    check_series,
    checkpoint_series,
    config_dict,
    schedule,
    train_frac_for,
)
from grokinterp.storage.importers.curves import read_curves
from grokinterp.storage.importers.mlp_common import given_split, load_with_config, refuse_flags
from grokinterp.storage.importers.paper import to_grokinterp
from grokinterp.storage.importers.task_choice import task_for

PRESET, CONFIG = "imported-zhong", "config_{stem}.json"
ACTIVATIONS = {"ReLU": "relu", "GeLU": "gelu"}
FORMATS = {0: "a-b", 1: "a-b-eq"}
_ADD = re.compile(r"^lambdax:\(x\[0\]\+x\[1\]\)%(\d+)$")
_ATTN, _MLP = "blocks.0.attn.", "blocks.0.mlp."


def load(source) -> dict:
    return load_with_config(source, CONFIG, "Zhong et al.'s model_<id>.pt")


def _shapes(d: int, h: int, dh: int, vocab: int, n_ctx: int) -> dict[str, tuple[int, ...]]:
    return {
        "embed.W_E": (d, vocab),
        "pos_embed.W_pos": (n_ctx, d),
        **{f"{_ATTN}W_{x}": (h, dh, d) for x in "QKV"},
        f"{_ATTN}W_O": (d, h * dh),
        f"{_MLP}W_in": (4 * d, d),
        f"{_MLP}b_in": (4 * d,),
        f"{_MLP}W_out": (d, 4 * d),
        f"{_MLP}b_out": (d,),
        "unembed.W_U": (d, vocab),
    }


def _stated(config: dict, key: str, kind: type, default=None):
    value = config.get(key, default)
    if value is None or isinstance(value, bool) or not isinstance(value, kind):
        raise UsageError(f"the config states {key}={value!r}, not a {kind.__name__}")
    return value


def read(data: dict, opts: Options) -> Imported:
    refuse_flags(opts, ("p", "group", "operation", "data_seed", "train_frac"), "zhong")
    config = config_dict(data)
    c = _stated(config, "C", int)
    funcs = str(config.get("funcs", "")).replace(" ", "")
    match = _ADD.match(funcs)
    if match is None or int(match[1]) != c:
        raise UsageError(f"the config's funcs {config.get('funcs')!r} is not (a + b) mod C")
    n_layers = _stated(config, "n_layers", int, 1)
    if n_layers != 1:
        raise UsageError(
            f"n_layers={n_layers}: their attention has no mask, grokinterp's is causal, so only "
            "one-layer models are the same network"
        )
    if _stated(config, "diff_vocab", int, 0):
        raise UsageError(
            "diff_vocab=1 gives b its own tokens; grokinterp embeds a and b in one table"
        )
    eqn_sign = _stated(config, "eqn_sign", int, 0)
    act = config.get("act_fn", "ReLU")
    if act not in ACTIVATIONS or eqn_sign not in FORMATS:
        raise UsageError(
            f"act_fn={act!r}, eqn_sign={eqn_sign!r}: grokinterp reads ReLU or GeLU, 0 or 1"
        )
    rate = float(_stated(config, "attn_coeff", (int, float)))
    d, h = _stated(config, "d_model", int), _stated(config, "n_heads", int)
    dh = _stated(config, "d_head", int, d // h)
    check_heads(d, h, dh)
    vocab, n_ctx = c + eqn_sign, 2 + eqn_sign
    if opts.epoch is None and "epoch" in config:
        data = {**data, "epoch": _stated(config, "epoch", int)}
    curves = read_curves(data, opts.metrics)
    series, notes = checkpoint_series(data, "checkpoints", "checkpoint_epochs", opts.epoch, curves)
    shapes = _shapes(d, h, dh, vocab, n_ctx)
    check_series(series, shapes, set(shapes), {f"{_ATTN}mask"})
    task = task_for("add", None, c)
    train = given_split(
        data, opts, task, "Zhong et al.'s code draws its split unseeded and saves none"
    )
    cfg = RunConfig(
        preset=PRESET,
        p=c,
        input_format=FORMATS[eqn_sign],
        d_model=d,
        n_heads=h,
        d_mlp=4 * d,
        activation=ACTIVATIONS[act],
        attention_rate=rate,
        attention_rule="zhong",
        init="paper",
        lr=float(_stated(config, "lr", (int, float), 1e-3)),
        weight_decay=float(_stated(config, "weight_decay", (int, float), 1e-4)),
        beta1=0.9,
        beta2=0.98,
        warmup_steps=10,
        train_frac=train_frac_for(len(train), task.n_pairs, None),
        **schedule([epoch for epoch, _ in series]),
        seed=0 if opts.seed is None else opts.seed,
        data_seed=0,  # the split is given, never drawn
    ).validate()
    if eqn_sign:
        notes.append("the output for `=`, part of their softmax, dropped: grokinterp has p classes")
    checkpoints = [(epoch, to_grokinterp(state, cfg)) for epoch, state in series]
    return Imported(cfg, train, checkpoints, curves.columns, notes + curves.notes)
