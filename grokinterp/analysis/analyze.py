"""Measure every checkpoint of a run: `grokinterp analyze --ckpt-dir RUN`.

Writes the analysis directory (default `analyses/<run-name>/`, format in
`grokinterp.storage.analysis_format`). The measures of the circuit are taken in the task's basis
(the Fourier basis for a + b and a - b, the characters of Z_p^* for a * b and a / b); the key
components come from the last checkpoint, and restricted and excluded loss use them at every
checkpoint. A task with no known basis gets the measures that need none (losses, accuracy, weight
norm, phases by the loss curves), and the summary lists the others as not applicable.

Re-running measures only what is new: a stored row is reused only when its checkpoint's digest,
the run's config and split, the basis and the key components are all unchanged. The rows measured
so far are kept through a kill or a Ctrl-C (`grokinterp.storage.analysis_dir`), so the next run goes
on from them; the directory is refused, before any work, when it belongs to another run.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from grokinterp.analysis.columns import (
    CAUSE_COLUMNS,
    CHUNK,
    default_basis,
    embedding_gini,
    excluded_loss_by_component,
    joined_embedding,
    measure_checkpoints,
)
from grokinterp.analysis.measures import clock_pizza, embedding, neurons, phases
from grokinterp.analysis.views import final_views
from grokinterp.bases import Basis
from grokinterp.config import RunConfig
from grokinterp.errors import Interrupted, UsageError
from grokinterp.models import Architecture, architecture
from grokinterp.progress import Progress
from grokinterp.storage import run_lock, store
from grokinterp.storage.analysis_dir import (
    PROGRESS_EVERY_S,
    check_owner,
    default_analysis_dir,
    run_fingerprint,
)
from grokinterp.storage.analysis_format import (
    BASIS_MEASURES,
    CLOCK_PIZZA,
    CLOCK_PIZZA_COLUMNS,
    Summary,
    as_stored,
    layer_prefix,
    load_measures,
    load_neurons,
    write_analysis,
)
from grokinterp.storage.analysis_progress import Measured, resume_progress, save_progress
from grokinterp.storage.outputs import check_output_dir
from grokinterp.storage.run import open_run
from grokinterp.tasks import task_of

__all__ = ["Summary", "analyze_run", "load_measures"]


def _load_series(run_dir: Path, cfg: RunConfig, series: list[tuple[int, Path]]):
    for epoch, path in series:
        state, stored_epoch, stored_cfg = store.load_checkpoint(path)
        if stored_cfg.replace(epochs=cfg.epochs) != cfg:  # a run may be trained on longer
            raise UsageError(f"{path}: checkpoint of a different run config than {run_dir}")
        if stored_epoch != epoch:
            raise UsageError(f"{path}: file name says epoch {epoch}, metadata says {stored_epoch}")
        yield epoch, state


def analyze_run(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    progress: bool = True,
    basis_name: str | None = None,
    replace: bool = False,
) -> Path:
    """Measure every complete checkpoint of a run, commit the analysis directory (default
    `analysis_dir.default_analysis_dir(run_dir)`) and return its path.

    UsageError before any work when `out_dir` cannot be written or holds another run's analysis,
    or one with checkpoints the run no longer has (`replace` overwrites those). `Interrupted` (a
    KeyboardInterrupt) after keeping the rows measured so far, for the next call to go on from.
    """
    run = open_run(run_dir)
    basis = default_basis(run.config, basis_name)
    series = store.list_checkpoints(run.path)
    if not series:
        raise UsageError(f"{run.path / store.CHECKPOINT_DIR}: no checkpoints to analyse")
    out = Path(out_dir) if out_dir is not None else default_analysis_dir(run.path)
    check_output_dir(out, "--out")
    with run_lock.holding_one(out, doing="analysed"):
        return _analyze_into(out, run, basis, series, progress, replace)


def _analyze_into(out: Path, run, basis, series, progress: bool, replace: bool) -> Path:
    """`analyze_run` once `out` is locked."""
    cfg, train = run.config, run.train_indices
    digests = {epoch: store.checkpoint_digest(path) for epoch, path in series}
    fingerprint = run_fingerprint(cfg, train)
    stale = check_owner(out, run.path, fingerprint, digests, replace, _summary_and_epochs)
    final_epoch, final_state = next(_load_series(run.path, cfg, series[-1:]))
    model = architecture(cfg)
    neurons_per_ckpt = model.hidden_layers * cfg.d_mlp
    keys = _key_components(model, final_state, basis)
    identity = (fingerprint, basis and basis.title, keys)

    # a table written before a measure existed lacks its column: measure it all again
    required = CAUSE_COLUMNS
    if clock_pizza.not_applicable(task_of(cfg)) is None:
        required += CLOCK_PIZZA_COLUMNS
    measured, final_fve = _previous(out, identity, digests, neurons_per_ckpt, required)
    measured, final_fve = resume_progress(out, identity, digests, measured, final_fve)
    done = set(measured.table["epoch"].tolist())
    todo = [(epoch, path) for epoch, path in series if epoch not in done]
    bar = Progress(len(todo), enabled=progress, unit="checkpoint")
    position = {epoch: i for i, (epoch, _) in enumerate(series)}
    saved_at, fresh = time.monotonic(), False
    try:
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
            measured, fresh = measured.extend(Measured(table, dominant, fve)), True
            if time.monotonic() - saved_at >= PROGRESS_EVERY_S:
                save_progress(out, identity, digests, measured, final_fve)
                saved_at, fresh = time.monotonic(), False
            bar.update(start + len(chunk), partial(str, f"epoch {chunk[-1][0]}"))
    except KeyboardInterrupt:
        bar.close(lambda: "interrupted")
        if fresh:
            save_progress(out, identity, digests, measured, final_fve)
        raise Interrupted(
            f"{len(measured.table)} of {len(series)} checkpoints measured are kept in {out}; "
            "run the same command to go on from them"
        ) from None
    bar.close(lambda: f"{len(series)} checkpoints measured")

    measured.table = as_stored(measured.table)
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
    views = final_views(cfg, final_state, final_epoch, basis, summary.key_components)
    write_analysis(out, measured.table, arrays, summary, views, remove=stale)
    return out


def _summary_and_epochs(out: Path) -> tuple[Summary, list[int]]:
    """The summary of the analysis in `out` and the epochs of its measures table."""
    return Summary.load(out), [int(e) for e in load_measures(out)["epoch"]]


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
    empty = Measured.empty(d_mlp), None
    try:
        summary = Summary.load(out)
        basis_title = summary.basis["title"] if summary.basis else None
        if (summary.run_fingerprint, basis_title, summary.measured_components) != identity:
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
        measured = Measured(
            table[same].reset_index(drop=True),
            stored["dominant_frequency"][keep],
            stored["fve"][keep],
        )
        return measured, stored["final_fve_by_frequency"] if final_is_last else None
    zeros = torch.zeros(int(same.sum()), d_mlp)
    return Measured(table[same].reset_index(drop=True), zeros.long(), zeros), None


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
    flat = embedding.flat_spectrum(keys, basis) if with_basis else None
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
