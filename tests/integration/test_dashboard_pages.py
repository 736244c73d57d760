"""The dashboard for people, over HTTP in process: Bahasa Indonesia by default and English
on request, times in the node's zone, unit names beside ids, the backlog page and its
CSV, lists paged with their totals, and refusals worded for a web user."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from node.config import DashboardConfig
from node.services import complaints, reports
from node.services.context import NodeContext
from node.web import DashboardServer
from tests.integration.test_dashboard import TOKEN, figures_in, get
from tests.integration.test_report_cli import REPORTER, TITLE, ReportTree, build_tree
from tests.support.built_once import copy_of

KUKAR = "Kabupaten Kutai Kartanegara"
KUTIM = "Kabupaten Kutai Timur"
DASH = "\u2013"  # between the first and last row shown: "1\u20135 of 23"


@pytest.fixture
def tree(request: pytest.FixtureRequest, db_kind: str, tmp_path: Path) -> ReportTree:
    """This test's copy of the tree build_tree makes (built once per process and kind)."""
    return copy_of(request, db_kind, tmp_path, build_tree)


@contextlib.contextmanager
def serving(tree: ReportTree, *, token: str | None = None, page_size: int = 200) -> Iterator[str]:
    """The province's dashboard in this process; yields its base URL."""
    p = tree.province.ctx()
    digest = None if token is None else hashlib.sha256(token.encode()).digest()
    config = dataclasses.replace(p.config, dashboard=DashboardConfig("127.0.0.1:0", digest))
    ctx = NodeContext(config, p.db, p.signing_key, tree.clock)
    server = DashboardServer(ctx, page_size=page_size)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


@pytest.fixture
def served(tree: ReportTree) -> Iterator[tuple[ReportTree, str]]:
    with serving(tree) as base:
        yield tree, base


def _id(headers: dict[str, str] | None = None) -> dict[str, str]:
    """Headers of a browser that states no language this dashboard speaks."""
    return {"Accept-Language": "fr-FR, fr;q=0.9", **(headers or {})}


