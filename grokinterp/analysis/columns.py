"""Every column of measures.csv for a chunk of checkpoints, stacked along the fast forward's
`run` axis: losses and accuracy, weight norms, the spectrum of the embedding and of each hidden
layer's neuron-logit map in the task's basis, restricted and excluded loss, neuron clusters, the
logit fit, clock/pizza and the cause measures. Pure: weights in, columns out
(`grokinterp.analysis.analyze` reads the checkpoints and writes the table).
"""

from __future__ import annotations

import pandas as pd
import torch

from grokinterp import data
from grokinterp.analysis.measures import causes, clock_pizza, embedding, losses, neurons, weights
from grokinterp.analysis.measures.logits import logit_fve
from grokinterp.bases import Basis
from grokinterp.config import RunConfig
from grokinterp.models import Architecture, Internals, architecture
from grokinterp.storage.analysis_format import (
    layer_prefix,
)
from grokinterp.tasks import Task, task_of

CAUSE_COLUMNS = ("logit_margin", "logit_std", "softmax_collapse", "update_cos")
CHUNK = 8
"""Checkpoints measured together (memory ~ CHUNK * pairs * d_mlp * hidden layers floats)."""


def default_basis(cfg: RunConfig, name: str | None = None) -> Basis | None:
    """The run's basis by name (default: its task's first), or None for a task with none."""
    task = task_of(cfg)
    return task.basis(name) if task.bases or name else None


