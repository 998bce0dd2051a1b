"""Power, Burda, Edwards, Babuschkin, Misra (2022), "Grokking: Generalization Beyond Overfitting
on Small Algorithmic Datasets": optimisation steps until 99% validation accuracy against the
fraction of the data used for training, for a + b and a / b mod 97 (their Figure 1, centre).

Published: research/papers.md. The paper's text was not available to read: the numbers of the
figure are from memory there, marked unverified, and only their order of magnitude is compared.
Their code (openai/grok @ 3d64b1d) stops at 10^5 steps (`--max_steps`), so a fraction whose
runs do not reach 99% within the budget is "not reached", as in the figure.

Measured: the first epoch whose test accuracy is >= 0.99 in the run's per-epoch metrics, times
the steps per epoch of the run's batch rule (`grokinterp.training.loop.steps_per_epoch`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from grokinterp.papers.base import (
    AGREES,
    Comparison,
    Experiment,
    Paper,
    Published,
    Run,
    RunResult,
    paper_preset,
    published_row,
    seeds_or,
)

OPERATIONS = ("add", "div")
FRACTIONS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.8)
SEEDS = (0, 1)
QUICK_FRACTIONS = (0.3, 0.5)
QUICK_EPOCHS = 1
ACCURACY = 0.99
MEMORY = "research/papers.md, the paper's Figure 1 centre (from memory, unverified)"
PUBLISHED = (
    Published("a / b: steps to 99% at training fraction 0.6-0.8", "about 10^3-10^4", MEMORY),
    Published("a / b: steps to 99% near training fraction 0.3", "about 10^5 or more", MEMORY),
    Published(
        "steps to 99% fall as the training fraction rises",
        "yes",
        MEMORY + "; the figure's shape",
    ),
    Published(
        "a + b generalises at a smaller fraction than a / b",
        "yes (a + b from ~0.2-0.3)",
        "research/papers.md, the paper's Figure 2 centre (from memory, unverified)",
    ),
)


def experiment(quick: bool, seeds: Sequence[int] | None) -> Experiment:
    """Both operations x the fractions x 2 seeds (quick: 2 fractions, one seed, 1 epoch);
    the seeds of one (operation, fraction) train together (minibatch runs of a batch need as
    many training pairs each)."""
    chosen = seeds_or(seeds, SEEDS[:1] if quick else SEEDS)
    base = paper_preset("power2022")
    if quick:
        base = base.replace(epochs=QUICK_EPOCHS, save_every=1)
    batches = []
    for operation in OPERATIONS:
        for frac in QUICK_FRACTIONS if quick else FRACTIONS:
            batches.append(
                tuple(
                    Run(
                        f"{operation}-frac{frac:g}-seed{s}",
                        _config(base, operation=operation, train_frac=frac, seed=s, data_seed=s),
                        {"operation": operation, "train_frac": frac, "seed": s},
                    )
                    for s in chosen
                )
            )
    fractions = QUICK_FRACTIONS if quick else FRACTIONS
    cut = (
        f"fractions {', '.join(f'{f:g}' for f in fractions)} x seeds "
        f"{', '.join(map(str, chosen))}; {base.epochs:,} epochs"
    )
    return Experiment(batches=tuple(batches), cut=cut, analyse=False, quick=quick)


def _config(base, **given):
    """The preset at `given`, its batch size derived again from the training set (their rule,
    `grokinterp.presets.power_batch_size`)."""
    from grokinterp.presets import resolve

    return resolve(base.replace(**given), given)


def steps_to(result: RunResult) -> int | None:
    """Optimiser steps until test accuracy first reaches ACCURACY; None when it never does."""
    from grokinterp.training.loop import steps_per_epoch

    metrics = result.metrics
    hit = metrics.index[metrics["test_acc"] >= ACCURACY]
    return int(hit[0]) * steps_per_epoch(result.run.cfg) if len(hit) else None


def _medians(found: list[dict], operation: str) -> dict[float, float | None]:
    """Median steps per fraction over the seeds that reached 99% (None: none did)."""
    out = {}
    for frac in sorted({f["train_frac"] for f in found if f["operation"] == operation}):
        steps = [
            f["steps"] for f in found if (f["operation"], f["train_frac"]) == (operation, frac)
        ]
        reached = [s for s in steps if s is not None]
        out[frac] = float(np.median(reached)) if reached else None
    return out


def _fmt(value: float | None) -> str:
    return "not reached" if value is None else f"{value:,.0f}"


def compare(experiment: Experiment, results: list[RunResult]) -> Comparison:
    found = [{**r.run.values, "steps": steps_to(r)} for r in results]
    budget = max(r.run.cfg.epochs for r in results)
    div, add = _medians(found, "div"), _medians(found, "add")

    def magnitude(fracs, low: float, high: float) -> tuple[str, str]:
        values = {f: div.get(f) for f in fracs if f in div}
        if not values:
            return "no run at these fractions", "not measured"
        text = "; ".join(f"{f:g}: {_fmt(v)}" for f, v in values.items())
        ok = all(v is not None and low <= v <= high for v in values.values())
        return text, AGREES if ok else f"outside {low:,.0f}-{high:,.0f} steps"

    high_text, high_verdict = magnitude((0.6, 0.8), 300, 30_000)
    low_text, low_verdict = magnitude((0.3,), 30_000, float("inf"))
    if low_text != "no run at these fractions" and div.get(0.3) is None:
        from grokinterp.training.loop import steps_per_epoch

        budget_steps = min(
            r.run.cfg.epochs * steps_per_epoch(r.run.cfg)
            for r in results
            if (r.run.values["operation"], r.run.values["train_frac"]) == ("div", 0.3)
        )
        low_verdict = (  # not reached within a budget of 30,000 steps or more: as published
            AGREES
            if budget_steps >= 30_000
            else f"not reached within {budget_steps:,} steps: too short a budget to tell"
        )
    reached = [(f, v) for f, v in div.items() if v is not None]
    falling = all(b[1] <= a[1] for a, b in zip(reached, reached[1:], strict=False))
    smallest = {
        op: min((f for f, v in med.items() if v is not None), default=None)
        for op, med in (("add", add), ("div", div))
    }
    first_add, first_div = smallest["add"], smallest["div"]
    rows = (
        published_row(
            PAPER, "a / b: steps to 99% at training fraction 0.6-0.8", high_text, high_verdict
        ),  # fmt: skip
        published_row(
            PAPER, "a / b: steps to 99% near training fraction 0.3", low_text, low_verdict
        ),  # fmt: skip
        published_row(
            PAPER,
            "steps to 99% fall as the training fraction rises",
            "; ".join(f"{f:g}: {_fmt(v)}" for f, v in div.items()) + " (a / b, medians)",
            AGREES if falling and len(reached) >= 2 else "not monotone, or fewer than 2 reached",
        ),
        published_row(
            PAPER,
            "a + b generalises at a smaller fraction than a / b",
            f"smallest fraction reaching 99%: a + b {first_add or 'none'}, a / b "
            f"{first_div or 'none'}",
            AGREES
            if first_add is not None and (first_div is None or first_add <= first_div)
            else "a + b does not reach 99% at a smaller fraction",
        ),
    )
    return Comparison(rows=rows, figures={"steps": (figure(found, budget), CAPTION)})


CAPTION = (
    "Optimiser steps until validation accuracy first reaches 99% against the training fraction "
    "(log scale), per operation: dots are runs, lines the medians; open markers: not reached "
    "within the budget (plotted at the budget)."
)


def figure(found: list[dict], budget_epochs: int):
    import plotly.graph_objects as go

    from grokinterp.report.figures import finish

    fig = go.Figure()
    for operation, label in (("add", "a + b"), ("div", "a / b")):
        runs = [f for f in found if f["operation"] == operation]
        medians = _medians(found, operation)
        shown = [(f, v) for f, v in medians.items() if v is not None]
        fig.add_scatter(x=[f for f, _ in shown], y=[v for _, v in shown], mode="lines",
                        name=f"{label}: median")  # fmt: skip
        fig.add_scatter(
            x=[f["train_frac"] for f in runs if f["steps"] is not None],
            y=[f["steps"] for f in runs if f["steps"] is not None],
            mode="markers",
            name=f"{label}: runs",
        )
        missed = [f for f in runs if f["steps"] is None]
        if missed:
            fig.add_scatter(
                x=[f["train_frac"] for f in missed],
                y=[budget_epochs] * len(missed),
                mode="markers",
                marker={"symbol": "circle-open", "size": 10},
                name=f"{label}: not reached (at the budget, in epochs)",
            )
    fig.update_yaxes(type="log", title_text="steps to 99% validation accuracy")
    fig.update_xaxes(title_text="training fraction")
    return finish(fig, "Steps to generalise against the training fraction (Power et al. 2022)")


PAPER = Paper(
    name="power2022",
    title="Grokking: Generalization Beyond Overfitting on Small Algorithmic Datasets (Power, "
    "Burda, Edwards, Babuschkin, Misra, 2022)",
    arxiv="2201.02177",
    repository="https://github.com/openai/grok",
    setting="a + b and a / b mod 97; 2-layer decoder-only transformer, width 128, 4 heads, "
    "post-LN, causal, sinusoidal positions; AdamW lr 1e-3, betas (0.9, 0.98), 10 warm-up "
    "steps, batch min(512, n_train / 2), 10^5 steps (preset power2022).",
    published=PUBLISHED,
    experiment=experiment,
    compare=compare,
    preset="power2022",
)
