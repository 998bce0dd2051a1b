"""Measure every checkpoint of a run: `grokinterp analyze --ckpt-dir RUN`.

Writes the analysis directory (default `analyses/<run-name>/`, format in
`grokinterp.analysis_format`). The measures of the circuit are taken in the task's basis (the
Fourier basis for a + b and a - b, the characters of Z_p^* for a * b and a / b); the key
components come from the last checkpoint, and restricted and excluded loss use them at every
checkpoint. A task with no known basis gets the measures that need none (losses, accuracy, weight
norm, phases by the loss curves), and the summary lists the others as not applicable.

Re-running measures only what is new: a stored row is reused only when its checkpoint's digest,
the run's config and split, the basis and the key components are all unchanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from grokinterp import data, store
from grokinterp.analysis_format import (
    BASIS_MEASURES,
    CLOCK_PIZZA,
    CLOCK_PIZZA_COLUMNS,
    DEFAULT_ANALYSES_DIR,
    Summary,
    layer_prefix,
    load_measures,
    load_neurons,
    write_analysis,
)
from grokinterp.bases import Basis
from grokinterp.config import RunConfig
from grokinterp.errors import UsageError
from grokinterp.measures import causes, clock_pizza, embedding, losses, neurons, phases, weights
from grokinterp.measures.logits import logit_fve
from grokinterp.models import Architecture, Internals, architecture
from grokinterp.progress import Progress
from grokinterp.run import open_run
from grokinterp.tasks import Task, task_of

__all__ = ["Summary", "analyze_run", "load_measures", "measure_checkpoints"]

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


def run_fingerprint(cfg: RunConfig, train: torch.Tensor) -> str:
    """sha256 of the run's config (its epoch count aside: a run may be trained on) and split."""
    text = cfg.replace(epochs=1).to_json() + ",".join(map(str, train.tolist()))
    return hashlib.sha256(text.encode()).hexdigest()


def _load_series(run_dir: Path, cfg: RunConfig, series: list[tuple[int, Path]]):
    for epoch, path in series:
        state, stored_epoch, stored_cfg = store.load_checkpoint(path)
        if stored_cfg.replace(epochs=cfg.epochs) != cfg:  # a run may be trained on longer
            raise UsageError(f"{path}: checkpoint of a different run config than {run_dir}")
        if stored_epoch != epoch:
            raise UsageError(f"{path}: file name says epoch {epoch}, metadata says {stored_epoch}")
        yield epoch, state


@dataclass
class _Measured:
    """Measured checkpoints: table rows and per-neuron dominant component and FVE, by epoch."""

    table: pd.DataFrame
    dominant: torch.Tensor
    fve: torch.Tensor

    @classmethod
    def empty(cls, d_mlp: int) -> _Measured:
        table = pd.DataFrame({"epoch": pd.Series(dtype="int64")})
        return cls(table, torch.empty(0, d_mlp, dtype=torch.int64), torch.empty(0, d_mlp))

    def extend(self, other: _Measured) -> _Measured:
        table = pd.concat([self.table, other.table], ignore_index=True)
        order = torch.as_tensor(np.argsort(table["epoch"].to_numpy(), kind="stable"))
        return _Measured(
            table.iloc[order.numpy()].reset_index(drop=True),
            torch.cat([self.dominant, other.dominant])[order],
            torch.cat([self.fve, other.fve])[order],
        )


