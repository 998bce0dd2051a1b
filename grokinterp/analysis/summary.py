"""The summary of an analysed run (`summary.json`, `grokinterp.storage.analysis_format.Summary`)
from its measures table and final checkpoint: the task and basis, key components, the three
phases, the final values, the neuron clusters and the paper's checks."""

from __future__ import annotations

from dataclasses import asdict, fields

import pandas as pd
import torch

from grokinterp.analysis.context import AnalysisContext, forward_on_domain, joined_embedding
from grokinterp.analysis.measures import clock_pizza, embedding, losses, neurons, phases, weights
from grokinterp.storage.analysis_dir import run_fingerprint
from grokinterp.storage.analysis_format import (
    BASIS_MEASURES,
    CLOCK_PIZZA,
    Summary,
    layer_prefix,
)

LISTED_AWAY_FROM_DEFAULT = ("positional", "biases", "first_bias", "input_format", "batch_sampling")
"""Config fields that the summary's config block lists only away from their default: those that
summary.json's format did not have, so that the summary of a run that does not use them keeps its
bytes (as `RunConfig.to_dict` keeps config.json's)."""


def summary_config(cfg) -> dict:
    """The summary's `config` block: every field of `cfg` in declaration order, without those of
    `LISTED_AWAY_FROM_DEFAULT` that hold their default."""
    defaults = {f.name: f.default for f in fields(cfg)}
    return {
        name: value
        for name, value in asdict(cfg).items()
        if name not in LISTED_AWAY_FROM_DEFAULT or value != defaults[name]
    }


def summarise(
    ctx: AnalysisContext,
    run,
    table: pd.DataFrame,
    final_state: dict[str, torch.Tensor],
    digests: dict[int, str | None],
) -> Summary:
    """The summary of `run` (a `grokinterp.storage.run.Run`) from its measures `table` (one row
    per checkpoint, the last the final checkpoint's), the final checkpoint's state dict and the
    checkpoints' digests by epoch."""
    cfg, task, model, basis, keys = ctx.config, ctx.task, ctx.model, ctx.basis, ctx.keys
    final = table.iloc[-1]
    epochs = table["epoch"].to_numpy()
    located = phases.locate_phases(
        epochs,
        *(table[c].to_numpy() for c in ("train_loss", "train_acc", "test_loss")),
        table["excluded_loss"].to_numpy() if "excluded_loss" in table else None,
    )
    with_basis = basis is not None
    flat = embedding.flat_spectrum(keys, basis) if with_basis else None
    layers = [_layer_summary(ctx, final, layer) for layer in range(model.hidden_layers)]
    clusters = layers[0]["cluster_sizes"]
    value = lambda column: float(final[column]) if with_basis else None  # noqa: E731
    missing = "" if with_basis else f"{task.formula} has no known basis"
    not_applicable = dict.fromkeys(BASIS_MEASURES, missing) if missing else {}
    if not model.has_attention:
        not_applicable["attention"] = f"the {model.family} family has no attention"
    if reason := clock_pizza.not_applicable(task):
        not_applicable[CLOCK_PIZZA] = reason
    for layer in sorted(set(range(model.hidden_layers)) - set(model.direct_layers)):
        not_applicable[f"W_L of hidden layer {layer}"] = "its neurons do not write to the logits"
    return Summary(
        run_name=run.name,
        run_dir=str(run.path),
        run_dir_abs=str(run.path.resolve()),
        config=summary_config(cfg),
        task={
            "name": task.name,
            "formula": task.formula,
            "commutative": task.commutative,
            "n_pairs": task.n_pairs,
        },
        basis={"name": basis.name, "title": basis.title, "kind": basis.kind}
        if with_basis
        else None,
        key_components=[] if flat else keys,
        key_component_note=flat,
        loss_components=keys,
        key_frequency_rule=(
            f"components holding at least {embedding.KEY_SHARE:.0%} of the squared norm of the "
            f"final embedding W_E (element tokens) over the {basis.title}, trivial components "
            "(the constant) excluded"
        )
        if with_basis
        else None,
        not_applicable=not_applicable,
        phases=located,
        phase_rule=phases.RULE,
        phase_note=phases.phase_note(len(table), located),
        final_train_loss=float(final["train_loss"]),
        final_test_loss=float(final["test_loss"]),
        final_restricted_loss=value("restricted_loss"),
        final_excluded_loss=value("excluded_loss"),
        logit_fve_final=value("logit_fve"),
        fve_threshold=neurons.FVE_THRESHOLD,
        fve_share=value("fve_share"),
        cluster_sizes=clusters,
        unexplained_neurons=layers[0]["unexplained_neurons"],
        layers=layers,
        excluded_loss_by_component=excluded_loss_by_component(ctx, final_state)
        if with_basis
        else {},
        n_checkpoints=len(table),
        last_epoch=int(epochs[-1]),
        embedding_gini=embedding_gini(ctx, final_state),
        checks=phases.paper_checks(table, located),
        checkpoint_digests={str(e): digests[int(e)] for e in epochs if digests.get(int(e))},
        run_fingerprint=run_fingerprint(cfg, ctx.train),
    )


def _layer_summary(ctx: AnalysisContext, final: pd.Series, layer: int) -> dict:
    """Hidden layer `layer` at the final checkpoint: its column prefix, whether it has a W_L,
    and (with a basis) its neuron clusters."""
    prefix = layer_prefix(layer)
    out = {"layer": layer, "prefix": prefix, "neuron_logit_map": layer in ctx.model.direct_layers}
    if ctx.basis is None:
        return out | {"fve_share": None, "cluster_sizes": {}, "unexplained_neurons": None}
    clusters = {
        str(c.key): int(final[f"{prefix}cluster.{c.name}"])
        for c in ctx.basis.spectrum
        if final[f"{prefix}cluster.{c.name}"]
    }
    return out | {
        "fve_share": float(final[f"{prefix}fve_share"]),
        "cluster_sizes": clusters,
        "unexplained_neurons": ctx.config.d_mlp - sum(clusters.values()),
    }


def excluded_loss_by_component(
    ctx: AnalysisContext, state: dict[str, torch.Tensor]
) -> dict[str, float]:
    """Train loss of one checkpoint with the directions of one key component removed, for each
    key component (the context must have a basis)."""
    task, model = ctx.task, ctx.model
    params = {name: state[name][None] for name in model.param_shapes()}
    logits = forward_on_domain(model, params, task).logits
    train_at = ctx.train_at
    result = {}
    for key in ctx.keys:
        directions = losses.key_directions(task, ctx.basis, [key])
        excluded = losses.excluded_logits(logits, directions)[:, train_at]
        result[str(key)] = float(losses.cross_entropy(excluded, task.labels[train_at]))
    return result


def embedding_gini(ctx: AnalysisContext, state: dict[str, torch.Tensor]) -> dict[str, float]:
    """Gini of one checkpoint's element embeddings' spectrum in each of the task's element
    bases."""
    W_E = joined_embedding(ctx.model, {k: v[None] for k, v in state.items()}).double()
    return {
        basis.name: float(weights.gini(embedding.embedding_norms(W_E, basis))[0])
        for basis in ctx.task.element_spectra_bases()
    }
