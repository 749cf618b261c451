"""Standalone HTML reports: plotly.js embedded once, opens offline, no external requests."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

__all__ = ["Section", "render_report", "write_report"]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0 auto;
       max-width: 1180px; padding: 1.5rem 2rem 4rem; color: #222; line-height: 1.5; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
.meta { color: #666; font-size: .9rem; } .fig { margin: 1rem 0 1.6rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .92rem; }
td, th { border: 1px solid #ccc; padding: .25rem .6rem; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: .5rem .9rem; }
nav a { margin-right: 1rem; }
"""


@dataclass
class Section:
    """One report section: a title, paragraphs of HTML-safe text, tables and figures."""

    title: str
    paragraphs: Sequence[str] = ()  # plain text; escaped when rendered
    figures: Sequence[go.Figure] = ()
    tables: Sequence[tuple[Sequence[str], Sequence[Sequence[object]]]] = ()  # (header, rows)
    notes: Sequence[str] = ()  # highlighted plain-text remarks
    anchor: str = field(default="")

    def slug(self) -> str:
        return self.anchor or "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def render_report(title: str, sections: Sequence[Section], *, subtitle: str = "",
                  data: dict | None = None) -> str:
    """The whole page as one HTML string (plotly.js inlined in the head, ~4.5 MB)."""
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style><script type='text/javascript'>{get_plotlyjs()}</script></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    if subtitle:
        parts.append(f"<p class='meta'>{html.escape(subtitle)}</p>")
    parts.append("<nav>" + "".join(f"<a href='#{s.slug()}'>{html.escape(s.title)}</a>" for s in sections) + "</nav>")
    for section in sections:
        parts.append(f"<h2 id='{section.slug()}'>{html.escape(section.title)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in section.paragraphs]
        parts += [f"<p class='note'>{html.escape(n)}</p>" for n in section.notes]
        parts += [_table(h, r) for h, r in section.tables]
        for fig in section.figures:
            parts.append("<div class='fig'>" + fig.to_html(full_html=False, include_plotlyjs=False,
                                                            config={"displaylogo": False}) + "</div>")
    if data is not None:
        payload = json.dumps(data, default=str).replace("</", "<\\/")
        parts.append(f"<script type='application/json' id='creamviz-results'>{payload}</script>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: str | Path, title: str, sections: Sequence[Section], **kwargs) -> Path:
    """Render and write the report; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(title, sections, **kwargs), encoding="utf-8")
    return path
