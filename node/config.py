"""node.yaml: loading, validation and defaults.

Every relative path in node.yaml is relative to the folder that holds the file, so a data
directory can be moved or copied whole. Validation happens here, once: the rest of the code
receives a frozen NodeConfig and never looks at raw YAML.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from node.crypto.tls import fingerprint
from node.errors import ConfigError, ValidationError
from node.ids import NodeId, parse_node_id
from node.workflow.deadlines import DeadlinePolicy
from node.workflow.routing import Rule, parse_rules

__all__ = [
    "DEFAULT_CONFIG",
    "AuditorConfig",
    "ExpectedChild",
    "FederationConfig",
    "GatewayConfig",
    "IntakeConfig",
    "LedgerConfig",
    "MetricsConfig",
    "NodeConfig",
    "RoutingConfig",
    "ServerConfig",
    "WorkflowConfig",
    "default_config_path",
    "load_config",
    "port_after",
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
        return port_after(self.listen)


def port_after(address: str) -> str:
    """HOST:PORT+1 of HOST:PORT (where a node serves joins by default); "" if none."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) >= 65535:
        return ""
    return f"{host}:{int(port) + 1}"


@dataclass(frozen=True)
class FederationConfig:
    poll_interval_ms: int = 10000
    window: int = 1024
    batch: int = 256
    reconnect_min_ms: int = 200
    reconnect_max_ms: int = 30_000
    keepalive_seconds: int = 30


@dataclass(frozen=True)
class LedgerConfig:
    checkpoint_interval_seconds: float = 60.0


@dataclass(frozen=True)
class _Listener:
    """A plain-HTTP side service at `listen` (HOST:PORT); off while it is empty."""

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
class MetricsConfig(_Listener):
    """Prometheus metrics over plain HTTP; off unless `listen` is set."""


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


# Channels a gateway may submit for; walk-ins are typed in by staff (`complaint submit`).
GATEWAY_CHANNELS = ("web", "sms_1708", "twitter", "mobile_app", "api")
_GATEWAY_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class GatewayConfig:
    """A channel gateway allowed to call the Intake service: the SHA-256 of its bearer
    token (never the token) and the channels it may submit for."""

    name: str
    channels: tuple[str, ...]
    token_sha256: bytes


@dataclass(frozen=True)
class IntakeConfig:
    """The Intake service for channel gateways (docs/intake.md); off unless `listen` is
    set. The byte limits also apply to walk-in attachments."""

    listen: str = ""
    max_attachment_bytes: int = 10 * 1024 * 1024
    max_total_bytes: int = 25 * 1024 * 1024
    gateways: tuple[GatewayConfig, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.listen)


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
    dashboard: DashboardConfig = field(default_factory=lambda: DashboardConfig())
    log_level: str = "info"
    log_format: str = "json"
    expected_children: tuple[NodeId, ...] = ()
    auditors: tuple[AuditorConfig, ...] = ()
    expected: tuple[ExpectedChild, ...] = ()
    intake: IntakeConfig = field(default_factory=IntakeConfig)
    deadlines: DeadlinePolicy = field(default_factory=DeadlinePolicy)
    workflow: WorkflowConfig = field(default_factory=lambda: WorkflowConfig())
    routing: RoutingConfig = field(default_factory=lambda: RoutingConfig())
    # X25519 key that opens identities sealed to this node (node.crypto.sealing); made by
    # `init`, or on first use for a node made before it existed.
    sealing_key: Path | None = None

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


@dataclass(frozen=True)
class DashboardConfig(_Listener):
    """The read-only web dashboard (node.web, docs/reports.md); off unless `listen` is set.
    A `listen` that is not a loopback address needs `token_sha256` (of the bearer token
    `lapor-node report dashboard-token` makes); on loopback the token is optional."""

    token_sha256: bytes | None = None


