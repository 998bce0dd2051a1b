"""Regression tests on the shipped canonical reference run (checkpoints/reference-canonical).

They measure the shipped checkpoints again and compare with what `scripts/make_reference.py`
recorded, and with the key frequencies typed below, so that no change to the model, the engine or
the analysis can silently move them. Losses are compared with a relative tolerance of 1e-3: the
final losses are ~1e-7 nats, computed in float64 from float32 logits, and another BLAS build may
round the logits differently; frequencies, cluster sizes and FVE share must match exactly.
"""

from pathlib import Path

import numpy as np
import pytest

from grokinterp.analysis.analyze import Summary, load_measures
from grokinterp.analysis.columns import measure_checkpoints
from grokinterp.analysis.measures import embedding, neurons
from grokinterp.storage.run import open_run
from grokinterp.tasks import task_of

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_RUN = ROOT / "checkpoints" / "reference-canonical"
REFERENCE_ANALYSIS = ROOT / "analyses" / "reference-canonical"
LOSS_RTOL = 1e-3

CANONICAL_KEY_FREQUENCIES = [1, 8, 21]
"""Recorded from the reference run's summary.json when it was made."""


@pytest.fixture(scope="module")
def reference():
    summary = Summary.load(REFERENCE_ANALYSIS)
    return summary, load_measures(REFERENCE_ANALYSIS), open_run(REFERENCE_RUN)


def measure(run, epoch, keys):
    table, fve = measure_checkpoints(
        run.config, [run.state_dict(epoch=epoch)], run.train_indices, keys
    )
    return table.iloc[0], fve


def test_final_checkpoint_reproduces_recorded_measures(reference):
    summary, table, run = reference
    assert summary.key_frequencies == CANONICAL_KEY_FREQUENCIES
    state = run.state_dict(epoch=summary.last_epoch)
    basis = task_of(run.config).basis()
    norms = embedding.embedding_norms(state["embed.W_E"][None], basis)[0]
    assert embedding.key_components(norms, basis) == CANONICAL_KEY_FREQUENCIES

    row, fve_by_frequency = measure(run, summary.last_epoch, summary.key_frequencies)
    _, _, counts = neurons.cluster_sizes(fve_by_frequency)
    clusters = {str(k + 1): int(n) for k, n in enumerate(counts[0]) if n}
    assert clusters == summary.cluster_sizes
    assert row["fve_share"] == summary.fve_share
    recorded = table.iloc[-1]
    for column in ("train_loss", "test_loss", "restricted_loss", "excluded_loss", "logit_fve"):
        assert row[column] == pytest.approx(recorded[column], rel=LOSS_RTOL), column


def test_phase_boundary_checkpoints_reproduce_the_phase_ordering(reference):
    summary, table, run = reference
    phases = summary.phases
    mem, circ, clean = (
        phases[k] for k in ("memorization_end", "circuit_formation_end", "cleanup_end")
    )
    assert 0 < mem < circ < clean <= summary.last_epoch
    assert set(run.epochs) >= {circ, clean, summary.last_epoch}
    # the compact run was cut at the earlier rule's memorisation end (200, the first checkpoint
    # with 100% train accuracy): measure the last kept checkpoint at or before today's
    mem = max(epoch for epoch in run.epochs if epoch <= mem)
    rows = {epoch: measure(run, epoch, summary.key_frequencies)[0] for epoch in (mem, circ, clean)}
    for epoch, row in rows.items():
        recorded = table.loc[table["epoch"] == epoch].iloc[0]
        for column in (
            "train_loss",
            "test_loss",
            "restricted_loss",
            "excluded_loss",
            "weight_norm",
        ):
            assert row[column] == pytest.approx(recorded[column], rel=LOSS_RTOL), (epoch, column)
    # memorised but not generalised at the end of memorisation; generalised after cleanup
    assert rows[mem]["train_acc"] == 1.0 and rows[mem]["test_acc"] < 0.5
    assert rows[clean]["test_acc"] > 0.99
    # the circuit forms before the model generalises: restricted below test loss at circ
    assert rows[circ]["restricted_loss"] < rows[circ]["test_loss"]
    # excluded loss has risen through circuit formation; the weights shrank in cleanup
    assert rows[circ]["excluded_loss"] > rows[mem]["excluded_loss"]
    assert rows[clean]["weight_norm"] < rows[circ]["weight_norm"]
    assert np.all(np.diff(table["epoch"]) > 0)


def test_the_shipped_final_views_reproduce_from_the_final_checkpoint(reference):
    """final_views.safetensors (added by `make_reference.py --views-only`) against the views of
    the shipped last checkpoint measured again, within float32 and BLAS rounding."""
    from grokinterp.analysis.views import final_views
    from grokinterp.storage.final_views import load_final_views

    summary, _, run = reference
    stored = load_final_views(REFERENCE_ANALYSIS)
    assert stored.epoch == summary.last_epoch
    state = run.state_dict(epoch=summary.last_epoch)
    basis = task_of(run.config).basis(summary.basis["name"])
    again = final_views(
        run.task, run.architecture, state, summary.last_epoch, basis, summary.key_components
    )
    assert stored.attention_rows == again.attention_rows
    np.testing.assert_allclose(stored.attention[0], again.attention[0], rtol=1e-4, atol=1e-6)
    for name in ("fitted", "centred"):
        got, want = getattr(stored.logit_fit, name), getattr(again.logit_fit, name)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(stored.logit_fit.triples, again.logit_fit.triples)
    assert stored.logit_fit.fve == pytest.approx(summary.logit_fve_final, rel=1e-6)
    for got, want in zip(stored.spectra, again.spectra, strict=True):
        np.testing.assert_allclose(got.norms, want.norms, rtol=1e-5)
        assert got.gini == pytest.approx(summary.embedding_gini[got.name], abs=1e-9)
