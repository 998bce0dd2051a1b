"""The one pass over a checkpoint series: the column registry against the tables the analysis
writes and against docs/columns.md, what a run and an analysis build once, and the checks of a
run's checkpoints against its config."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from grokinterp.analysis.analyze import Summary, analyze_run, load_measures
from grokinterp.analysis.columns import COLUMNS, FAMILIES, columns_markdown
from grokinterp.config import RunConfig
from grokinterp.errors import UsageError
from grokinterp.models import architecture
from grokinterp.storage import store
from grokinterp.storage.run import open_run
from tests.conftest import tiny_config

DOCS = Path(__file__).resolve().parents[1] / "docs" / "columns.md"


def random_run(run_dir: Path, cfg: RunConfig, epochs=(0, 10, 20)) -> Path:
    """A run directory whose checkpoints hold random weights (seeds 0, 1, ...): the analysis
    measures whatever the weights are, and this needs no training."""
    from grokinterp import data

    cfg = cfg.replace(epochs=epochs[-1], save_every=epochs[1] - epochs[0])
    store.write_run_files(run_dir, cfg, data.train_indices(cfg))
    for seed, epoch in enumerate(epochs):
        model = architecture(cfg.replace(seed=seed))
        store.save_checkpoint(run_dir, cfg, epoch, model.state_dict_of(model.init_params()))
    return run_dir


RUNS = {
    "transformer, a + b": ({}, True, True),
    "transformer, 2 blocks, a - b": ({"n_layers": 2, "operation": "sub"}, True, False),
    "mlp, separate tables, 2 layers, Z4xZ2": (
        {
            "model": "mlp",
            "embedding": "separate",
            "n_layers": 2,
            "group": "Z4xZ2",
            "operation": "compose",
        },
        True,
        True,
    ),
    "mlp, S3": (
        {"model": "mlp", "group": "S3", "operation": "compose", "train_frac": 0.7},
        True,
        False,
    ),
    "no known basis": ({"operation": "a2_b2"}, False, False),
}
"""Tiny configs: the overrides of `tiny_config()`, whether the task has a basis, and whether
clock and pizza apply (a commutative group operation)."""


def pattern(name: str) -> str:
    """A registry name as a regular expression: `<c>` one component name, `<parameter>` a
    parameter's name."""
    return re.escape(name).replace("<c>", r"[^.]+").replace("<parameter>", r".+")


def registry_entry(column: str) -> int:
    """The position in COLUMNS of the one entry that names `column` (per-layer entries with
    their `L<l>.` prefix)."""
    found = []
    for i, entry in enumerate(COLUMNS):
        names = [pattern(n.strip()) for n in entry.name.split(",")]
        prefix = r"(L[1-9]\.)?" if entry.per_layer else ""
        if any(re.fullmatch(prefix + n, column) for n in names):
            found.append(i)
    assert len(found) == 1, f"{column}: registry entries {found}"
    return found[0]


def test_docs_columns_page_is_the_registry_rendered():
    assert DOCS.read_text() == columns_markdown(), (
        "docs/columns.md is stale: python -c 'from grokinterp.analysis.columns import "
        'columns_markdown; print(columns_markdown(), end="")\' > docs/columns.md'
    )


@pytest.mark.parametrize("name", list(RUNS))
def test_every_column_written_is_in_the_registry_in_its_order(name, tmp_path):
    """Each measures.csv column matches one registry entry, the entries' families come in the
    registry's order, and every family that applies writes columns (one that does not, none)."""
    overrides, has_basis, clock_pizza = RUNS[name]
    cfg = tiny_config().replace(**overrides).validate()
    summary = analyze_run(random_run(tmp_path / "run", cfg), tmp_path / "analysis", progress=False)
    columns = list(load_measures(summary.path).columns)
    families = [f.NAME for f in FAMILIES]
    order = ["checkpoint", *families]
    entries = [COLUMNS[registry_entry(column)] for column in columns]
    written = [order.index(e.family) for e in entries[:-1]]  # weight_norm_ratio comes last
    assert written == sorted(written)
    assert entries[-1].name == "weight_norm_ratio" and columns[0] == "epoch"
    present = {e.family for e in entries}
    assert {"losses", "causes", "weights"} <= present
    assert {"restricted", "spectra", "neurons"} & present == (
        {"restricted", "spectra", "neurons"} if has_basis else set()
    )
    assert ("clock_pizza" in present) == clock_pizza


