"""Reproduce a paper: train its experiment (batched where the configs allow), analyse each run,
compare, and write the result.

    ROOT/checkpoints/papers/<folder>/<run>/    the runs (resumed when a run was killed)
    ROOT/analyses/papers/<folder>/runs/<run>/  each run's analysis (not shipped)
    ROOT/analyses/papers/<folder>/table.csv    published / measured / agrees or why not
    ROOT/analyses/papers/<folder>/table.md     the same, with the paper and what was cut
    ROOT/analyses/papers/<folder>/page.html    the table and the figures (plotly, inlined)

<folder> is the paper's name, `<name>-quick` for the quick variant (so a quick run never touches
a shipped result). A finished result is replaced only when asked (`replace`); a run already on
disk with another config is refused, never overwritten.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from grokinterp.errors import UsageError
from grokinterp.papers import paper_of
from grokinterp.papers.base import Comparison, Experiment, Paper, Run, RunResult

TABLE_COLUMNS = ("claim", "published", "source", "measured", "verdict")
"""table.csv's columns; `verdict` is `agrees` or the reason it does not."""


def folder_name(paper: Paper, quick: bool) -> str:
    return f"{paper.name}-quick" if quick else paper.name


def output_dir(root: Path, paper: Paper, quick: bool) -> Path:
    return Path(root) / "analyses" / "papers" / folder_name(paper, quick)


def runs_dir(root: Path, paper: Paper, quick: bool) -> Path:
    return Path(root) / "checkpoints" / "papers" / folder_name(paper, quick)


def plan(
    name: str,
    root: str | Path = ".",
    seeds: Sequence[int] | None = None,
    quick: bool = False,
    epochs: int | None = None,
    replace: bool = False,
) -> tuple[Paper, Experiment, Path]:
    """The paper, its experiment (with `epochs` as every run's budget when given) and the
    output folder, every refusal raised before anything is written: an unknown paper, a result
    already there (without `replace`), a run on disk with another config."""
    paper = paper_of(name)
    out = output_dir(Path(root), paper, quick)
    if (out / "table.csv").exists() and not replace:
        raise UsageError(f"{out} already holds a result; --replace to overwrite it")
    experiment = paper.experiment(quick, seeds)
    if epochs is not None:
        experiment = _with_budget(experiment, epochs)
    for run in experiment.runs:
        _check_existing(runs_dir(Path(root), paper, quick) / run.name, run)
    for _, analysis in experiment.shipped:
        if not (Path(root) / analysis / "summary.json").exists():
            raise UsageError(f"{Path(root) / analysis}: the shipped result is missing")
    return paper, experiment, out


