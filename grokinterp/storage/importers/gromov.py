"""Gromov (2023, "Grokking modular arithmetic") two-layer network -> a grokinterp MLP run.

Layout facts, from the paper's section 2 and the `fcn` module of d-doshi/Grokking
(utils/models.py, Doshi and Gromov's code): fc1 = nn.Linear(2p, N, bias=False) and
fc2 = nn.Linear(N, p, bias=False), so the state dict is fc1.weight [N, 2p] and fc2.weight [p, N];
the input is the flattened pair of one-hot vectors, a's in columns 0..p-1 and b's in p..2p-1; the
activation is x^2 (`nnPower(2)`). The file records neither the split nor the optimizer.

grokinterp's MLP reads tokens through embedding tables, so the one-hot input becomes one shared
identity table (embed.W_E = I_p, d_model = p) and fc1 the whole first layer: W_in = fc1.weight^T
[2p, N], W_U = fc2.weight^T. The logits are Gromov's exactly; the identity table is a parameter
Gromov's network does not have (it adds p to the weight norm, and training on would move it).
"""

from __future__ import annotations

import torch
from torch import Tensor

from grokinterp.config import RunConfig
from grokinterp.errors import UsageError
from grokinterp.storage.importers.common import (
    Imported,
    Options,
    check_series,
    config_dict,
    grokinterp_state,
    schedule,
    tensor_shape,
    train_frac_for,
)
from grokinterp.storage.importers.mlp_common import (
    given_split,
    imported_run,
    mlp_config,
    read_series,
    refuse_flags,
)
from grokinterp.storage.importers.optimizer import optimizer_values, resolve
from grokinterp.storage.importers.task_choice import task_for

PRESET = "imported-gromov"
_NAMES = {"fc1.weight", "fc2.weight"}
DEFAULTS = {"lr": 1e-3, "weight_decay": 1.0, "beta1": 0.9, "beta2": 0.98, "adam_eps": 1e-8}
"""grokinterp's canonical AdamW settings, recorded when neither the file nor a flag gives one."""


def read(data: dict, opts: Options) -> Imported:
    refuse_flags(opts, ("group", "data_seed", "train_frac"), "gromov")
    series, curves, notes = read_series(data, opts, _NAMES)
    where, first = f"checkpoint at epoch {series[0][0]}", series[0][1]
    p, hidden = tensor_shape(first, "fc2.weight", 2, where)
    if opts.p is not None and opts.p != p:
        raise UsageError(f"fc2.weight has {p} outputs, so p = {p}, but --p says {opts.p}")
    check_series(series, {"fc1.weight": (hidden, 2 * p), "fc2.weight": (p, hidden)}, _NAMES, set())
    task = task_for(opts.operation or "add", None, p)
    train = given_split(data, opts, task, "Gromov's network records no split")
    adamw, adamw_notes = resolve(
        optimizer_values(data),
        config_dict(data),
        opts.hyperparameter_flags(),
        DEFAULTS,
        "grokinterp's canonical value",
    )
    epochs = [epoch for epoch, _ in series]
    cfg = mlp_config(
        preset=PRESET,
        p=p,
        operation=task.name,
        embedding="shared",
        d_model=p,
        d_mlp=hidden,
        activation="quadratic",
        **adamw,
        train_frac=train_frac_for(len(train), task.n_pairs, None),
        **schedule(epochs),
        seed=0 if opts.seed is None else opts.seed,
        data_seed=0,  # the split is given, never drawn
    )
    notes.append("the one-hot input read as an identity embedding table (embed.W_E = I_p)")
    return imported_run(cfg, train, series, _convert, curves, notes + adamw_notes)


def _convert(state: dict[str, Tensor], cfg: RunConfig) -> dict[str, Tensor]:
    return grokinterp_state(
        cfg,
        {
            "embed.W_E": torch.eye(cfg.p),
            "blocks.0.mlp.W_in": state["fc1.weight"].T,
            "unembed.W_U": state["fc2.weight"].T,
        },
    )
