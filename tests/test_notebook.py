"""The notebook API: every Python block of the README and of the docs/ pages runs as written, and
a run's inputs are its task's pairs with their answers."""

from __future__ import annotations

import pytest
import torch

from grokinterp.errors import UsageError
from grokinterp.storage.run import open_run
from tests.docs_text import PAGES, README, ROOT, block_id, blocks_of

BLOCKS = blocks_of("python", [README, *PAGES])


def test_the_readme_has_python_blocks():
    assert any(path == README for path, _, _ in BLOCKS)


@pytest.mark.parametrize(
    "path,block", [(p, b) for p, _, b in BLOCKS], ids=[block_id(p, i) for p, i, _ in BLOCKS]
)
def test_a_python_block_runs_as_written(
    path, block, small_run, small_analysis, tmp_path, monkeypatch
):
    """The block's paths name the small run and its analysis, here linked in as the README's
    set-up command would have written them, and the shipped files under docs/."""
    for folder, target in (("checkpoints", small_run), ("analyses", small_analysis)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "small-seed0").symlink_to(target)
    (tmp_path / "docs").symlink_to(ROOT / "docs")
    monkeypatch.chdir(tmp_path)
    exec(compile(block, str(path), "exec"), {})


def test_inputs_are_the_task_pairs_with_their_answers(small_run):
    run = open_run(small_run)
    p = run.config.p
    splits = {name: run.inputs(name) for name in ("train", "test", "all")}
    for tokens, labels in splits.values():  # addition mod p, computed here
        assert torch.equal(labels, (tokens[:, 0] + tokens[:, 1]) % p)
        assert torch.equal(tokens[:, 2], torch.full_like(labels, p))
    grid = {name: tokens[:, 0] * p + tokens[:, 1] for name, (tokens, _) in splits.items()}
    assert torch.equal(grid["train"], run.train_indices)
    both = torch.cat([grid["train"], grid["test"]]).sort().values
    assert torch.equal(both, grid["all"]) and torch.equal(grid["all"], torch.arange(p * p))
    tokens, labels = splits["test"]  # the training loop's test accuracy, recomputed
    logits = run.model(epoch=run.epochs[-1])(tokens)[:, -1]
    accuracy = (logits.argmax(-1) == labels).double().mean().item()
    assert accuracy == pytest.approx(run.metrics()["test_acc"].iloc[-1], abs=1e-12)
    with pytest.raises(UsageError, match="unknown split"):
        run.inputs("val")
