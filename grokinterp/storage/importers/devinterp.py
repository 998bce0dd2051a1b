"""devinterp's grokking example MLP (timaeus-research/devinterp, examples/grokking.ipynb) -> a
grokinterp MLP run of the `devinterp-grokking` preset's model.

Layout facts, from the notebook's `MLP`: embedding = nn.Embedding(p, embed_dim) shared by both
operands; linear1l and linear1r = nn.Linear(embed_dim, hidden_size, bias=True), applied to
a = x[..., 0] and b = x[..., 1] and summed; GELU (the exact form); linear2 = nn.Linear(hidden_size,
p, bias=False). State dict: embedding.weight [p, e], linear1l.weight / linear1r.weight [m, e],
linear1l.bias / linear1r.bias [m], linear2.weight [p, m]. The notebook keeps its checkpoints in
memory and its split in a DataLoader: a file of this layout carries one state dict (or a
'checkpoints' list with 'checkpoint_epochs') and the split comes from 'train_indices' or
--split-from.

grokinterp's form (`grokinterp.models.mlp`, first_bias per-operand): embed.W_E = embedding.weight,
blocks.0.mlp.W_in = [linear1l.weight^T; linear1r.weight^T], b_in_a = linear1l.bias, b_in_b =
linear1r.bias, unembed.W_U = linear2.weight^T.
"""

from __future__ import annotations

import torch
from torch import Tensor

from grokinterp.errors import UsageError
from grokinterp.presets import preset
from grokinterp.storage.importers.common import (
    Imported,
    Options,
    check_series,
    checkpoint_series,
    config_dict,
    grokinterp_state,
    schedule,
    tensor_shape,
    train_frac_for,
)
from grokinterp.storage.importers.curves import read_curves
from grokinterp.storage.importers.mlp_common import given_split, refuse_flags
from grokinterp.storage.importers.optimizer import optimizer_values, resolve
from grokinterp.storage.importers.task_choice import task_for

PRESET = "devinterp-grokking"
_NAMES = {f"linear1{side}.{kind}" for side in "lr" for kind in ("weight", "bias")}
_NAMES |= {"embedding.weight", "linear2.weight"}


def read(data: dict, opts: Options) -> Imported:
    refuse_flags(opts, ("group", "data_seed", "train_frac"), "devinterp")
    curves = read_curves(data, opts.metrics)
    series, notes = checkpoint_series(data, "checkpoints", "checkpoint_epochs", opts.epoch, curves)
    where, first = f"checkpoint at epoch {series[0][0]}", series[0][1]
    check_series(series[:1], {}, _NAMES, set())
    p, e = tensor_shape(first, "embedding.weight", 2, where)
    m, _ = tensor_shape(first, "linear1l.weight", 2, where)
    if opts.p is not None and opts.p != p:
        raise UsageError(f"embedding.weight has {p} rows, so p = {p}, but --p says {opts.p}")
    shapes = {"embedding.weight": (p, e), "linear2.weight": (p, m)}
    shapes |= {f"linear1{s}.weight": (m, e) for s in "lr"} | {
        f"linear1{s}.bias": (m,) for s in "lr"
    }
    check_series(series, shapes, _NAMES, set())
    task = task_for(opts.operation or "add", None, p)
    train = given_split(data, opts, task, "devinterp's example records no split")
    base = preset(PRESET)
    defaults = {
        name: getattr(base, name) for name in ("lr", "weight_decay", "beta1", "beta2", "adam_eps")
    }
    adamw, adamw_notes = resolve(
        optimizer_values(data),
        config_dict(data),
        opts.hyperparameter_flags(),
        defaults,
        "the notebook's",
    )
    epochs = [epoch for epoch, _ in series]
    cfg = base.replace(
        p=p,
        operation=task.name,
        d_model=e,
        d_mlp=m,
        **adamw,
        train_frac=train_frac_for(len(train), task.n_pairs, None),
        **schedule(epochs),
        seed=base.seed if opts.seed is None else opts.seed,
        batch_size=min(base.batch_size, len(train)),  # the whole set when it is smaller
    ).validate()
    checkpoints = [(epoch, _convert(state, cfg)) for epoch, state in series]
    return Imported(cfg, train, checkpoints, curves.columns, notes + curves.notes + adamw_notes)


def _convert(state: dict[str, Tensor], cfg) -> dict[str, Tensor]:
    return grokinterp_state(
        cfg,
        {
            "embed.W_E": state["embedding.weight"],
            "blocks.0.mlp.W_in": torch.cat(
                [state["linear1l.weight"].T, state["linear1r.weight"].T]
            ),
            "blocks.0.mlp.b_in_a": state["linear1l.bias"],
            "blocks.0.mlp.b_in_b": state["linear1r.bias"],
            "unembed.W_U": state["linear2.weight"].T,
        },
    )
