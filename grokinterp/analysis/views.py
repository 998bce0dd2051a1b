"""The final model's views that the report draws, computed once from the last checkpoint so that
the report reads the analysis directory alone (stored by `grokinterp.storage.final_views`):

- the attention from `=` to a, averaged over b, in the task's basis (Nanda et al. 2023,
  section 4.1: for a + b it is sparse in the Fourier basis, a few key frequencies);
- a sample of the centred logits over (a, b, c) with their fit by the key components' kernels
  (section 4.2: sum_k alpha_k cos(w_k (a + b - c)) explains about 95% of their variance);
- the embedding W_E's spectrum in each basis of the elements (for residues mod p the additive
  Fourier basis and the multiplicative characters), with its Gini coefficient.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor

from grokinterp.analysis.columns import joined_embedding
from grokinterp.analysis.measures import embedding, weights
from grokinterp.analysis.measures.final_model import attention_to_a, model_at_eq
from grokinterp.analysis.measures.logits import fit_logits
from grokinterp.bases import Basis
from grokinterp.errors import UsageError
from grokinterp.models import Architecture, Internals
from grokinterp.storage.final_views import FinalViews, LogitSample, Spectrum
from grokinterp.storage.run import open_run
from grokinterp.tasks import Task

SAMPLE_POINTS, SAMPLE_CORRECT = 2400, 600
"""The logit sample: this many (a, b, c) cells drawn at random, plus this many pairs' answer
cells (c the answer of (a, b)); fewer when the grid is smaller."""
SAMPLE_SEED = 0


def attention_in_basis(
    internals: Internals, task: Task, basis: Basis
) -> tuple[list[np.ndarray], list[str]]:
    """Per layer with attention, the attention from `=` to a (averaged over b) in `basis`
    restricted to a's operands, float32 [rows, head]; and the rows' names. ([], []) without
    attention."""
    layers, rows = [], []
    for layer in range(len(internals.patterns)):
        coefficients, basis_a = attention_to_a(internals, task, basis, layer)
        layers.append(coefficients.numpy().astype(np.float32))
        rows = list(basis_a.row_names)
    return layers, rows


def sample_cells(task: Task, seed: int = SAMPLE_SEED) -> np.ndarray:
    """Indices into the flattened [pairs, classes] grid of the logits (pairs in domain order):
    `SAMPLE_POINTS` distinct cells at random, then the answer cells of `SAMPLE_CORRECT`
    distinct pairs (a cell may be drawn twice, once in each part)."""
    classes, pairs = task.n_classes, len(task.domain)
    rng = np.random.default_rng(seed)
    cells = pairs * classes
    chosen = rng.choice(cells, size=min(SAMPLE_POINTS, cells), replace=False)
    answered = rng.choice(pairs, size=min(SAMPLE_CORRECT, pairs), replace=False)
    return np.concatenate([chosen, answered * classes + task.labels.numpy()[answered]])


def logit_sample(
    logits: Tensor, task: Task, basis: Basis, keys: list, seed: int = SAMPLE_SEED
) -> LogitSample:
    """The centred logits [pairs, classes] (domain order) of one model and their fit by the
    kernels of `keys` (`measures.logits.fit_logits`) at the cells of `sample_cells`, with the
    (a, b, c) of each cell and whether c is the pair's answer."""
    fit = fit_logits(logits, task, basis, keys)
    index, classes = sample_cells(task, seed), task.n_classes
    grid = task.domain.numpy()[index // classes]
    n = task.n_elements
    triples = np.stack([grid // n, grid % n, index % classes], axis=1)
    return LogitSample(
        fitted=fit.fitted.reshape(-1)[index].numpy().astype(np.float32),
        centred=fit.centred.reshape(-1)[index].numpy().astype(np.float32),
        triples=triples.astype(np.int32),
        correct=task.labels.numpy()[index // classes] == triples[:, 2],
        fve=fit.fve,
    )


def element_spectra(model: Architecture, params: dict[str, Tensor], task: Task) -> list[Spectrum]:
    """The embedding's component norms (float64 computed, float32 stored) and their Gini in
    each of the task's element bases ([] for a task with none)."""
    W_E = joined_embedding(model, {k: v[None] for k, v in params.items()}).double()
    spectra = []
    for basis in task.element_spectra_bases():
        norms = embedding.embedding_norms(W_E, basis)
        spectra.append(
            Spectrum(
                name=basis.name,
                title=basis.title,
                labels=[str(c.key) for c in basis.spectrum],
                norms=norms[0].numpy().astype(np.float32),
                gini=float(weights.gini(norms)[0]),
            )
        )
    return spectra


def final_views(
    task: Task,
    model: Architecture,
    params: dict[str, Tensor],
    epoch: int,
    basis: Basis | None,
    keys: list,
) -> FinalViews:
    """Every view of `model` (on `task`) with state dict `params` (checkpoint `epoch`) that the
    report draws: the spectra always, the attention and the logit sample in `basis` (with its
    key components `keys`) when there is one. A run passes the task and model it caches."""
    spectra = element_spectra(model, params, task)
    if basis is None:
        return FinalViews(epoch, spectra=spectra)
    internals = model_at_eq(model, params, task)
    attention, rows = attention_in_basis(internals, task, basis)
    sample = logit_sample(internals.logits[0], task, basis, keys)
    return FinalViews(epoch, attention, rows, sample, spectra)


def write_final_views(run_dir: str | Path, analysis_dir: str | Path) -> Path:
    """Add (or replace) the final views of an existing analysis, from its run's checkpoint at
    the analysis's last epoch, leaving its other files as they are: for an analysis written
    before the views existed whose run can no longer be analysed whole (the shipped reference
    keeps 4 of its 401 checkpoints; `grokinterp analyze` adds them to any other). Returns the
    file's path. UsageError unless the run is the one measured (the same fingerprint, the same
    digest of that checkpoint)."""
    from grokinterp.storage import run_lock
    from grokinterp.storage.analysis_dir import FINAL_VIEWS_FILE, commit
    from grokinterp.storage.analysis_format import Summary

    run, out = open_run(run_dir), Path(analysis_dir)
    if not out.is_dir():
        raise UsageError(f"{out}: no such analysis directory; run `grokinterp analyze` first")
    with run_lock.holding_one(out, doing="analysed"):
        summary = Summary.load(out)
        epoch = measured_final_epoch(run, summary, out)
        basis = run.task.basis(summary.basis["name"]) if summary.basis else None
        params = run.state_dict(epoch=epoch)
        views = final_views(
            run.task, run.architecture, params, epoch, basis, summary.key_components
        )
        commit(out, {FINAL_VIEWS_FILE: views.to_bytes()})
    return out / FINAL_VIEWS_FILE


def measured_final_epoch(run, summary, analysis_dir: Path) -> int:
    """The last epoch the analysis in `analysis_dir` (its `summary`) measured, once `run` (a
    `grokinterp.storage.run.Run`) is checked to be the run measured: the same fingerprint
    (config and split) and, where recorded, the same digest of that checkpoint. UsageError
    otherwise, or when the run has no checkpoint at that epoch."""
    from grokinterp.storage import store
    from grokinterp.storage.analysis_dir import SUMMARY_FILE, check_measured_run

    where, last = analysis_dir / SUMMARY_FILE, summary.last_epoch
    check_measured_run(summary, run.config, run.train_indices, run.path, where)
    if last not in run.epochs:
        raise UsageError(
            f"{run.path} has no checkpoint at epoch {last}, the last one {where} measured"
        )
    recorded = summary.checkpoint_digests.get(str(last))
    if recorded and recorded != store.checkpoint_digest(run.checkpoint_path(epoch=last)):
        raise UsageError(
            f"{run.path}'s checkpoint at epoch {last} differs from the one {where} measured: "
            "another copy of the run"
        )
    return last
