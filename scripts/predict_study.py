"""Judge the early-warning indicators and the grokking-epoch forecasters on a trained sweep:

    OMP_NUM_THREADS=1 grokinterp sweep docs/sweeps/predict-study.toml --out sweeps/predict-study
    python scripts/predict_study.py sweeps/predict-study [--out analyses/predict-study]
        [--write-constants]

Computes each run's indicators (written to SWEEP/analyses/<run>/indicators.csv), splits the runs
by seed into calibration and held-out halves, and writes OUT/predict-table.csv,
OUT/predict-report.html and OUT/constants.json (grokinterp.prediction.evaluate). --write-constants
also copies the fitted constants to grokinterp/data/forecast_constants.json, the file that
`grokinterp forecast` reads.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from grokinterp.prediction.evaluate import CONSTANTS_FILE, PAGE_FILE, evaluate
from grokinterp.report.forecast_page import write_page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, help="the trained sweep folder")
    parser.add_argument("--out", type=Path, default=Path("analyses/predict-study"))
    parser.add_argument("--write-constants", action="store_true")
    args = parser.parse_args()
    result = evaluate(args.sweep, args.out, progress=True)
    write_page(args.out / PAGE_FILE, result)
    print(
        f"{result['n_runs']} runs ({result['n_grok']} grok), calibration "
        f"{result['n_calibration']}, held out {result['n_held_out']}"
    )
    print("indicator                          AUROC [95% CI]        lead (median)  false alarms")
    for row in result["indicators"]:
        flag = " (look-ahead)" if row["look_ahead"] else ""
        print(
            f"{row['indicator'] + flag:<34} {row['auroc']:.3f} [{row['auroc_low']:.2f}, "
            f"{row['auroc_high']:.2f}]  {row['median_lead']:>8.0f}       "
            f"{row['false_alarm_rate']:.2f}"
        )
    print("forecaster   seen           runs  MdAPE [95% CI]        in 80% interval")
    for row in result["forecasters"]:
        print(
            f"{row['forecaster']:<12} {row['seen']:<14} {row['n_grok']:>4}  {row['mdape']:.3f} "
            f"[{row['mdape_low']:.2f}, {row['mdape_high']:.2f}]  {row['within_80']:.2f}"
        )
    if args.write_constants:
        target = Path(__file__).resolve().parents[1] / "grokinterp" / "data"
        shutil.copy2(args.out / CONSTANTS_FILE, target / "forecast_constants.json")
        print(f"wrote {target / 'forecast_constants.json'}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
