"""A self-contained HTML evaluation report: one file, figures embedded, no script, no network.

Conventions
-----------
- Figures are PNG bytes (from :mod:`autotag.evaluate.plots`) embedded as
  ``data:image/png;base64`` URIs, each in ``<figure id="fig-<key>">`` with an ``<img>`` whose
  ``alt`` is the figure title; the keys name what tests and readers look for
  (:data:`STANDARD_FIGURES` lists the usual ones).
- The results table across runs (like the tutorial's) is an HTML ``<table id="results">``;
  further tables (:class:`ReportTable`, e.g. per-class values) are ``<table id="table-<key>">``.
- A section exists only for what was given: no empty headings, no placeholder images.
- A Content-Security-Policy forbids every external fetch, so a report that opens cleanly in a
  browser is proven self-contained. It is written atomically.
"""

from __future__ import annotations

import base64
import html
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from autotag.storage import atomic_write_bytes

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STANDARD_FIGURES = ("confusion-matrix", "tag-o-gram", "chord-timeline", "filters-sincnet",
                    "filters-conv1d", "training-curves")
_KEY = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85rem; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.scroll { overflow-x: auto; }
figure { margin: 1rem 0; } img { max-width: 100%; height: auto; }
figcaption, .meta { color: #555; font-size: 0.85rem; }
"""


@dataclass(frozen=True)
class ReportFigure:
    """One PNG figure of the report.

    Parameters
    ----------
    key
        Lower-case id (``[a-z0-9-]``), e.g. ``"confusion-matrix"``; becomes ``id="fig-<key>"``.
    title
        Heading and ``alt`` text.
    png
        The image, PNG bytes.
    caption
        Optional sentence under the image (what data, which track).
    """

    key: str
    title: str
    png: bytes
    caption: str = ""

    def __post_init__(self) -> None:
        if not _KEY.match(self.key):
            raise ValueError(f"figure key {self.key!r}: expected lower-case letters, digits and '-'")
        if not isinstance(self.png, bytes) or not self.png.startswith(PNG_SIGNATURE):
            raise ValueError(f"figure {self.key!r}: expected PNG bytes (starting with the PNG "
                             f"signature), got {type(self.png).__name__} {bytes(self.png[:8])!r}")


@dataclass(frozen=True)
class ReportTable:
    """A table of the report, e.g. per-class precision/recall/F1.

    Parameters
    ----------
    key
        Lower-case id (``[a-z0-9-]``); becomes ``id="table-<key>"``.
    title
        Heading.
    frame
        The rows; the index is written when it is named (e.g. ``class``).
    caption
        Optional sentence above the table.
    """

    key: str
    title: str
    frame: pd.DataFrame
    caption: str = ""

    def __post_init__(self) -> None:
        if not _KEY.match(self.key):
            raise ValueError(f"table key {self.key!r}: expected lower-case letters, digits and '-'")


def _table_html(table: ReportTable) -> str:
    named = table.frame.index.name is not None
    body = table.frame.to_html(index=named, float_format=lambda v: f"{v:.4f}", na_rep="", border=0,
                               table_id=f"table-{table.key}", escape=True)
    note = f'<p class="meta">{html.escape(table.caption)}</p>' if table.caption else ""
    return (f'<section id="sec-{table.key}"><h2>{html.escape(table.title)}</h2>\n{note}'
            f'<div class="scroll">{body}</div></section>')


def _figure_html(figure: ReportFigure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    caption = f"<figcaption>{html.escape(figure.caption)}</figcaption>" if figure.caption else ""
    return (f'<section id="sec-{figure.key}"><h2>{html.escape(figure.title)}</h2>\n'
            f'<figure id="fig-{figure.key}"><img alt="{html.escape(figure.title, quote=True)}" '
            f'src="data:image/png;base64,{data}">{caption}</figure></section>')


def _results_html(results: pd.DataFrame, caption: str) -> str:
    table = results.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="",
                            border=0, table_id="results", escape=True)
    note = f'<p class="meta">{html.escape(caption)}</p>' if caption else ""
    return f'<section id="sec-results"><h2>Results across runs</h2>\n{note}<div class="scroll">{table}</div></section>'


def _metadata_html(metadata: Mapping[str, Any]) -> str:
    items = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>"
                    for k, v in metadata.items())
    return f'<section id="sec-about"><h2>About these numbers</h2><dl class="meta">{items}</dl></section>'


def render(
    title: str,
    results: pd.DataFrame | None = None,
    figures: Sequence[ReportFigure] = (),
    metadata: Mapping[str, Any] | None = None,
    results_caption: str = "",
    tables: Sequence[ReportTable] = (),
) -> str:
    """The report as one HTML string.

    Parameters
    ----------
    title
        Page title and main heading.
    results
        Runs x metrics (:func:`autotag.evaluate.tables.results_table`); omitted when None/empty.
    figures
        In display order; keys must be unique.
    metadata
        Data set, split, checkpoint, config... shown as a definition list.
    results_caption
        A sentence above the results table (which data and split).
    tables
        More tables, shown after the figures, in order; keys must be unique.

    Raises
    ------
    ValueError
        Duplicate figure or table keys.
    """
    keys = [f.key for f in figures] + [t.key for t in tables]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"figure and table keys must be unique, got duplicates {duplicates}")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"<h1>{html.escape(title)}</h1>", f'<p class="meta">Generated {stamp} by autotag.</p>']
    if metadata:
        parts.append(_metadata_html(metadata))
    if results is not None and not results.empty:
        parts.append(_results_html(results, results_caption))
    parts.extend(_figure_html(f) for f in figures)
    parts.extend(_table_html(t) for t in tables)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def write_report(
    path: str | os.PathLike[str],
    title: str,
    results: pd.DataFrame | None = None,
    figures: Sequence[ReportFigure] = (),
    metadata: Mapping[str, Any] | None = None,
    results_caption: str = "",
    tables: Sequence[ReportTable] = (),
) -> Path:
    """Render (see :func:`render`) and write the report atomically; returns its path."""
    text = render(title, results, figures, metadata, results_caption, tables)
    return atomic_write_bytes(path, text.encode("utf-8"))
