"""Finding the external checkers the deploy tests run (systemd-analyze, promtool)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def require_tool(name: str, install_hint: str) -> str:
    """The path of `name`; missing, the test skips saying how to install it, except under
    CI=true, where it fails: CI must run the check."""
    path = shutil.which(name)
    if path is not None:
        return path
    reason = f"{name} not found; install it ({install_hint}) to run this check"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true requires {name}: {reason}")
    pytest.skip(reason)
