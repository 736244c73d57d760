"""The read-only dashboard: over HTTP in process (figures, token, refusals) and, end to
end, a real `lapor-node serve` with real data loaded in Debian's headless Chromium, whose
page must show the figures `lapor-node report --json` prints. The Chromium test skips
when chromium is missing (scripts/ensure_chromium.sh installs it), except under CI=true."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from node.config import DashboardConfig
from node.services import reports
from node.services.context import NodeContext
from node.web import DashboardServer
from tests.integration.test_report_cli import (
    CONTACT,
    FAKE_NOW,
    REPORTER,
    TITLE,
    NodeFactory,
    ReportTree,
    build_tree,
    run_cli,
)
from tests.support.browser import chromium_or_skip
from tests.support.built_once import copy_of
from tests.support.nodes import free_ports, wait_until
from tests.support.waits import COMMAND_BOUND, recovery_bound

TOKEN = "s3cret-dashboard-token-for-tests"


class _Figures(HTMLParser):
    """(data-scope, data-figure) -> the element's text, for every tagged element."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[tuple[str, str], str] = {}
        self._open: list[tuple[str, tuple[str, str] | None]] = []
        self._text: dict[tuple[str, str], list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        key = None
        if a.get("data-figure"):
            key = (a.get("data-scope") or "", a["data-figure"] or "")
            self._text[key] = []
        self._open.append((tag, key))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            open_tag, key = self._open.pop()
            if key is not None:
                self.found[key] = "".join(self._text.pop(key)).strip()
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, key in self._open:
            if key is not None:
                self._text[key].append(data)


def figures_in(html: str) -> dict[tuple[str, str], str]:
    parser = _Figures()
    parser.feed(html)
    return parser.found


def expected_figures(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    """What the page must show for a report document (node.web.pages, invariant 2)."""
    expected: dict[tuple[str, str], str] = {("", "year"): str(document["year"])}
    scopes = [(document["node_id"], document["figures"], None)]
    scopes += [(c["node_id"], c["figures"], c) for c in document["children"]]
    for scope, f, c in scopes:
        for name in ("received", "followed_up", "resolved", "not_followed_up", "overdue"):
            expected[(scope, name)] = str(f[name])
        expected[(scope, "follow_up_percent")] = f"{f['follow_up_share']['percent']:.1f}%"
        expected[(scope, "resolved_percent")] = f"{f['resolved_share']['percent']:.1f}%"
        if c is not None:
            # The state alone: "last seen" follows it apart, in the node's time zone.
            state = c["state"].partition(", last seen ")[0]
            expected[(scope, "connected")] = "connected" if c["connected"] else state
    for month, n in enumerate(document["figures"]["by_month"], start=1):
        expected[(document["node_id"], f"month-{month}")] = str(n)
    return expected


def check_page_shows(html: str, document: dict[str, Any]) -> None:
    shown = figures_in(html)
    expected = expected_figures(document)
    wrong = {k: (shown.get(k), v) for k, v in expected.items() if shown.get(k) != v}
    assert not wrong, f"page shows (found, expected): {wrong}"
    for private in (TITLE, REPORTER, CONTACT):
        assert private not in html


def get(
    url: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], str]:
    # English unless the caller asks otherwise: these tests check the English wording
    # (tests/integration/test_dashboard_pages.py checks the Indonesian default).
    headers = {"Accept-Language": "en", **(headers or {})}
    request = urllib.request.Request(url, headers=headers, method=method)  # noqa: S310 - our loopback URL
    try:
        with urllib.request.urlopen(request, timeout=COMMAND_BOUND) as response:  # noqa: S310 - same
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


@pytest.fixture
def tree(request: pytest.FixtureRequest, db_kind: str, tmp_path: Path) -> ReportTree:
    """This test's copy of the tree build_tree makes (built once per process and kind)."""
    return copy_of(request, db_kind, tmp_path, build_tree)


def _serve(tree: ReportTree, token: str | None = None) -> DashboardServer:
    p = tree.province.ctx()
    digest = None if token is None else hashlib.sha256(token.encode()).digest()
    config = dataclasses.replace(p.config, dashboard=DashboardConfig("127.0.0.1:0", digest))
    server = DashboardServer(NodeContext(config, p.db, p.signing_key, tree.clock))
    server.start()
    return server


def test_dashboard_serves_the_report_figures(tree: ReportTree) -> None:
    """The page and /api/report show what the report service computes; the trail page
    shows verified proofs; bad input is a page with the message, never a traceback."""
    server = _serve(tree)
    base = f"http://127.0.0.1:{server.port}"
    try:
        document = reports.to_document(reports.report(tree.province.ctx(), 2020, by_child=True))
        status, headers, body = get(f"{base}/api/report?year=2020")
        assert status == 200 and json.loads(body) == document
        status, headers, page = get(f"{base}/?year=2020")
        assert status == 200 and "default-src 'none'" in headers["Content-Security-Policy"]
        check_page_shows(page, document)
        assert tree.kukar_ids[19] in page  # overdue list links the complaint's trail

        status, _, trail = get(f"{base}/complaint/{tree.confidential_id}")
        assert status == 200 and "confidential" in trail
        proofs = [v for (_, k), v in figures_in(trail).items() if k == "proof"]
        assert proofs == ["verified"] or set(proofs) == {"verified"}
        assert "verified" in trail and TITLE not in trail and REPORTER not in trail

        for path, code, message in [
            ("/?year=2019", 400, "no working-day calendar for 2019"),
            ("/?year=abc", 400, "year must be a number"),
            ("/complaint/id-64.2020.999999", 404, "no complaint id-64.2020.999999"),
            ("/api/backlog?year=2020&deadline=2020-01-01", 400, "is in the past"),
            ("/nowhere", 404, "no page /nowhere"),
        ]:
            status, _, body = get(base + path)
            assert (status, message in body) == (code, True), (path, status, body)
            assert "Traceback" not in body
        status, _, body = get(f"{base}/api/report?year=2020", method="POST")
        assert status == 405 and "read-only" in body
    finally:
        server.stop()


def test_dashboard_token(tree: ReportTree) -> None:
    """With a token configured, nothing is shown without it; the bearer header, the query
    (which sets an HttpOnly cookie) and that cookie are accepted."""
    server = _serve(tree, TOKEN)
    base = f"http://127.0.0.1:{server.port}"
    try:
        status, _, body = get(f"{base}/?year=2020")
        assert status == 401 and "needs its token" in body and "90.5" not in body
        assert get(f"{base}/api/report?year=2020", {"Authorization": "Bearer wrong"})[0] == 401
        status, _, _ = get(f"{base}/api/report?year=2020", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200
        status, headers, _ = get(f"{base}/?year=2020&token={TOKEN}")
        assert status == 200 and "HttpOnly" in headers["Set-Cookie"]
        cookie = headers["Set-Cookie"].split(";")[0]
        assert get(f"{base}/?year=2020", {"Cookie": cookie})[0] == 200
    finally:
        server.stop()


# --- end to end in Chromium -------------------------------------------------------------


def _chromium_run(chromium: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [
        chromium,
        "--headless",
        "--no-sandbox",  # tests may run as root, where Chromium's sandbox refuses to start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={tmp / 'chromium-profile'}",
        *args,
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_BOUND)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.mark.parametrize("db_kind", ["sqlite"])
def test_dashboard_in_chromium(
    nodes: NodeFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve` with real data and a connected child; Chromium loads the dashboard and shows
    the figures `report --json` prints; the metrics agree; a screenshot is saved under the
    test's tmp dir (its path is printed)."""
    chromium = chromium_or_skip()
    tree = build_tree(nodes)  # its own: these nodes serve, on ports chosen now
    port, metrics_port = free_ports(2)
    province, kukar = tree.province, tree.kukar
    text = province.config.read_text().replace(
        'metrics:\n  listen: ""', f'metrics:\n  listen: "127.0.0.1:{metrics_port}"'
    )
    province.config.write_text(text + f'\ndashboard:\n  listen: "127.0.0.1:{port}"\n')
    for node in (province, kukar, tree.kutim):
        node.close()
    monkeypatch.setenv("LAPOR_NODE_FAKE_NOW", FAKE_NOW)
    province.start()
    kukar.start()
    try:
        ctx = province.ctx()

        def kukar_connected() -> bool:
            r = reports.report(ctx, 2020, by_child=True)
            return next(c for c in r.children if c.node_id == "id-64-02").connected

        wait_until(kukar_connected, timeout=recovery_bound(), what="id-64-02 to connect to id-64")
        result = run_cli(province, "report", "--year", "2020", "--by", "child", "--json")
        assert result.returncode == 0, result.stderr
        document = json.loads(result.stdout)
        url = f"http://127.0.0.1:{port}/?year=2020"
        dom = _chromium_run(chromium, tmp_path, "--dump-dom", url).stdout
        check_page_shows(dom, document)
        assert figures_in(dom)[("id-64-02", "connected")] == "connected"
        assert figures_in(dom)[("id-64-02", "follow_up_percent")] == "90.5%"

        trail = _chromium_run(
            chromium,
            tmp_path,
            "--dump-dom",
            f"http://127.0.0.1:{port}/complaint/{tree.kukar_ids[0]}",
        ).stdout
        assert "verified" in trail and "id-64 → id-64-02" in trail.replace("&rarr;", "→")

        # The running node's workflow gauges agree with the figures.
        def scrape() -> str:
            text = get(f"http://127.0.0.1:{metrics_port}/metrics")[2]
            return text if "lapor_node_complaints{" in text else ""

        scraped = wait_until(scrape, what="the first workflow gauges")
        assert 'lapor_node_complaints{status="in_progress"} 1.0' in scraped
        overdue = document["figures"]["overdue"]
        assert f"lapor_node_complaints_overdue {float(overdue)}" in scraped

        shot = tmp_path / "dashboard.png"
        _chromium_run(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1400,1700", url)
        assert shot.stat().st_size > 10_000
        print(f"\ndashboard screenshot: {shot}")
    finally:
        kukar.stop()
        province.stop()
