"""Zhong, Liu, Tegmark, Andreas (NeurIPS 2023), "The Clock and the Pizza: Two Stories in
Mechanistic Explanation of Neural Networks": gradient symmetricity and distance irrelevance of
the final model against the attention rate.

Published: their code's `result/1l_fixedwidth.csv` (fjzzq2002/pizza @ 4c7f2f3) holds the final
metrics of every run behind the paper's scatter of both diagnostics against the attention rate
(attn_coeff, drawn ~ U(0, 1) per run). The rows below are its one-layer runs of the preset's
setting (d_model 128, ReLU, eqn_sign = diff_vocab = 0; 2,381 runs with both metrics, every one
at test accuracy 1.0), binned by rate: the median and the 10th-90th percentile of each bin,
computed here from that file.

Rule: a rate agrees when the final value of every seed lies inside the 10th-90th percentile
range of the published bin that holds the rate, and the run generalised (final test accuracy
>= 0.99, as all of theirs did); the trend rows compare the mean over the seeds at rate 0 and 1.

Definitions (`grokinterp.analysis.measures.clock_pizza`): the same formulas as their
`code/eval-main.ipynb`; the 100 triples of the gradient symmetricity are another random sample
(theirs `random.Random(42)` over [C]^3, grokinterp's a torch generator seeded 0), and the
distance irrelevance is the notebook's (the correct logit), not the `distance_irrelevancy` that
train-main.py logs (the largest wrong logit).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from grokinterp.papers.base import (
    AGREES,
    Comparison,
    Experiment,
    Paper,
    Published,
    Row,
    Run,
    RunResult,
    published_row,
    seeds_or,
)
from grokinterp.presets import preset

RATES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
"""The attention rates of the reproduction: one in each of six of the published bins."""
SEEDS = (0, 1)
QUICK_RATES = (0.0, 1.0)
QUICK_EPOCHS = 6
GENERALISED = 0.99
"""Final test accuracy of a run that generalised; every published run reached 1.0."""

SOURCE = "their result/1l_fixedwidth.csv @ 4c7f2f3 (the data of the paper's scatter)"
BINS = (
    # (low, high]: the first bin is closed at 0
    ((0.0, 0.05), 121, (0.993, 0.991, 0.995), (0.368, 0.169, 0.776)),
    ((0.05, 0.2), 364, (0.992, 0.990, 0.995), (0.342, 0.167, 0.735)),
    ((0.2, 0.4), 462, (0.992, 0.990, 0.994), (0.354, 0.172, 0.744)),
    ((0.4, 0.6), 521, (0.993, 0.911, 0.994), (0.406, 0.221, 0.728)),
    ((0.6, 0.8), 450, (0.790, 0.581, 0.945), (0.666, 0.498, 0.796)),
    ((0.8, 0.95), 353, (0.576, 0.410, 0.729), (0.791, 0.701, 0.892)),
    ((0.95, 1.0), 110, (0.463, 0.299, 0.607), (0.864, 0.768, 0.943)),
)
"""Per attention-rate bin: (low, high], runs, and (median, 10th, 90th percentile) of the
gradient symmetricity and of the distance irrelevance, from their CSV."""
MEASURES = {
    "gradient_symmetricity": "gradient symmetricity",
    "distance_irrelevance": "distance irrelevance",
}


def _bin_label(low: float, high: float) -> str:
    return f"[{low:g}, {high:g}]" if low == 0 else f"({low:g}, {high:g}]"


def _published() -> tuple[Published, ...]:
    rows = []
    for (low, high), n, *values in BINS:
        for name, (median, p10, p90) in zip(MEASURES.values(), values, strict=True):
            rows.append(
                Published(
                    f"{name}, attention rate in {_bin_label(low, high)}",
                    f"median {median:.3f}, 10-90% {p10:.3f}-{p90:.3f} ({n} runs)",
                    SOURCE,
                )
            )
    rows.append(
        Published(
            "gradient symmetricity falls from attention rate 0 to 1",
            "0.993 to 0.463 (medians)",
            SOURCE + "; the paper's text: pizzas (rate 0) symmetric, clocks (rate 1) not",
        )
    )
    rows.append(
        Published(
            "distance irrelevance rises from attention rate 0 to 1",
            "0.368 to 0.864 (medians)",
            SOURCE + "; the paper's text: the logit of a pizza depends on a - b, a clock's not",
        )
    )
    return tuple(rows)


def bin_of(rate: float) -> int:
    """The index of the published bin that holds `rate` (0 in the first, closed bin)."""
    for i, ((low, high), *_) in enumerate(BINS):
        if (low == 0 and rate <= high) or low < rate <= high:
            return i
    raise ValueError(f"attention rate {rate} outside [0, 1]")


def experiment(quick: bool, seeds: Sequence[int] | None) -> Experiment:
    """6 rates x 2 seeds at the preset (quick: rates 0 and 1, one seed, 6 epochs); the seeds
    of one rate train together (the rate is a model field, shared by a batch)."""
    chosen = seeds_or(seeds, SEEDS[:1] if quick else SEEDS)
    base = preset("zhong2023")
    if quick:
        base = base.replace(epochs=QUICK_EPOCHS, save_every=QUICK_EPOCHS // 3)
    batches = []
    for rate in QUICK_RATES if quick else RATES:
        batches.append(
            tuple(
                Run(
                    f"rate{rate:g}-seed{seed}",
                    base.replace(attention_rate=rate, seed=seed, data_seed=seed),
                    {"attention_rate": rate, "seed": seed},
                )
                for seed in chosen
            )
        )
    cut = (
        f"rates {', '.join(f'{r:g}' for r in (QUICK_RATES if quick else RATES))} x seeds "
        f"{', '.join(map(str, chosen))} (theirs: ~2,400 runs at random rates); "
        f"{base.epochs:,} epochs"
    )
    return Experiment(batches=tuple(batches), cut=cut, quick=quick)


def _final(result: RunResult) -> dict:
    last = result.measures.iloc[-1]
    return {
        **result.run.values,
        "epoch": int(last["epoch"]),
        "test_acc": float(last["test_acc"]),
        **{column: float(last[column]) for column in MEASURES},
    }


def _verdict(finals: list[dict], column: str, low: float, high: float) -> str:
    """AGREES, or why not: a run that did not generalise, or values outside the range."""
    unfinished = [f for f in finals if f["test_acc"] < GENERALISED]
    if unfinished:
        return "; ".join(
            f"seed {f['seed']} has test accuracy {f['test_acc']:.3f} at epoch {f['epoch']:,}: "
            "not generalised (every published run reached 1.0), so its circuit is unfinished"
            for f in unfinished
        )
    outside = [f for f in finals if not low <= f[column] <= high]
    if not outside:
        return AGREES
    found = "; ".join(
        f"seed {f['seed']}: {f[column]:.3f} outside {low:.3f}-{high:.3f}" for f in outside
    )
    paper_epochs = preset("zhong2023").epochs
    last = max(f["epoch"] for f in outside)
    if last < paper_epochs:
        found += (
            f", at epoch {last:,} of the paper's {paper_epochs:,}: a cut budget, and both "
            "measures still move long after the test accuracy reaches 1 (the rate-1 runs trained "
            f"on to {paper_epochs:,} epochs come to the published ranges: docs/results.md, "
            "2026-12-07)"
        )
    return found


def compare(experiment: Experiment, results: list[RunResult]) -> Comparison:
    finals = [_final(r) for r in results]
    rows: list[Row] = []
    rates = sorted({f["attention_rate"] for f in finals})
    for rate in rates:
        at = [f for f in finals if f["attention_rate"] == rate]
        (low, high), _, *values = BINS[bin_of(rate)]
        for (column, name), (_, p10, p90) in zip(MEASURES.items(), values, strict=True):
            measured = ", ".join(f"{f[column]:.3f}" for f in at)
            seeds = ", ".join(str(f["seed"]) for f in at)
            rows.append(
                published_row(
                    PAPER,
                    f"{name}, attention rate in {_bin_label(low, high)}",
                    f"rate {rate:g}: {measured} (seed {seeds})",
                    _verdict(at, column, p10, p90),
                )
            )
    if 0.0 in rates and 1.0 in rates:
        for column, name, sign, word in (
            ("gradient_symmetricity", "gradient symmetricity", -1, "falls"),
            ("distance_irrelevance", "distance irrelevance", 1, "rises"),
        ):
            start, end = (
                float(np.mean([f[column] for f in finals if f["attention_rate"] == r]))
                for r in (0.0, 1.0)
            )
            ends = [f for f in finals if f["attention_rate"] in (0.0, 1.0)]
            verdict = _verdict(ends, column, -np.inf, np.inf)
            if verdict == AGREES and sign * (end - start) <= 0:
                verdict = f"it does not: {start:.3f} to {end:.3f}"
            rows.append(
                published_row(
                    PAPER,
                    f"{name} {word} from attention rate 0 to 1",
                    f"{start:.3f} to {end:.3f} (means over seeds)",
                    verdict,
                )
            )
    return Comparison(
        rows=tuple(rows),
        figures={"diagnostics": (figure(finals), CAPTION)},
        notes=(NOTE,),
    )


CAPTION = (
    "Final gradient symmetricity and distance irrelevance of every run (dots) against the "
    "attention rate, over the published runs' median (line) and 10th-90th percentile (band) "
    "per rate bin, from their result/1l_fixedwidth.csv."
)
NOTE = (
    "Published rows: their one-layer runs with d_model 128, ReLU and eqn_sign = diff_vocab = 0 "
    "(2,381 with both metrics, all at test accuracy 1.0), binned by attention rate; median and "
    "10th-90th percentile per bin, computed here from their CSV. A rate agrees when every "
    "seed generalised (test accuracy >= 0.99) and lies inside its bin's 10-90% range. "
    "Differences from their code, each checked in fjzzq2002/pizza code/train-main.py: the "
    "warm-up (theirs lr 0 on the first step, LambdaLR min(step / 10, 1); grokinterp's first "
    "step moves the weights, min((s + 1) / 10, 1)); the attention mask (theirs none, "
    "grokinterp's causal: the answer position is the last, which sees both operands either "
    "way, so one layer computes the same logits); seeds (theirs none: neither their splits "
    "nor their inits can be redrawn); the sample of 100 triples of the gradient symmetricity "
    "(its spread over other samples is far below the published ranges' widths: "
    "scripts/symmetricity_spread.py)."
)


def figure(finals: list[dict]) -> go.Figure:
    """Two panels (gradient symmetricity, distance irrelevance) against the attention rate."""
    from plotly.subplots import make_subplots

    from grokinterp.report.figures import finish

    fig = make_subplots(rows=1, cols=2, subplot_titles=list(MEASURES.values()))
    centres = [(low + high) / 2 for (low, high), *_ in BINS]
    for col, (column, name) in enumerate(MEASURES.items(), start=1):
        stats = np.array([values[col - 1] for _, _, *values in BINS])  # [bin, (med, p10, p90)]
        fig.add_scatter(
            x=centres + centres[::-1],
            y=list(stats[:, 2]) + list(stats[::-1, 1]),
            fill="toself",
            mode="none",
            fillcolor="rgba(99,110,250,0.15)",
            name="published 10-90%",
            showlegend=col == 1,
            row=1,
            col=col,
        )
        fig.add_scatter(
            x=centres,
            y=stats[:, 0],
            mode="lines+markers",
            line={"color": "#636efa"},
            name="published median",
            showlegend=col == 1,
            row=1,
            col=col,
        )
        fig.add_scatter(
            x=[f["attention_rate"] for f in finals],
            y=[f[column] for f in finals],
            mode="markers",
            marker={"color": "#ef553b", "size": 10},
            name="grokinterp (one run each)",
            text=[f"seed {f['seed']}, test acc {f['test_acc']:.3f}" for f in finals],
            showlegend=col == 1,
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text="attention rate", range=[-0.05, 1.05], row=1, col=col)
        fig.update_yaxes(title_text=name, row=1, col=col)
    return finish(fig, "Clock or pizza against the attention rate (Zhong et al. 2023)")


PAPER = Paper(
    name="zhong2023",
    title="The Clock and the Pizza: Two Stories in Mechanistic Explanation of Neural Networks "
    "(Zhong, Liu, Tegmark, Andreas, NeurIPS 2023)",
    arxiv="2306.17844",
    repository="https://github.com/fjzzq2002/pizza",
    setting="(a + b) mod 59 as [a, b], 80% of the pairs for training; one layer, d_model 128, 4 "
    "heads, d_mlp 512, ReLU, no LayerNorm, attention c softmax + (1 - c); AdamW lr 1e-3, "
    "weight decay 2, full batch, 20,000 epochs (preset zhong2023).",
    published=_published(),
    experiment=experiment,
    compare=compare,
    preset="zhong2023",
)