def is_loopback(host: str) -> bool:
    """True for localhost and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _dashboard(values: dict[str, Any]) -> DashboardConfig:
    _refuse_unknown("dashboard", values, {"listen", "token_sha256"})
    listen = values.get("listen", "") or ""
    if not listen:
        return DashboardConfig()
    listen = _host_port("dashboard.listen", listen, "127.0.0.1:7480")
    raw = values.get("token_sha256")
    token: bytes | None = None
    if raw is not None:
        if not isinstance(raw, str) or not re.fullmatch(r"[0-9a-f]{64}", raw):
            raise ConfigError(
                "node.yaml: dashboard.token_sha256 must be 64 lowercase hex digits (the line "
                f"`lapor-node report dashboard-token` prints), found {raw!r}"
            )
        token = bytes.fromhex(raw)
    host = listen.rpartition(":")[0].strip("[]")
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"node.yaml: dashboard.listen {listen!r} is not a loopback address, so the "
            "dashboard needs a token: run `lapor-node report dashboard-token` and add its "
            "token_sha256 line under dashboard:, or listen on 127.0.0.1"
        )
    return DashboardConfig(listen, token)


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


def _gateway(where: str, item: object) -> GatewayConfig:
    if not isinstance(item, dict):
        raise ConfigError(
            f"node.yaml: {where} must be a mapping with name, channels and token_sha256 "
            "(the lines `lapor-node intake gateway add` printed)"
        )
    _refuse_unknown(where, item, {"name", "channels", "token_sha256"})
    name = item.get("name")
    if not isinstance(name, str) or not _GATEWAY_NAME.fullmatch(name):
        raise ConfigError(
            f"node.yaml: {where}.name must be a lowercase slug such as 'sms-1708-kaltim', "
            f"found {name!r}"
        )
    channels = item.get("channels")
    if (
        not isinstance(channels, list)
        or not channels
        or not all(isinstance(c, str) and c in GATEWAY_CHANNELS for c in channels)
    ):
        raise ConfigError(
            f"node.yaml: {where}.channels must be a non-empty list of "
            f"{', '.join(GATEWAY_CHANNELS)}; found {channels!r}"
        )
    digest = item.get("token_sha256")
    try:
        token_sha256 = bytes.fromhex(digest) if isinstance(digest, str) else b""
    except ValueError:
        token_sha256 = b""
    if len(token_sha256) != 32:
        raise ConfigError(
            f"node.yaml: {where}.token_sha256 must be 64 hex digits (the SHA-256 of the "
            "gateway's token, never the token itself)"
        )
    return GatewayConfig(name, tuple(dict.fromkeys(channels)), token_sha256)


def _intake(values: dict[str, Any], server: ServerConfig) -> IntakeConfig:
    """The `intake:` section (see IntakeConfig)."""
    values = dict(values)
    listen = values.pop("listen", "") or ""
    raw_gateways = values.pop("gateways", None) or []
    limits: IntakeConfig = _typed("intake", values, IntakeConfig)
    if listen:
        listen = _host_port("intake.listen", listen, "0.0.0.0:7466")
        if listen in (server.listen, server.enrollment_address):
            raise ConfigError(
                f"node.yaml: intake.listen ({listen!r}) must differ from server.listen and "
                "the enrollment port"
            )
    if limits.max_total_bytes < limits.max_attachment_bytes:
        raise ConfigError(
            "node.yaml: intake.max_total_bytes must be at least intake.max_attachment_bytes"
        )
    if not isinstance(raw_gateways, list):
        raise ConfigError(
            "node.yaml: intake.gateways must be a list of {name, channels, token_sha256}"
        )
    gateways: list[GatewayConfig] = []
    for n, item in enumerate(raw_gateways):
        gateway = _gateway(f"intake.gateways[{n}]", item)
        for other in gateways:
            if other.name == gateway.name:
                raise ConfigError(f"node.yaml: gateway {gateway.name!r} is listed twice")
            if other.token_sha256 == gateway.token_sha256:
                raise ConfigError(
                    f"node.yaml: gateways {other.name!r} and {gateway.name!r} have the same "
                    "token; issue each its own with `lapor-node intake gateway add`"
                )
        gateways.append(gateway)
    return dataclasses.replace(limits, listen=listen, gateways=tuple(gateways))


@dataclass(frozen=True)
class WorkflowConfig:
    """The `workflow:` section: the complaint scheduler (node.services.scheduler) and the
    working-day calendar's corrections to the packaged holidays."""

    auto_escalate: bool = False  # escalate overdue complaints without an operator
    scheduler_interval_seconds: float = 300.0  # how often `serve` runs the scheduler
    collective_leave: bool = True  # cuti bersama counts as a holiday
    holidays_extra: tuple[dt.date, ...] = ()  # e.g. regional holidays
    holidays_removed: tuple[dt.date, ...] = ()  # packaged dates this office works


