"""The dashboard in headless Chromium at a desktop's 1366 px and a phone's 390 px: each page
fits the viewport (no horizontal scrolling, measured in the DOM), is in Bahasa Indonesia
for an Indonesian browser, and names the time zone of its times. The screenshots are
saved in the test's tmp dir, and also in $LAPOR_DASHBOARD_SCREENSHOTS when it is set (the
ones in docs/screenshots/ were made so, and are shown in docs/reports.md)."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.integration.test_dashboard_pages import KUKAR, serving
from tests.integration.test_report_cli import REPORTER, TITLE, NodeFactory, ReportTree, build_tree
from tests.support.browser import Browser, chromium_or_skip

VIEWPORTS = [
    pytest.param(1366, 900, False, id="desktop-1366"),
    pytest.param(390, 844, True, id="phone-390"),
]

_MEASURE = """JSON.stringify({
  lang: document.documentElement.lang,
  inner: window.innerWidth,
  scroll: document.documentElement.scrollWidth,
  body: document.body.scrollWidth,
  widest: Math.max(...Array.from(document.querySelectorAll("body *"),
                                 e => e.getBoundingClientRect().right)),
  font: parseFloat(getComputedStyle(document.body).fontSize),
  heads: Array.from(document.querySelectorAll("table.r thead"),
                    e => getComputedStyle(e).display),
  text: document.body.innerText,
})"""


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


@pytest.mark.parametrize("db_kind", ["sqlite"])
@pytest.mark.parametrize(("width", "height", "mobile"), VIEWPORTS)
def test_dashboard_fits_the_screen_in_indonesian(
    nodes: NodeFactory, tmp_path: Path, width: int, height: int, mobile: bool
) -> None:
    """At 1366 px and 390 px the overview, the backlog and a trail are as wide as the
    viewport (nothing sticks out), in Indonesian with the zone named; at 390 px the tables
    become one card per row and the text keeps its full size."""
    chromium = chromium_or_skip()
    tree: ReportTree = build_tree(nodes)
    zone = tree.province.ctx().config.timezone
    abbreviation = tree.clock.now().astimezone(ZoneInfo(zone)).tzname()
    pages = [
        ("overview", "/?year=2020", ("Diterima", "Persentase tindak lanjut", "Terlambat", KUKAR)),
        (
            "backlog",
            "/backlog?year=2020&deadline=2021-03-31",
            ("Tunggakan", "Masih terbuka", "Unduh sebagai CSV", KUKAR),
        ),
        ("trail", f"/complaint/{tree.kukar_ids[0]}", ("Jalur", "terverifikasi", KUKAR)),
    ]
    shots = os.environ.get("LAPOR_DASHBOARD_SCREENSHOTS")
    with serving(tree, page_size=8) as base, Browser(chromium, tmp_path / "chromium") as browser:
        page = browser.new_page()
        for name, path, words in pages:
            page.open(
                base + path,
                width=width,
                height=height,
                mobile=mobile,
                accept_language="id-ID,id;q=0.9,en;q=0.5",
            )
            seen: dict[str, Any] = json.loads(page.evaluate(_MEASURE))
            where = f"{name} at {width} px"
            assert seen["lang"] == "id", where
            assert seen["inner"] == width, (where, seen["inner"])  # the viewport meta works
            assert seen["scroll"] <= width and seen["body"] <= width, (where, seen)
            assert seen["widest"] <= width + 0.5, (where, seen["widest"])
            assert seen["font"] >= 16, (where, seen["font"])
            for word in (*words, f"({zone})"):
                assert word in seen["text"], (where, word)
            assert f" {abbreviation}" in seen["text"] and " UTC" not in seen["text"], where
            assert TITLE not in seen["text"] and REPORTER not in seen["text"]
            cards = "none" if mobile else "table-header-group"
            assert seen["heads"] and set(seen["heads"]) == {cards}, (where, seen["heads"])

            shot = tmp_path / f"dashboard-{name}-{width}.png"
            shot_width, shot_height = page.screenshot(shot)
            assert (shot_width, shot_height) == _png_size(shot), where
            assert shot_width == width and shot_height >= min(height, 400), where
            print(f"\nscreenshot {where}: {shot}")
            if shots:
                shutil.copy(shot, Path(shots) / shot.name)