def test_indonesian_by_default_english_by_the_browser_or_the_switch(
    served: tuple[ReportTree, str],
) -> None:
    """Without a language it knows, the page is in Bahasa Indonesia with Indonesian number
    formats; Accept-Language en gives English; ?lang= switches and is remembered."""
    _, base = served
    status, headers, page = get(f"{base}/?year=2020", {"Accept-Language": ""})
    assert status == 200 and '<html lang="id">' in page and headers["Content-Language"] == "id"
    for word in ("Diterima", "Ditindaklanjuti", "Persentase tindak lanjut", "Terlambat"):
        assert word in page
    assert "Received" not in page and "Overdue" not in page
    shown = figures_in(page)
    assert shown[("id-64-02", "follow_up_percent")] == "90,5%"
    assert shown[("id-64-02", "connected")] in {"terhubung", "tidak terhubung"}

    _, headers, page = get(f"{base}/?year=2020", {"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in page and "Received" in page and "Diterima" not in page
    assert figures_in(page)[("id-64-02", "follow_up_percent")] == "90.5%"
    assert get(f"{base}/?year=2020", {"Accept-Language": "id-ID,id;q=0.9,en;q=0.5"})[2].count(
        '<html lang="id">'
    )
    assert '<html lang="id">' in get(f"{base}/?year=2020", _id())[2]

    # The switch wins over the browser and is remembered in a cookie.
    status, headers, page = get(f"{base}/?year=2020&lang=en", _id())
    assert status == 200 and '<html lang="en">' in page
    cookie = headers["Set-Cookie"].split(";")[0]
    assert cookie == "lapor_lang=en"
    assert '<html lang="en">' in get(f"{base}/backlog", _id({"Cookie": cookie}))[2]
    page = get(f"{base}/?year=2020&lang=id", {"Accept-Language": "en", "Cookie": cookie})[2]
    assert '<html lang="id">' in page
    # The switch links keep the page's own parameters.
    assert 'href="/?year=2020&amp;lang=en"' in page


def test_times_carry_the_zone_and_units_their_names(served: tuple[ReportTree, str]) -> None:
    """Every time is in the node's zone with the zone named (never UTC); every unit id is
    shown with the unit's name, in the children table, the lists and the trail."""
    tree, base = served
    ctx = tree.province.ctx()
    zone = ZoneInfo(ctx.config.timezone)
    abbreviation = tree.clock.now().astimezone(zone).tzname()
    assert abbreviation and abbreviation != "UTC"
    document = reports.to_document(reports.report(ctx, 2020, by_child=True))
    page = get(f"{base}/?year=2020", _id())[2]
    generated = dt.datetime.fromisoformat(document["generated_at"]).astimezone(zone)
    assert figures_in(page)[("id-64", "generated_at")] == (
        f"{generated:%Y-%m-%d %H:%M} {abbreviation}"
    )
    assert f"zona waktu node ini ({ctx.config.timezone})" in page and " UTC" not in page
    seen = [v for (_, k), v in figures_in(page).items() if k == "last_seen"]
    assert all(v.startswith(", terakhir terlihat ") and v.endswith(abbreviation) for v in seen)
    assert f"id-64-02</span> {KUKAR}" in page and f"id-64-08</span> {KUTIM}" in page
    assert "Provinsi Kalimantan Timur" in page

    trail = get(f"{base}/complaint/{tree.kukar_ids[0]}", _id())[2]
    at = [v for (_, k), v in figures_in(trail).items() if k == "at"]
    assert at and all(v.endswith(f" {abbreviation}") for v in at)
    assert f"id-64-02</span> {KUKAR}" in trail and "terverifikasi" in trail
    assert TITLE not in trail and REPORTER not in trail


def test_backlog_page_shows_the_backlog_figures_with_filters_and_csv(
    served: tuple[ReportTree, str],
) -> None:
    """/backlog shows what `report backlog` and /api/backlog compute for a deadline; a
    child filter narrows the list, and the CSV holds the same rows."""
    tree, base = served
    query = "year=2020&deadline=2021-03-31"
    expected = reports.to_document(reports.backlog(tree.province.ctx(), 2020, dt.date(2021, 3, 31)))
    status, _, body = get(f"{base}/api/backlog?{query}")
    assert status == 200 and json.loads(body) == expected

    status, _, page = get(f"{base}/backlog?{query}", _id())
    assert status == 200 and "Tunggakan" in page
    shown = figures_in(page)
    assert shown[("id-64", "open")] == str(len(expected["items"]))
    assert shown[("id-64", "days_left")] == str(expected["days_left"])
    assert shown[("id-64", "working_days_left")] == str(expected["working_days_left"])
    assert expected["open_by_child"]
    for child, n in expected["open_by_child"].items():
        assert shown[(child, "open")] == str(n)
    assert f"id-64-08</span> {KUTIM}" in page
    for item in expected["items"]:
        assert item["tracking_id"] in page

    status, _, page = get(f"{base}/backlog?{query}&child=id-64-08", _id())
    listed = {i["tracking_id"] for i in expected["items"] if i["child"] == "id-64-08"}
    others = {i["tracking_id"] for i in expected["items"]} - listed
    assert status == 200 and listed and all(t in page for t in listed)
    assert not any(f">{t}<" in page for t in others)
    assert figures_in(page)[("", "backlog-count")].startswith(
        f"1{DASH}{len(listed)} dari {len(listed)}"
    )

    status, headers, body = get(f"{base}/backlog.csv?{query}&child=id-64-08", _id())
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert "attachment" in headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body)))
    assert {r["tracking_id"] for r in rows} == listed
    assert {r["child_name"] for r in rows} == {KUTIM}
    all_rows = list(csv.DictReader(io.StringIO(get(f"{base}/backlog.csv?{query}")[2])))
    assert [r["tracking_id"] for r in all_rows] == [i["tracking_id"] for i in expected["items"]]
    assert TITLE not in body and REPORTER not in body

    # Without a deadline the page asks for one; an unknown child is refused in words.
    status, _, page = get(f"{base}/backlog?year=2020", _id())
    assert status == 200 and 'name="deadline"' in page
    status, _, page = get(f"{base}/backlog?{query}&child=id-99", _id())
    assert status == 404 and "bukan anak node ini" in page


