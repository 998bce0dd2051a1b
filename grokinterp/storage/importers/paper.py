"""Nanda et al.'s public code (progress-measures-paper) -> a grokinterp run.

Layout facts, from mechanistic-interpretability-grokking/progress-measures-paper:
- transformers.py, `Transformer`: the state dict holds embed.W_E [d_model, d_vocab],
  pos_embed.W_pos [n_ctx, d_model], blocks.0.attn.W_Q/W_K/W_V [heads, d_head, d_model],
  blocks.0.attn.W_O [d_model, heads * d_head] (z flattened 'b i q h -> b q (i h)', head-major),
  the buffer blocks.0.attn.mask, blocks.0.mlp.W_in [d_mlp, d_model], b_in [d_mlp],
  W_out [d_model, d_mlp], b_out [d_model] and unembed.W_U [d_model, d_vocab]: no attention or
  unembedding biases, the LayerNorm modules commented out.
- d_vocab = p + 1 inputs and outputs (`=` is token p). Its analysis drops the last output:
  `model(all_data)[:, -1, :-1]` in Trainer.take_metrics, `logits[:, :-1]` in helpers.test_logits.
- `Config.d_vocab` defaults to `p+1` evaluated once in the class body (114), so p is read from the
  config, never guessed from the shapes.
- `gen_train_test`: the pairs (i, j, p) for i in range(p) for j in range(p), `random.seed(seed)`,
  `random.shuffle`, the first int(frac_train * len(pairs)) train.
- `Trainer`: AdamW(lr, weight_decay, betas=(0.9, 0.98)), LambdaLR min(step / 10, 1); Config
  defaults lr 1e-3, weight_decay 1.0, fn_name 'add' (also 'subtract', 'x2xyy2', 'rand'). Its
  `save_epoch(e)` files hold {'model', 'train_loss', 'test_loss', 'epoch'} (the losses recorded
  before the step of epoch e, the weights after it); final.pth holds 'model', 'train_losses' /
  'test_losses' (one per epoch, each before that epoch's step), 'epoch' = num_epochs and the
  'optimizer' state dict (the hyperparameters the run used). Epochs are kept as the file labels
  them.
- The mainline run's full_run_data.pth (loaded by its Grokking_Analysis notebook) holds
  'state_dicts' with 'epochs'.
"""

from __future__ import annotations

import random

from torch import Tensor

from grokinterp.config import RunConfig
from grokinterp.errors import UsageError
from grokinterp.storage.importers.common import (
    Imported,
    Options,
    check_heads,
    check_names,
    check_series,
    check_stated,
    checkpoint_series,
    config_dict,
    grokinterp_state,
    int_list,
    pick,
    read_split_json,
    schedule,
    tensor_shape,
    train_frac_for,
)
from grokinterp.storage.importers.curves import read_curves
from grokinterp.storage.importers.loss_check import recorded_final_loss
from grokinterp.storage.importers.optimizer import optimizer_values, resolve
from grokinterp.storage.importers.task_choice import check_split, paper_operation, task_for

PRESET = "imported-paper"
_ATTN, _MLP = "blocks.0.attn.", "blocks.0.mlp."
_STATED = {"act_type": ("ReLU",), "num_layers": (1,)}
"""Config values that grokinterp's model can represent, when the file's config states them
(`use_ln` changes nothing: the model builds no LayerNorm)."""


def _source_shapes(d: int, h: int, dh: int, m: int, vocab: int) -> dict[str, tuple[int, ...]]:
    """The paper's parameter shapes (transformers.py)."""
    return {
        "embed.W_E": (d, vocab),
        "pos_embed.W_pos": (3, d),
        **{f"{_ATTN}W_{x}": (h, dh, d) for x in "QKV"},
        f"{_ATTN}W_O": (d, h * dh),
        f"{_MLP}W_in": (m, d),
        f"{_MLP}b_in": (m,),
        f"{_MLP}W_out": (d, m),
        f"{_MLP}b_out": (d,),
        "unembed.W_U": (d, vocab),
    }


DEFAULTS = {"lr": 1e-3, "weight_decay": 1.0, "beta1": 0.9, "beta2": 0.98, "adam_eps": 1e-8}
"""The paper's Config lr and weight_decay, its Trainer's betas, AdamW's default eps."""
_WEIGHTS = set(_source_shapes(1, 1, 1, 1, 1))
_BUFFERS = {f"{_ATTN}mask"}


