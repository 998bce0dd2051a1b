"""TransformerLens `HookedTransformer` checkpoints -> a grokinterp run.

Layout facts:
- A one-layer, LayerNorm-free HookedTransformer's state dict has grokinterp's names and shapes
  (grokinterp/models/transformer.py) and the buffers blocks.0.attn.mask / IGNORE; LayerNorm
  would add blocks.0.ln1.*, blocks.0.ln2.*, ln_final.*.
- Its input, from the rows of pos_embed.W_pos (n_ctx): 3 is `[a, b, =]` (d_vocab = n + 1, `=`
  the last token id), 2 is `[a, b]` (d_vocab = n; Zhong et al.'s `eqn_sign = 0`). Other
  lengths are refused: the token ids of a foreign `[a, op, b, =]` are not known (a grokinterp
  export of one states them and imports through its own layout).
- TransformerLens's demos/Grokking_Demo.ipynb: d_vocab = p + 1 (`=` is token p) and
  d_vocab_out = p; a model left at the default d_vocab_out = d_vocab has an extra output for `=`,
  dropped here. The demo saves {"model", "config", "checkpoints", "checkpoint_epochs",
  "train_losses", "test_losses", "train_indices", "test_indices"}; its "config" is a
  HookedTransformerConfig object, which weights_only loading refuses (re-save without it).
- Its split: torch.manual_seed(DATA_SEED), indices = torch.randperm(p * p), the first
  int(p * p * frac_train) train; pair index a * p + b. AdamW lr 1e-3, weight_decay 1.0,
  betas (0.9, 0.98), no warm-up; the biases are frozen at their zero init.
- checkpoint_epochs label the weights after that epoch's step (99, 199, ... after 100, 200, ...
  steps); epochs are kept as the file labels them. "model", the final weights, may come after
  the last checkpoint (a list every 100 epochs stopping at 39,900 of 40,000): when it differs
  from the last entry it is kept as the last checkpoint, at the file's 'epoch', --epoch, or the
  epochs its curves cover. The demo also records 'train_accs' / 'test_accs' (metric columns).
- Another operation or a group: --operation / --group (the file does not say); p is the number
  of element tokens, and the split must lie in that task's domain.
"""

from __future__ import annotations

import torch
from torch import Tensor

from grokinterp.config import RunConfig
from grokinterp.errors import UsageError
from grokinterp.presets import preset
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
from grokinterp.storage.importers.task_choice import check_split, task_for
from grokinterp.tasks import Task

PRESET = "imported-tl"
DEFAULTS = {"lr": 1e-3, "weight_decay": 1.0, "beta1": 0.9, "beta2": 0.98, "adam_eps": 1e-8}
"""The grokking demo's AdamW settings (eps: AdamW's default)."""
GROUP_P = preset("canonical").p
"""RunConfig.p of a group run: unused, kept at the canonical preset's value."""
_ATTN, _MLP = "blocks.0.attn.", "blocks.0.mlp."
_STATED = {
    "act_fn": ("relu",),
    "normalization_type": (None,),
    "n_layers": (1,),
    "positional_embedding_type": ("standard",),
    "attention_dir": ("causal",),
}
"""HookedTransformerConfig values that grokinterp's model can represent, when stated."""


FORMATS = {3: "a-b-eq", 2: "a-b"}
"""pos_embed.W_pos rows (n_ctx) -> the input format of the model."""


def _source_shapes(
    d: int, h: int, dh: int, m: int, vocab: int, outputs: int, n_ctx: int
) -> dict[str, tuple[int, ...]]:
    """HookedTransformer's parameter shapes."""
    return {
        "embed.W_E": (vocab, d),
        "pos_embed.W_pos": (n_ctx, d),
        **{f"{_ATTN}W_{x}": (h, d, dh) for x in "QKV"},
        **{f"{_ATTN}b_{x}": (h, dh) for x in "QKV"},
        f"{_ATTN}W_O": (h, dh, d),
        f"{_ATTN}b_O": (d,),
        f"{_MLP}W_in": (d, m),
        f"{_MLP}b_in": (m,),
        f"{_MLP}W_out": (m, d),
        f"{_MLP}b_out": (d,),
        "unembed.W_U": (d, outputs),
        "unembed.b_U": (outputs,),
    }


_NAMES = set(_source_shapes(1, 1, 1, 1, 1, 1, 1))
_BIASES = {name for name in _NAMES if name.rsplit(".", 1)[1].startswith("b_")}
_REQUIRED, _OPTIONAL = _NAMES - _BIASES, _BIASES | {f"{_ATTN}mask", f"{_ATTN}IGNORE"}
"""Missing biases are zeros; the buffers are grokinterp's own."""


def demo_split(n: int, frac_train: float, data_seed: int) -> list[int]:
    """The train pair indices that the grokking demo draws over the n * n grid."""
    generator = torch.Generator().manual_seed(data_seed)  # the stream of torch.manual_seed
    return torch.randperm(n * n, generator=generator)[: int(n * n * frac_train)].tolist()


