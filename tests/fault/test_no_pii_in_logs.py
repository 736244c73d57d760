"""No reporter's name, phone number or NIK in any log (issue 17, item 5): real nodes log to
files; a complaint with planted, distinctive reporter data is submitted and referred; the
regency's insert of its content fails (a trigger planted in its database), and a stranger
fails the TLS handshake at the province. Every line of every process's log and stderr is
scanned for the planted strings, and every line `serve` wrote is a JSON event (gRPC core
lines included, node.logs)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from node.services import links
from tests.conftest import NodeFactory
from tests.support.nodes import TestNode, link, stop_together
from tests.support.peers import exchange_as, hello
from tests.support.waits import RECOVERY_BOUND, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

NAME = "Zulkarnaen Pramudyawardhani"
PHONE = "081299887766"
NIK = "6402019988776655"
PLANTED = (NAME, PHONE, NIK)

SQLITE_TRIGGER = (
    "CREATE TRIGGER planted_failure BEFORE INSERT ON complaint_contents "
    "BEGIN SELECT RAISE(ABORT, 'planted failure'); END"
)
POSTGRES_TRIGGER = (
    "CREATE FUNCTION planted_failure() RETURNS trigger AS $$ BEGIN "
    "RAISE EXCEPTION 'planted failure' USING ERRCODE = 'unique_violation'; END $$ "
    "LANGUAGE plpgsql",
    "CREATE TRIGGER planted_failure BEFORE INSERT ON complaint_contents "
    "FOR EACH ROW EXECUTE FUNCTION planted_failure()",
)


class Outputs:
    """Every stdout and stderr of the commands the test runs, kept for the scan."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def cli(self, node: TestNode, *args: str) -> str:
        done = node.cli(*args)
        self.texts += [(f"{node.node_id} {args[:2]} stdout", done.stdout)]
        self.texts += [(f"{node.node_id} {args[:2]} stderr", done.stderr)]
        return done.stdout


@pytest.fixture
def pair(nodes: NodeFactory) -> Iterator[tuple[TestNode, TestNode, TestNode]]:
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    stranger = nodes("id-64-08", "Kabupaten Kutai Timur")  # linked to nobody
    link(province, regency)
    yield province, regency, stranger
    stop_together(regency, province)


def _plant_failing_insert(node: TestNode) -> None:
    """Every insert of complaint content (the row that holds the reporter) fails."""
    ctx = node.ctx()
    with ctx.db.write() as session:
        for statement in (SQLITE_TRIGGER,) if ctx.db.is_sqlite else POSTGRES_TRIGGER:
            session.execute(text(statement))


def _events(node: TestNode, event: str) -> list[dict[str, object]]:
    found = []
    for line in node.log_path.read_text().splitlines():
        data = json.loads(line)
        if data.get("event") == event:
            found.append(data)
    return found


def _log_files(node: TestNode) -> list[Path]:
    return [p for p in node.directory.rglob("*") if p.is_file() and ".log" in p.name]


def test_no_planted_reporter_data_in_any_log(pair: tuple[TestNode, TestNode, TestNode]) -> None:
    """A failed insert of the content and a failed handshake log no reporter data, and the
    gRPC core's lines come out as JSON events."""
    province, regency, stranger = pair
    outputs = Outputs()
    _plant_failing_insert(regency)
    regency.close()
    province.start()
    regency.start()
    submitted = outputs.cli(
        province,
        "complaint",
        "submit",
        "--title",
        "Jalan poros rusak",
        "--description",
        "Lubang besar di jalan poros Tenggarong",
        "--category",
        "infrastruktur",
        "--region",
        "64.02",
        "--reporter-name",
        NAME,
        "--reporter-contact",
        PHONE,
        "--reporter-id-number",
        NIK,
        "--json",
    )
    tracking_id = json.loads(submitted)["tracking_id"]
    outputs.cli(province, "complaint", "verify", tracking_id)
    outputs.cli(province, "complaint", "refer", tracking_id, "--to", regency.node_id)

    # The regency's commit of the referral fails in the planted insert, again at each retry.
    def insert_failed() -> bool:
        return any(
            e.get("error_kind") == "IntegrityError" for e in _events(regency, "link.task_failed")
        )

    wait_until(insert_failed, timeout=RECOVERY_BOUND, what="the planted insert to fail")

    # The link records why it ended once the session has closed, and clears it when the
    # next dial connects, so the reason is there between the retries, not at every instant.
    def recorded() -> bool:
        (view,) = links.list_links(regency.ctx())
        return "IntegrityError" in (view.last_error or "")

    wait_until(recorded, timeout=RECOVERY_BOUND, what="the link to record the failed insert")

    # A stranger's certificate fails the handshake; the core's line is a JSON event.
    refused = exchange_as(stranger, province, [hello()])
    assert refused.code is not None
    handshake = wait_until(
        lambda: _events(province, "grpc.handshake_failed"),
        timeout=RECOVERY_BOUND,
        what="the handshake failure in the province's log",
    )[0]
    assert handshake["source"] == "grpc-core" and handshake["node_id"] == province.node_id
    outputs.cli(province, "link", "list")
    outputs.cli(regency, "link", "list")
    stop_together(regency, province)

    core_line = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d")
    scanned = 0
    for node in (province, regency, stranger):
        for path in _log_files(node):
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                scanned += 1
                where = f"{path}:{number}"
                assert not core_line.match(line), f"a raw gRPC core line in {where}"
                if path == node.log_path:
                    json.loads(line)  # every line `serve` wrote is an event
                for planted in PLANTED:
                    assert planted.lower() not in line.lower(), f"{planted!r} in {where}"
    for what, output in outputs.texts:
        for planted in PLANTED:
            assert planted not in output, f"{planted!r} in {what}"
    assert scanned > 20
