"""`lapor-node complaint verify|hold|archive|update|resolve|return|escalate|reply|tick|
show|list` in process (click's runner) on one node: --json output, filters, and errors that
name the status and tell the operator what happened."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

from node.cli.main import cli
from node.clock import FAKE_NOW_ENV
from tests.conftest import NodeFactory
from tests.support.nodes import TestNode

SUBMIT = [
    "complaint",
    "submit",
    "--title",
    "Sampah menumpuk",
    "--description",
    "Tidak diangkut dua minggu",
    "--category",
    "kebersihan",
    "--region",
    "64.02",
    "--reporter-name",
    "Rina",
    "--json",
]
NOW = "2026-05-04T09:00:00+07:00"


@pytest.fixture(params=["sqlite"])
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run(node: TestNode, *args: str, when: str = NOW, ok: bool = True) -> Result:
    result = CliRunner().invoke(
        cli, [*args, "--config", str(node.config)], env={FAKE_NOW_ENV: when}
    )
    assert (result.exit_code == 0) is ok, result.output
    return result


def test_the_verbs_with_json_and_filters(nodes: NodeFactory) -> None:
    """A complaint handled by the node itself, step by step, as an operator types it."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    tid = json.loads(run(node, *SUBMIT).output)["tracking_id"]
    held = json.loads(run(node, "complaint", "hold", tid, "--note", "alamat?", "--json").output)
    assert held["tracking_id"] == tid and held["action"] == "held"
    run(node, "complaint", "reply", tid, "--text", "Jl. Merdeka 5")
    run(node, "complaint", "verify", tid)
    run(node, "complaint", "update", tid, "--note", "Truk dikirim")
    run(node, "complaint", "resolve", tid, "--note", "Sudah diangkut")

    listed = json.loads(run(node, "complaint", "list", "--status", "resolved", "--json").output)
    assert [c["tracking_id"] for c in listed] == [tid]
    assert json.loads(run(node, "complaint", "list", "--year", "2025", "--json").output) == []
    shown = json.loads(run(node, "complaint", "show", tid, "--content", "--json").output)
    assert shown["status"] == "resolved"
    assert [n["kind"] for n in shown["notes"]] == ["hold", "reply", "follow_up", "resolve"]

    done = json.loads(
        run(node, "complaint", "tick", "--json", when="2026-06-30T09:00:00+07:00").output
    )
    assert done["closed"] == [tid]
    text = run(node, "complaint", "show", tid).output
    assert "closed" in text and "held by id-64" in text


def test_errors_name_the_status_and_what_to_do(nodes: NodeFactory) -> None:
    """Wrong status, no parent, no missed deadline, bad reason code: exit 1, one clear line."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    tid = json.loads(run(node, *SUBMIT).output)["tracking_id"]
    out = run(node, "complaint", "resolve", tid, "--note", "x", ok=False).output
    assert "cannot resolve a complaint that is submitted" in out
    run(node, "complaint", "verify", tid)
    out = run(node, "complaint", "escalate", tid, "--reason", "lama", ok=False).output
    assert "has missed no deadline" in out
    run(node, "complaint", "update", tid, "--note", "ditinjau")
    out = run(node, "complaint", "return", tid, "--reason", "bukan", ok=False).output
    assert "no parent" in out
    out = run(node, "complaint", "archive", tid, "--reason", "bosan", ok=False).output
    assert "Invalid value for '--reason'" in out
    out = run(node, "complaint", "list", "--status", "selesai", ok=False).output
    assert "Invalid value for '--status'" in out


def test_refer_a_backlog_in_one_command(nodes: NodeFactory) -> None:
    """`complaint refer ID... --ids-from FILE --to CHILD`: all at once, in order, with one
    message each; one that may not be referred refers none and says which."""
    from tests.support.nodes import link

    province = nodes("id-64", "Provinsi Kalimantan Timur")
    link(province, nodes("id-64-02", "Kabupaten Kutai Kartanegara"))
    tids = [json.loads(run(province, *SUBMIT).output)["tracking_id"] for _ in range(5)]
    listing = province.directory / "backlog.txt"
    listing.write_text("\n".join(tids[2:]) + "\n\n")
    out = json.loads(
        run(
            province,
            "complaint",
            "refer",
            *tids[:2],
            "--ids-from",
            str(listing),
            "--to",
            "id-64-02",
            "--json",
        ).output
    )
    assert out["to"] == "id-64-02"
    assert [r["tracking_id"] for r in out["referred"]] == tids
    assert len({r["message_id"] for r in out["referred"]}) == 5
    one = json.loads(run(province, *SUBMIT).output)["tracking_id"]
    other = json.loads(run(province, *SUBMIT).output)["tracking_id"]
    refused = run(province, "complaint", "refer", other, tids[0], "--to", "id-64-02", ok=False)
    assert f"cannot refer {tids[0]}: it is referred" in refused.output
    assert "Traceback" not in refused.output
    shown = json.loads(run(province, "complaint", "show", other, "--json").output)
    assert shown["status"] == "submitted"  # the refusal referred none of the two
    single = json.loads(
        run(province, "complaint", "refer", one, "--to", "id-64-02", "--json").output
    )
    assert (
        single["tracking_id"] == one and single["referred"][0]["message_id"] == single["message_id"]
    )
    empty = run(province, "complaint", "refer", "--to", "id-64-02", ok=False)
    assert "at least one TRACKING_ID" in empty.output
