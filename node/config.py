"""node.yaml: loading, validation and defaults.

Every relative path in node.yaml is relative to the folder that holds the file, so a data
directory can be moved or copied whole. Validation happens here, once: the rest of the code
receives a frozen NodeConfig and never looks at raw YAML.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from node.crypto.tls import fingerprint
from node.errors import ConfigError, ValidationError
from node.ids import NodeId, parse_node_id

__all__ = [
    "DEFAULT_CONFIG",
    "AuditorConfig",
    "ExpectedChild",
    "FederationConfig",
    "LedgerConfig",
    "MetricsConfig",
    "NodeConfig",
    "ServerConfig",
    "default_config_path",
    "load_config",
    "render_config",
]

DEFAULT_CONFIG = "node.yaml"


@dataclass(frozen=True)
class ServerConfig:
    listen: str = "127.0.0.1:7400"
    max_message_bytes: int = 4 * 1024 * 1024
    grace_seconds: float = 5.0
    # The enrollment port: TLS with this node's certificate and no client certificate, for
    # `link join` (node.federation.enrollment). None: the port after `listen`'s, on the
    # same host; "": off.
    enrollment_listen: str | None = None

    @property
    def enrollment_address(self) -> str:
        """Where joins are served ("" when off)."""
        if self.enrollment_listen is not None:
            return self.enrollment_listen
        host, sep, port = self.listen.rpartition(":")
        if not sep or not port.isdigit() or int(port) >= 65535:
            return ""
        return f"{host}:{int(port) + 1}"


@dataclass(frozen=True)
class FederationConfig:
    poll_interval_ms: int = 100
    window: int = 1024
    batch: int = 256
    reconnect_min_ms: int = 200
    reconnect_max_ms: int = 30_000
    keepalive_seconds: int = 30


@dataclass(frozen=True)
class LedgerConfig:
    checkpoint_interval_seconds: float = 60.0


@dataclass(frozen=True)
class MetricsConfig:
    """Prometheus metrics over plain HTTP; off unless `listen` is set."""

    listen: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.listen)

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) of `listen`; IPv6 hosts without their brackets."""
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True)
class AuditorConfig:
    """An auditor allowed to call the Audit service: its certificate, pinned by fingerprint."""

    name: str
    certificate: Path
    cert_pem: bytes
    fingerprint: bytes


@dataclass(frozen=True)
class ExpectedChild:
    """A child this node should be linked to, with the name to show for it (if given)."""

    node_id: NodeId
    name: str | None = None


@dataclass(frozen=True)
class NodeConfig:
    path: Path
    node_id: NodeId
    name: str
    timezone: str
    database_url: str
    signing_key: Path
    tls_key: Path
    tls_cert: Path
    server: ServerConfig = field(default_factory=ServerConfig)
    federation: FederationConfig = field(default_factory=FederationConfig)
    ledger: LedgerConfig = field(default_factory=LedgerConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    log_level: str = "info"
    log_format: str = "json"
    expected_children: tuple[NodeId, ...] = ()
    auditors: tuple[AuditorConfig, ...] = ()
    expected: tuple[ExpectedChild, ...] = ()

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def default_config_path() -> Path:
    return Path(os.environ.get("LAPOR_NODE_CONFIG", DEFAULT_CONFIG))


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {}) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"node.yaml: '{name}' must be a mapping, found {type(value).__name__}")
    return value


def _refuse_unknown(section: str, values: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"node.yaml: unknown key(s) in '{section}': {', '.join(unknown)}")


def _typed(section: str, values: dict[str, Any], cls: type[Any]) -> Any:
    _refuse_unknown(section, values, set(cls.__dataclass_fields__))
    defaults = cls()
    converted: dict[str, Any] = {}
    for key, value in values.items():
        expected = type(getattr(defaults, key))
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(
                f"node.yaml: {section}.{key} must be {expected.__name__}, found {value!r}"
            )
        if expected is float and isinstance(value, int):
            value = float(value)
        if not isinstance(value, expected):
            raise ConfigError(
                f"node.yaml: {section}.{key} must be {expected.__name__}, found {value!r}"
            )
        if isinstance(value, int | float) and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"node.yaml: {section}.{key} must be positive, found {value}")
        converted[key] = value
    return cls(**converted)


def _path(section: str, values: dict[str, Any], key: str, default: str, base: Path) -> Path:
    value = values.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"node.yaml: {section}.{key} must be a file path, found {value!r}")
    return base / value


