"""deploy/lapor-node.service: valid for systemd, and hardened as docs/deployment.md says."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.deploy._tools import DEPLOY, require_tool

UNIT = DEPLOY / "lapor-node.service"
EXEC = "/opt/lapor-node/bin/lapor-node"


def _directives(text: str) -> dict[str, dict[str, list[str]]]:
    """{section: {key: [values in order]}} of a unit file (comments and blanks dropped)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def _verify(unit_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify` on `unit_text`, with ExecStart pointed at an executable in
    tmp_path (verify checks that the command exists; the wheel is not installed here)."""
    analyze = require_tool("systemd-analyze", "apt-get install systemd")
    program = tmp_path / "lapor-node"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    assert EXEC in unit_text
    unit = tmp_path / "lapor-node.service"
    unit.write_text(unit_text.replace(EXEC, str(program)))
    # Warnings go to stderr whatever the environment (not to a journal).
    env = {**os.environ, "SYSTEMD_LOG_TARGET": "console"}
    return subprocess.run(
        [analyze, "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd-analyze verify accepts the unit with no error and no warning."""
    result = _verify(UNIT.read_text(), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(("\nUMask=0077\n", "\nUMsk=0077\n"), "Unknown key", id="misspelt-key"),
        pytest.param(
            ("\nStartLimitIntervalSec=300\n", "\n[Service]\nStartLimitIntervalSec=300\n"),
            "Unknown key",
            id="wrong-section",
        ),
    ],
)
def test_verify_catches_a_broken_unit(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    """The check above can fail: a misspelt or misplaced directive is reported."""
    text = UNIT.read_text()
    assert change[0] in text
    result = _verify(text.replace(change[0], change[1], 1), tmp_path)
    assert expected in result.stderr


def test_unit_runs_serve_hardened() -> None:
    """The unit runs `serve` as a dedicated user, in a 0700 state directory, hardened."""
    service = _directives(UNIT.read_text())["Service"]
    assert service["ExecStart"] == [f"{EXEC} serve --config /var/lib/lapor-node/node.yaml"]
    expected = {
        "User": "lapor-node",
        "Group": "lapor-node",
        "StateDirectory": "lapor-node",
        "StateDirectoryMode": "0700",
        "UMask": "0077",
        "ProtectSystem": "strict",
        "ReadWritePaths": "/var/lib/lapor-node",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "Restart": "on-failure",
        "LimitNOFILE": "65536",
        "KillSignal": "SIGTERM",
        "CapabilityBoundingSet": "",
    }
    assert {key: service.get(key, [None])[-1] for key in expected} == expected


def test_unit_is_wanted_at_boot_after_the_network() -> None:
    """The unit starts at boot once the network is up, and gives up after repeated refusals."""
    sections = _directives(UNIT.read_text())
    assert sections["Install"]["WantedBy"] == ["multi-user.target"]
    assert "network-online.target" in sections["Unit"]["After"][0]
    assert sections["Unit"]["StartLimitBurst"] == ["5"]