def analyze_run(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    progress: bool = True,
    basis_name: str | None = None,
) -> Path:
    """Measure every complete checkpoint of a run and write the analysis directory."""
    run = open_run(run_dir)
    cfg, train = run.config, run.train_indices
    basis = default_basis(cfg, basis_name)
    series = store.list_checkpoints(run.path)
    if not series:
        raise UsageError(f"{run.path / store.CHECKPOINT_DIR}: no checkpoints to analyse")
    out = Path(out_dir) if out_dir is not None else DEFAULT_ANALYSES_DIR / run.name
    final_epoch, final_state = next(_load_series(run.path, cfg, series[-1:]))
    model = architecture(cfg)
    neurons_per_ckpt = model.hidden_layers * cfg.d_mlp
    keys = _key_components(model, final_state, basis)
    digests = {epoch: store.checkpoint_digest(path) for epoch, path in series}
    identity = (run_fingerprint(cfg, train), basis and basis.title, keys)

    # a table written before a measure existed lacks its column: measure it all again
    required = CAUSE_COLUMNS
    if clock_pizza.not_applicable(task_of(cfg)) is None:
        required += CLOCK_PIZZA_COLUMNS
    measured, final_fve = _previous(out, identity, digests, neurons_per_ckpt, required)
    done = set(measured.table["epoch"].tolist())
    todo = [(epoch, path) for epoch, path in series if epoch not in done]
    bar = Progress(len(todo), enabled=progress, unit="checkpoint")
    position = {epoch: i for i, (epoch, _) in enumerate(series)}
    for start in range(0, len(todo), CHUNK):
        chunk = list(_load_series(run.path, cfg, todo[start : start + CHUNK]))
        previous = _predecessors(run.path, cfg, series, position, chunk)
        table, fve_by_component = measure_checkpoints(
            cfg, [s for _, s in chunk], train, keys, basis, previous
        )
        table.insert(0, "epoch", [epoch for epoch, _ in chunk])
        if fve_by_component is None:
            dominant = torch.zeros(len(chunk), neurons_per_ckpt, dtype=torch.int64)
            fve = torch.zeros(len(chunk), neurons_per_ckpt)
        else:
            dominant, fve, _ = neurons.cluster_sizes(fve_by_component)
            if chunk[-1][0] == final_epoch:
                final_fve = fve_by_component[-1]
        measured = measured.extend(_Measured(table, dominant, fve))
        bar.update(start + len(chunk), partial(str, f"epoch {chunk[-1][0]}"))
    bar.close(lambda: f"{len(series)} checkpoints measured")

    summary = _summarise(run, measured.table, basis, keys, final_state, train, digests)
    measured.table["weight_norm_ratio"] = weight_norm_ratio(measured.table, summary.phases)
    arrays = {}
    if basis is not None:
        arrays = {
            "epochs": torch.tensor(measured.table["epoch"].to_numpy(), dtype=torch.int64),
            "dominant_frequency": measured.dominant.to(torch.int64),
            "fve": measured.fve.to(torch.float32),
            "final_fve_by_frequency": final_fve.to(torch.float32),
        }
    write_analysis(out, measured.table, arrays, summary)
    return out


def _predecessors(run_dir, cfg, series, position, chunk) -> list:
    """The state dict of the checkpoint before each of `chunk` (None before the first)."""
    states = {epoch: state for epoch, state in chunk}
    out = []
    for epoch, _ in chunk:
        i = position[epoch]
        if i == 0:
            out.append(None)
        elif series[i - 1][0] in states:
            out.append(states[series[i - 1][0]])
        else:
            out.append(next(_load_series(run_dir, cfg, series[i - 1 : i]))[1])
    return out


def weight_norm_ratio(table: pd.DataFrame, located: dict) -> np.ndarray:
    """weight_norm / its value at the end of memorisation (`located["memorization_end"]`;
    NaN throughout when the run shows none), per row."""
    end = located.get("memorization_end")
    if end is None:
        return np.full(len(table), np.nan)
    at_end = table.loc[table["epoch"] == end, "weight_norm"].iloc[0]
    return (table["weight_norm"] / at_end).to_numpy()


def _key_components(
    model: Architecture, final_state: dict[str, torch.Tensor], basis: Basis | None
) -> list:
    """The key components of the final element embeddings ([] without a basis)."""
    if basis is None:
        return []
    final = {k: v[None] for k, v in final_state.items()}
    final_norms = embedding.embedding_norms(joined_embedding(model, final), basis)[0]
    return embedding.key_components(final_norms, basis)


def resummarise(run_dir: str | Path, analysis_dir: str | Path) -> Summary:
    """Rewrite an analysis's summary.json with today's rules from its measures table and the
    run's last checkpoint (the table's last epoch), keeping the table and neurons file: for a
    shipped analysis whose run keeps only some of its checkpoints. UsageError when the run's
    last checkpoint is not the table's last row."""
    run = open_run(run_dir)
    table = load_measures(analysis_dir)
    series = store.list_checkpoints(run.path)
    if not series or series[-1][0] != int(table["epoch"].iloc[-1]):
        raise UsageError(f"{run.path}: its last checkpoint is not the last row of {analysis_dir}")
    basis = default_basis(run.config)
    final_state = run.state_dict(epoch=series[-1][0])
    keys = _key_components(architecture(run.config), final_state, basis)
    digests = {epoch: store.checkpoint_digest(path) for epoch, path in series}
    summary = _summarise(run, table, basis, keys, final_state, run.train_indices, digests)
    summary.write(Path(analysis_dir))
    return summary


