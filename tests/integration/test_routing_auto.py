"""Automatic disposition over real links: with `routing.auto`, a province that accepts a
complaint from the national node disposes it by its rules at once, and the national node
learns who holds it, with no operator in between."""

from __future__ import annotations

import json

from tests.conftest import NodeFactory
from tests.support.nodes import link, status_of, stop_together, wait_until
from tests.support.waits import recovery_bound

AUTO = """
routing:
  auto: true
  rules:
    - {region: "64.02", to: id-64-02}
"""

SUBMIT = (
    "complaint",
    "submit",
    "--title",
    "Jembatan Kutai Kartanegara retak",
    "--description",
    "Retakan di pilar jembatan, warga khawatir.",
    "--category",
    "infrastruktur",
    "--region",
    "64.02.05",
    "--json",
)


def test_the_province_disposes_by_its_rules_as_soon_as_it_accepts(nodes: NodeFactory) -> None:
    national = nodes("id", "Nasional")
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    province.config.write_text(province.config.read_text() + AUTO)
    link(national, province)
    link(province, regency)
    for node in (national, province, regency):
        node.start()
    try:
        tracking = json.loads(national.cli(*SUBMIT).stdout)["tracking_id"]
        national.cli("complaint", "refer", tracking, "--to", "id-64")
        wait_until(
            lambda: status_of(national, tracking) == ("accepted", "id-64-02"),
            timeout=2 * recovery_bound(),  # two links come up and carry it, each way
            what="the regency's acceptance, known at the national node",
        )
        assert status_of(province, tracking) == ("accepted", "id-64-02")
        assert status_of(regency, tracking) == ("accepted", "id-64-02")
    finally:
        stop_together(national, province, regency)
