"""Fit the delay laws on a trained sweep's calibration runs and judge them on its held-out runs:

    python scripts/fit_laws.py SWEEP [--law NAME ...] [--out analyses/laws]

Runs are split by seed as `grokinterp.prediction.evaluate.split` does (the lower half of the
seeds fits, the upper half is held out). For each law (default: all of
`grokinterp.prediction.laws`) writes OUT/<law>.json (the constants, for `grokinterp forecast
--law NAME --constants OUT/<law>.json`) and prints the median absolute percentage error of the
held-out runs' grokking epoch forecast from the end of memorisation, with a 95% percentile
bootstrap interval over runs (scipy.stats.bootstrap, 2,000 resamples, seed 0). A law whose
inputs the runs lack (the pinned-norm law on a sweep without fixed_norm runs) says why and is
skipped. Cost: one checkpoint read per checkpoint between memorisation and grokking per run (no
forward pass): seconds for the 96-run predict study.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

from grokinterp.errors import UsageError
from grokinterp.prediction import laws
from grokinterp.storage import sweep_dir
from grokinterp.storage.run import open_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--law", action="append", choices=list(laws.law_modules()))
    parser.add_argument("--out", type=Path, default=Path("analyses/laws"))
    args = parser.parse_args()
    names = sorted(p.parent.name for p in (args.sweep / sweep_dir.RUNS).glob("*/config.json"))
    runs = [open_run(sweep_dir.run_dir(args.sweep, n)) for n in names]
    seeds = sorted({r.config.seed for r in runs})
    calibration_seeds = set(seeds[: max(1, len(seeds) // 2)])
    fitting, held_out = [], []
    for run in runs:
        try:
            facts = laws.run_facts(run, fitting=True)
        except UsageError:  # never memorises or never groks: nothing to fit or judge
            continue
        (fitting if run.config.seed in calibration_seeds else held_out).append(facts)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{len(fitting)} grokking calibration runs, {len(held_out)} held out")
    for name in args.law or list(laws.law_modules()):
        module = laws.law(name)
        try:
            constants = module.fit(fitting)
        except ValueError as exc:
            print(f"{name:<16} not fitted: {exc}")
            continue
        (args.out / f"{name}.json").write_text(json.dumps(constants, indent=1) + "\n")
        ape = []
        for facts in held_out:
            try:
                epoch = laws.forecast(facts, module, constants).epoch
            except UsageError:  # the law's inputs are missing from this run
                continue
            ape.append(abs(epoch - facts.t_grok) / facts.t_grok)
        if len(ape) < 3:
            print(f"{name:<16} fitted; {len(ape)} held-out runs it applies to: no error")
            continue
        ci = stats.bootstrap(
            (np.array(ape),), np.median, n_resamples=2000, method="percentile", random_state=0
        ).confidence_interval
        print(
            f"{name:<16} MdAPE from memorisation {np.median(ape):.1%} "
            f"[{ci.low:.1%}, {ci.high:.1%}] on {len(ape)} held-out runs"
        )


if __name__ == "__main__":
    main()