def _previous(out: Path, identity, digests: dict, d_mlp: int, required: tuple[str, ...]):
    """The rows of an earlier analysis of the same run, basis and key components whose
    checkpoints are unchanged (same digest), with its final FVE table; else nothing (also when
    its table lacks a `required` column, written before that measure existed)."""
    empty = _Measured.empty(d_mlp), None
    try:
        summary = Summary.load(out)
        basis_title = summary.basis["title"] if summary.basis else None
        if (summary.run_fingerprint, basis_title, summary.key_components) != identity:
            return empty
        table = load_measures(out)
        stored = load_neurons(out)
    except UsageError:
        return empty
    if not set(required) <= set(table.columns):
        return empty
    epochs = table["epoch"].to_numpy()
    recorded = summary.checkpoint_digests
    same = np.array(
        [bool(digests.get(int(e))) and recorded.get(str(e)) == digests[int(e)] for e in epochs],
        dtype=bool,
    )
    final_is_last = int(epochs[-1]) == max(digests) and same[-1]
    if stored and not final_is_last:  # the final FVE table is the final checkpoint's: redo it
        same &= epochs != max(digests)
    if not same.any():
        return empty
    if stored:
        if not torch.equal(stored["epochs"], torch.tensor(epochs)):
            return empty
        keep = torch.from_numpy(same)
        measured = _Measured(
            table[same].reset_index(drop=True),
            stored["dominant_frequency"][keep],
            stored["fve"][keep],
        )
        return measured, stored["final_fve_by_frequency"] if final_is_last else None
    zeros = torch.zeros(int(same.sum()), d_mlp)
    return _Measured(table[same].reset_index(drop=True), zeros.long(), zeros), None


def _summarise(run, table, basis, keys, final_state, train, digests) -> Summary:
    cfg, task = run.config, task_of(run.config)
    final = table.iloc[-1]
    epochs = table["epoch"].to_numpy()
    located = phases.locate_phases(
        epochs,
        *(table[c].to_numpy() for c in ("train_loss", "train_acc", "test_loss")),
        table["excluded_loss"].to_numpy() if "excluded_loss" in table else None,
    )
    with_basis = basis is not None
    model = architecture(cfg)
    layers = [_layer_summary(final, layer, model, basis) for layer in range(model.hidden_layers)]
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
        config=asdict(cfg),
        task={
            "name": task.name,
            "formula": task.formula,
            "commutative": task.commutative,
            "n_pairs": task.n_pairs,
        },
        basis={"name": basis.name, "title": basis.title, "kind": basis.kind}
        if with_basis
        else None,
        key_components=keys,
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
        excluded_loss_by_component=excluded_loss_by_component(cfg, final_state, train, keys, basis)
        if with_basis
        else {},
        n_checkpoints=len(table),
        last_epoch=int(epochs[-1]),
        embedding_gini=embedding_gini(cfg, final_state),
        checks=phases.paper_checks(table, located),
        checkpoint_digests={str(e): digests[int(e)] for e in epochs if digests.get(int(e))},
        run_fingerprint=run_fingerprint(cfg, train),
    )


def _layer_summary(final: pd.Series, layer: int, model: Architecture, basis: Basis | None) -> dict:
    """Hidden layer `layer` at the final checkpoint: its column prefix, whether it has a W_L,
    and (with a basis) its neuron clusters."""
    prefix = layer_prefix(layer)
    out = {"layer": layer, "prefix": prefix, "neuron_logit_map": layer in model.direct_layers}
    if basis is None:
        return out | {"fve_share": None, "cluster_sizes": {}, "unexplained_neurons": None}
    clusters = {
        str(c.key): int(final[f"{prefix}cluster.{c.name}"])
        for c in basis.spectrum
        if final[f"{prefix}cluster.{c.name}"]
    }
    return out | {
        "fve_share": float(final[f"{prefix}fve_share"]),
        "cluster_sizes": clusters,
        "unexplained_neurons": model.cfg.d_mlp - sum(clusters.values()),
    }
