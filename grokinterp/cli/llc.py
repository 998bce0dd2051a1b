"""The LLC on the command line: the `--llc*` flags of `grokinterp analyze` and
`grokinterp llc-calibrate` (estimator: grokinterp.analysis.llc.estimator; series and calibration:
grokinterp.analysis.llc.series). devinterp is imported only when an estimate is asked for."""

from __future__ import annotations

import argparse
from pathlib import Path

from grokinterp.analysis.llc.estimator import LLCSettings

DEFAULTS = LLCSettings()


def add_llc_flags(parser: argparse.ArgumentParser) -> None:
    """The estimator's settings as flags (`--llc-lr`, ...), defaults from `LLCSettings`."""
    group = parser.add_argument_group("LLC settings (SGLD through devinterp)")
    group.add_argument("--llc-lr", type=float, default=DEFAULTS.lr, help="step size (> 0)")
    group.add_argument(
        "--llc-localization", type=float, default=DEFAULTS.localization, help="gamma (>= 0)"
    )
    group.add_argument(
        "--llc-nbeta", type=float, default=None, help="inverse temperature (default B / log B)"
    )
    group.add_argument("--llc-chains", type=int, default=DEFAULTS.chains)
    group.add_argument("--llc-draws", type=int, default=DEFAULTS.draws, help="per chain (>= 1)")
    group.add_argument("--llc-burnin", type=int, default=DEFAULTS.burnin, help="steps per chain")
    group.add_argument("--llc-batch-size", type=int, default=DEFAULTS.batch_size)
    group.add_argument("--llc-seed", type=int, default=DEFAULTS.seed)


def settings_from(args) -> LLCSettings:
    """The validated settings of the parsed flags (UsageError for one out of range)."""
    return LLCSettings(
        lr=args.llc_lr,
        localization=args.llc_localization,
        nbeta=args.llc_nbeta,
        chains=args.llc_chains,
        draws=args.llc_draws,
        burnin=args.llc_burnin,
        batch_size=args.llc_batch_size,
        seed=args.llc_seed,
    ).validate()


def check_llc_request(args) -> LLCSettings:
    """Everything `analyze --llc` needs, checked before anything is written: the settings,
    devinterp, training pairs."""
    from grokinterp.analysis.llc.estimator import require_devinterp
    from grokinterp.analysis.llc.series import training_data
    from grokinterp.storage.run import open_run

    settings = settings_from(args)
    require_devinterp()
    training_data(open_run(args.ckpt_dir))
    return settings


def add_llc_calibrate(sub) -> None:
    parser = sub.add_parser(
        "llc-calibrate",
        help="sweep the LLC's step size and localisation on one checkpoint",
        description=(
            "Estimate the LLC of one checkpoint (default the last) at every step size x "
            "localisation and print, for each, the mean and spread across chains, the drift "
            "within the chains (n beta times the change of the mean loss from the first to the "
            "second half of the draws), devinterp's MALA acceptance rate, and whether the "
            "estimate is stable: finite, non-negative, drift under a tenth of it. Needs "
            "pip install 'grokinterp[llc]'."
        ),
    )
    parser.add_argument("--ckpt-dir", type=Path, required=True, metavar="RUN", help="run directory")
    parser.add_argument("--epoch", type=int, help="the checkpoint (default: the last)")
    parser.add_argument("--lrs", default="1e-5,1e-4,1e-3", help="step sizes, comma-separated")
    parser.add_argument("--localizations", default="1,100", help="gammas, comma-separated")
    parser.add_argument("--out", type=Path, help="also write the table here (CSV)")
    add_llc_flags(parser)
    parser.set_defaults(handler=_calibrate)


def _calibrate(args) -> None:
    from grokinterp.analysis.llc.series import calibrate
    from grokinterp.cli.lists import parse_list
    from grokinterp.storage import store

    lrs, gammas = parse_list(args.lrs, float), parse_list(args.localizations, float)
    table = calibrate(args.ckpt_dir, lrs, gammas, settings_from(args), epoch=args.epoch)
    print(table.to_string(index=False))
    if args.out:
        store.atomic_write(args.out, table.to_csv(index=False).encode())
        print(f"wrote {args.out}")
