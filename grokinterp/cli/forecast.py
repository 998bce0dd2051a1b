"""`grokinterp forecast` and `grokinterp indicators`: flags and handlers (registered by
`grokinterp.cli`; the maths is in grokinterp.prediction.indicators and
grokinterp.prediction.forecast)."""

from __future__ import annotations

from pathlib import Path


def add_forecast(sub) -> None:
    parser = sub.add_parser(
        "forecast",
        help="predict a run's grokking epoch from its checkpoints so far",
        description=(
            "Read a run's metrics and checkpoints up to an epoch (default: all it has; a run "
            "still training is fine) and predict the epoch at which its test accuracy first "
            "reaches 99%, with an 80% interval, by each forecaster: the weight-norm delay law "
            "and a regression on the early-warning indicators with a logistic gate, both "
            "fitted on the calibration runs of docs/sweeps/predict-study.toml (constants "
            "shipped with the package). A forecast past the run's configured epochs, or a gate "
            "probability below 1/2, is 'no grokking predicted'; one at or before the last epoch "
            "seen is 'overdue', by how many epochs, with no forecast. A run that has already "
            "grokked by then is told so, with its epoch, and a finished run that never "
            "memorised, so. With --law, one of the 2026 delay laws instead "
            "(grokinterp.prediction.laws), from the end of memorisation, with the constants "
            "of --constants FILE or, where the paper publishes a complete set, the paper's."
        ),
    )
    parser.add_argument("run", type=Path, metavar="RUN", help="run directory")
    parser.add_argument("--upto", type=int, metavar="EPOCH", help="see the run up to this epoch")
    parser.add_argument(
        "--law",
        metavar="NAME",
        help="forecast by one delay law: norm-separation, first-passage or pinned-norm",
    )
    parser.add_argument(
        "--constants",
        type=Path,
        metavar="FILE",
        help="the law's constants (JSON written by scripts/fit_laws.py); default: the paper's",
    )
    parser.set_defaults(handler=_forecast)


def _forecast(args) -> None:
    from grokinterp.errors import UsageError
    from grokinterp.prediction import forecast, laws
    from grokinterp.prediction.indicators.table import run_indicators
    from grokinterp.storage.run import open_run

    if args.constants is not None and args.law is None:
        raise UsageError("--constants goes with --law")
    module = None if args.law is None else laws.law(args.law)
    run = open_run(args.run)
    if args.upto is not None and args.upto < 0:
        raise UsageError(f"--upto must be an epoch >= 0, got {args.upto}")
    epochs = run.epochs
    upto = (epochs[-1] if epochs else 0) if args.upto is None else args.upto
    forecast.check_checkpoints(sum(e <= upto for e in epochs), upto)
    seen = run.metrics().loc[:upto]
    cfg = run.config
    if (answer := forecast.settled(seen, cfg.epochs)) is not None:
        print(f"{run.name}: {answer}")
        return
    last = int(seen.index[-1])
    if module is not None:
        _law_forecast(run, module, args.constants, last)
        return
    obs = forecast.observe(cfg.lr * cfg.weight_decay, seen, run_indicators(run, last), last)
    constants = forecast.load_constants()
    print(
        f"{run.name}: seen up to epoch {last:,} ({len(obs.table)} checkpoints), memorised at "
        f"epoch {obs.t_mem:,}"
    )
    for forecaster in forecast.FORECASTERS.values():
        print("  " + forecaster(obs, constants, cfg.epochs).line())


def _law_forecast(run, module, constants_file: Path | None, last: int) -> None:
    """Print one law's forecast of `run` seen up to epoch `last` (grokinterp.prediction.laws)."""
    from grokinterp.prediction import laws

    facts = laws.run_facts(run, last)
    module.needs(facts)
    constants = laws.load_constants(constants_file, module)
    answer = laws.forecast(facts, module, constants)
    print(f"{run.name}: seen up to epoch {last:,}, memorised at epoch {facts.t_mem:,}")
    print("  " + answer.line())


def add_indicators(sub) -> None:
    parser = sub.add_parser(
        "indicators",
        help="compute the early-warning indicators of every checkpoint of a run",
        description=(
            "Compute the early-warning indicators of grokking at every checkpoint of a run "
            "(spectral entropy, log-alignment ratio, Fiedler value, attention-head diagnostics, "
            "their rolling lag-1 autocorrelation and variance, and the train loss's; "
            "definitions in grokinterp.prediction.indicators) and write indicators.csv into the "
            "run's analysis directory, with Nanda et al.'s measures copied from its measures.csv "
            "when `grokinterp analyze` has written one."
        ),
    )
    parser.add_argument("--ckpt-dir", type=Path, required=True, metavar="RUN", help="run directory")
    parser.add_argument(
        "--out", type=Path, help="the analysis directory (default analyses/<RUN>/, as analyze)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(handler=_indicators)


def _indicators(args) -> None:
    from grokinterp.prediction.indicators.table import run_indicators, with_measures
    from grokinterp.storage.analysis_dir import default_analysis_dir
    from grokinterp.storage.analysis_format import INDICATORS_FILE, write_indicators
    from grokinterp.storage.outputs import check_output_dir
    from grokinterp.storage.run import open_run

    run = open_run(args.ckpt_dir)
    out = args.out if args.out is not None else default_analysis_dir(run.path)
    check_output_dir(out, "--out")
    table = with_measures(run_indicators(run, progress=not args.quiet), out)
    write_indicators(out, table)
    print(f"wrote {out / INDICATORS_FILE} ({len(table)} checkpoints, {table.shape[1] - 1} columns)")
