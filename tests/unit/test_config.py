"""node.yaml: rendering, loading, validation (every refusal names its key), and paths."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from node.config import (
    FederationConfig,
    LedgerConfig,
    MetricsConfig,
    ServerConfig,
    default_config_path,
    load_config,
    render_config,
)
from node.crypto.tls import fingerprint, generate_auditor_identity
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
    assert config.ledger == LedgerConfig(checkpoint_interval_seconds=60.0)
    assert config.metrics == MetricsConfig() and not config.metrics.enabled
    assert config.auditors == ()
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
    pytest.param(
        _replace("checkpoint_interval_seconds: 60", "checkpoint_interval_seconds: 0"),
        "ledger.checkpoint_interval_seconds must be positive",
        id="interval-zero",
    ),
    pytest.param(
        _replace("checkpoint_interval_seconds: 60", "checkpoint_interval_seconds: soon"),
        "ledger.checkpoint_interval_seconds must be float",
        id="interval-not-number",
    ),
    pytest.param(
        _replace("checkpoint_interval_seconds: 60", "checkpoint_interval: 60"),
        "unknown key(s) in 'ledger': checkpoint_interval",
        id="unknown-ledger-key",
    ),
    pytest.param(
        _replace('listen: ""', 'listen: "9464"'), "metrics.listen must be HOST:PORT", id="no-host"
    ),
    pytest.param(
        _replace('listen: ""', 'listen: "127.0.0.1:"'),
        "metrics.listen must be HOST:PORT",
        id="no-port",
    ),
    pytest.param(
        _replace('listen: ""', 'listen: "127.0.0.1:70000"'),
        "metrics.listen must be HOST:PORT",
        id="port-out-of-range",
    ),
    pytest.param(
        _replace('listen: ""', "listen: 9464"), "metrics.listen must be HOST:PORT", id="int"
    ),
    pytest.param(
        _replace('listen: ""', 'listen: ""\n  path: /m'),
        "unknown key(s) in 'metrics': path",
        id="unknown-metrics-key",
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


# Ledger, metrics, auditors ------------------------------------------------------------------


def test_checkpoint_interval_takes_fractions_of_a_second(tmp_path: Path) -> None:
    """ledger.checkpoint_interval_seconds is read as a float number of seconds."""
    text = _replace("checkpoint_interval_seconds: 60", "checkpoint_interval_seconds: 0.25")
    assert load_config(_write(tmp_path, text)).ledger.checkpoint_interval_seconds == 0.25


@pytest.mark.parametrize(
    ("listen", "address"),
    [("127.0.0.1:9464", ("127.0.0.1", 9464)), ("[::1]:9464", ("::1", 9464))],
    ids=["ipv4", "ipv6"],
)
def test_metrics_listen_is_host_and_port(
    tmp_path: Path, listen: str, address: tuple[str, int]
) -> None:
    """metrics.listen HOST:PORT turns the endpoint on at that address."""
    metrics = load_config(_write(tmp_path, _replace('listen: ""', f'listen: "{listen}"'))).metrics
    assert metrics.enabled and metrics.address == address


def test_a_section_left_empty_takes_its_defaults(tmp_path: Path) -> None:
    """`metrics:`, `ledger:` and `auditors:` with nothing under them mean the defaults."""
    config = load_config(
        _write(tmp_path, "node: {id: id-64, name: X}\nmetrics:\nledger:\nauditors:\n")
    )
    assert (config.metrics, config.ledger, config.auditors) == (MetricsConfig(), LedgerConfig(), ())


def _auditor_cert(folder: Path, name: str) -> bytes:
    pem = generate_auditor_identity(name, dt.datetime.now(dt.UTC)).cert_pem
    folder.mkdir(exist_ok=True)
    (folder / f"{name.split()[0].lower()}.crt").write_bytes(pem)
    return pem


def _auditors(*items: str) -> str:
    return _replace("auditors: []", "auditors:\n" + "".join(items))


def _item(name: str, certificate: str) -> str:
    return f"  - name: {name}\n    certificate: {certificate}\n"


def test_auditors_are_read_and_pinned_relative_to_the_config(tmp_path: Path) -> None:
    """Each listed auditor's certificate is read (its path relative to node.yaml's folder)
    and pinned by its SHA-256 fingerprint."""
    ombudsman = _auditor_cert(tmp_path / "auditors", "Ombudsman RI")
    itjen = _auditor_cert(tmp_path / "auditors", "Itjen Kemendagri")
    text = _auditors(
        _item('"Ombudsman RI"', "auditors/ombudsman.crt"),
        _item('"Itjen Kemendagri"', str((tmp_path / "auditors" / "itjen.crt").resolve())),
    )
    auditors = load_config(_write(tmp_path, text)).auditors
    assert [(a.name, a.cert_pem, a.fingerprint) for a in auditors] == [
        ("Ombudsman RI", ombudsman, fingerprint(ombudsman)),
        ("Itjen Kemendagri", itjen, fingerprint(itjen)),
    ]
    assert auditors[0].certificate == tmp_path.resolve() / "auditors" / "ombudsman.crt"


BAD_AUDITORS = [
    pytest.param(
        _replace("auditors: []", "auditors: {name: X}"), "auditors must be a list", id="not-list"
    ),
    pytest.param(
        _auditors("  - auditors/ombudsman.crt\n"),
        "auditors[0] must be a mapping",
        id="item-not-mapping",
    ),
    pytest.param(
        _auditors(_item('" "', "auditors/ombudsman.crt")), "auditors[0].name", id="blank-name"
    ),
    pytest.param(
        _auditors("  - name: X\n"),
        "auditors[0].certificate must be a file path",
        id="no-certificate",
    ),
    pytest.param(
        _auditors(_item("X", "auditors/ombudsman.crt") + "    key: k\n"),
        "unknown key(s) in 'auditors[0]': key",
        id="unknown-key",
    ),
    pytest.param(_auditors(_item("X", "auditors/missing.crt")), "cannot read", id="missing-file"),
    pytest.param(
        _auditors(_item("X", "node.yaml")), "is not a PEM X.509 certificate", id="not-a-certificate"
    ),
    pytest.param(
        _auditors(_item("X", "auditors/ombudsman.crt"), _item("X", "auditors/itjen.crt")),
        "auditors[1]: auditor 'X' is listed twice",
        id="duplicate-name",
    ),
    pytest.param(
        _auditors(_item("X", "auditors/ombudsman.crt"), _item("Y", "auditors/ombudsman.crt")),
        "the same certificate as auditor 'X'",
        id="duplicate-certificate",
    ),
]


@pytest.mark.parametrize(("text", "names"), BAD_AUDITORS)
def test_bad_auditors_raise_config_error_saying_which(
    tmp_path: Path, text: str, names: str
) -> None:
    """A malformed auditors list, a missing or non-certificate file, or an auditor listed
    twice (by name or by certificate) raises ConfigError naming the entry."""
    _auditor_cert(tmp_path / "auditors", "Ombudsman RI")
    _auditor_cert(tmp_path / "auditors", "Itjen Kemendagri")
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text))
    assert names in str(caught.value)