def _with_budget(experiment: Experiment, epochs: int) -> Experiment:
    """Every trained run at `epochs` (checkpoints no sparser than 20 over the run)."""
    if epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {epochs}")
    if not experiment.batches:
        raise UsageError("--epochs applies to a trained experiment; this one is shipped")

    def cut(run: Run) -> Run:
        every = min(run.cfg.save_every, max(1, epochs // 20))
        cfg = run.cfg.replace(epochs=epochs, save_every=every).validate()
        return Run(run.name, cfg, run.values)

    paper_epochs = experiment.batches[0][0].cfg.epochs
    return Experiment(
        batches=tuple(tuple(cut(run) for run in batch) for batch in experiment.batches),
        cut=f"{experiment.cut}; budget cut to {epochs:,} epochs (the paper's {paper_epochs:,})",
        analyse=experiment.analyse,
        shipped=experiment.shipped,
        quick=experiment.quick,
    )


def _check_existing(run_dir: Path, run: Run) -> None:
    """UsageError when `run_dir` holds a run of another config than `run`'s, its budget and
    checkpoint cadence aside (a run trained on to a larger budget keeps its cadence)."""
    config = run_dir / "config.json"
    if not config.exists():
        return
    from grokinterp.config import RunConfig

    found = RunConfig.from_json(config.read_text())
    if found.replace(epochs=run.cfg.epochs, save_every=run.cfg.save_every) != run.cfg:
        raise UsageError(
            f"{run_dir} holds a run of another config than {run.name}'s; move it away first"
        )


def reproduce(
    name: str,
    root: str | Path = ".",
    seeds: Sequence[int] | None = None,
    quick: bool = False,
    epochs: int | None = None,
    replace: bool = False,
    progress: bool = True,
) -> Path:
    """Reproduce paper `name` under `root` (module docstring) and return the output folder.

    UsageError before any work for an unknown paper, a result already written (unless
    `replace`), or a run folder holding another config. Runs already trained are reused, killed
    ones resumed."""
    root = Path(root)
    paper, experiment, out = plan(name, root, seeds, quick, epochs, replace)
    say = _printer(paper, progress)
    say(f"{len(experiment.runs)} runs in {len(experiment.batches)} batches; cut: {experiment.cut}")
    results = [RunResult(run, root / analysis, None) for run, analysis in experiment.shipped]
    for i, batch in enumerate(experiment.batches, start=1):
        dirs = [runs_dir(root, paper, quick) / run.name for run in batch]
        say(f"batch {i}/{len(experiment.batches)}: {', '.join(r.name for r in batch)}")
        _train([run.cfg for run in batch], dirs, progress, "off" if experiment.quick else "auto")
        for run, run_dir in zip(batch, dirs, strict=True):
            analysis = out / "runs" / run.name
            if experiment.analyse:
                from grokinterp.analysis.analyze import analyze_run

                say(f"analysing {run.name}")
                analyze_run(run_dir, analysis, progress=False)
            results.append(RunResult(run, analysis, run_dir))
    say("comparing")
    comparison = paper.compare(experiment, results)
    write_result(out, paper, experiment, comparison)
    say(f"wrote {out}")
    return out


def _printer(paper: Paper, progress: bool):
    def say(text: str) -> None:
        if progress:
            print(f"[{paper.name}] {text}", file=sys.stderr, flush=True)

    return say


def _train(cfgs, dirs: list[Path], progress: bool, compile: str) -> None:
    """Train the batch; resume it when it was killed; leave it when it is finished (a finished
    run asked for more epochs is trained on to them). `compile` as `train_runs` takes it: the
    quick variant trains eagerly, its few epochs shorter than a compilation."""
    from grokinterp.training import batch_state
    from grokinterp.training.loop import resume_runs, train_runs

    if not any(d.exists() for d in dirs):
        train_runs(cfgs, dirs, progress=progress, compile=compile)
        return
    epochs = max(cfg.epochs for cfg in cfgs)
    longer = any(_epochs_of(d) < epochs for d in dirs)
    if not longer and all(batch_state.load_state(d)[2] for d in dirs):
        return
    resume_runs(dirs, progress=progress, epochs=epochs if longer else None, compile=compile)


def _epochs_of(run_dir: Path) -> int:
    from grokinterp.storage.run import open_run

    return open_run(run_dir).config.epochs


def table(comparison: Comparison) -> pd.DataFrame:
    """The comparison's rows as table.csv holds them (`TABLE_COLUMNS`)."""
    return pd.DataFrame(
        [[getattr(row, c) for c in TABLE_COLUMNS] for row in comparison.rows],
        columns=list(TABLE_COLUMNS),
    )


def facts(paper: Paper, experiment: Experiment) -> list[tuple[str, str]]:
    """The lines above the table: the paper, its code, its setting, what was cut."""
    return [
        ("paper", f"{paper.title}, arXiv {paper.arxiv}" if paper.arxiv else paper.title),
        ("code", paper.repository),
        ("setting", paper.setting),
        ("reproduced with", f"grokinterp, preset {paper.preset}; cut: {experiment.cut}"),
    ]


def markdown(paper: Paper, experiment: Experiment, comparison: Comparison) -> str:
    """table.md: the facts, the table, the notes."""
    lines = [f"# {paper.name}: grokinterp against the paper", ""]
    lines += [f"- **{label}**: {text}" for label, text in facts(paper, experiment)]
    lines += [
        "",
        "| claim | published | source | measured | agrees or why not |",
        "|---|---|---|---|---|",
    ]
    for row in comparison.rows:
        cells = (row.claim, row.published, row.source, row.measured, row.verdict)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", *(f"{note}\n" for note in comparison.notes)]
    return "\n".join(lines).rstrip() + "\n"


def write_result(out: Path, paper: Paper, experiment: Experiment, comparison: Comparison) -> None:
    """table.csv, table.md and page.html, each written whole (atomically)."""
    from grokinterp.report.paper_page import render_paper_html
    from grokinterp.storage.store import atomic_write

    out.mkdir(parents=True, exist_ok=True)
    frame = table(comparison)
    atomic_write(out / "table.csv", frame.to_csv(index=False).encode())
    atomic_write(out / "table.md", markdown(paper, experiment, comparison).encode())
    rows = frame.itertuples(index=False)
    page = render_paper_html(
        paper.name, facts(paper, experiment), list(rows), comparison.figures, comparison.notes
    )
    atomic_write(out / "page.html", page.encode("utf-8"))
