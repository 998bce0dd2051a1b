"""The page of a paper's reproduction (`grokinterp reproduce`): one self-contained HTML file.

Like the run report (`grokinterp.report.page.render_html`), it inlines plotly.js once and loads
nothing else; each figure is a JSON payload in a `<script type="application/json"
class="grokinterp-figure">` tag. Above the figures: the paper, its setting, what the
reproduction cut, and the table `published` / `measured` / `agrees or why not`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import plotly.graph_objects as go

TABLE_HEAD = ("claim", "published", "source", "measured", "agrees or why not")


def table_html(rows: Sequence[Sequence[str]]) -> str:
    """An HTML table of the rows (`TABLE_HEAD` order), every cell escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in TABLE_HEAD)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_paper_html(
    title: str,
    facts: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[str]],
    figures: dict[str, tuple[go.Figure, str]],
    notes: Sequence[str] = (),
) -> str:
    """The whole page: `facts` as (label, text) lines, the table, each figure under its
    caption, the notes."""
    from plotly.offline import get_plotlyjs

    from grokinterp.report.page import STYLE, draw_script

    plotly_js = get_plotlyjs().replace("</script", "<\\/script")
    lines = "".join(
        f"<p><b>{html.escape(label)}</b>: {html.escape(text)}</p>" for label, text in facts
    )
    sections = []
    for name, (figure, caption) in figures.items():
        payload = figure.to_json().replace("<", "\\u003c")  # never closes the script tag
        sections.append(
            f'<section><p class="note">{html.escape(caption)}</p><div class="plot" '
            f'id="fig-{name}"></div><script type="application/json" class="grokinterp-figure" '
            f'data-target="fig-{name}">{payload}</script></section>'
        )
    draw = draw_script()
    heading = html.escape(f"grokinterp reproduce: {title}")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{heading}</title>'
        f"<style>{STYLE}</style><script>{plotly_js}</script></head><body><h1>{heading}</h1>"
        + lines
        + f'<section><div style="overflow-x:auto">{table_html(rows)}</div></section>'
        + "".join(sections)
        + "".join(f'<p class="note">{html.escape(note)}</p>' for note in notes)
        + f"<script>{draw}</script></body></html>"
    )
