"""The validated node.yaml as the rest of the code sees it: frozen values, no raw YAML.

These classes carry no validation of their own: node.config.schema checks a node.yaml
and builds them. Their field defaults are the defaults of node.yaml (the schema reads
them from here, so each default is written once). Importing this module is cheap: it
does not load pydantic.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from node.ids import NodeId
from node.workflow.deadlines import DeadlinePolicy
from node.workflow.routing import Rule

__all__ = [
    "GATEWAY_CHANNELS",
    "AuditorConfig",
    "DashboardConfig",
    "ExpectedChild",
    "FederationConfig",
    "GatewayConfig",
    "IntakeConfig",
    "LedgerConfig",
    "MetricsConfig",
    "NodeConfig",
    "RoutingConfig",
    "ServerConfig",
    "ThrottleConfig",
    "TransparencyConfig",
    "WitnessConfig",
    "WitnessTarget",
    "WitnessedLog",
    "WorkflowConfig",
    "is_loopback",
    "port_after",
]

# Channels a gateway may submit for; walk-ins are typed in by staff (`complaint submit`).
GATEWAY_CHANNELS = ("web", "sms_1708", "twitter", "mobile_app", "api")


def port_after(address: str) -> str:
    """HOST:PORT+1 of HOST:PORT (where a node serves joins by default); "" if none."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) >= 65535:
        return ""
    return f"{host}:{int(port) + 1}"


def is_loopback(host: str) -> bool:
    """True for localhost and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerConfig:
    listen: str = "127.0.0.1:7400"
    max_message_bytes: int = 4 * 1024 * 1024
    grace_seconds: float = 5.0
    # The enrollment port: TLS with this node's certificate and no client certificate, for
    # `link join` (node.federation.enrollment_port). None: the port after `listen`'s, on the
    # same host; "": off.
    enrollment_listen: str | None = None

    @property
    def enrollment_address(self) -> str:
        """Where joins are served ("" when off)."""
        if self.enrollment_listen is not None:
            return self.enrollment_listen
        return port_after(self.listen)


@dataclass(frozen=True)
class FederationConfig:
    poll_interval_ms: int = 10000
    window: int = 1024
    batch: int = 256
    reconnect_min_ms: int = 200
    reconnect_max_ms: int = 30_000
    connect_timeout_ms: int = 5000
    keepalive_seconds: int = 30
    group_commit: bool = True


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
class DashboardConfig(_Listener):
    """The read-only web dashboard (node.web, docs/reports.md); off unless `listen` is set.
    A `listen` that is not a loopback address needs `token_sha256` (of the bearer token
    `lapor-node report dashboard-token` makes); on loopback the token is optional."""

    token_sha256: bytes | None = None


@dataclass(frozen=True)
class TransparencyConfig(_Listener):
    """The ledger as C2SP tlog-tiles over HTTP (node.transparency); off unless `listen` is
    set; HTTPS with the node's TLS certificate when `tls` is true."""

    tls: bool = False


@dataclass(frozen=True)
class WitnessedLog:
    """A log this node witnesses besides its linked peers': its origin and note vkey."""

    origin: str
    vkey: str


@dataclass(frozen=True)
class WitnessTarget:
    """A C2SP witness this node submits its checkpoints to (node.services.cosigning)."""

    name: str
    vkey: str  # the witness's cosigner vkey (type 0x04)
    url: str  # its submission prefix; add-checkpoint is POSTed to <url>/add-checkpoint


@dataclass(frozen=True)
class WitnessConfig:
    """The `witness:` section: the tlog-witness cosigner this node runs (decision 0026)
    and the witnesses it asks to cosign its own checkpoints."""

    key: Path | None = None  # Ed25519 cosigner key; made on first use (mode 0600)
    witness_peers: bool = True  # also witness the logs of the linked peers
    logs: tuple[WitnessedLog, ...] = ()
    submit_to: tuple[WitnessTarget, ...] = ()
    submit_interval_seconds: float = 60.0
    timeout_seconds: float = 10.0


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
class ThrottleConfig:
    """The `throttle:` section: failed join and intake token attempts per source address
    (node.federation.throttle)."""

    free_failures: int = 3
    delay_seconds: float = 0.5
    max_delay_seconds: float = 8.0
    refuse_after: int = 20
    forget_seconds: float = 600.0
    max_sources: int = 10_000


@dataclass(frozen=True)
class WorkflowConfig:
    """The `workflow:` section: the complaint scheduler (node.services.scheduler) and the
    working-day calendar's corrections to the packaged holidays."""

    auto_escalate: bool = False  # escalate overdue complaints without an operator
    scheduler_interval_seconds: float = 300.0  # how often `serve` runs the scheduler
    collective_leave: bool = True  # cuti bersama counts as a holiday
    holidays_extra: tuple[dt.date, ...] = ()  # e.g. regional holidays
    holidays_removed: tuple[dt.date, ...] = ()  # packaged dates this office works


@dataclass(frozen=True)
class RoutingConfig:
    """The `routing:` section: rules that say which child a complaint is disposed to
    (node.workflow.routing, docs/routing.md), and whether to apply them by themselves."""

    auto: bool = False  # dispose by the rules when a complaint is verified or accepted
    rules: tuple[Rule, ...] = ()


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
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    transparency: TransparencyConfig = field(default_factory=TransparencyConfig)
    log_level: str = "info"
    log_format: str = "json"
    expected_children: tuple[NodeId, ...] = ()
    auditors: tuple[AuditorConfig, ...] = ()
    expected: tuple[ExpectedChild, ...] = ()
    intake: IntakeConfig = field(default_factory=IntakeConfig)
    deadlines: DeadlinePolicy = field(default_factory=DeadlinePolicy)
    workflow: WorkflowConfig = field(default_factory=WorkflowConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    witness: WitnessConfig = field(default_factory=WitnessConfig)
    throttle: ThrottleConfig = field(default_factory=ThrottleConfig)
    # X25519 key that opens identities sealed to this node (node.crypto.sealing); made by
    # `init`, or on first use for a node made before it existed.
    sealing_key: Path | None = None

    @property
    def base_dir(self) -> Path:
        return self.path.parent
