"""devinterp's grokking example MLP (timaeus-research/devinterp, examples/grokking.ipynb) -> a
grokinterp MLP run of the `devinterp-grokking` preset's model.

Layout facts, from the notebook's `MLP`: embedding = nn.Embedding(p, embed_dim) shared by both
operands; linear1l and linear1r = nn.Linear(embed_dim, hidden_size, bias=True), applied to
a = x[..., 0] and b = x[..., 1] and summed; GELU (the exact form); linear2 = nn.Linear(hidden_size,
p, bias=False). State dict: embedding.weight [p, e], linear1l.weight / linear1r.weight [m, e],
linear1l.bias / linear1r.bias [m], linear2.weight [p, m]. The notebook keeps its checkpoints in
memory and its split in a DataLoader: a file of this layout carries one state dict (or a
'checkpoints' list with 'checkpoint_epochs') and the split comes from 'train_indices' or
--split-from. Its optional 'config' dict uses ExperimentParams' names: lr, weight_decay,
random_seed (the seed of the model and of the split), train_frac, batch_size; and grokinterp's
beta1, beta2, adam_eps.

grokinterp's form (`grokinterp.models.mlp`, first_bias per-operand): embed.W_E = embedding.weight,
blocks.0.mlp.W_in = [linear1l.weight^T; linear1r.weight^T], b_in_a = linear1l.bias, b_in_b =
linear1r.bias, unembed.W_U = linear2.weight^T. `to_grokinterp` and `from_grokinterp` are the
two directions of that map (the import and `grokinterp export --to devinterp`); `export_file`
writes a run's whole series in the layout, every tensor float32.
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
    check_series,
    config_dict,
    grokinterp_state,
    pick,
    schedule,
    tensor_shape,
    train_frac_for,
)
from grokinterp.storage.importers.mlp_common import (
    given_split,
    imported_run,
    read_series,
    refuse_flags,
)
from grokinterp.storage.importers.optimizer import HYPERPARAMETERS, optimizer_values, resolve
from grokinterp.storage.importers.task_choice import task_for

PRESET = "devinterp-grokking"
_NAMES = {f"linear1{side}.{kind}" for side in "lr" for kind in ("weight", "bias")}
_NAMES |= {"embedding.weight", "linear2.weight"}


def read(data: dict, opts: Options) -> Imported:
    refuse_flags(opts, ("group", "data_seed", "train_frac"), "devinterp")
    series, curves, notes = read_series(data, opts, _NAMES)
    where, first = f"checkpoint at epoch {series[0][0]}", series[0][1]
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
    base, config = preset(PRESET), config_dict(data)
    defaults = {name: getattr(base, name) for name in HYPERPARAMETERS}
    adamw, adamw_notes = resolve(
        optimizer_values(data), config, opts.hyperparameter_flags(), defaults, "the notebook's"
    )
    seed = pick(config, "random_seed", opts.seed, "--seed", int)
    seed = base.seed if seed is None else seed
    batch = pick(config, "batch_size", None, "", int)
    stated_frac = pick(config, "train_frac", None, "", float)
    cfg = base.replace(
        p=p,
        operation=task.name,
        d_model=e,
        d_mlp=m,
        **adamw,
        train_frac=train_frac_for(len(train), task.n_pairs, stated_frac),
        **schedule([epoch for epoch, _ in series]),
        seed=seed,
        data_seed=seed,  # the notebook splits with random_seed too
        batch_size=min(base.batch_size, len(train)) if batch is None else batch,
    ).validate()
    return imported_run(cfg, train, series, to_grokinterp, curves, notes + adamw_notes)


def to_grokinterp(state: dict[str, Tensor], cfg: RunConfig) -> dict[str, Tensor]:
    """Their state dict -> grokinterp's (float32) for the MLP of `cfg`."""
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


def from_grokinterp(state: dict[str, Tensor], cfg: RunConfig) -> dict[str, Tensor]:
    """grokinterp's state dict of the layout's MLP -> theirs (contiguous, dtypes kept): the
    inverse of `to_grokinterp`."""
    e, w_in = cfg.d_model, state["blocks.0.mlp.W_in"]
    their = {
        "embedding.weight": state["embed.W_E"],
        "linear1l.weight": w_in[:e].T,
        "linear1l.bias": state["blocks.0.mlp.b_in_a"],
        "linear1r.weight": w_in[e:].T,
        "linear1r.bias": state["blocks.0.mlp.b_in_b"],
        "linear2.weight": state["unembed.W_U"].T,
    }
    return {name: t.contiguous().clone() for name, t in their.items()}


def export_file(
    cfg: RunConfig, series: list[tuple[int, dict[str, Tensor]]], train_indices: list[int]
) -> dict:
    """The file this layout's importer reads back as the run: 'checkpoints' (their state dicts)
    with 'checkpoint_epochs', 'train_indices' (pair indices a * p + b) and a 'config' of
    ExperimentParams' names. Whether the run fits the layout is for the caller to check by
    reading the file back."""
    config = {name: getattr(cfg, name) for name in HYPERPARAMETERS}
    config |= {"random_seed": cfg.seed, "train_frac": cfg.train_frac, "batch_size": cfg.batch_size}
    return {
        "checkpoints": [from_grokinterp(state, cfg) for _, state in series],
        "checkpoint_epochs": [epoch for epoch, _ in series],
        "train_indices": list(train_indices),
        "config": config,
    }