def _dates(where: str, raw: object) -> tuple[dt.date, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(
        isinstance(d, dt.date) and not isinstance(d, dt.datetime) for d in raw
    ):
        raise ConfigError(f"node.yaml: {where} must be a list of dates (YYYY-MM-DD), found {raw!r}")
    return tuple(raw)


def _workflow(values: dict[str, Any]) -> WorkflowConfig:
    """The `workflow:` section (see WorkflowConfig)."""
    _refuse_unknown("workflow", values, set(WorkflowConfig.__dataclass_fields__))
    flags = {}
    for key in ("auto_escalate", "collective_leave"):
        value = values.get(key, getattr(WorkflowConfig, key))
        if not isinstance(value, bool):
            raise ConfigError(f"node.yaml: workflow.{key} must be true or false, found {value!r}")
        flags[key] = value
    interval = values.get("scheduler_interval_seconds", 300.0)
    if (
        isinstance(interval, bool)
        or not isinstance(interval, int | float)
        or not (math.isfinite(interval) and interval > 0)
    ):
        raise ConfigError(
            "node.yaml: workflow.scheduler_interval_seconds must be a positive number of "
            f"seconds, found {interval!r}"
        )
    return WorkflowConfig(
        scheduler_interval_seconds=float(interval),
        holidays_extra=_dates("workflow.holidays_extra", values.get("holidays_extra")),
        holidays_removed=_dates("workflow.holidays_removed", values.get("holidays_removed")),
        **flags,
    )


@dataclass(frozen=True)
class RoutingConfig:
    """The `routing:` section: rules that say which child a complaint is disposed to
    (node.workflow.routing, docs/routing.md), and whether to apply them by themselves."""

    auto: bool = False  # dispose by the rules when a complaint is verified or accepted
    rules: tuple[Rule, ...] = ()


def _routing(raw: object, node_id: NodeId) -> RoutingConfig:
    """The `routing:` section (see RoutingConfig); rule errors name routing.rules[N]."""
    if raw is None:
        return RoutingConfig()
    if not isinstance(raw, dict):
        raise ConfigError(f"node.yaml: 'routing' must be a mapping, found {type(raw).__name__}")
    _refuse_unknown("routing", raw, {"auto", "rules"})
    auto = raw.get("auto", False)
    if not isinstance(auto, bool):
        raise ConfigError(f"node.yaml: routing.auto must be true or false, found {auto!r}")
    try:
        rules = parse_rules(raw.get("rules"), node_id)
    except ConfigError as e:
        raise ConfigError(f"node.yaml: {e}") from e
    return RoutingConfig(auto, rules)


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
        "dashboard",
        "logging",
        "expected_children",
        "auditors",
        "intake",
        "deadlines",
        "workflow",
        "routing",
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
    _refuse_unknown("keys", keys, {"signing", "tls_key", "tls_cert", "sealing"})
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
    server = _server(_section(raw, "server"))
    return NodeConfig(
        path=path.resolve(),
        node_id=node_id,
        name=name,
        timezone=timezone,
        database_url=_resolve_url(url, base),
        signing_key=_path("keys", keys, "signing", "keys/signing.pem", base),
        tls_key=_path("keys", keys, "tls_key", "keys/tls.key", base),
        tls_cert=_path("keys", keys, "tls_cert", "keys/tls.crt", base),
        sealing_key=_path("keys", keys, "sealing", "keys/sealing.pem", base),
        server=server,
        federation=_typed("federation", _section(raw, "federation"), FederationConfig),
        ledger=_typed("ledger", _section(raw, "ledger"), LedgerConfig),
        metrics=_metrics(_section(raw, "metrics")),
        dashboard=_dashboard(_section(raw, "dashboard")),
        log_level=level,
        log_format=fmt,
        expected_children=tuple(c.node_id for c in expected),
        auditors=_auditors(raw.get("auditors"), base),
        expected=expected,
        intake=_intake(_section(raw, "intake"), server),
        deadlines=_deadlines(raw.get("deadlines")),
        workflow=_workflow(_section(raw, "workflow")),
        routing=_routing(raw.get("routing"), node_id),
    )


def _deadlines(raw: object) -> DeadlinePolicy:
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"node.yaml: 'deadlines' must be a mapping, found {type(raw).__name__}")
    try:
        return DeadlinePolicy.from_mapping(raw)
    except ConfigError as e:
        raise ConfigError(f"node.yaml: {e}") from e


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
  sealing: keys/sealing.pem    # X25519: opens confidential reporters' identities (0600)

