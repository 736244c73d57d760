"""The operator's surface as a newcomer meets it: the example node.yaml, the demo, errors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.nodes import free_port, wait_until
from tests.support.waits import COMMAND_BOUND, RECOVERY_BOUND

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
# The demo is one command that starts a tree of nodes and sends complaints down two levels
# and their figures back up: each level's link comes up and carries them.
DEMO_BOUND = COMMAND_BOUND + 2 * RECOVERY_BOUND


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=COMMAND_BOUND,
        cwd=cwd,
    )


def test_example_node_yaml_works_as_it_is(tmp_path: Path) -> None:
    """The shipped node.yaml initialises and serves unchanged (only its port is moved)."""
    config = tmp_path / "node.yaml"
    port = free_port()
    config.write_text(
        (ROOT / "node.yaml").read_text().replace("127.0.0.1:7464", f"127.0.0.1:{port}")
    )
    assert _cli("init", "--config", str(config)).returncode == 0
    assert (tmp_path / "keys" / "signing.pem").stat().st_mode & 0o777 == 0o600
    proc = subprocess.Popen(
        [sys.executable, "-m", "node.cli.main", "serve", "--config", str(config)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        import socket

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening, what="the example node to listen")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=COMMAND_BOUND)
    assert proc.returncode == 0, err
    assert '"event": "node.started"' in err


def test_demo_refers_complaints_down_two_levels_and_ends_with_the_report(tmp_path: Path) -> None:
    """`lapor-node demo` runs four nodes, shows every referral receipted, and stops cleanly;
    the last things it prints are the province's per-child figures (both regencies, 3
    complaints received there) and the dashboard's loopback address from its node.yaml.
    (One run of the demo for both: each run starts four `serve` processes.)"""
    result = subprocess.run(
        [sys.executable, "-m", "node.cli.main", "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=DEMO_BOUND,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.count("signed receipt back") == 5
    assert out.count("exit 0") == 4
    assert "all referrals received and receipted" in out

    tail = out[out.index("lapor-node report --year") :]
    assert "id-64 Provinsi Kalimantan Timur: complaints submitted in" in tail
    assert re.search(r"│ id-64\s+│.*│\s+3 │", tail), tail
    assert "id-64-02" in tail and "id-64-08" in tail
    found = re.search(r"dashboard: http://127\.0\.0\.1:(\d+)/", tail)
    assert found is not None, tail
    config = (tmp_path / "demo" / "id-64" / "node.yaml").read_text()
    assert f'listen: "127.0.0.1:{found.group(1)}"' in config


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["complaint", "list", "--config", "/nonexistent/node.yaml"],
            "no config at /nonexistent/node.yaml",
            id="missing-config",
        ),
        pytest.param(
            ["init", "--dir", "{tmp}/n", "--id", "ID-64", "--name", "X"],
            "invalid node id",
            id="bad-node-id",
        ),
        pytest.param(
            ["complaint", "show", "not-a-tracking-id", "--config", "{node}"],
            "invalid tracking id",
            id="bad-tracking-id",
        ),
        pytest.param(
            ["complaint", "refer", "id-64.2026.000001", "--to", "id-64-02", "--config", "{node}"],
            "id-64-02 is not a linked child",
            id="unlinked-child",
        ),
        pytest.param(
            [
                "complaint",
                "submit",
                "--title",
                " ",
                "--description",
                "d",
                "--category",
                "jalan",
                "--region",
                "64",
                "--config",
                "{node}",
            ],
            "title must be",
            id="blank-title",
        ),
    ],
)
def test_operator_errors_say_what_to_do(tmp_path: Path, args: list[str], message: str) -> None:
    """Bad operator input prints one clear error line (no traceback) and exits 1. In this
    process (tests/support/cli.py: an exception the command lets escape is a traceback on
    stderr and status 1, as the interpreter would end; `main()` adds nothing to the group)."""
    node_dir = tmp_path / "node"
    init = ["init", "--dir", str(node_dir), "--id", "id-64", "--name", "P"]
    assert run_cli(init).returncode == 0
    argv = [
        a.replace("{tmp}", str(tmp_path)).replace("{node}", str(node_dir / "node.yaml"))
        for a in args
    ]
    result = run_cli(argv)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    shutil.rmtree(tmp_path / "n", ignore_errors=True)
