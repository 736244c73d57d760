"""node.yaml: rendering, loading, validation (every refusal names its key), and paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import (
    FederationConfig,
    ServerConfig,
    default_config_path,
    load_config,
    render_config,
)
from node.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text(text)
    return path


RENDERED = render_config("id-64", "Provinsi Kalimantan Timur", listen="127.0.0.1:7411")


def test_rendered_config_loads_with_its_values(tmp_path: Path) -> None:
    """load_config of a fresh render_config gives the rendered values and the defaults."""
    config = load_config(_write(tmp_path, RENDERED))
    assert config.path == (tmp_path / "node.yaml").resolve()
    assert config.node_id == "id-64"
    assert config.name == "Provinsi Kalimantan Timur"
    assert config.timezone == "Asia/Jakarta"
    assert config.server == ServerConfig(listen="127.0.0.1:7411")
    assert config.federation == FederationConfig()
    assert config.log_level == "info"
    assert config.log_format == "json"
    assert config.expected_children == ()
    base = tmp_path.resolve()
    assert config.base_dir == base
    assert config.signing_key == base / "keys" / "signing.pem"
    assert config.tls_key == base / "keys" / "tls.key"
    assert config.tls_cert == base / "keys" / "tls.crt"


def test_relative_sqlite_url_resolves_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite:///node.db means <config folder>/node.db whatever the working directory."""
    folder = tmp_path / "data"
    folder.mkdir()
    _write(folder, render_config("id-64", "X", database_url="sqlite:///db/node.db"))
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("data/node.yaml"))
    assert config.database_url == f"sqlite:///{folder.resolve() / 'db' / 'node.db'}"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////var/lib/lapor/node.db",
        "postgresql+psycopg://lapor@db.example:5432/lapor",
    ],
    ids=["absolute-sqlite", "postgresql"],
)
def test_absolute_and_server_urls_are_kept(tmp_path: Path, url: str) -> None:
    """Absolute SQLite paths and PostgreSQL URLs are used as written."""
    config = load_config(_write(tmp_path, render_config("id-64", "X", database_url=url)))
    assert config.database_url == url


def test_expected_children_are_parsed(tmp_path: Path) -> None:
    """expected_children is read as a tuple of node ids."""
    text = RENDERED.replace("expected_children: []", "expected_children: [id-64-02, id-64-08]")
    assert load_config(_write(tmp_path, text)).expected_children == ("id-64-02", "id-64-08")


@pytest.mark.parametrize(
    "name",
    ['Kab. "Kutai" Timur', "back\\slash", "Kota: Samarinda # pusat", "{node_id}", "Dinas ✓"],
    ids=["quotes", "backslash", "colon-hash", "braces", "unicode"],
)
def test_names_round_trip_through_render(tmp_path: Path, name: str) -> None:
    """render_config escapes the unit's name so load_config reads it back exactly."""
    assert load_config(_write(tmp_path, render_config("id-64", name))).name == name


def test_names_with_newlines_round_trip(tmp_path: Path) -> None:
    """A name with a line break is read back unchanged."""
    name = "Dinas Kominfo\nKabupaten Kutai Timur"
    assert load_config(_write(tmp_path, render_config("id-64", name))).name == name


@pytest.mark.parametrize("node_id", ["64", "no", "on", "null", "true", "0x1f", "2026-01-01"])
def test_every_valid_node_id_round_trips_through_render(tmp_path: Path, node_id: str) -> None:
    """Each node id that parse_node_id accepts renders to a node.yaml that loads back."""
    assert load_config(_write(tmp_path, render_config(node_id, "X"))).node_id == node_id


def test_ipv6_listen_round_trips_through_render(tmp_path: Path) -> None:
    """An IPv6 listen address renders to a node.yaml that loads back unchanged."""
    config = load_config(_write(tmp_path, render_config("id-64", "X", listen="[::1]:7400")))
    assert config.server.listen == "[::1]:7400"


def test_default_config_path_honours_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """default_config_path is $LAPOR_NODE_CONFIG when set, else ./node.yaml."""
    monkeypatch.delenv("LAPOR_NODE_CONFIG", raising=False)
    assert default_config_path() == Path("node.yaml")
    monkeypatch.setenv("LAPOR_NODE_CONFIG", "/etc/lapor/node.yaml")
    assert default_config_path() == Path("/etc/lapor/node.yaml")


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    """A missing node.yaml raises ConfigError pointing at `lapor-node init` and --config."""
    with pytest.raises(ConfigError, match=r"lapor-node init .*--config"):
        load_config(tmp_path / "node.yaml")


# Every refusal names the key ------------------------------------------------------------


def _replace(old: str, new: str) -> str:
    assert old in RENDERED, old
    return RENDERED.replace(old, new)


