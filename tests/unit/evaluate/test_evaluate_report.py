"""HTML report: every figure embedded as a decodable PNG; opens in headless Chromium cleanly.

The Chromium test needs ``/usr/bin/chromium`` (Debian: ``apt-get install chromium``) and is
skipped without it.
"""

from __future__ import annotations

import base64
import io
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from autotag.evaluate import plots, report, tables

CHROMIUM = Path("/usr/bin/chromium")
EXPECTED = ["confusion-matrix", "tag-o-gram", "chord-timeline", "filters-sincnet", "filters-conv1d",
            "training-curves"]


class ReportParser(HTMLParser):
    """Collects figure ids, images, result-table cells and any external reference."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[str] = []
        self.images: list[dict[str, str]] = []
        self.cells: list[str] = []
        self.external: list[str] = []
        self.scripts = 0
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "figure":
            self.figures.append(attrs.get("id", ""))
        if tag == "img":
            self.images.append(attrs)
        if tag == "script":
            self.scripts += 1
        if tag in ("td", "th"):
            self._in_cell = True
        for name in ("src", "href"):
            if attrs.get(name) and not attrs[name].startswith(("data:", "#")):
                self.external.append(attrs[name])

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell and data.strip():
            self.cells.append(data.strip())


@pytest.fixture(scope="module")
def report_path(tmp_path_factory) -> Path:
    rng = np.random.default_rng(1)
    history = pd.DataFrame({"epoch": range(4), "train_loss": [1.0, 0.8, 0.6, 0.5],
                            "val_loss": [1.0, 0.9, 0.95, 1.0]})
    figures = [
        report.ReportFigure("confusion-matrix", "Confusion matrix",
                            plots.confusion_matrix(rng.integers(0, 9, (3, 3)), ["blues", "jazz", "rock"])),
        report.ReportFigure("tag-o-gram", "Tag-o-gram <track 7>", plots.tag_o_gram(rng.random((9, 4)), list("abcd")),
                            caption="track 7 & friends"),
        report.ReportFigure("chord-timeline", "Chord timeline", plots.chord_timeline(
            np.array([[0, 2], [2, 4.0]]), ["C:maj", "A:min"], np.array([[0, 3], [3, 4.0]]), ["C:maj", "A:min"])),
        report.ReportFigure("filters-sincnet", "SincNet filters",
                            plots.filter_responses(rng.standard_normal((8, 31)), 22050)),
        report.ReportFigure("filters-conv1d", "Conv1d filters",
                            plots.filter_responses(rng.standard_normal((8, 1, 31)), 22050)),
        report.ReportFigure("training-curves", "Training curves", plots.training_curves(history)),
    ]
    long = tables.metrics_table({"lms-conv2d": {"tagging": {"roc_auc_macro": 0.8141, "pr_auc_macro": 0.2903}},
                                 "sincnet": {"tagging": {"roc_auc_macro": 0.7747, "pr_auc_macro": 0.2337}}})
    results = tables.results_table(long)
    path = tmp_path_factory.mktemp("report") / "report.html"
    return report.write_report(path, "autotag evaluation", results, figures,
                               metadata={"dataset": "synthetic", "split": "test"},
                               results_caption="synthetic, test split")


def parse(path: Path) -> ReportParser:
    parser = ReportParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_every_figure_present_and_decodes_as_png(report_path):
    parsed = parse(report_path)
    assert parsed.figures == [f"fig-{key}" for key in EXPECTED]
    assert len(parsed.images) == len(EXPECTED)
    for image in parsed.images:
        prefix = "data:image/png;base64,"
        assert image["src"].startswith(prefix) and image["alt"]
        png = base64.b64decode(image["src"][len(prefix):], validate=True)
        assert png.startswith(report.PNG_SIGNATURE)
        assert matplotlib.image.imread(io.BytesIO(png), format="png").shape[0] > 100
    assert parsed.external == [] and parsed.scripts == 0
    assert {"lms-conv2d", "sincnet", "0.8141", "0.2337", "tagging.roc_auc_macro"} <= set(parsed.cells)
    text = report_path.read_text()
    assert "Tag-o-gram &lt;track 7&gt;" in text and "track 7 &amp; friends" in text  # escaped
    assert sorted(p.name for p in report_path.parent.iterdir()) == ["report.html"]


def test_sections_only_for_given_data(tmp_path):
    png = plots.training_curves(pd.DataFrame({"epoch": [0], "train_loss": [1.0], "val_loss": [1.0]}))
    path = report.write_report(tmp_path / "r.html", "only curves",
                               figures=[report.ReportFigure("training-curves", "Curves", png)])
    parsed = parse(path)
    assert parsed.figures == ["fig-training-curves"] and parsed.cells == []
    assert 'id="results"' not in path.read_text() and "sec-about" not in path.read_text()


def test_bad_figures_raise():
    with pytest.raises(ValueError, match=r"figure 'x': expected PNG bytes"):
        report.ReportFigure("x", "X", b"GIF89a....")
    with pytest.raises(ValueError, match=r"figure key 'Bad Key'"):
        report.ReportFigure("Bad Key", "X", report.PNG_SIGNATURE)
    figure = report.ReportFigure("x", "X", report.PNG_SIGNATURE)
    with pytest.raises(ValueError, match=r"duplicates \['x'\]"):
        report.render("t", figures=[figure, figure])


def run_chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               "--enable-logging=stderr", "--v=0", *args, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def console_messages(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium not installed (apt-get install chromium)")
def test_opens_in_headless_chromium(report_path, tmp_path):
    # The harness sees console errors: a page with a failing script must show them.
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>console.error('boom'); nope();</script></body></html>")
    assert len(console_messages(run_chromium(bad, tmp_path / "p0", "--dump-dom"))) == 2

    # The report itself: no console message at all (CSP violations, load errors, ...) and a screenshot.
    shot = tmp_path / "shot.png"
    result = run_chromium(report_path, tmp_path / "p1", f"--screenshot={shot}", "--window-size=1200,3000")
    assert result.returncode == 0, result.stderr[-2000:]
    assert console_messages(result) == []
    assert shot.read_bytes().startswith(report.PNG_SIGNATURE)
    assert matplotlib.image.imread(shot).shape[:2] == (3000, 1200)

    # Every <img> decoded by the browser: a copy with one nonce-allowed script that counts them.
    probe = tmp_path / "probe.html"
    html = report_path.read_text().replace("style-src 'unsafe-inline'",
                                           "style-src 'unsafe-inline'; script-src 'nonce-t'")
    script = ("<script nonce=\"t\">window.addEventListener('load', () => { const im = [...document.images];"
              "console.log('decoded ' + im.filter(i => i.complete && i.naturalWidth > 0).length + '/' + im.length);"
              "});</script>")
    probe.write_text(html.replace("</body>", script + "</body>"))
    result = run_chromium(probe, tmp_path / "p2", "--virtual-time-budget=5000", "--dump-dom")
    messages = console_messages(result)
    assert len(messages) == 1 and f'"decoded {len(EXPECTED)}/{len(EXPECTED)}"' in messages[0], result.stderr[-2000:]
    for key in EXPECTED:
        assert re.search(rf'<figure id="fig-{key}">\s*<img', result.stdout), key