def forward_on_domain(
    model: Architecture, floats: dict[str, torch.Tensor], task: Task
) -> Internals:
    """The model's fast forward on every domain pair (in domain order), one checkpoint per
    `run` slot of the batched forward."""
    n, domain = task.n_elements, task.domain
    ckpts = next(iter(floats.values())).shape[0]
    with torch.no_grad():
        return model.forward(
            floats, (domain // n).expand(ckpts, -1), (domain % n).expand(ckpts, -1)
        )


def joined_embedding(model: Architecture, floats: dict[str, torch.Tensor]) -> torch.Tensor:
    """The element embeddings as one matrix [ckpt, vocab, d]: the shared table, or the a- and
    b-tables side by side (so a component's norm covers both operands)."""
    n = model.cfg.n_elements
    return torch.cat([t[:, :n] for t in model.embeddings(floats).values()], dim=-1)


def measure_checkpoints(
    cfg: RunConfig,
    states: list[dict[str, torch.Tensor]],
    train: torch.Tensor,
    keys: list,
    basis: Basis | None = None,
    previous: list[dict[str, torch.Tensor] | None] | None = None,
) -> tuple[pd.DataFrame, torch.Tensor | None]:
    """Every per-checkpoint measure of a batch of state dicts of one run, in `basis` (default
    the task's own; None and a task without one: the basis-free measures only). With
    `previous` (`previous[i]` the state dict of the checkpoint before `states[i]`, None for the
    first, whose `update_cos` is NaN), the `update_cos` column too.

    Returns the table rows (no epoch column) and the neurons' FVE by component
    [ckpt, hidden_layers * d_mlp, spectrum], the hidden layers one after another (None without
    a basis). Per-layer columns of hidden layer l carry `layer_prefix(l)`."""
    task = task_of(cfg)
    basis = basis or default_basis(cfg)
    model = architecture(cfg)
    floats = {name: torch.stack([s[name] for s in states]) for name in model.param_shapes()}
    out = forward_on_domain(model, floats, task)
    labels = task.labels
    train_at = task.positions(train)
    test_at = task.positions(data.test_indices(task, train))
    pair_loss = losses.pair_losses(out.logits, labels)  # one log-softmax for the three losses
    columns = {
        "train_loss": losses.mean_loss(pair_loss[:, train_at]),
        "test_loss": losses.mean_loss(pair_loss[:, test_at]),
        "all_loss": losses.mean_loss(pair_loss),
        "train_acc": losses.accuracy(out.logits[:, train_at], labels[train_at]),
        "test_acc": losses.accuracy(out.logits[:, test_at], labels[test_at]),
    }
    if clock_pizza.not_applicable(task) is None:
        columns |= _clock_pizza_columns(model, states, out.logits, task)
    margin, spread = causes.logit_scale(out.logits[:, train_at], labels[train_at])
    columns |= {
        "logit_margin": margin,
        "logit_std": spread,
        "softmax_collapse": causes.softmax_collapse(out.logits[:, train_at], labels[train_at]),
    }
    if previous is not None:
        columns["update_cos"] = _update_cos(model, floats, previous)
    squares = weights.sum_of_squares(floats)
    columns["weight_norm"] = sum(squares.values())
    columns |= {f"sq.{name}": value for name, value in squares.items()}
    fve_by_component = None
    if basis is not None:
        directions = losses.key_directions(task, basis, keys)
        restricted, excluded = losses.split_logits(out.logits, directions)
        restricted_loss = losses.pair_losses(restricted, labels)
        columns |= {
            "restricted_loss": losses.mean_loss(restricted_loss),
            "restricted_loss_test": losses.mean_loss(restricted_loss[:, test_at]),
            "excluded_loss": losses.cross_entropy(excluded[:, train_at], labels[train_at]),
            "logit_fve": logit_fve(out.logits, task, basis, keys),
        }
        columns |= _spectrum_columns(model, floats, basis)
        fve_by_layer = []
        for layer, post in enumerate(out.neurons):
            prefix = layer_prefix(layer)
            fve_by_layer.append(neurons.component_fve(post, task, basis))
            _, fve, counts = neurons.cluster_sizes(fve_by_layer[-1])
            columns[f"{prefix}fve_share"] = (fve > neurons.FVE_THRESHOLD).double().mean(dim=1)
            columns |= {
                f"{prefix}cluster.{c.name}": counts[:, j] for j, c in enumerate(basis.spectrum)
            }
        fve_by_component = torch.cat(fve_by_layer, dim=1)
    table = pd.DataFrame({name: value.numpy() for name, value in columns.items()})
    return table, fve_by_component


def _clock_pizza_columns(
    model: Architecture, states: list[dict[str, torch.Tensor]], logits: torch.Tensor, task: Task
) -> dict[str, torch.Tensor]:
    """Zhong et al.'s gradient symmetricity and distance irrelevance of every checkpoint."""
    triples = clock_pizza.sample_triples(task)
    symmetricity = [
        clock_pizza.gradient_symmetricity(*clock_pizza.operand_gradients(model, s, *triples))
        for s in states
    ]
    distance = clock_pizza.operand_distance(task)
    return {
        "gradient_symmetricity": torch.stack(symmetricity),
        "distance_irrelevance": clock_pizza.distance_irrelevance(logits, task.labels, distance),
    }


def _update_cos(model: Architecture, floats: dict, previous: list) -> torch.Tensor:
    """`causes.update_cosine` of each checkpoint against its predecessor (NaN without one)."""
    result = torch.full((len(previous),), float("nan"), dtype=torch.float64)
    have = [i for i, state in enumerate(previous) if state is not None]
    if have:
        before = {n: torch.stack([previous[i][n] for i in have]) for n in model.param_shapes()}
        result[have] = causes.update_cosine(before, {n: t[have] for n, t in floats.items()})
    return result


def _spectrum_columns(model: Architecture, floats: dict, basis: Basis) -> dict[str, torch.Tensor]:
    """Norms of each component of the embeddings (joined, and each table when a and b have
    their own) and of each direct layer's W_L, with the Gini coefficients."""
    W_E = embedding.embedding_norms(joined_embedding(model, floats), basis)
    columns = {"gini_W_E": weights.gini(W_E)}
    columns |= {f"W_E.{c.name}": W_E[:, j] for j, c in enumerate(basis.spectrum)}
    tables = model.embeddings(floats)
    for name, table in tables.items() if len(tables) > 1 else ():
        norms = embedding.embedding_norms(table, basis)
        columns |= {f"{name}.{c.name}": norms[:, j] for j, c in enumerate(basis.spectrum)}
    for layer, W_L in model.neuron_logit_maps(floats).items():
        prefix, norms = layer_prefix(layer), basis.component_norms(W_L)
        columns[f"{prefix}gini_W_L"] = weights.gini(norms)
        columns |= {f"{prefix}W_L.{c.name}": norms[:, j] for j, c in enumerate(basis.spectrum)}
    return columns


def excluded_loss_by_component(
    cfg: RunConfig, state: dict[str, torch.Tensor], train: torch.Tensor, keys: list, basis: Basis
) -> dict[str, float]:
    """Train loss with the directions of one key component removed, for each key component."""
    task, model = task_of(cfg), architecture(cfg)
    floats = {name: state[name][None] for name in model.param_shapes()}
    logits = forward_on_domain(model, floats, task).logits
    train_at = task.positions(train)
    result = {}
    for key in keys:
        directions = losses.key_directions(task, basis, [key])
        excluded = losses.excluded_logits(logits, directions)[:, train_at]
        result[str(key)] = float(losses.cross_entropy(excluded, task.labels[train_at]))
    return result


def embedding_gini(cfg: RunConfig, state: dict[str, torch.Tensor]) -> dict[str, float]:
    """Gini of the element embeddings' spectrum in each of the task's element bases."""
    task, model = task_of(cfg), architecture(cfg)
    W_E = joined_embedding(model, {k: v[None] for k, v in state.items()}).double()
    return {
        basis.name: float(weights.gini(embedding.embedding_norms(W_E, basis))[0])
        for basis in task.element_spectra_bases()
    }
