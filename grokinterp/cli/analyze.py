"""`grokinterp analyze` (the measures of a run's checkpoints, optionally the LLC and the
report) and `grokinterp report` (the HTML page of an analysis)."""

from __future__ import annotations

from pathlib import Path

from grokinterp.cli.llc import add_llc_flags, check_llc_request
from grokinterp.cli.replay import add_log_flags


def add_analyze(sub) -> None:
    parser = sub.add_parser(
        "analyze",
        help="measure every checkpoint of a run in its task's basis (restricted loss, ...)",
        description=(
            "Compute the progress measures of Nanda et al. (2023) at every complete checkpoint of "
            "a run and write measures.csv (one row per checkpoint), neurons.safetensors and "
            "summary.json (key components, the three phases, final losses, neuron clusters), in "
            "the task's basis: Fourier frequencies for a + b and a - b, multiplicative characters "
            "for a * b and a / b, irreducible representations for a group. "
            "Incremental: checkpoints already in the table are not measured again. Safe on a run "
            "that is still training: only complete checkpoint files are read."
        ),
    )
    parser.add_argument("--ckpt-dir", type=Path, required=True, metavar="RUN", help="run directory")
    parser.add_argument(
        "--out",
        type=Path,
        help="analysis directory (default analyses/<RUN>/: RUN's path from here, less a leading "
        "checkpoints/; a run outside this folder by its absolute path)",
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="overwrite the analysis in --out even when it is another run's, or holds "
        "checkpoints RUN no longer has (refused without this flag)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "--basis",
        help="basis of the circuit measures (default: the task's own: fourier for add and sub, "
        "dlog for mul and div, irreps for a group; irreps also for add and sub); one that does "
        "not belong to the task is refused",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="also write the HTML report (reports/<RUN>.html, RUN's path as for the analysis)",
    )
    parser.add_argument(
        "--llc",
        action="store_true",
        help="also estimate the local learning coefficient of every checkpoint (devinterp's "
        "SGLD estimator with the chains batched: pip install 'grokinterp[llc]'); writes llc.csv, "
        "llc.json and the chains' traces into the analysis directory; a re-run estimates only "
        "checkpoints not yet estimated with these settings",
    )
    add_llc_flags(parser)
    add_log_flags(parser, "the measures, one row per checkpoint")
    parser.set_defaults(handler=_analyze)


def _analyze(args) -> None:
    from grokinterp.storage import trackers

    trackers.require(args.log_to)  # before the heavy imports: a refusal answers at once
    from grokinterp.analysis.analyze import analyze_run
    from grokinterp.report.figures import WORDS, words_key

    settings = check_llc_request(args) if args.llc else None
    if args.report:
        from grokinterp.storage.analysis_dir import default_report_path
        from grokinterp.storage.outputs import check_output_file

        report = default_report_path(args.ckpt_dir)
        check_output_file(report, "--report")
    summary = analyze_run(
        args.ckpt_dir,
        args.out,
        progress=not args.quiet,
        basis_name=args.basis,
        replace=args.replace,
    )
    out = summary.path
    print(f"wrote {out}")
    print(f"  task               {summary.task['formula']}")
    print(f"  checkpoints        {summary.n_checkpoints} (last epoch {summary.last_epoch})")
    if summary.basis is None:
        print(f"  not applicable     {', '.join(summary.not_applicable)} (no known basis)")
    else:
        print(f"  basis              {summary.basis['title']}")
        many = WORDS[words_key(summary.basis["name"], summary.basis["kind"])]["many"]
        keys = ", ".join(map(str, summary.key_components))
        print(f"  {'key ' + many:<18} {keys or summary.key_component_note or 'none'}")
    phases = ", ".join(f"{name} {epoch}" for name, epoch in summary.phases.items())
    print(f"  phases             {phases}")
    print(
        f"  final loss         train {summary.final_train_loss:.3g}, "
        f"test {summary.final_test_loss:.3g}"
    )
    if summary.fve_share is not None:
        print(
            f"  neurons FVE > {summary.fve_threshold}  {summary.fve_share:.1%}, "
            f"clusters {' '.join(f'{k}:{n}' for k, n in summary.cluster_sizes.items())}"
        )
    if settings is not None:
        from grokinterp.analysis.llc.series import llc_run

        print(f"wrote {llc_run(args.ckpt_dir, out, settings, progress=not args.quiet)} (LLC)")
    if args.report:
        from grokinterp.report.page import write_report

        print(f"wrote {write_report(out, report)}")
    if args.log_to:
        name = Path(args.ckpt_dir).resolve().name
        sent = trackers.log_measures(args.log_to, out, name, args.project)
        print(f"sent {sent} analysis rows to {args.log_to}")


def add_report(sub) -> None:
    parser = sub.add_parser(
        "report",
        help="write the interactive HTML report of an analysed run",
        description=(
            "Build one self-contained HTML page (plotly.js inlined, works offline) from a run's "
            "analysis: losses with the three phases shaded, restricted/excluded loss, weight norm "
            "and Gini, the embedding's component norms over epochs, neuron clusters, and the final "
            "model's attention and logits, all in the run's own basis (Fourier frequencies for "
            "a + b and a - b, multiplicative characters for a * b and a / b, irreps for a group). "
            "Run `grokinterp analyze` first. The page is drawn from the analysis directory alone: "
            "the run may since have been moved or deleted (give --analysis then)."
        ),
    )
    parser.add_argument(
        "--ckpt-dir",
        type=Path,
        metavar="RUN",
        help="run directory: names the default --analysis and --out, and is checked to be the "
        "run the analysis measured",
    )
    parser.add_argument(
        "--analysis",
        type=Path,
        help="analysis directory (default analyses/<RUN>/, as analyze writes it); needed "
        "without --ckpt-dir",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="HTML file (default reports/<RUN>.html, RUN's path as for the analysis; without "
        "--ckpt-dir, reports/<ANALYSIS>.html, less a leading analyses/)",
    )
    parser.set_defaults(handler=_report)


def _report(args) -> None:
    from grokinterp.errors import UsageError
    from grokinterp.report.page import write_report
    from grokinterp.storage.analysis_dir import (
        SUMMARY_FILE,
        check_measured_run,
        default_analysis_dir,
        default_report_path,
    )
    from grokinterp.storage.analysis_format import Summary
    from grokinterp.storage.outputs import check_output_file
    from grokinterp.storage.run import open_run

    if args.ckpt_dir is None and args.analysis is None:
        raise UsageError("give the run directory (--ckpt-dir RUN) or its analysis (--analysis DIR)")
    run = None if args.ckpt_dir is None else open_run(args.ckpt_dir)
    analysis_dir = args.analysis or default_analysis_dir(run.path)
    out = args.out or default_report_path(analysis_dir if run is None else run.path)
    check_output_file(out, "--out")
    if run is not None and (analysis_dir / SUMMARY_FILE).is_file():  # else the report says why
        summary = Summary.load(analysis_dir)
        where = analysis_dir / SUMMARY_FILE
        check_measured_run(summary, run.config, run.train_indices, run.path, where)
    print(f"wrote {write_report(analysis_dir, out)}")
