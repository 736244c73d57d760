"""Text from outside is printed as text, never as terminal markup or escape sequences
(issue 21.8): titles, descriptions, reporters' names, notes, file names, units and
operators, names in node.yaml, and error messages that quote input go through every
command that prints them, in process, on both databases."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from node.cli import _common
from node.cli.main import cli
from tests.conftest import NodeFactory
from tests.support.nodes import TestNode

ESC = "\x1b"
# Each is shown exactly as written once control characters are dropped.
WORDS = "harga [dinaikkan] oleh"  # rich markup would drop "[dinaikkan]"
CLOSER = "loket [/] tutup"  # rich markup raises MarkupError on a stray closing tag
LINK = "[link=https://phish.example]klik[/link] di sini"  # a hyperlink in markup
SCREEN = f"{ESC}[2J{ESC}]8;;https://phish.example{ESC}\\layar\x07 bersih\r"  # raw sequences
SHOWN = {
    WORDS: WORDS,
    CLOSER: CLOSER,
    LINK: LINK,
    SCREEN: "[2J]8;;https://phish.example\\layar bersih",
}
NOW = "2026-05-04T09:00:00+07:00"
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """One line per table row, so that a cell is found whole."""
    monkeypatch.setattr(_common.console, "width", 400)
    monkeypatch.setattr(_common.err_console, "width", 400)


def run(node: TestNode, *args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(
        cli, [*args, "--config", str(node.config)], env={"LAPOR_NODE_FAKE_NOW": NOW}
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert (result.exit_code == 0) is ok, result.output
    return result


def assert_shown(output: str, *texts: str) -> None:
    """No control character reaches the terminal, and each text is shown as written."""
    assert not _CONTROL.search(output.replace("\n", "")), repr(output)
    for text in texts:
        assert SHOWN[text] in output, (SHOWN[text], output)


def test_content_names_and_notes_print_as_text(nodes: NodeFactory, tmp_path: Path) -> None:
    """complaint submit/show/list/update/route, intake attachments, admin handover/show:
    every outside string printed as written, and no escape sequence printed."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    node.close()
    evidence = tmp_path / f"bukti {WORDS}.txt"  # printable, no "/": names are checked
    evidence.write_text("foto")
    submitted = run(
        node,
        "complaint", "submit", "--title", WORDS, "--description", f"{LINK}\n{SCREEN}",
        "--category", "kebersihan", "--region", "64.02", "--reporter-name", CLOSER,
        "--reporter-contact", SCREEN, "--confidential", "--attach", str(evidence), "--json",
    )  # fmt: skip
    tid = json.loads(submitted.output)["tracking_id"]
    run(node, "complaint", "verify", tid, "--note", LINK)
    run(node, "complaint", "update", tid, "--note", SCREEN)

    shown = run(node, "complaint", "show", tid, "--content", "--identity").output
    assert f"title: {WORDS}" in shown
    assert_shown(shown, WORDS, CLOSER, LINK, SCREEN)
    assert ESC not in run(node, "complaint", "show", tid, "--content", "--json").output

    assert_shown(run(node, "complaint", "list").output)
    assert_shown(run(node, "complaint", "route", tid).output)
    files = run(node, "intake", "attachments", tid).output
    assert_shown(files, WORDS)
    assert f"bukti {WORDS}.txt" in files

    handed = run(node, "admin", "handover", "--unit", WORDS, "--operator", CLOSER).output
    assert_shown(handed, WORDS, CLOSER)
    assert_shown(run(node, "admin", "show").output, WORDS, CLOSER)


@pytest.mark.parametrize("text", [CLOSER, SCREEN, LINK], ids=["closer", "screen", "link"])
def test_error_messages_quoting_input_print_as_text(nodes: NodeFactory, text: str) -> None:
    """An id that is markup or escape sequences gets the usual message (exit 1), never a
    traceback, and its text is not interpreted."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    node.close()
    for args in (["complaint", "show", text], ["complaint", "update", text, "--note", "x"]):
        result = run(node, *args, ok=False)
        assert result.exit_code == 1
        assert "invalid tracking id" in result.output
        assert ESC not in result.output and "\x07" not in result.output
        if text != SCREEN:  # repr() already spells out the control characters
            assert text in result.output


def test_names_in_node_yaml_print_as_text(nodes: NodeFactory) -> None:
    """An expected child's name in node.yaml is shown as written by `report`."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    node.close()
    name = json.dumps(f"Kabupaten {WORDS} {CLOSER}")
    text = node.config.read_text().replace(
        "expected_children: []", f"expected_children:\n  - {{id: id-64-11, name: {name}}}\n"
    )
    node.config.write_text(text)
    run(node, "complaint", "submit", "--title", "t", "--description", "d", "--category",
        "kebersihan", "--region", "64.02")  # fmt: skip
    out = run(node, "report", "--year", "2026", "--by", "child").output
    assert_shown(out, WORDS, CLOSER)

    gateway = f"    - name: {json.dumps(CLOSER)}\n      channels: [web]\n"
    node.config.write_text(text + f"intake:\n  gateways:\n{gateway}")
    refused = run(node, "intake", "gateway", "list", ok=False).output
    assert "must be a lowercase slug" in refused and CLOSER in refused  # quoted, not markup