def read(data: dict, opts: Options) -> Imported:
    config = config_dict(data)
    check_stated(config, _STATED)
    curves = read_curves(data, opts.metrics)
    series, notes = checkpoint_series(data, "checkpoints", "checkpoint_epochs", opts.epoch, curves)
    where, first = f"checkpoint at epoch {series[0][0]}", series[0][1]
    check_names(first, _REQUIRED, _OPTIONAL, where)
    vocab, d = tensor_shape(first, "embed.W_E", 2, where)
    h, _, dh = tensor_shape(first, f"{_ATTN}W_Q", 3, where)
    _, m = tensor_shape(first, f"{_MLP}W_in", 2, where)
    _, outputs = tensor_shape(first, "unembed.W_U", 2, where)
    n_ctx, _ = tensor_shape(first, "pos_embed.W_pos", 2, where)
    if n_ctx not in FORMATS:
        raise UsageError(
            f"{where}: pos_embed.W_pos has {n_ctx} positions; grokinterp reads TransformerLens "
            "models of [a, b, =] (3 positions) or [a, b] (2)"
        )
    input_format = FORMATS[n_ctx]
    task = _task(vocab, vocab - 1 if input_format == "a-b-eq" else vocab, opts)  # `=`: 1 token
    n = task.n_elements
    if outputs not in (n, n + 1):
        raise UsageError(f"unembed.W_U has {outputs} outputs; expected {n} or {n + 1}")
    check_heads(d, h, dh)
    shapes = _source_shapes(d, h, dh, m, vocab, outputs, n_ctx)
    check_series(series, shapes, _REQUIRED, _OPTIONAL)

    test = int_list(data["test_indices"], "test_indices") if "test_indices" in data else None
    train = check_split(_split(data, opts, n), task, test)
    seed = pick(config, "seed", opts.seed, "--seed", int)
    adamw, adamw_notes = resolve(
        optimizer_values(data), config, opts.hyperparameter_flags(), DEFAULTS, "the demo's"
    )
    cfg = RunConfig(
        preset=PRESET,
        p=n if opts.group is None else GROUP_P,
        train_frac=train_frac_for(len(train), task.n_pairs, opts.train_frac),
        d_model=d,
        n_heads=h,
        d_mlp=m,
        init="transformer_lens",
        **adamw,
        warmup_steps=1,  # no warm-up
        **schedule([epoch for epoch, _ in series]),
        seed=0 if seed is None else seed,
        data_seed=0 if opts.data_seed is None else opts.data_seed,
        operation=task.name,
        group=opts.group,
        input_format=input_format,
    ).validate()
    checkpoints = [(epoch, _convert(state, cfg)) for epoch, state in series]
    recorded = recorded_final_loss(data, curves.columns.get("train_loss"), series[-1][0])
    notes += curves.notes + adamw_notes
    return Imported(cfg, train, checkpoints, curves.columns, notes, recorded)


def _task(vocab: int, n: int, opts: Options) -> Task:
    """The task of a model of `vocab` tokens, n of them elements: --operation (default add) mod
    n = p, or of --group, whose order must be n."""
    if opts.group is None and opts.p is not None and opts.p != n:
        raise UsageError(f"embed.W_E has {vocab} tokens, so p = {n}, but --p says {opts.p}")
    if opts.group is not None and opts.p is not None:
        raise UsageError("--p does not apply with --group")
    task = task_for(opts.operation or ("compose" if opts.group else "add"), opts.group, n)
    if task.n_elements != n:
        raise UsageError(
            f"embed.W_E has {vocab} tokens, so {n} elements, but {opts.group} has {task.n_elements}"
        )
    return task


def _split(data: dict, opts: Options, n: int) -> list[int]:
    """The file's train_indices, else --split-from, else the demo's rule from --data-seed."""
    if "train_indices" in data:
        if opts.split_from is not None:
            raise UsageError("the file records its split (train_indices); drop --split-from")
        return int_list(data["train_indices"], "train_indices")
    if opts.split_from is not None:
        return read_split_json(opts.split_from)
    if opts.data_seed is None or opts.train_frac is None:
        raise UsageError(
            "the file records no split (train_indices): pass --split-from, or --data-seed with "
            "--train-frac"
        )
    return demo_split(n, opts.train_frac, opts.data_seed)


def _convert(state: dict[str, Tensor], cfg: RunConfig) -> dict[str, Tensor]:
    params = {name: state[name] for name in _NAMES if name in state}
    classes = cfg.d_vocab_out
    params["unembed.W_U"] = params["unembed.W_U"][:, :classes]  # drop an `=` output
    if "unembed.b_U" in params:
        params["unembed.b_U"] = params["unembed.b_U"][:classes]
    return grokinterp_state(cfg, params)