server:
  listen: {listen}  # mutual-TLS gRPC for linked peers only
  # enrollment_listen: "HOST:PORT"  # `link join` (TLS, no client certificate); default:
  #                                 # the port after listen's; "" turns joins off
  max_message_bytes: 4194304   # larger messages are refused with RESOURCE_EXHAUSTED
  grace_seconds: 5             # how long SIGTERM waits for in-flight calls

federation:
  poll_interval_ms: 10000      # an idle link also rechecks its outbox this often (rows
                               # another process queues wake it anyway: on PostgreSQL at
                               # their commit, on SQLite within 10 ms)
  window: 1024                 # envelopes in flight per link before waiting for acks
  batch: 256                   # envelopes committed per database transaction
  reconnect_min_ms: 200        # backoff after a broken link, doubling, with jitter ...
  reconnect_max_ms: 30000      # ... up to this
  keepalive_seconds: 30        # HTTP/2 pings keep NAT mappings open

ledger:
  checkpoint_interval_seconds: 60  # `serve` signs a checkpoint this often if the ledger grew

# Service-level deadlines in working days (docs/complaint-lifecycle.md).
deadlines:
  verify: 3                        # from receipt, or the reporter's reply after a hold
  first_follow_up: 5               # from the latest disposition
  resolve: 14                      # pengaduan, whistleblowing
  resolve_needs_inspection: 60     # berkadar pengawasan
  resolve_aspirasi: 5
  resolve_permintaan_informasi: 5
  auto_close: 10                   # reply period after resolved, then the system closes

workflow:
  auto_escalate: false             # true: the scheduler escalates overdue complaints
  scheduler_interval_seconds: 300  # how often `serve` runs it (also: `complaint tick`)
  collective_leave: true           # cuti bersama counts as a holiday
  holidays_extra: []               # YYYY-MM-DD dates, e.g. regional holidays
  holidays_removed: []             # packaged holidays this office works

metrics:
  listen: ""                   # Prometheus /metrics over HTTP, e.g. "127.0.0.1:9464"; "" = off

# The read-only web dashboard (docs/reports.md): figures per child, overdue complaints,
# a complaint's trail with ledger proofs. Off while absent. Loopback needs no token; any
# other address needs token_sha256 (`lapor-node report dashboard-token`).
# dashboard:
#   listen: "127.0.0.1:7480"
#   token_sha256: "<64 hex digits>"

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

# Complaints from channel gateways (web, SMS 1708, Twitter, mobile apps, integrated
# systems) over TLS with this node's certificate (docs/intake.md). Off while absent.
# intake:
#   listen: "0.0.0.0:7466"
#   max_attachment_bytes: 10485760  # one file (also walk-ins); more: RESOURCE_EXHAUSTED
#   max_total_bytes: 26214400       # all files of one complaint together
#   gateways:                       # the lines `lapor-node intake gateway add` prints

# Routing rules (docs/routing.md): which child a complaint is disposed to, by region code
# prefix, category and classification. The most specific matching rule wins (a rule with
# classifications, then one with categories, then the longer region prefix); ties are refused.
# Try one with `lapor-node complaint route TRACKING_ID`. auto: dispose on verify/accept.
# routing:
#   auto: false
#   rules:
#     - region: "64.02"               # quote region codes
#       to: id-64-02
#     - region: "64"
#       categories: [kesehatan]
#       to: id-64-dinkes
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