def paper_split(p: int, frac_train: float, seed: int) -> list[int]:
    """The train pair indices a * p + b that `gen_train_test` picks."""
    pairs = [(i, j) for i in range(p) for j in range(p)]
    random.Random(seed).shuffle(pairs)  # the same permutation as random.seed + random.shuffle
    return [i * p + j for i, j in pairs[: int(frac_train * len(pairs))]]


def read(data: dict, opts: Options) -> Imported:
    if opts.data_seed is not None:
        raise UsageError("--data-seed does not apply to the paper layout; its split seed is --seed")
    if opts.group is not None:
        raise UsageError("--group does not apply to the paper layout: its code trains mod p only")
    config = config_dict(data)
    check_stated(config, _STATED)
    p = pick(config, "p", opts.p, "--p", int)
    if p is None:
        raise UsageError("the file's config has no p; pass --p")
    task = task_for(paper_operation(config, opts.operation), None, p)
    curves = read_curves(data, opts.metrics)
    series, notes = checkpoint_series(data, "state_dicts", "epochs", opts.epoch, curves)
    where, first = f"checkpoint at epoch {series[0][0]}", series[0][1]
    check_names(first, _WEIGHTS, _BUFFERS, where)
    d, _ = tensor_shape(first, "embed.W_E", 2, where)
    h, dh, _ = tensor_shape(first, f"{_ATTN}W_Q", 3, where)
    m, _ = tensor_shape(first, f"{_MLP}W_in", 2, where)
    check_heads(d, h, dh)
    check_series(series, _source_shapes(d, h, dh, m, p + 1), _WEIGHTS, _BUFFERS)

    frac = pick(config, "frac_train", opts.train_frac, "--train-frac", float)
    seed = pick(config, "seed", opts.seed, "--seed", int)
    if "train_indices" in data:  # the per-epoch layout's init.pth
        if opts.split_from is not None:
            raise UsageError("the folder records its split (init.pth); drop --split-from")
        train = check_split(int_list(data["train_indices"], "train_indices"), task)
    elif opts.split_from is not None:
        train = check_split(read_split_json(opts.split_from), task)
    elif frac is None or seed is None:
        raise UsageError(
            "the split needs the config's frac_train and seed: pass --train-frac and --seed "
            "(or --split-from)"
        )
    else:
        train = check_split(paper_split(p, frac, seed), task)
    adamw, adamw_notes = resolve(
        optimizer_values(data), config, opts.hyperparameter_flags(), DEFAULTS, "the paper's default"
    )
    cfg = RunConfig(
        preset=PRESET,
        p=p,
        train_frac=train_frac_for(len(train), task.n_pairs, frac),
        d_model=d,
        n_heads=h,
        d_mlp=m,
        init="paper",
        **adamw,
        warmup_steps=10,
        **schedule([epoch for epoch, _ in series]),
        seed=0 if seed is None else seed,  # the paper seeds its split with it; init is unseeded
        data_seed=0 if seed is None else seed,
        operation=task.name,
    ).validate()
    checkpoints = [(epoch, to_grokinterp(state, cfg)) for epoch, state in series]
    recorded = recorded_final_loss(data, curves.columns.get("train_loss"), series[-1][0])
    notes += curves.notes + adamw_notes
    return Imported(cfg, train, checkpoints, curves.columns, notes, recorded)


def to_grokinterp(state: dict[str, Tensor], cfg: RunConfig) -> dict[str, Tensor]:
    """A one-layer state dict of the paper's layout in grokinterp's names and shapes (float32)."""
    h, dh, d = cfg.n_heads, cfg.d_head, cfg.d_model
    return grokinterp_state(
        cfg,
        {
            "embed.W_E": state["embed.W_E"].T,
            "pos_embed.W_pos": state["pos_embed.W_pos"],
            **{f"{_ATTN}W_{x}": state[f"{_ATTN}W_{x}"].transpose(1, 2) for x in "QKV"},
            f"{_ATTN}W_O": state[f"{_ATTN}W_O"].T.reshape(h, dh, d),
            f"{_MLP}W_in": state[f"{_MLP}W_in"].T,
            f"{_MLP}b_in": state[f"{_MLP}b_in"],
            f"{_MLP}W_out": state[f"{_MLP}W_out"].T,
            f"{_MLP}b_out": state[f"{_MLP}b_out"],
            "unembed.W_U": state["unembed.W_U"][:, : cfg.p],  # drop the `=` output
        },
    )
