"""Fit the delay laws on a trained sweep's calibration runs and judge them on its held-out runs:

    python scripts/fit_laws.py SWEEP [--law NAME ...] [--out analyses/laws]

Runs are split by seed as `grokinterp.prediction.evaluate.split` does (the lower half of the
seeds fits, the upper half is held out). For each law (default: all of
`grokinterp.prediction.laws`) writes OUT/<law>.json (the constants, for `grokinterp forecast
--law NAME --constants OUT/<law>.json`) and prints the median absolute percentage error of the
held-out runs' grokking epoch forecast from the end of memorisation, with a 95% percentile
bootstrap interval over runs (scipy.stats.bootstrap, 2,000 resamples, seed 0). The norm law of
`grokinterp.prediction.forecast` (a free-intercept line in log ||theta_mem||^2) is fitted and
judged beside them on the same runs, as the baseline, and so is each law with its paper's
constants where it publishes a complete set. As in `grokinterp.prediction.evaluate`, a
forecast before the first checkpoint at or after memorisation (the epoch the forecaster sees) is
judged as that epoch. A law whose inputs the runs lack (the pinned-norm law on a sweep without
fixed_norm runs) says why and is skipped. Cost: one checkpoint read per checkpoint between
memorisation and grokking per run (no forward pass): seconds for the 96-run predict study.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from grokinterp.errors import UsageError
from grokinterp.prediction import forecast, laws
from grokinterp.storage import sweep_dir
from grokinterp.storage.run import open_run

NORM_LAW = "norm law (forecast.py)"


@dataclass
class Sweep:
    """A sweep's runs as the laws see them: `fitting` and `held_out` (RunFacts up to grokking,
    calibration and held-out seeds), `censored` (RunFacts of the runs that memorise and never
    grok within their budget, seen to their last epoch, every seed) and `n_runs`."""

    fitting: list
    held_out: list
    censored: list
    n_runs: int


def load(sweep: Path) -> Sweep:
    """Every finished run of the sweep folder, sorted into a Sweep."""
    names = sorted(p.parent.name for p in (sweep / sweep_dir.RUNS).glob("*/config.json"))
    runs = [open_run(sweep_dir.run_dir(sweep, n)) for n in names]
    seeds = sorted({r.config.seed for r in runs})
    calibration_seeds = set(seeds[: max(1, len(seeds) // 2)])
    result = Sweep([], [], [], len(runs))
    for run in runs:
        metrics = run.metrics()
        if forecast.memorisation_epoch(metrics) is None:
            continue
        if forecast.grok_epoch(metrics) is None:
            result.censored.append(laws.run_facts(run))
            continue
        facts = laws.run_facts(run, fitting=True)
        (result.fitting if run.config.seed in calibration_seeds else result.held_out).append(facts)
    return result


def observed(facts) -> forecast.Observed:
    """The Observed of `forecast.norm_law` for a run's RunFacts, seen at memorisation."""
    table = pd.DataFrame({"epoch": facts.norm_epochs[:1], "weight_norm": facts.norms[:1]})
    return forecast.Observed(facts.lr * facts.weight_decay, facts.t_mem, facts.t_mem, table)


def norm_law_constants(runs: list) -> dict:
    """`forecast.fit_norm_law` on runs that grok (RunFacts), in the shipped constants' shape."""
    columns = [(r.t_mem, r.v_mem, r.eta_lambda, r.t_grok) for r in runs]
    return {"norm_law": forecast.fit_norm_law(*np.array(columns, dtype=np.float64).T)}


def predictions(module, constants: dict, held_out: list) -> list[tuple[float, int]]:
    """(forecast epoch, actual grokking epoch) of each held-out run the forecaster applies to,
    the forecast raised to the first checkpoint at or after memorisation; `module` None is the
    norm law of `grokinterp.prediction.forecast`."""
    pairs = []
    for facts in held_out:
        try:
            if module is None:
                epoch = forecast.norm_law(observed(facts), constants, facts.epochs).epoch
            else:
                epoch = laws.forecast(facts, module, constants).epoch
        except UsageError:  # the law's inputs are missing from this run
            continue
        pairs.append((max(epoch, float(facts.norm_epochs[0])), facts.t_grok))
    return pairs


def mdape(pairs: list[tuple[float, int]]) -> tuple[float, float, float]:
    """Median |predicted - actual| / actual with its 95% percentile bootstrap interval."""
    ape = np.array([abs(p - a) / a for p, a in pairs])
    ci = stats.bootstrap(
        (ape,), np.median, n_resamples=2000, method="percentile", random_state=0
    ).confidence_interval
    return float(np.median(ape)), float(ci.low), float(ci.high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--law", action="append", choices=list(laws.law_modules()))
    parser.add_argument("--out", type=Path, default=Path("analyses/laws"))
    args = parser.parse_args()
    sweep = load(args.sweep)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{len(sweep.fitting)} grokking calibration runs, {len(sweep.held_out)} held out")
    fitted = {}
    for name in args.law or list(laws.law_modules()):
        module = laws.law(name)
        try:
            constants = module.fit(sweep.fitting)
        except ValueError as exc:
            print(f"{name:<26} not fitted: {exc}")
            continue
        (args.out / f"{name}.json").write_text(json.dumps(constants, indent=1) + "\n")
        fitted[name] = (module, constants)
        if module.PUBLISHED is not None:
            fitted[f"{name} (published)"] = (module, module.PUBLISHED)
    norm = norm_law_constants(sweep.fitting)
    law = norm["norm_law"]
    print(f"{NORM_LAW:<26} c = {law['c']:.2f}, r^2 = {law['r_squared']:.2f}")
    fitted[NORM_LAW] = (None, norm)
    for name, (module, constants) in fitted.items():
        pairs = predictions(module, constants, sweep.held_out)
        if len(pairs) < 3:
            print(f"{name:<26} fitted; {len(pairs)} held-out runs it applies to: no error")
            continue
        median, low, high = mdape(pairs)
        print(
            f"{name:<26} MdAPE from memorisation {median:.1%} [{low:.1%}, {high:.1%}] "
            f"on {len(pairs)} held-out runs"
        )


if __name__ == "__main__":
    main()
