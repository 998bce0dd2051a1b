"""Chughtai, Chan, Nanda (ICML 2023), "A Toy Model of Universality: Reverse Engineering How
Networks Learn Group Operations": which irreps of S5 their MLP learns, seed by seed.

Published (research/papers.md, from bilal-chughtai/rep-theory-mech-interp @ 01b2063): the key
irreps of seeds 1-4 (`paper/universality_results/mlp_all.csv`), their counts over the 50 S5 MLP
seeds (`batch_experiments/S5_MLP_seed*/key_reps.txt`) and the seed-averaged FVE of the
embedding and the unembedding (`mlp_avg.csv`).

Measured on each run's final checkpoint, with their definitions (`rep_theory/utils/metrics.py`):
- logit similarity of an irrep rho: the cosine between the logits of all |G|^2 pairs, centred
  over the classes, and the character cube chi_rho(a b c^-1); the key irreps are the
  non-trivial ones above KEY_THRESHOLD (their `determine_key_reps`); the logits' share of an
  irrep is the square of its similarity (their logit FVE sums it over the key irreps);
- embedding share: ||Q^T E||_F^2 / ||E||_F^2, E = the effective embedding of a (W_E_a times the
  first d_model rows of W_in, |G| x d_mlp), Q an orthonormal basis of the span of rho's matrix
  entries over the group (`grokinterp.bases.irreps.basis_rows`).
Their irreps' names: grokinterp's `4a` is their `standard`, `4b` `standard_sign`, the 5-dim
irrep with character +1 on a transposition (3, 2) their `s5_5d_b`, with -1 (2, 2, 1)
`s5_5d_a`, `6a` `s5_6d` (mapped by the character, not by the letter). grokinterp composes
(a b)(x) = a(b(x)), their sympy code applies a first: the same group, the product read in the
other order, which leaves every irrep and character as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

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

GROUP = "S5"
SEEDS = (1, 2, 3, 4)
KEY_THRESHOLD = 0.005
"""A non-trivial irrep is learned when its logit similarity exceeds this (their code)."""
QUICK_EPOCHS = 4
CODE = "bilal-chughtai/rep-theory-mech-interp @ 01b2063"
PUBLISHED = (
    Published(
        "key irreps, seeds 1-4",
        "1: sign, standard_sign, standard, s5_5d_a; 2: sign, standard; 3: sign, standard, "
        "s5_5d_b; 4: sign, standard",
        CODE + ", paper/universality_results/mlp_all.csv (the paper's table)",
    ),
    Published(
        "seeds learning each irrep, of 50",
        "standard 49, sign 49, s5_5d_a 18, standard_sign 17, s5_5d_b 10, s5_6d 0",
        CODE + ", batch_experiments/S5_MLP_seed*/key_reps.txt",
    ),
    Published(
        "standard (4-dim) learned by almost every seed",
        "yes (49 of 50)",
        CODE + "; the paper: lower-dimensional irreps are learned more often",
    ),
    Published(
        "embedding W_a explained by the key irreps",
        "100.00% (mean of seeds 1-4)",
        CODE + ", paper/universality_results/mlp_avg.csv",
    ),
    Published(
        "unembedding W_U explained by the key irreps",
        "94.14% (mean of seeds 1-4)",
        CODE + ", paper/universality_results/mlp_avg.csv",
    ),
)
PAPER_KEYS = {
    1: {"sign", "standard_sign", "standard", "s5_5d_a"},
    2: {"sign", "standard"},
    3: {"sign", "standard", "s5_5d_b"},
    4: {"sign", "standard"},
}


def their_name(irrep, transposition: int) -> str:
    """Chughtai et al.'s name of a real irrep of S5, from its dimension and its character on a
    transposition."""
    chi = round(float(irrep.character[transposition]))
    names = {(1, 1): "trivial", (1, -1): "sign", (4, 2): "standard", (4, -2): "standard_sign",
             (5, 1): "s5_5d_b", (5, -1): "s5_5d_a", (6, 0): "s5_6d"}  # fmt: skip
    return names[(irrep.dim, chi)]


def transposition_of(table: np.ndarray, sign: np.ndarray) -> int:
    """An element of order 2 with sign -1: in S5, a transposition."""
    for g in range(1, len(table)):
        if table[g, g] == 0 and sign[g] < 0:
            return g
    raise ValueError("no odd involution")


def logit_similarity(
    logits: np.ndarray, character: np.ndarray, table: np.ndarray, inverse: np.ndarray
) -> float:
    """cos(logits centred over c, chi(a b c^-1)) over every (a, b, c); logits float64 [a, b, c]."""
    centred = logits - logits.mean(axis=2, keepdims=True)
    cube = character[table[table[:, :, None], inverse[None, None, :]]]  # [a, b, c]
    return float((centred * cube).sum() / (np.linalg.norm(centred) * np.linalg.norm(cube)))


def share_of_span(matrix: np.ndarray, rows: np.ndarray) -> float:
    """||rows matrix||_F^2 / ||matrix||_F^2: the share of `matrix` [|G|, d] in the span of the
    orthonormal `rows` [k, |G|]."""
    return float(np.linalg.norm(rows @ matrix) ** 2 / np.linalg.norm(matrix) ** 2)


def experiment(quick: bool, seeds: Sequence[int] | None) -> Experiment:
    """Seeds 1-4 of their S5 MLP (quick: seed 1, 4 epochs) as one batch."""
    chosen = seeds_or(seeds, SEEDS[:1] if quick else SEEDS)
    base = paper_preset("chughtai2023").replace(group=GROUP)
    if quick:
        base = base.replace(epochs=QUICK_EPOCHS, save_every=QUICK_EPOCHS // 2)
    batch = tuple(Run(f"seed{s}", base.replace(seed=s, data_seed=s), {"seed": s}) for s in chosen)
    cut = f"seeds {', '.join(map(str, chosen))}; {base.epochs:,} epochs"
    return Experiment(batches=(batch,), cut=cut, analyse=False)


def measure(result: RunResult) -> dict:
    """Per irrep (their names): logit similarity, embedding share, unembedding share; the key
    set."""
    from grokinterp.bases.irreps import basis_rows
    from grokinterp.storage.run import open_run
    from grokinterp.tasks.groups import build_group, group_irreps

    run = open_run(result.run_dir)
    group = build_group(GROUP)
    irreps = group_irreps(GROUP)
    sign = next(i for i in irreps if i.name == "sign").character
    transposition = transposition_of(group.table, sign)
    tokens, _ = run.inputs("all")
    with torch.no_grad():
        out = run.model()(tokens).double()
    logits = (out if out.ndim == 2 else out[:, -1]).numpy()
    n = group.order
    logits = logits.reshape(n, n, -1)
    state = run.state_dict()
    d_model = run.config.d_model
    table_a = state.get("embed.W_E_a", state.get("embed.W_E"))  # separate or shared
    embed = (table_a @ state["blocks.0.mlp.W_in"][:d_model]).double().numpy()
    unembed = state["unembed.W_U"].double().numpy().T  # [|G|, d_mlp]
    per = {}
    for irrep in irreps:
        name = their_name(irrep, transposition)
        if name == "trivial":
            continue
        rows = basis_rows(irrep)[0]
        per[name] = {
            "similarity": logit_similarity(logits, irrep.character, group.table, group.inverse),
            "embedding": share_of_span(embed, rows),
            "unembedding": share_of_span(unembed, rows),
        }
    keys = {name for name, v in per.items() if v["similarity"] > KEY_THRESHOLD}
    return {"seed": result.run.values["seed"], "irreps": per, "keys": keys}


def compare(experiment: Experiment, results: list[RunResult]) -> Comparison:
    found = [measure(r) for r in results]
    keys_text = "; ".join(f"{m['seed']}: {', '.join(sorted(m['keys']))}" for m in found)
    differ = [m for m in found if m["seed"] in PAPER_KEYS and m["keys"] != PAPER_KEYS[m["seed"]]]
    key_verdict = AGREES if not differ else (
        "the set is the seed's (their 50 seeds learn 19 different sets); grokinterp's seed s "
        "is not their seed s (their init: torch.manual_seed(seed) then randn in their "
        "parameter order; their split: randperm under the same seed), so the sets differ "
        "seed by seed; compare the counts"
    )  # fmt: skip
    standard = sum("standard" in m["keys"] for m in found)

    def share(kind: str) -> float:
        return float(np.mean([sum(m["irreps"][k][kind] for k in m["keys"]) for m in found]))

    rows = [
        published_row(PAPER, "key irreps, seeds 1-4", keys_text, key_verdict),
        published_row(
            PAPER,
            "seeds learning each irrep, of 50",
            ", ".join(
                f"{name} {sum(name in m['keys'] for m in found)}"
                for name in ("standard", "sign", "s5_5d_a", "standard_sign", "s5_5d_b", "s5_6d")
            )
            + f" (of {len(found)})",
            AGREES if standard >= len(found) - 1 else "fewer seeds learn standard",
        ),
        published_row(
            PAPER,
            "standard (4-dim) learned by almost every seed",
            f"{standard} of {len(found)}",
            AGREES if standard >= len(found) - 1 else "more than one seed without it",
        ),
        published_row(
            PAPER,
            "embedding W_a explained by the key irreps",
            f"{share('embedding'):.2%}",
            AGREES if share("embedding") > 0.95 else "below 95%",
        ),
        published_row(
            PAPER,
            "unembedding W_U explained by the key irreps",
            f"{share('unembedding'):.2%}",
            AGREES if abs(share("unembedding") - 0.9414) < 0.05 else "more than 5 points away",
        ),
    ]
    return Comparison(rows=tuple(rows), figures={"irreps": (figure(found), CAPTION)})


CAPTION = (
    "Per seed, each non-trivial irrep's share of the embedding of a, of the unembedding and of "
    "the logits (its logit similarity squared); the key irreps are those of similarity > 0.005."
)


def figure(found: list[dict]):
    from plotly.subplots import make_subplots

    from grokinterp.report.figures import finish

    kinds = (("embedding", "embedding W_a"), ("unembedding", "unembedding W_U"),
             ("similarity", "logits (similarity^2)"))  # fmt: skip
    fig = make_subplots(rows=1, cols=3, subplot_titles=[t for _, t in kinds])
    for col, (kind, _) in enumerate(kinds, start=1):
        for m in found:
            names = sorted(m["irreps"])
            values = [m["irreps"][k][kind] ** (2 if kind == "similarity" else 1) for k in names]
            fig.add_bar(x=names, y=values, name=f"seed {m['seed']}", showlegend=col == 1,
                        legendgroup=str(m["seed"]), row=1, col=col)  # fmt: skip
    return finish(fig, "Irreps of S5 learned by each seed (Chughtai et al. 2023)", barmode="group")


PAPER = Paper(
    name="chughtai2023",
    title="A Toy Model of Universality: Reverse Engineering How Networks Learn Group "
    "Operations (Chughtai, Chan, Nanda, ICML 2023)",
    arxiv="2302.03025",
    repository="https://github.com/bilal-chughtai/rep-theory-mech-interp",
    setting="composition in S5, 40% of the 14,400 pairs for training; embeddings of a and b "
    "(256 each), concatenated, 128 ReLU neurons, no biases; AdamW lr 1e-3, weight decay 1, "
    "betas (0.9, 0.98), full batch, 250,000 epochs (preset chughtai2023).",
    published=PUBLISHED,
    experiment=experiment,
    compare=compare,
    preset="chughtai2023",
)