INVALID = [
    pytest.param("node: [\n", "not valid YAML", id="not-yaml"),
    pytest.param("- a\n- b\n", "mapping at the top level", id="top-level-list"),
    pytest.param(RENDERED + "extra:\n  a: 1\n", "unknown section(s): extra", id="unknown-section"),
    pytest.param("node: 5\n", "'node' must be a mapping", id="node-not-mapping"),
    pytest.param(_replace('  id: "id-64" ', '  id: "ID-64" '), "node.id", id="bad-node-id"),
    pytest.param(_replace('  id: "id-64" ', '  id: "-id" '), "node.id", id="node-id-leading-dash"),
    pytest.param(
        _replace('  id: "id-64" ', "  id: " + "a" * 64 + " "), "node.id", id="node-id-too-long"
    ),
    pytest.param(_replace('  id: "id-64" ', "  id: 64 "), "node.id", id="node-id-number"),
    pytest.param(
        _replace('name: "Provinsi Kalimantan Timur"', 'name: "  "'), "node.name", id="blank-name"
    ),
    pytest.param(
        _replace('name: "Provinsi Kalimantan Timur"', "name: 5"), "node.name", id="name-not-string"
    ),
    pytest.param(
        _replace('  listen: "127.0.0.1:7411"', '  listen: "127.0.0.1:7411"\n  port: 1'),
        "unknown key(s) in 'server': port",
        id="unknown-server-key",
    ),
    pytest.param(
        _replace("  batch: 256", "  batch: 256\n  windwo: 5"),
        "unknown key(s) in 'federation': windwo",
        id="unknown-federation-key",
    ),
    pytest.param(
        "node: {id: id-64, name: X}\nserver: 7400\n",
        "'server' must be a mapping",
        id="server-not-mapping",
    ),
    pytest.param(
        _replace('  listen: "127.0.0.1:7411"', "  listen: 7411"),
        "server.listen must be str",
        id="listen-not-string",
    ),
    pytest.param(
        _replace("max_message_bytes: 4194304", "max_message_bytes: 4MB"),
        "server.max_message_bytes must be int",
        id="size-not-int",
    ),
    pytest.param(
        _replace("max_message_bytes: 4194304", "max_message_bytes: 4.5"),
        "server.max_message_bytes must be int",
        id="size-float",
    ),
    pytest.param(
        _replace("max_message_bytes: 4194304", "max_message_bytes: true"),
        "server.max_message_bytes must be int",
        id="size-bool",
    ),
    pytest.param(
        _replace("grace_seconds: 5", "grace_seconds: soon"),
        "server.grace_seconds must be float",
        id="grace-not-number",
    ),
    pytest.param(
        _replace("window: 1024", "window: 0"),
        "federation.window must be positive",
        id="window-zero",
    ),
    pytest.param(
        _replace("batch: 256", "batch: -1"),
        "federation.batch must be positive",
        id="batch-negative",
    ),
    pytest.param(
        _replace("max_message_bytes: 4194304", "max_message_bytes: 0"),
        "server.max_message_bytes must be positive",
        id="size-zero",
    ),
    pytest.param(
        _replace("grace_seconds: 5", "grace_seconds: 0.0"),
        "server.grace_seconds must be positive",
        id="grace-zero-float",
    ),
    pytest.param(
        _replace("grace_seconds: 5", "grace_seconds: -0.5"),
        "server.grace_seconds must be positive",
        id="grace-negative-float",
    ),
    pytest.param(
        _replace("keepalive_seconds: 30", "keepalive_seconds: '30'"),
        "federation.keepalive_seconds must be int",
        id="keepalive-string",
    ),
    pytest.param(_replace("level: info", "level: verbose"), "logging.level", id="bad-level"),
    pytest.param(_replace("level: info", "level: INFO"), "logging.level", id="uppercase-level"),
    pytest.param(_replace("format: json", "format: xml"), "logging.format", id="bad-format"),
    pytest.param(
        "node: {id: id-64, name: X}\nlogging: loud\n",
        "'logging' must be a mapping",
        id="logging-not-mapping",
    ),
    pytest.param(
        _replace("expected_children: []", "expected_children: id-64-02"),
        "expected_children",
        id="children-not-list",
    ),
    pytest.param(
        _replace("expected_children: []", "expected_children: [Id-64-02]"),
        "expected_children",
        id="bad-child-id",
    ),
]


@pytest.mark.parametrize(("text", "names"), INVALID)
def test_invalid_config_raises_config_error_naming_the_key(
    tmp_path: Path, text: str, names: str
) -> None:
    """Every invalid node.yaml raises ConfigError whose message names the offending key."""
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text))
    assert names in str(caught.value)


@pytest.mark.parametrize(
    "value", ["0", "-3", "true", ".nan"], ids=["zero-int", "negative-int", "bool", "nan"]
)
def test_float_settings_must_be_positive_numbers(tmp_path: Path, value: str) -> None:
    """server.grace_seconds given as 0, -3, true or .nan is refused naming the key."""
    text = _replace("grace_seconds: 5", f"grace_seconds: {value}")
    with pytest.raises(ConfigError, match=r"server\.grace_seconds"):
        load_config(_write(tmp_path, text))


def test_int_given_to_a_float_setting_is_accepted(tmp_path: Path) -> None:
    """server.grace_seconds: 5 (a YAML int) is read as a number of seconds."""
    assert load_config(_write(tmp_path, RENDERED)).server.grace_seconds == 5


def test_key_paths_must_be_strings(tmp_path: Path) -> None:
    """keys.signing given as a number raises ConfigError naming keys.signing."""
    text = _replace("signing: keys/signing.pem", "signing: 5")
    with pytest.raises(ConfigError, match=r"keys\.signing"):
        load_config(_write(tmp_path, text))


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("level: info", "levle: debug", "levle"),
        ('  url: "sqlite:///node.db"', "  ulr: sqlite:///node.db", "ulr"),
        ("signing: keys/signing.pem", "sigining: keys/signing.pem", "sigining"),
        ('timezone: "Asia/Jakarta"', "tz: Asia/Jakarta", "tz"),
    ],
    ids=["logging", "database", "keys", "node"],
)
def test_unknown_keys_are_refused_in_every_section(
    tmp_path: Path, old: str, new: str, key: str
) -> None:
    """A misspelt key in any section raises ConfigError naming it."""
    with pytest.raises(ConfigError, match=key):
        load_config(_write(tmp_path, _replace(old, new)))
