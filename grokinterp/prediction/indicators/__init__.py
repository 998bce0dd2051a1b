"""Early-warning indicators of grokking, one pure function each (formula, range and source in
its docstring), and the per-checkpoint table `grokinterp indicators` writes.

    spectral.py   spectral_entropy of the hidden representation's covariance (Truong et al. 2026)
    alignment.py  log_alignment_ratio of the neuron-to-logit map (Shehper and Vaswani 2026)
    graph.py      fiedler_value of the MLP's weight graph (Fiedler 1973)
    attention.py  head_similarity and entropy_spread of the attention at the answer
    slowing.py    rolling lag-1 autocorrelation and variance (critical slowing down)
    dmd.py        Hankel-DMD reconstruction residual of the loss curves (arXiv 2605.08237)

Nanda et al.'s own measures (restricted and excluded loss, Gini of W_E and W_L, the share of
neurons in a frequency cluster) are predictors too: they are read from the analysis's measures
table, never recomputed here (`grokinterp.prediction.indicators.table`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from grokinterp.prediction.indicators import alignment, attention, dmd, graph, slowing, spectral

CHECKPOINT_WINDOW = 8
"""Trailing window (checkpoints) of the critical-slowing-down statistics of an indicator."""
LOSS_WINDOW = 100
"""Trailing window (epochs) of the critical-slowing-down statistics of the log train loss."""
SLOWING_OF = ("spectral_entropy", "lar_W_L", "fiedler")
"""Indicators whose rolling lag-1 autocorrelation (`<name>.ac1`) and variance (`<name>.var`)
the table carries, besides the log train loss's (`train_loss.ac1`, `train_loss.var`)."""
DMD_WINDOW, DMD_DELAYS, DMD_RANK = 100, 10, 4
"""`loss_dmd_residual`: trailing window (epochs), Hankel delays and DMD rank of the residual of
the (log train loss, log test loss) curves (`dmd.rolling_dmd_residual`)."""


def mlp_weights(params: dict[str, Tensor], n_layers: int) -> list[Tensor]:
    """The chain of MLP weight matrices [ckpt, n_in, n_out] whose units form the weight graph:
    each block's W_in then W_out (transformer; consecutive blocks meet in the residual stream),
    or every hidden layer's W_in then W_U (mlp family, whose last layer writes the logits)."""
    chain = []
    for layer in range(n_layers):
        chain.append(params[f"blocks.{layer}.mlp.W_in"])
        if f"blocks.{layer}.mlp.W_out" in params:
            chain.append(params[f"blocks.{layer}.mlp.W_out"])
    if f"blocks.{n_layers - 1}.mlp.W_out" not in params:
        chain.append(params["unembed.W_U"])
    return chain


def checkpoint_indicators(model, params: dict[str, Tensor], internals) -> dict[str, Tensor]:
    """The per-checkpoint indicators of a batch of checkpoints of one run: `model` its
    `Architecture`, `params` its parameters [ckpt, ...], `internals` the forward on every domain
    pair. Columns (float64 [ckpt]): spectral_entropy (hidden layer 0's neurons), lar_W_L (the
    last direct layer's neuron-to-logit map on its neurons), fiedler (the MLP weight graph), and
    with attention head_similarity and entropy_spread (layer 0)."""
    last = model.direct_layers[-1]
    W_L = model.neuron_logit_maps(params)[last].transpose(1, 2)  # ckpt d_mlp classes
    chain = [w.double().numpy() for w in mlp_weights(params, model.cfg.n_layers)]
    fiedler = [
        graph.fiedler_value(graph.layered_adjacency([w[i] for w in chain]))
        for i in range(chain[0].shape[0])
    ]
    columns = {
        "spectral_entropy": spectral.spectral_entropy(spectral.covariance(internals.neurons[0])),
        "lar_W_L": alignment.log_alignment_ratio(internals.neurons[last], W_L),
        "fiedler": torch.tensor(fiedler, dtype=torch.float64),
    }
    if model.has_attention:
        columns["head_similarity"] = attention.head_similarity(internals.patterns[0])
        columns["entropy_spread"] = attention.entropy_spread(internals.patterns[0])
    return columns


def with_slowing(table: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """`table` (one row per checkpoint, column `epoch`) with the critical-slowing-down columns:
    `<name>.ac1`, `<name>.var` of each of SLOWING_OF over CHECKPOINT_WINDOW checkpoints, and
    `train_loss.ac1`, `train_loss.var` of log(train loss) over the LOSS_WINDOW epochs of
    `metrics` (indexed by epoch) up to each checkpoint."""
    out = table.copy()
    for name in SLOWING_OF:
        values = out[name].to_numpy()
        out[f"{name}.ac1"] = slowing.rolling_lag1_autocorrelation(values, CHECKPOINT_WINDOW)
        out[f"{name}.var"] = slowing.rolling_variance(values, CHECKPOINT_WINDOW)
    log_loss = np.log(metrics["train_loss"].to_numpy())
    ac1 = pd.Series(slowing.rolling_lag1_autocorrelation(log_loss, LOSS_WINDOW), metrics.index)
    var = pd.Series(slowing.rolling_variance(log_loss, LOSS_WINDOW), metrics.index)
    out["train_loss.ac1"] = ac1.reindex(out["epoch"]).to_numpy()
    out["train_loss.var"] = var.reindex(out["epoch"]).to_numpy()
    return out


def with_loss_dmd(table: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """`table` (column `epoch`) with `loss_dmd_residual`: the Hankel-DMD residual of
    (log train loss, log test loss) over the DMD_WINDOW epochs of `metrics` (indexed by epoch,
    one row per epoch) up to each checkpoint (NaN before a full window)."""
    losses = np.log(metrics[["train_loss", "test_loss"]].to_numpy(dtype=np.float64))
    ends = metrics.index.get_indexer(table["epoch"].to_numpy())
    residual = dmd.rolling_dmd_residual(losses, ends, DMD_WINDOW, DMD_DELAYS, DMD_RANK)
    out = table.copy()
    out["loss_dmd_residual"] = np.where(ends >= 0, residual, np.nan)
    return out