def test_lists_say_how_many_of_how_many_and_page_through_the_rest(tree: ReportTree) -> None:
    """With 5 rows a page, the overview's overdue list says "1-5 of N" for N overdue, links
    the rest, and the pages together list every overdue complaint once."""
    with serving(tree, page_size=5) as base:
        ctx = tree.province.ctx()
        document = reports.to_document(reports.report(ctx, 2020, by_child=True))
        total = document["figures"]["overdue"]
        every = [
            v.tracking_id
            for v in complaints.list_complaints(ctx, year=2020, overdue_only=True, limit=10_000)
        ]
        assert total == len(every) > 5
        page = get(f"{base}/?year=2020", {"Accept-Language": "en"})[2]
        assert figures_in(page)[("", "overdue-count")].startswith(f"1{DASH}5 of {total}")
        assert f"The other {total - 5} overdue complaints" in page
        seen: list[str] = []
        number = 1
        while True:
            status, _, page = get(f"{base}/overdue?year=2020&page={number}", _id())
            assert status == 200
            first = (number - 1) * 5 + 1
            count = figures_in(page)[("", "overdue-count")]
            assert count.startswith(f"{first}{DASH}{min(total, first + 4)} dari {total}")
            seen += [t for t in every if f">{t}<" in page]
            if 'rel="next"' not in page:
                break
            number += 1
        assert sorted(seen) == sorted(every) and number == -(-total // 5)
        status, _, page = get(f"{base}/overdue?year=2020&page={number + 1}", _id())
        assert status == 404 and f"daftar ini hanya {number} halaman" in page
        status, _, page = get(f"{base}/overdue?year=2020&page=0", _id())
        assert status == 400 and "mulai dari 1" in page


@pytest.mark.parametrize(
    ("path", "code", "indonesian", "english"),
    [
        ("/?year=2019", 400, "Kalender hari kerja untuk 2019", "no working-day calendar for 2019"),
        ("/?year=2021", 400, "Tahun 2021 belum dimulai", "2021 has not started yet"),
        ("/?year=abc", 400, "Tahun harus berupa angka", "year must be a number"),
        (
            "/backlog?year=2020&deadline=31-03-2021",
            400,
            "urutan tahun-bulan-hari",
            "year-month-day",
        ),
        ("/backlog?year=2020&deadline=2020-01-01", 400, "sudah lewat", "is in the past"),
        (
            "/complaint/id-64.2020.999999",
            404,
            "Tidak ada pengaduan id-64.2020.999999",
            "no complaint",
        ),
        ("/complaint?id=nonsense", 400, "bukan nomor pelacakan", "is not a tracking id"),
        ("/nowhere", 404, "Tidak ada halaman /nowhere", "no page /nowhere"),
    ],
)
def test_refusals_are_worded_for_a_web_user(
    served: tuple[ReportTree, str], path: str, code: int, indonesian: str, english: str
) -> None:
    """A refused page says, in the page's language, what to change on the page: never a
    command-line option, never a traceback."""
    _, base = served
    for headers, wanted in ((_id(), indonesian), ({"Accept-Language": "en"}, english)):
        status, _, page = get(base + path, headers)
        assert (status, wanted in page) == (code, True), (path, status, page)
        for cli in ("--year", "--deadline", "pass ", "Traceback"):
            assert cli not in page, (path, cli)
        assert 'data-figure="error"' in page


def test_the_token_is_still_required_and_the_refusal_is_translated(tree: ReportTree) -> None:
    """With a token configured, the 401 page is in the browser's language and shows no
    figure; the token in the query opens the page and sets the cookie."""
    with serving(tree, token=TOKEN) as base:
        status, _, page = get(f"{base}/?year=2020", _id())
        assert status == 401 and "memerlukan token" in page and "90,5" not in page
        assert TOKEN not in page
        status, headers, page = get(f"{base}/?year=2020&token={TOKEN}", _id())
        assert status == 200 and "HttpOnly" in headers["Set-Cookie"] and "90,5%" in page
        assert f"token={TOKEN}" not in page  # the switch links drop the token


def test_requests_are_logged_by_path_only(tree: ReportTree) -> None:
    """A request with ?token= is logged with its path, never its query or the token."""
    with serving(tree, token=TOKEN) as base, capture_logs() as logs:
        assert get(f"{base}/backlog?year=2020&token={TOKEN}", _id())[0] == 200
        assert get(f"{base}/nowhere?token={TOKEN}", _id())[0] == 404
    requests = [e for e in logs if e["event"] == "dashboard.request"]
    assert {e["path"] for e in requests} == {"/backlog", "/nowhere"}
    assert TOKEN not in repr(logs)
