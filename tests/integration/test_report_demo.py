"""`lapor-node demo` ends with the province's report and its dashboard's address."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.waits import COMMAND_BOUND, RECOVERY_BOUND

# The demo is one command that starts a tree of nodes and sends complaints down two levels
# and their figures back up: each level's link comes up and carries them.
DEMO_BOUND = COMMAND_BOUND + 2 * RECOVERY_BOUND


def test_demo_ends_with_the_province_report(tmp_path: Path) -> None:
    """The last things the demo prints: the province's per-child figures (both regencies,
    3 complaints received there) and the dashboard's loopback address from its node.yaml."""
    argv = [sys.executable, "-m", "node.cli.main", "demo", "--dir", str(tmp_path / "demo")]
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=DEMO_BOUND,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tail = result.stdout[result.stdout.index("lapor-node report --year") :]
    assert "id-64 Provinsi Kalimantan Timur: complaints submitted in" in tail
    assert re.search(r"│ id-64\s+│.*│\s+3 │", tail), tail
    assert "id-64-02" in tail and "id-64-08" in tail
    found = re.search(r"dashboard: http://127\.0\.0\.1:(\d+)/", tail)
    assert found is not None, tail
    config = (tmp_path / "demo" / "id-64" / "node.yaml").read_text()
    assert f'listen: "127.0.0.1:{found.group(1)}"' in config
