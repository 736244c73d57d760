"""node.yaml validated at load: every listen key is HOST:PORT, the time zone exists, no key
is written twice, and every problem is one line naming its key."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli.main import cli
from node.config import load_config, render_config
from node.errors import ConfigError

RENDERED = render_config("id-64", "Provinsi Kalimantan Timur", listen="127.0.0.1:7411")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text(text)
    return path


def _refusal(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text))
    return str(caught.value)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        pytest.param(
            '  listen: "127.0.0.1:7411"',
            '  listen: "127.0.0.1"',
            "node.yaml: server.listen must be HOST:PORT (e.g. 127.0.0.1:7400), found '127.0.0.1'",
            id="server-no-port",
        ),
        pytest.param(
            '  listen: "127.0.0.1:7411"',
            '  listen: "::1:7411"',
            "server.listen must be HOST:PORT (e.g. 127.0.0.1:7400), with an IPv6 host in brackets",
            id="server-ipv6-without-brackets",
        ),
        pytest.param(
            '  listen: "127.0.0.1:7411"',
            '  listen: "127.0.0.1:7411"\n  enrollment_listen: "0.0.0.0"',
            "server.enrollment_listen must be HOST:PORT",
            id="enrollment-no-port",
        ),
        pytest.param(
            'listen: ""',
            'listen: "localhost"',
            "metrics.listen must be HOST:PORT",
            id="metrics-no-port",
        ),
    ],
)
def test_every_listen_key_needs_host_and_port(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    """A listen address without its port is refused at load, naming the key."""
    assert message in _refusal(tmp_path, RENDERED.replace(old, new))


def test_intake_and_dashboard_listen_need_a_port(tmp_path: Path) -> None:
    """intake.listen and dashboard.listen without a port are refused, one line each."""
    text = RENDERED + 'intake:\n  listen: "0.0.0.0"\ndashboard:\n  listen: "127.0.0.1"\n'
    lines = _refusal(tmp_path, text).splitlines()
    assert lines == [
        "node.yaml: dashboard.listen must be HOST:PORT (e.g. 127.0.0.1:7480), found '127.0.0.1'",
        "node.yaml: intake.listen must be HOST:PORT (e.g. 0.0.0.0:7466), found '0.0.0.0'",
    ]


@pytest.mark.parametrize(
    "zone",
    # A folder of the zone database, and names too long for a file (found by the fuzzer:
    # an OSError escaped zoneinfo, a traceback instead of a message).
    ["Asia/Jakrta", "WIB", "", "../etc/passwd", "America", "Asia", "9" * 400, "Asia/" + "x" * 300],
)
def test_an_unknown_time_zone_is_refused_at_load(tmp_path: Path, zone: str) -> None:
    """A time-zone typo is refused when node.yaml loads, naming node.timezone."""
    text = RENDERED.replace('timezone: "Asia/Jakarta"', f'timezone: "{zone}"')
    message = _refusal(tmp_path, text)
    assert message.startswith(f"node.yaml: node.timezone: unknown time zone {zone!r}")
    assert "Asia/Jakarta" in message


@pytest.mark.parametrize("zone", ["Asia/Makassar", "Asia/Jayapura", "UTC"])
def test_known_time_zones_load(tmp_path: Path, zone: str) -> None:
    """IANA zone names load unchanged."""
    text = RENDERED.replace('timezone: "Asia/Jakarta"', f'timezone: "{zone}"')
    assert load_config(_write(tmp_path, text)).timezone == zone


def test_render_config_refuses_a_bad_zone_before_anything_is_written() -> None:
    """`init --timezone` with a typo fails in render_config, so no node.yaml is written."""
    with pytest.raises(ConfigError, match=r"node\.timezone: unknown time zone 'Asia/Jakrta'"):
        render_config("id-64", "X", timezone="Asia/Jakrta")
    with pytest.raises(ConfigError, match=r"server\.listen must be HOST:PORT"):
        render_config("id-64", "X", listen="127.0.0.1")


@pytest.mark.parametrize(
    ("text", "where", "key"),
    [
        pytest.param(
            RENDERED.replace("  batch: 256", "  batch: 256\n  batch: 512"),
            "federation.batch",
            "batch:",
            id="federation-key",
        ),
        pytest.param(
            RENDERED + "\nserver:\n  grace_seconds: 1\n", "server", "server:", id="section"
        ),
        pytest.param(
            RENDERED.replace(
                "expected_children: []", "expected_children:\n  - {id: id-64-01, id: id-64-02}"
            ),
            "expected_children[0].id",
            "id: id-64-01, id:",
            id="inside-a-list",
        ),
    ],
)
def test_duplicate_keys_are_refused_naming_key_and_lines(
    tmp_path: Path, text: str, where: str, key: str
) -> None:
    """A key written twice in one mapping is refused (YAML would keep the last one),
    naming its path and the two lines."""
    message = _refusal(tmp_path, text)
    found = re.fullmatch(
        rf"node\.yaml: {re.escape(where)} is written twice \(lines (\d+) and (\d+)\); "
        "keep one of them",
        message,
    )
    assert found is not None, message
    first, second = (int(n) for n in found.groups())
    lines = text.splitlines()
    assert first <= second and key in lines[first - 1] and key in lines[second - 1]


def test_every_problem_is_one_line_naming_its_key(tmp_path: Path) -> None:
    """Several mistakes give one line each, in the file's order, not a pydantic dump."""
    text = (
        RENDERED.replace("window: 1024", "window: 0")
        .replace("  batch: 256", "  batch: 256\n  windwo: 5\n  bacth: 1")
        .replace("level: info", "level: loud")
    )
    assert _refusal(tmp_path, text).splitlines() == [
        "node.yaml: federation.window must be positive, found 0",
        "node.yaml: unknown key(s) in 'federation': bacth, windwo",
        "node.yaml: logging.level must be 'debug', 'info', 'warning' or 'error', found 'loud'",
    ]


