"""Why the norm law of `grokinterp.prediction.forecast` fits a negative slope on the predict
study: test each candidate explanation on a trained sweep's runs.

    python scripts/fit_laws.py SWEEP        # the laws and the norm law, fitted and judged
    python scripts/norm_law_sign.py SWEEP   # the diagnosis below

Every line is a straight-line fit (scipy.stats.linregress) over the runs that memorise and grok
(all seeds unless it says "calibration"); Delta = T_grok - T_mem (epochs), eta lambda = lr x
weight decay, V = ||theta||^2 over every parameter (`grokinterp.prediction.laws`), V_mem at the
first checkpoint at or after T_mem, V_post at the first at or after T_grok.

- the norm law as fitted: Delta eta lambda on log V_mem (calibration seeds, then all);
- (c) the 1 / (eta lambda) factor: Delta on log V_mem, log Delta on log(1 / eta lambda), and
  the law's line within each weight decay (where eta lambda is one number, so the factor cannot
  matter);
- (b) the norm measured: the separation log(V_mem / V_post) the laws need, against the
  2 kappa eta lambda Delta that the paper's contraction rate (kappa 0.252) would give; Delta eta
  lambda on log(V_mem / V_post) (the norm-separation law's regressor); log V_post on log V_mem
  (a constant target norm is what a line in log V_mem assumes); the first-passage law's per-run
  contraction rate kappa;
- (a) the setting: the runs that memorise but never grok within the budget, their V_mem against
  the grokking runs' at each weight decay; the budget caps Delta eta lambda at (epochs - T_mem)
  eta lambda, a cap that grows with the weight decay, so the law is refitted on the runs below
  the lowest cap of any run (one truncation for every weight decay).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from fit_laws import load, norm_law_constants
from scipy import stats

from grokinterp.prediction.laws import first_passage


def show(label: str, x, y) -> None:
    """One fitted line: slope, intercept, r^2 and the number of runs."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 3 or np.ptp(x) == 0:
        print(f"  {label:<58} {len(x)} runs: no fit")
        return
    line = stats.linregress(x, y)
    print(
        f"  {label:<58} slope {line.slope:9.3f}  intercept {line.intercept:9.3f}  "
        f"r^2 {line.rvalue**2:.2f}  ({len(x)} runs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path)
    args = parser.parse_args()
    sweep = load(args.sweep)
    runs = sweep.fitting + sweep.held_out
    log_v = np.log([r.v_mem for r in runs])
    delay = np.array([r.t_grok - r.t_mem for r in runs], dtype=np.float64)
    eta_lambda = np.array([r.eta_lambda for r in runs])
    log_post = np.log([r.v_grok for r in runs])
    print(
        f"{sweep.n_runs} runs: {len(runs)} memorise and grok, {len(sweep.censored)} memorise and "
        "never grok within the budget"
    )
    law = norm_law_constants(sweep.fitting)["norm_law"]
    print("the norm law (forecast.fit_norm_law): Delta eta lambda = c log V_mem + b")
    print(f"  calibration seeds: c = {law['c']:.2f}, r^2 = {law['r_squared']:.2f}")
    show("all seeds", log_v, delay * eta_lambda)
    print("(c) the 1 / (eta lambda) factor")
    show("Delta on log V_mem (no eta lambda)", log_v, delay)
    show(
        "log Delta on log(1 / eta lambda) (1: Delta ~ 1/eta lambda)",
        -np.log(eta_lambda),
        np.log(np.maximum(delay, 1.0)),
    )
    for wd in sorted({r.weight_decay for r in runs}):
        at = np.array([r.weight_decay == wd for r in runs])
        show(
            f"weight decay {wd:g}: Delta eta lambda on log V_mem",
            log_v[at],
            (delay * eta_lambda)[at],
        )
    print("(b) the norm measured")
    ratio = np.quantile(log_v - log_post, [0.1, 0.5, 0.9])
    contraction = np.quantile(
        2 * first_passage.PUBLISHED["kappa"] * eta_lambda * delay, [0.1, 0.5, 0.9]
    )
    print(
        f"  log(V_mem / V_post): median {ratio[1]:.2f}, 10%-90% {ratio[0]:.2f} to {ratio[2]:.2f}; "
        f"2 x 0.252 eta lambda Delta: median {contraction[1]:.2f}, {contraction[0]:.2f} to "
        f"{contraction[2]:.2f}"
    )
    show("Delta eta lambda on log(V_mem / V_post)", log_v - log_post, delay * eta_lambda)
    show("log V_post on log V_mem (0 if the target norm is fixed)", log_v, log_post)
    show("log V_mem on T_mem", [r.t_mem for r in runs], log_v)
    kappa = [first_passage.trajectory_kappa(r) for r in runs if len(r.norms) >= 2]
    q = np.quantile(kappa, [0.1, 0.5, 0.9])
    print(
        f"  first-passage kappa per run: median {q[1]:.3f}, 10%-90% {q[0]:.3f} to {q[2]:.3f} "
        f"({len(kappa)} runs)"
    )
    print("(a) the setting: runs that never grok within the budget")
    for wd in sorted({r.weight_decay for r in runs}):
        grok = [np.log(r.v_mem) for r in runs if r.weight_decay == wd]
        never = [np.log(r.v_mem) for r in sweep.censored if r.weight_decay == wd]
        text = f"median log V_mem {np.median(grok):.2f} ({len(grok)} grok)"
        if never:
            text += f", {np.median(never):.2f} ({len(never)} never grok)"
        print(f"  weight decay {wd:g}: {text}")
    cap = min((r.epochs - r.t_mem) * r.eta_lambda for r in runs + sweep.censored)
    below = delay * eta_lambda <= cap
    show(
        f"Delta eta lambda on log V_mem, runs with Delta eta lambda <= {cap:.2f}",
        log_v[below],
        (delay * eta_lambda)[below],
    )


if __name__ == "__main__":
    main()
