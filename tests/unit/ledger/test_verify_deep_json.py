"""Export lines the export fuzzer (fuzz/exports.py) found crashing the verifier and `audit
verify`: JSON nested deeper than Python's recursion limit is a `format` finding naming the
line, in the library and in the command's JSON, never a RecursionError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli.main import cli
from node.ledger.findings import AuditFailure
from node.ledger.verify import verify_export
from tests.unit.ledger.test_verify_paths import HONEST

DEEP = "[" * 100_000 + "]" * 100_000 + "\n"


@pytest.mark.parametrize("line_no", [1, 3], ids=["header", "body"])
def test_deeply_nested_json_is_a_format_finding(line_no: int) -> None:
    """The line that nests too deep is named, whether it stands for the header or an entry."""
    lines = [*HONEST]
    lines[line_no - 1] = DEEP
    with pytest.raises(AuditFailure) as caught:
        verify_export(line.encode() for line in lines)
    assert caught.value.finding.kind == "format"
    assert f"line {line_no} is not JSON" in caught.value.finding.detail


def test_audit_verify_prints_the_finding_as_json(tmp_path: Path) -> None:
    """`audit verify FILE --json` on such a file exits 1 with one JSON finding."""
    export = tmp_path / "export.jsonl"
    export.write_text(DEEP + "".join(HONEST[1:]))
    result = CliRunner().invoke(cli, ["audit", "verify", str(export), "--json"])
    assert result.exit_code == 1, result.output
    found = json.loads(result.stdout)
    assert found["ok"] is False and found["kind"] == "format", found