def test_importing_node_config_does_not_load_pydantic() -> None:
    """`import node.config` (as `lapor-node --version` does) leaves pydantic unloaded."""
    code = "import sys, node.config; print('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize(
    ("option", "message"),
    [
        pytest.param(
            ["--timezone", "Asia/Jakrta"], "node.timezone: unknown time zone", id="timezone"
        ),
        pytest.param(["--listen", "127.0.0.1"], "server.listen must be HOST:PORT", id="listen"),
    ],
)
def test_init_with_a_bad_value_creates_nothing(
    tmp_path: Path, option: list[str], message: str
) -> None:
    """`init --timezone` with a typo or `--listen` without a port is refused with the key
    named, and leaves no data directory behind."""
    target = tmp_path / "prov"
    result = CliRunner().invoke(
        cli, ["init", "--id", "id-64", "--name", "X", "--dir", str(target), *option]
    )
    assert result.exit_code != 0
    assert message in result.output
    assert not target.exists()


@pytest.mark.parametrize(
    ("section", "line"),
    [
        pytest.param(
            "intake: {gateways: {a: 1}}\n",
            "node.yaml: intake.gateways must be a list of {name, channels, token_sha256}",
            id="braces-kept",
        ),
        pytest.param(
            "dashboard: {1: 2}\n", "node.yaml: unknown key 1 in 'dashboard'", id="number-as-key"
        ),
        pytest.param(
            'intake:\n  listen: "127.0.0.1:7466"\n  gateways: [{name: a, channels: [web]}]\n',
            "node.yaml: intake.gateways[0].token_sha256 is required",
            id="missing-key",
        ),
    ],
)
def test_refusals_read_as_plain_sentences(tmp_path: Path, section: str, line: str) -> None:
    """Schema refusals are the project's sentences, not pydantic's wording or escapes."""
    assert _refusal(tmp_path, RENDERED + section).splitlines() == [line]


def test_a_pasted_dashboard_token_is_not_echoed(tmp_path: Path) -> None:
    """A token pasted where its SHA-256 belongs is refused without repeating it."""
    token = "tok_9f2c6d1e8b7a4c3d2e1f0a9b8c7d6e5f"
    text = RENDERED + f'dashboard:\n  listen: "0.0.0.0:7480"\n  token_sha256: "{token}"\n'
    message = _refusal(tmp_path, text)
    assert "dashboard.token_sha256 must be 64 lowercase hex digits" in message
    assert token not in message
