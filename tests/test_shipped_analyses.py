"""The analyses shipped in analyses/ are in today's format, and summary.json still offers the
format-1 name `key_frequencies` to readers of the raw JSON."""

import json
from pathlib import Path

from grokinterp.storage.analysis_format import FORMAT_VERSION, Summary

ANALYSES = Path(__file__).resolve().parents[1] / "analyses"


def test_every_shipped_analysis_is_in_todays_format():
    summaries = sorted(ANALYSES.glob("*/summary.json"))
    assert summaries, "no shipped analysis found"
    for path in summaries:
        version = json.loads(path.read_text()).get("format_version", 1)
        assert version == FORMAT_VERSION, (
            f"{path} is format {version}, older than {FORMAT_VERSION}: regenerate it "
            "(python scripts/make_reference.py --summary-only for the reference run)"
        )


def test_summary_json_keeps_the_old_key_frequencies_name(tmp_path):
    summary = Summary.load(ANALYSES / "reference-canonical")
    summary.write(tmp_path)
    raw = json.loads((tmp_path / "summary.json").read_text())
    assert raw["key_frequencies"] == raw["key_components"] == [1, 8, 21]
    assert "key_components" in raw["deprecated"]["key_frequencies"]
    assert Summary.load(tmp_path) == summary  # the extra keys are read past


def test_the_shipped_reference_reports_from_its_analysis_alone(tmp_path):
    """A copy of the reference's analysis, with no run anywhere near it, draws every section of
    a run with a basis, the final model's included."""
    import shutil

    from grokinterp.report.page import SECTIONS, write_report
    from tests.helpers import figures_in

    copy = tmp_path / "reference"
    shutil.copytree(ANALYSES / "reference-canonical", copy)
    page = write_report(copy, tmp_path / "r.html").read_text()
    assert set(figures_in(page)) == set(SECTIONS) - {"clock_pizza", "llc"}
    assert "Not drawn" not in page
