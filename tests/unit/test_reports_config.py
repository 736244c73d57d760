"""node.yaml's `dashboard:` section: off by default, loopback without a token, any other
address only with one; every refusal names the key and what to do."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from node.config import DashboardConfig, is_loopback, load_config, render_config
from node.errors import ConfigError

RENDERED = render_config("id-64", "Provinsi Kalimantan Timur", listen="127.0.0.1:7411")
DIGEST = hashlib.sha256(b"token").hexdigest()


def _load(tmp_path: Path, section: str) -> DashboardConfig:
    path = tmp_path / "node.yaml"
    path.write_text(RENDERED + section)
    return load_config(path).dashboard


def test_dashboard_is_off_by_default(tmp_path: Path) -> None:
    """A fresh node.yaml has the dashboard off (its example is commented out)."""
    assert "# dashboard:" in RENDERED
    dashboard = _load(tmp_path, "")
    assert dashboard == DashboardConfig() and not dashboard.enabled


@pytest.mark.parametrize(
    ("section", "listen", "token"),
    [
        pytest.param('dashboard:\n  listen: "127.0.0.1:7480"\n', "127.0.0.1:7480", None, id="v4"),
        pytest.param('dashboard:\n  listen: "[::1]:7480"\n', "[::1]:7480", None, id="v6"),
        pytest.param('dashboard:\n  listen: "localhost:7480"\n', "localhost:7480", None, id="name"),
        pytest.param(
            f'dashboard:\n  listen: "0.0.0.0:7480"\n  token_sha256: "{DIGEST}"\n',
            "0.0.0.0:7480",
            bytes.fromhex(DIGEST),
            id="any-with-token",
        ),
        pytest.param('dashboard:\n  listen: ""\n', "", None, id="empty-is-off"),
    ],
)
def test_dashboard_addresses(
    tmp_path: Path, section: str, listen: str, token: bytes | None
) -> None:
    """Loopback needs no token; a token makes any address acceptable."""
    dashboard = _load(tmp_path, section)
    assert (dashboard.listen, dashboard.token_sha256) == (listen, token)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        pytest.param(
            'dashboard:\n  listen: "0.0.0.0:7480"\n', "needs a token", id="public-no-token"
        ),
        pytest.param(
            'dashboard:\n  listen: "dashboard.example:7480"\n', "needs a token", id="hostname"
        ),
        pytest.param('dashboard:\n  listen: "7480"\n', "HOST:PORT", id="no-host"),
        pytest.param('dashboard:\n  listen: "127.0.0.1:0"\n', "HOST:PORT", id="port-zero"),
        pytest.param(
            'dashboard:\n  listen: "127.0.0.1:7480"\n  token_sha256: "abc"\n',
            "64 lowercase hex",
            id="short-token",
        ),
        pytest.param("dashboard:\n  port: 7480\n", r"key\(s\) in 'dashboard': port", id="unknown"),
        pytest.param("dashboard: [1]\n", "'dashboard' must be a mapping", id="not-a-mapping"),
    ],
)
def test_dashboard_refusals(tmp_path: Path, section: str, message: str) -> None:
    """Each bad dashboard section is a ConfigError naming it."""
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, section)


ANY = "0.0.0.0"  # noqa: S104 - a value under test; nothing binds it


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("localhost", True),
        (ANY, False),
        ("10.0.0.5", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    """Only localhost and loopback addresses count as loopback."""
    assert is_loopback(host) is loopback


def test_dashboard_token_line_loads(tmp_path: Path) -> None:
    """`report dashboard-token` prints a token and the node.yaml line of its SHA-256; with
    that line a public address loads, and the digest is the token's."""
    from click.testing import CliRunner

    from node.cli.main import cli

    out = CliRunner().invoke(cli, ["report", "dashboard-token"]).output
    token = out.split("token: ", 1)[1].split()[0]
    line = out.split("dashboard:", 1)[1].strip()
    dashboard = _load(tmp_path, f'dashboard:\n  listen: "{ANY}:7480"\n  {line}\n')
    assert dashboard.token_sha256 == hashlib.sha256(token.encode()).digest()