def test_analyze_run_returns_the_summary_it_wrote(tmp_path):
    run = random_run(tmp_path / "run", tiny_config())
    summary = analyze_run(run, tmp_path / "analysis", progress=False)
    assert summary.path == tmp_path / "analysis"
    assert summary == Summary.load(summary.path)
    assert "path" not in json.loads((summary.path / "summary.json").read_text())


def test_one_analysis_builds_the_run_once(tmp_path, monkeypatch):
    """The config is validated once (opening the run), the task, the model family and the
    hooked module of the clock/pizza gradients are built once, however many checkpoints."""
    from grokinterp.analysis.measures import clock_pizza
    from grokinterp.models import transformer
    from grokinterp.tasks import modular

    run = random_run(tmp_path / "run", tiny_config(), epochs=tuple(range(0, 100, 10)))
    built = {"validate": 0, "task": 0, "hooked": 0}

    def counted(owner, name, key):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            built[key] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    counted(RunConfig, "validate", "validate")
    counted(modular, "modular_task", "task")
    monkeypatch.setattr("grokinterp.tasks.modular_task", modular.modular_task)
    counted(transformer.Transformer, "hooked", "hooked")
    analyze_run(run, tmp_path / "analysis", progress=False)
    assert built == {"validate": 1, "task": 1, "hooked": 1}
    assert clock_pizza.not_applicable(open_run(run).task) is None  # the module was needed


def test_a_checkpoint_is_checked_against_the_run(tmp_path):
    """Accepted: the run's config written in another form (the default model named), or with
    more epochs (a run trained on). Refused, naming the file: another run's config, a file
    name that says another epoch than the metadata."""
    cfg = tiny_config()
    run_dir = random_run(tmp_path / "run", cfg)
    run = open_run(run_dir)
    state = run.state_dict(epoch=20)
    path = store.checkpoint_path(run_dir, 20)

    def rewrite(config_text: str, epoch: int = 20) -> None:
        data = store.read_checkpoint(path)[1] | {"config": config_text, "epoch": str(epoch)}
        metadata = {k: v for k, v in data.items() if k != store.DIGEST_KEY}
        store.atomic_write(path, store._with_digest(state, metadata))

    spelled_out = json.loads(run.config.to_json()) | {"model": "transformer"}
    rewrite(json.dumps(spelled_out))
    assert json.loads(store.read_checkpoint(path)[1]["config"]) != json.loads(cfg.to_json())
    for name, tensor in run.checkpoint_state(path, 20).items():
        assert torch.equal(tensor, state[name])
    rewrite(run.config.replace(epochs=500).to_json())
    run.checkpoint_state(path, 20)
    rewrite(run.config.replace(seed=7).to_json())
    with pytest.raises(UsageError, match=rf"{path.name}: checkpoint of a different run config"):
        run.checkpoint_state(path, 20)
    rewrite(run.config.to_json(), epoch=30)
    with pytest.raises(
        UsageError, match=rf"{path.name}: file name says epoch 20, metadata says 30"
    ):
        analyze_run(run_dir, tmp_path / "analysis", progress=False)


def test_the_pass_reads_each_checkpoint_once(tmp_path, monkeypatch):
    """Nineteen checkpoints in batches of eight: each file is read once (the predecessor of a
    batch's first checkpoint is kept from the batch before)."""
    run = random_run(tmp_path / "run", tiny_config(), epochs=tuple(range(0, 190, 10)))
    reads = []
    original = store.read_checkpoint
    monkeypatch.setattr(store, "read_checkpoint", lambda path: reads.append(path) or original(path))
    analyze_run(run, tmp_path / "analysis", progress=False)
    final = store.checkpoint_path(run, 180)
    assert sorted(reads) == sorted([*(p for _, p in store.list_checkpoints(run)), final])
