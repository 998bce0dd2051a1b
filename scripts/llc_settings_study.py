"""Do fewer SGLD steps give the same LLC? The calibration (`grokinterp llc-calibrate`'s
`calibrate`, at one step size and localisation) of several checkpoints of one run at several
(burn-in, draws, chains), against long chains as the reference.

    python scripts/llc_settings_study.py RUN [--epochs 200,1000,4000] [--lr 1e-4]
        [--localization 1000] [--variants 50:100:4,30:70:4,...] [--reference 200:400:4]

Prints one row per checkpoint and variant: the LLC (mean over chains), its spread across chains,
the drift within the chains, devinterp's MALA acceptance, the calibration's `stable` verdict, and
the difference from the reference in units of the variant's spread across chains. Needs
pip install 'grokinterp[llc]'.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from grokinterp.analysis.llc.estimator import LLCSettings
from grokinterp.analysis.llc.series import calibrate
from grokinterp.cli.lists import parse_list


def variant(text: str) -> tuple[int, int, int]:
    """`burnin:draws:chains` -> (burnin, draws, chains)."""
    burnin, draws, chains = (int(part) for part in text.split(":"))
    return burnin, draws, chains


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--epochs", default="200,1000,4000")
    parser.add_argument("--lr", type=float, default=LLCSettings.lr)
    parser.add_argument("--localization", type=float, default=LLCSettings.localization)
    parser.add_argument("--variants", default="50:100:4,30:70:4,50:50:4,25:50:4,50:100:2")
    parser.add_argument("--reference", default="200:400:4")
    parser.add_argument("--out", type=Path, help="also write the table here (CSV)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for epoch in parse_list(args.epochs, int):
        reference = None
        for text in [args.reference, *args.variants.split(",")]:
            burnin, draws, chains = variant(text)
            base = replace(LLCSettings(), burnin=burnin, draws=draws, chains=chains)
            row = calibrate(args.run, [args.lr], [args.localization], base, epoch=epoch).iloc[0]
            reference = row["llc_mean"] if reference is None else reference
            gap = (row["llc_mean"] - reference) / row["llc_std"]
            rows.append({"epoch": epoch, "burnin:draws:chains": text, **row, "gap/std": gap})
            print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1))
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if args.out:
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
