"""Print the paper-versus-grokinterp table of docs/reproduction.md from the shipped analyses:

    python scripts/compare_paper.py

Reads analyses/reference-canonical/ (the canonical run: its summary, and its measures table, from
which the phases are read by today's rule) and analyses/seeds/*.json (the seed study of
scripts/seed_study.py, whose summaries record the memorisation end by the earlier rule: the first
checkpoint with 100% train accuracy; circuit formation and cleanup are read the same way by both).
The paper's column is typed from Nanda et al. (2023) as restated in the project's REFERENCE.md.
"""

from __future__ import annotations

import math
from pathlib import Path

from grokinterp.analysis.measures.phases import locate_phases
from grokinterp.storage.analysis_format import Summary, load_measures

ROOT = Path(__file__).resolve().parents[1]


def sci(x: float) -> str:
    return f"{x:.2g}"


def pct(x: float) -> str:
    return f"{x:.1%}"


def ep(x: int) -> str:
    return f"{x:,}"


def _range(values, fmt) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    low, high = min(values), max(values)
    return fmt(low) if low == high else f"{fmt(low)} to {fmt(high)}"


def _clusters(s: Summary) -> str:
    sizes = ", ".join(
        f"{k}: {n}" for k, n in sorted(s.cluster_sizes.items(), key=lambda x: int(x[0]))
    )
    return f"{sizes}; {s.unexplained_neurons} unexplained"


def _before(s: Summary) -> bool | None:
    restricted, test = s.checks["restricted_loss_below_tenth"], s.checks["test_loss_below_tenth"]
    return None if restricted is None or test is None else restricted < test


def _rising(s: Summary) -> bool | None:
    slope = s.checks["excluded_loss_slope_in_circuit_formation"]
    return None if slope is None else slope > 0


def _falling(s: Summary) -> bool | None:
    slope = s.checks["weight_norm_slope_in_cleanup"]
    return None if slope is None else slope < 0


def _yes(flag: bool | None) -> str:
    return {True: "yes", False: "no", None: "n/a"}[flag]


def rows(ref: Summary, ref_phases: dict, seeds: list[Summary]):
    p, d_mlp = ref.config["p"], ref.config["d_mlp"]

    def seed_flags(get) -> str:
        flags = [get(s) for s in seeds]
        return f"{sum(f is True for f in flags)} of {len(flags)}"

    phases = ("memorization_end", "circuit_formation_end", "cleanup_end")
    yield (
        "key frequencies",
        "14, 35, 41, 42, 52",
        ", ".join(map(str, ref.key_frequencies)),
        "; ".join(" ".join(map(str, s.key_frequencies)) for s in seeds),
    )
    yield (
        "number of key frequencies",
        "5",
        str(len(ref.key_frequencies)),
        _range([len(s.key_frequencies) for s in seeds], str),
    )
    yield (
        "neuron clusters (FVE > 0.85)",
        "14: 44, 35: 93, 41: 145, 42: 87, 52: 64; 79 unexplained",
        _clusters(ref),
        _range([s.unexplained_neurons for s in seeds], str) + " unexplained",
    )
    yield (
        f"share of the {d_mlp} neurons with FVE > 0.85",
        "84.6% (433)",
        pct(ref.fve_share),
        _range([s.fve_share for s in seeds], pct),
    )
    for name, paper in zip(phases, ("1.4k", "9.4k", "about 14k"), strict=True):
        earlier = " (earlier rule: first 100% train accuracy)" * (name == "memorization_end")
        yield (
            f"{name.replace('_', ' ')} (epoch)",
            paper,
            ep(ref_phases[name]) if ref_phases[name] is not None else "n/a",
            _range([s.phases[name] for s in seeds], ep) + earlier,
        )
    yield (
        f"loss at init (ln p = {math.log(p):.3f})",
        "4.735 (TransformerLens demo)",
        f"{ref.checks['initial_loss']:.3f}",
        _range([s.checks["initial_loss"] for s in seeds], lambda x: f"{x:.3f}"),
    )
    yield (
        "final train loss",
        "about 2.4e-7",
        sci(ref.final_train_loss),
        _range([s.final_train_loss for s in seeds], sci),
    )
    yield (
        "final test loss",
        "about 2.0e-7 (demo, 25k epochs)",
        sci(ref.final_test_loss),
        _range([s.final_test_loss for s in seeds], sci),
    )
    yield (
        "logit variance explained by key cos(w(a+b-c))",
        "about 95%",
        pct(ref.logit_fve_final),
        _range([s.logit_fve_final for s in seeds], pct),
    )
    yield (
        "restricted loss below 1/10 of its start before test loss",
        "yes",
        f"{_yes(_before(ref))} (epoch {ref.checks['restricted_loss_below_tenth']:,} vs "
        f"{ref.checks['test_loss_below_tenth']:,})",
        seed_flags(_before),
    )
    yield (
        "excluded loss rises in circuit formation",
        "yes",
        _yes(_rising(ref)),
        seed_flags(_rising),
    )
    yield ("weight norm falls in cleanup", "yes", _yes(_falling(ref)), seed_flags(_falling))


def main() -> None:
    ref = Summary.load(ROOT / "analyses" / "reference-canonical")
    table = load_measures(ROOT / "analyses" / "reference-canonical")
    columns = ("epoch", "train_loss", "train_acc", "test_loss", "excluded_loss")
    ref_phases = locate_phases(*(table[c].to_numpy() for c in columns))
    seeds = [Summary.read(path) for path in sorted((ROOT / "analyses" / "seeds").glob("*.json"))]
    head = (
        "claim",
        "paper",
        f"reference run ({ref.last_epoch:,} epochs)",
        f"{len(seeds)} seeds ({_range([s.last_epoch for s in seeds], ep)} epochs)",
    )
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for row in rows(ref, ref_phases, seeds):
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