def _resolve_url(url: str, base: Path) -> str:
    """Make a relative SQLite path absolute against the config's folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        return prefix + str((base / url[len(prefix) :]).resolve())
    return url


def _metrics(values: dict[str, Any]) -> MetricsConfig:
    _refuse_unknown("metrics", values, {"listen"})
    listen = values.get("listen", "") or ""
    if not isinstance(listen, str):
        raise ConfigError(f"node.yaml: metrics.listen must be HOST:PORT, found {listen!r}")
    if not listen:
        return MetricsConfig()
    host, sep, port = listen.rpartition(":")
    if not sep or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"node.yaml: metrics.listen must be HOST:PORT (e.g. 127.0.0.1:9464), found {listen!r}"
        )
    return MetricsConfig(listen)


def _host_port(where: str, value: object, example: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"node.yaml: {where} must be HOST:PORT, found {value!r}")
    host, sep, port = value.rpartition(":")
    if not sep or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"node.yaml: {where} must be HOST:PORT (e.g. {example}), found {value!r}")
    return value


def _server(values: dict[str, Any]) -> ServerConfig:
    values = dict(values)
    enrollment = values.pop("enrollment_listen", None)
    typed: ServerConfig = _typed("server", values, ServerConfig)
    if enrollment is None:
        return typed
    if enrollment != "":
        enrollment = _host_port("server.enrollment_listen", enrollment, "127.0.0.1:7465")
        if enrollment == typed.listen:
            raise ConfigError(
                "node.yaml: server.enrollment_listen must differ from server.listen "
                f'(both are {enrollment!r}); use another port, or "" to turn joins off'
            )
    return dataclasses.replace(typed, enrollment_listen=enrollment)


def _expected(raw: object) -> tuple[ExpectedChild, ...]:
    """`expected_children`: node ids, or {id: ..., name: ...} mappings, or a mix."""
    if raw is None:
        return ()
    shape = 'a list of node ids or {id: id-64-02, name: "Kabupaten Kutai Kartanegara"}'
    if not isinstance(raw, list):
        raise ConfigError(f"node.yaml: expected_children must be {shape}")
    children: list[ExpectedChild] = []
    for n, item in enumerate(raw):
        where = f"expected_children[{n}]"
        name: str | None = None
        if isinstance(item, dict):
            _refuse_unknown(where, item, {"id", "name"})
            node_id, name = item.get("id"), item.get("name")
            if name is not None and (not isinstance(name, str) or not name.strip()):
                raise ConfigError(f"node.yaml: {where}.name must be the unit's name")
        else:
            node_id = item
        try:
            child = ExpectedChild(parse_node_id(node_id), name)  # type: ignore[arg-type]
        except ValidationError as e:
            raise ConfigError(f"node.yaml: expected_children: {e}") from e
        if any(c.node_id == child.node_id for c in children):
            raise ConfigError(f"node.yaml: {where}: {child.node_id} is listed twice")
        children.append(child)
    return tuple(children)


def _auditors(raw: object, base: Path) -> tuple[AuditorConfig, ...]:
    """The `auditors:` list: each certificate is read now and pinned by its SHA-256."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(
            "node.yaml: auditors must be a list of {name: ..., certificate: path/to/auditor.crt}"
        )
    auditors: list[AuditorConfig] = []
    for n, item in enumerate(raw):
        where = f"auditors[{n}]"
        if not isinstance(item, dict):
            raise ConfigError(
                f"node.yaml: {where} must be a mapping with name and certificate, found {item!r}"
            )
        _refuse_unknown(where, item, {"name", "certificate"})
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(
                f"node.yaml: {where}.name must be the auditor's name, e.g. 'Ombudsman RI'"
            )
        cert_path = _path(where, item, "certificate", "", base)
        try:
            cert_pem = cert_path.read_bytes()
        except OSError as e:
            raise ConfigError(
                f"node.yaml: {where}.certificate: cannot read {cert_path} ({e.strerror}); "
                "it is the file `lapor-node audit identity` made for the auditor"
            ) from e
        try:
            pinned = fingerprint(cert_pem)
        except ValidationError as e:
            raise ConfigError(
                f"node.yaml: {where}.certificate: {cert_path} is not a PEM X.509 certificate"
            ) from e
        for other in auditors:
            if other.name == name:
                raise ConfigError(f"node.yaml: {where}: auditor {name!r} is listed twice")
            if other.fingerprint == pinned:
                raise ConfigError(
                    f"node.yaml: {where}: {cert_path} is the same certificate as "
                    f"auditor {other.name!r}'s"
                )
        auditors.append(AuditorConfig(name, cert_path, cert_pem, pinned))
    return tuple(auditors)


def load_config(path: Path) -> NodeConfig:
    """Read and validate node.yaml at `path`."""
    if not path.is_file():
        raise ConfigError(
            f"no config at {path}: create a node with `lapor-node init --id ID --name NAME "
            "--dir DIR`, or pass --config PATH (or set LAPOR_NODE_CONFIG)"
        )
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    known = {
        "node",
        "database",
        "keys",
        "server",
        "federation",
        "ledger",
        "metrics",
        "logging",
        "expected_children",
        "auditors",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"node.yaml: unknown section(s): {', '.join(unknown)}")
    base = path.resolve().parent
    node = _section(raw, "node")
    try:
        node_id = parse_node_id(node.get("id", ""))
    except ValidationError as e:
        raise ConfigError(f"node.yaml: node.id: {e}") from e
    name = node.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(
            "node.yaml: node.name must be the unit's name, e.g. 'Provinsi Kalimantan Timur'"
        )
    keys = _section(raw, "keys")
    database = _section(raw, "database")
    logging_ = _section(raw, "logging")
    _refuse_unknown("node", node, {"id", "name", "timezone"})
    _refuse_unknown("keys", keys, {"signing", "tls_key", "tls_cert"})
    _refuse_unknown("database", database, {"url"})
    _refuse_unknown("logging", logging_, {"level", "format"})
    url = database.get("url", "sqlite:///node.db")
    if not isinstance(url, str) or not url:
        raise ConfigError(f"node.yaml: database.url must be a SQLAlchemy URL, found {url!r}")
    timezone = node.get("timezone", "Asia/Jakarta")
    if not isinstance(timezone, str):
        raise ConfigError(f"node.yaml: node.timezone must be a zone name, found {timezone!r}")
    expected = _expected(raw.get("expected_children"))
    level = logging_.get("level", "info")
    if level not in ("debug", "info", "warning", "error"):
        raise ConfigError(
            f"node.yaml: logging.level must be debug|info|warning|error, found {level!r}"
        )
    fmt = logging_.get("format", "json")
    if fmt not in ("json", "console"):
        raise ConfigError(f"node.yaml: logging.format must be json|console, found {fmt!r}")
    return NodeConfig(
        path=path.resolve(),
        node_id=node_id,
        name=name,
        timezone=timezone,
        database_url=_resolve_url(url, base),
        signing_key=_path("keys", keys, "signing", "keys/signing.pem", base),
        tls_key=_path("keys", keys, "tls_key", "keys/tls.key", base),
        tls_cert=_path("keys", keys, "tls_cert", "keys/tls.crt", base),
        server=_server(_section(raw, "server")),
        federation=_typed("federation", _section(raw, "federation"), FederationConfig),
        ledger=_typed("ledger", _section(raw, "ledger"), LedgerConfig),
        metrics=_metrics(_section(raw, "metrics")),
        log_level=level,
        log_format=fmt,
        expected_children=tuple(c.node_id for c in expected),
        auditors=_auditors(raw.get("auditors"), base),
        expected=expected,
    )


TEMPLATE = """\
# lapor-node configuration. Relative paths are relative to this file's folder.
# Reference: README.md, section "Configuration".

node:
  id: {node_id}  # Kemendagri region code slug: id, id-64, id-64-02, ...
  name: {name}
  timezone: {timezone}  # working days and deadlines are counted in this zone

database:
  # Embedded default. For production: postgresql+psycopg://user@host:5432/dbname
  url: {database_url}

keys:
  signing: keys/signing.pem    # Ed25519: envelopes and checkpoints (mode 0600)
  tls_key: keys/tls.key        # ECDSA P-256 TLS key (mode 0600)
  tls_cert: keys/tls.crt       # self-signed; SAN lapor-node://<id> and <id>.lapor-node

server:
  listen: {listen}  # mutual-TLS gRPC for linked peers only
  # enrollment_listen: "HOST:PORT"  # `link join` (TLS, no client certificate); default:
  #                                 # the port after listen's; "" turns joins off
  max_message_bytes: 4194304   # larger messages are refused with RESOURCE_EXHAUSTED
  grace_seconds: 5             # how long SIGTERM waits for in-flight calls

federation:
  poll_interval_ms: 100        # how often an idle link looks for new outbox rows
  window: 1024                 # envelopes in flight per link before waiting for acks
  batch: 256                   # envelopes committed per database transaction
  reconnect_min_ms: 200        # backoff after a broken link, doubling, with jitter ...
  reconnect_max_ms: 30000      # ... up to this
  keepalive_seconds: 30        # HTTP/2 pings keep NAT mappings open

ledger:
  checkpoint_interval_seconds: 60  # `serve` signs a checkpoint this often if the ledger grew

metrics:
  listen: ""                   # Prometheus /metrics over HTTP, e.g. "127.0.0.1:9464"; "" = off

logging:
  level: info                  # debug | info | warning | error
  format: json                 # json (structlog) | console

# Children this node should be linked to (for `link list` and reports): node ids, or
# {{id: id-64-02, name: "Kabupaten Kutai Kartanegara"}} to show a name before it links.
expected_children: []

# Auditors who may read this ledger over the Audit service (same port, mutual TLS), each
# with the certificate `lapor-node audit identity` made for them. Restart `serve` after a
# change. Linked peers may read it too; nobody else.
auditors: []
#  - name: "Ombudsman RI"
#    certificate: auditors/ombudsman-ri.crt
"""


def render_config(
    node_id: str,
    name: str,
    *,
    listen: str = "127.0.0.1:7400",
    database_url: str = "sqlite:///node.db",
    timezone: str = "Asia/Jakarta",
) -> str:
    """The text of a fresh node.yaml."""
    # JSON strings are YAML scalars: every value round-trips, whatever it contains.
    return TEMPLATE.format(
        node_id=json.dumps(node_id),
        name=json.dumps(name, ensure_ascii=False),
        listen=json.dumps(listen),
        database_url=json.dumps(database_url),
        timezone=json.dumps(timezone),
    )
