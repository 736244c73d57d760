"""The sections of node.yaml as pydantic models (node.config.schema assembles them).

Each field carries its default (read from node.config.model, so it is written once) and
its description, which is the key's comment in the rendered node.yaml. Validators raise
`problem(...)`, whose text node.config.loader turns into one line naming the key path.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import fields
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import model_validator as _model_validator
from pydantic_core import PydanticCustomError

from node.config import model as m
from node.errors import ConfigError, ValidationError
from node.ids import parse_node_id
from node.ledger.cosignature import parse_vkey as parse_cosigner_vkey
from node.ledger.note import parse_vkey as parse_note_vkey
from node.workflow.calendar import INDONESIAN_TIME_ZONES
from node.workflow.deadlines import DeadlinePolicy

__all__ = [
    "Dashboard",
    "Database",
    "Deadlines",
    "Federation",
    "Keys",
    "Ledger",
    "Logging",
    "Metrics",
    "Node",
    "Section",
    "Server",
    "Throttle",
    "Transparency",
    "Witness",
    "WitnessLog",
    "WitnessTarget",
    "Workflow",
    "default_of",
    "file_path",
    "key",
    "listen_address",
    "positive_int",
    "problem",
]


_HEX64 = re.compile(r"[0-9a-f]{64}")


def problem(message: str, kind: str = "config") -> PydanticCustomError:
    """A refusal in the schema's own words.

    kind "config": the message follows the key path after a space ("must be ...");
    "config_at": after a colon ("invalid node id ..."); "config_line": it is the whole line.
    """
    return PydanticCustomError(kind, "{message}", {"message": message})


def default_of(cls: type[Any], name: str) -> Any:
    """The default of dataclass `cls`'s field `name` (node.config.model holds them)."""
    return next(f.default for f in fields(cls) if f.name == name)


def _host_port(value: object, example: str) -> str:
    """HOST:PORT with a port in 1..65535; IPv6 hosts in brackets ([::1]:7400)."""
    expected = f"must be HOST:PORT (e.g. {example})"
    if not isinstance(value, str):
        raise problem(f"{expected}, found {value!r}")
    host, sep, port = value.rpartition(":")
    bare = host.strip("[]")
    if not sep or not bare or not port.isdigit() or not 0 < int(port) < 65536:
        raise problem(f"{expected}, found {value!r}")
    if ":" in bare and not (host.startswith("[") and host.endswith("]")):
        raise problem(f"{expected}, with an IPv6 host in brackets ([::1]:7400), found {value!r}")
    return value


def listen_address(value: object, example: str) -> str:
    """A side service's listen key: HOST:PORT, or "" (or nothing) to leave it off."""
    return "" if value in (None, "") else _host_port(value, example)


def _listen_key(example: str) -> Any:
    """A side service's `listen` validator (listen_address, `example` in its message)."""
    return field_validator("listen", mode="before")(lambda value: listen_address(value, example))


class Section(BaseModel):
    """A mapping of node.yaml: unknown keys refused, values never coerced from strings.

    `comment` is printed above the section in the rendered node.yaml; `example`, when
    set, is printed commented out instead of the section (a section that is off unless
    written).
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)
    shape: ClassVar[str] = "a mapping"
    comment: ClassVar[str] = ""
    example: ClassVar[str] = ""

    @_model_validator(mode="before")
    @classmethod
    def _mapping(cls, value: object) -> object:
        return cls.as_mapping(value)

    @classmethod
    def as_mapping(cls, value: object) -> object:
        """`value` as this section's mapping (None, an empty section, is {})."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            found = type(value).__name__
            raise PydanticCustomError(
                "not_mapping",
                "must be {shape}, found {found}",
                {"shape": cls.shape, "found": found, "value": repr(value)},
            )
        return value


def key(
    default: Any,
    text: str,
    *,
    gt: int | None = None,
    validate_default: bool | None = None,
    **extra: Any,
) -> Any:
    """A node.yaml key: its default (... when required), `text` its comment in node.yaml;
    extra: rendering hints (note: lines above the key; plain: a string printed unquoted;
    commented: printed commented out, with this value)."""
    return Field(
        default,
        gt=gt,
        description=text,
        json_schema_extra=extra or None,
        validate_default=validate_default,
    )


class Node(Section):
    id: str = key(..., "Kemendagri region code slug: id, id-64, id-64-02, ...")
    name: str = key(..., "the unit's name, shown to peers and in reports")
    timezone: str = key("Asia/Jakarta", "working days and deadlines are counted in this zone")

    @field_validator("id")
    @classmethod
    def _node_id(cls, value: str) -> str:
        try:
            return parse_node_id(value)
        except ValidationError as e:
            raise problem(str(e), "config_at") from e

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: object) -> object:
        if not isinstance(value, str) or not value.strip():
            raise problem("must be the unit's name, e.g. 'Provinsi Kalimantan Timur'")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as e:  # OSError: "America", too long
            raise problem(
                f"unknown time zone {value!r}; expected an IANA name such as "
                f"{', '.join(INDONESIAN_TIME_ZONES)}",
                "config_at",
            ) from e
        return value


class Database(Section):
    url: str = key(
        "sqlite:///node.db",
        "",
        note=(
            "Embedded default. For production: postgresql+psycopg://user@host:5432/dbname;\n"
            "several hosts (a Patroni cluster, docs/deployment.md section 8):\n"
            "postgresql+psycopg://user@/dbname?host=db1:5432&host=db2:5432"
            "&target_session_attrs=read-write"
        ),
    )

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, value: object) -> object:
        if not isinstance(value, str) or not value:
            raise problem(f"must be a SQLAlchemy URL, found {value!r}")
        netloc = value.partition("://")[2].partition("/")[0]
        if value.startswith("postgresql") and "," in netloc:
            raise problem(
                "lists several hosts before the database name, which SQLAlchemy cannot "
                "read; name them in the query instead: postgresql+psycopg://user@/dbname"
                "?host=db1:5432&host=db2:5432&target_session_attrs=read-write"
            )
        return value


def file_path(value: object) -> object:
    if not isinstance(value, str) or not value.strip():
        raise problem(f"must be a file path, found {value!r}")
    return value


class Keys(Section):
    signing: str = key(
        "keys/signing.pem", "Ed25519: envelopes and checkpoints (mode 0600)", plain=True
    )
    tls_key: str = key("keys/tls.key", "ECDSA P-256 TLS key (mode 0600)", plain=True)
    tls_cert: str = key(
        "keys/tls.crt", "self-signed; SAN lapor-node://<id> and <id>.lapor-node", plain=True
    )
    sealing: str = key(
        "keys/sealing.pem", "X25519: opens confidential reporters' identities (0600)", plain=True
    )

    _paths = field_validator("signing", "tls_key", "tls_cert", "sealing", mode="before")(file_path)


class Server(Section):
    listen: str = key(default_of(m.ServerConfig, "listen"), "mutual-TLS gRPC for linked peers only")
    enrollment_listen: str | None = key(
        default_of(m.ServerConfig, "enrollment_listen"),
        "",
        note="Where children run `lapor-node link join` (TLS with this node's certificate, "
        'no client certificate). Default: the port after listen\'s (here {next}); "" '
        "turns joins off. Open it in the firewall while regencies are joining.",
        commented="{next}",
    )
    max_message_bytes: int = key(
        default_of(m.ServerConfig, "max_message_bytes"),
        "larger messages are refused with RESOURCE_EXHAUSTED",
        gt=0,
    )
    grace_seconds: float = key(
        default_of(m.ServerConfig, "grace_seconds"),
        "how long SIGTERM waits for in-flight calls",
        gt=0,
    )

    @field_validator("listen", mode="before")
    @classmethod
    def _listen(cls, value: object) -> str:
        if not isinstance(value, str):
            raise problem(f"must be str (HOST:PORT, e.g. 127.0.0.1:7400), found {value!r}")
        return _host_port(value, "127.0.0.1:7400")

    @field_validator("enrollment_listen", mode="before")
    @classmethod
    def _enrollment(cls, value: object) -> str | None:
        return None if value is None else listen_address(value, "127.0.0.1:7465")

    @_model_validator(mode="after")
    def _distinct(self) -> Server:
        if self.enrollment_listen and self.enrollment_listen == self.listen:
            raise problem(
                "server.enrollment_listen must differ from server.listen (both are "
                f'{self.listen!r}); use another port, or "" to turn joins off',
                "config_line",
            )
        return self


def positive_int(cls: type[Any], name: str, doc: str, **extra: Any) -> Any:
    return key(default_of(cls, name), doc, **extra, gt=0)


class Federation(Section):
    poll_interval_ms: int = positive_int(
        m.FederationConfig,
        "poll_interval_ms",
        "an idle link also rechecks its outbox this often (rows another process queues wake "
        "it anyway: on PostgreSQL at their commit, on SQLite within 10 ms)",
    )
    window: int = positive_int(
        m.FederationConfig, "window", "envelopes in flight per link before waiting for acks"
    )
    batch: int = positive_int(
        m.FederationConfig, "batch", "envelopes committed per database transaction"
    )
    reconnect_min_ms: int = positive_int(
        m.FederationConfig,
        "reconnect_min_ms",
        "backoff after a broken link, doubling, with jitter ...",
    )
    reconnect_max_ms: int = positive_int(m.FederationConfig, "reconnect_max_ms", "... up to this")
    connect_timeout_ms: int = positive_int(
        m.FederationConfig, "connect_timeout_ms", "one dial's wait for the parent's TCP and TLS"
    )
    keepalive_seconds: int = positive_int(
        m.FederationConfig,
        "keepalive_seconds",
        "K: liveness of a link; heartbeat every K/3, a peer silent for 2K/3 is cut off, "
        "HTTP/2 pings every K/2 (time out at K/3) keep NAT mappings open",
    )
    group_commit: bool = key(
        default_of(m.FederationConfig, "group_commit"),
        "true: the batches and Acks of many links commit in one transaction "
        "(node.federation.group_commit); false: one transaction each",
    )


class Ledger(Section):
    checkpoint_interval_seconds: float = key(
        default_of(m.LedgerConfig, "checkpoint_interval_seconds"),
        "`serve` signs a checkpoint this often if the ledger grew",
        gt=0,
    )


class Deadlines(Section):
    comment: ClassVar[str] = (
        "Service-level deadlines in working days (docs/complaint-lifecycle.md): Monday to "
        "Friday minus Indonesia's national holidays and collective leave (from 2020, by the "
        "holidays package)."
    )
    verify: int = positive_int(
        DeadlinePolicy, "verify", "from receipt, or the reporter's reply after a hold"
    )
    first_follow_up: int = positive_int(
        DeadlinePolicy, "first_follow_up", "from the latest disposition"
    )
    resolve: int = positive_int(DeadlinePolicy, "resolve", "pengaduan, whistleblowing")
    resolve_needs_inspection: int = positive_int(
        DeadlinePolicy, "resolve_needs_inspection", "berkadar pengawasan"
    )
    resolve_aspirasi: int = positive_int(DeadlinePolicy, "resolve_aspirasi", "suggestions")
    resolve_permintaan_informasi: int = positive_int(
        DeadlinePolicy, "resolve_permintaan_informasi", "requests for information"
    )
    auto_close: int = positive_int(
        DeadlinePolicy, "auto_close", "reply period after resolved, then the system closes"
    )

    @_model_validator(mode="before")
    @classmethod
    def _mapping(cls, value: object) -> object:
        value = cls.as_mapping(value)
        try:  # the workflow module's own rules and wording (one key per message)
            DeadlinePolicy.from_mapping(value)  # type: ignore[arg-type]
        except ConfigError as e:
            raise problem(str(e), "config_line") from e
        return value


def _dates(value: object) -> object:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(d, dt.date) and not isinstance(d, dt.datetime) for d in value
    ):
        raise problem(f"must be a list of dates (YYYY-MM-DD), found {value!r}")
    return tuple(value)


class Workflow(Section):
    auto_escalate: bool = key(
        default_of(m.WorkflowConfig, "auto_escalate"),
        "true: the scheduler escalates overdue complaints",
    )
    scheduler_interval_seconds: float = key(
        default_of(m.WorkflowConfig, "scheduler_interval_seconds"),
        "how often `serve` runs it (also: `complaint tick`)",
        gt=0,
    )
    collective_leave: bool = key(
        default_of(m.WorkflowConfig, "collective_leave"), "cuti bersama counts as a holiday"
    )
    holidays_extra: tuple[dt.date, ...] = key((), "YYYY-MM-DD dates, e.g. regional holidays")
    holidays_removed: tuple[dt.date, ...] = key((), "packaged holidays this office works")

    _date_lists = field_validator("holidays_extra", "holidays_removed", mode="before")(_dates)


class Metrics(Section):
    comment: ClassVar[str] = (
        "Prometheus /metrics over plain HTTP (no TLS, no authentication): keep it on "
        'loopback or a monitoring network, e.g. "127.0.0.1:9464".'
    )
    listen: str = key(default_of(m.MetricsConfig, "listen"), 'HOST:PORT; "" turns it off')

    _listen = _listen_key("127.0.0.1:9464")


class Dashboard(Section):
    comment: ClassVar[str] = (
        "The read-only web dashboard (docs/reports.md): each child's follow-up and resolved "
        "shares, who is connected, what is overdue, complaints per month, a complaint's "
        "trail with its ledger proofs. Off while absent. On a loopback address anyone on "
        "this machine may look; any other address needs token_sha256 (`lapor-node report "
        "dashboard-token` prints a token and this line). Plain HTTP: off loopback, put TLS "
        "in front of it."
    )
    example: ClassVar[str] = (
        'dashboard:\n  listen: "127.0.0.1:7480"\n  token_sha256: "<64 hex digits>"\n'
    )
    listen: str = key(default_of(m.DashboardConfig, "listen"), 'HOST:PORT; "" turns it off')
    token_sha256: str | None = key(
        default_of(m.DashboardConfig, "token_sha256"), "of the token `report dashboard-token` made"
    )

    _listen = _listen_key("127.0.0.1:7480")

    @field_validator("token_sha256", mode="before")
    @classmethod
    def _token(cls, value: object) -> object:
        if value is not None and not (isinstance(value, str) and _HEX64.fullmatch(value)):
            raise problem(  # not echoed: it may be the token itself, pasted by mistake
                "must be 64 lowercase hex digits (the line `lapor-node report "
                "dashboard-token` prints), never the token itself"
            )
        return value

    @_model_validator(mode="after")
    def _token_off_loopback(self) -> Dashboard:
        host = self.listen.rpartition(":")[0].strip("[]")
        if self.listen and self.token_sha256 is None and not m.is_loopback(host):
            raise problem(
                f"dashboard.listen {self.listen!r} is not a loopback address, so the "
                "dashboard needs a token: run `lapor-node report dashboard-token` and add "
                "its token_sha256 line under dashboard:, or listen on 127.0.0.1",
                "config_line",
            )
        return self


class Transparency(Section):
    comment: ClassVar[str] = (
        "The ledger as C2SP tlog-tiles (docs/auditor-guide.md): checkpoint, hash tiles and "
        "entry bundles, read-only and public (no personal data is in the ledger), for any "
        "tlog client to fetch and verify. Off while absent. Plain HTTP behind a proxy, or "
        "HTTPS with this node's TLS certificate (tls: true)."
    )
    example: ClassVar[str] = 'transparency:\n  listen: "127.0.0.1:7490"\n  tls: false\n'
    listen: str = key(default_of(m.TransparencyConfig, "listen"), 'HOST:PORT; "" turns it off')
    tls: bool = key(
        default_of(m.TransparencyConfig, "tls"), "HTTPS with keys.tls_cert (else plain HTTP)"
    )

    _listen = _listen_key("127.0.0.1:7490")


class Throttle(Section):
    comment: ClassVar[str] = (
        "Failed join attempts (enrollment port) and unknown gateway tokens (intake port), "
        "per source address: after free_failures, each attempt waits, doubling per failure; "
        "after refuse_after failures the address is refused (RESOURCE_EXHAUSTED, saying "
        "when to retry) until forget_seconds after its last failure. Addresses that never "
        "fail are never slowed."
    )
    free_failures: int = positive_int(
        m.ThrottleConfig, "free_failures", "failed attempts from one address before any wait"
    )
    delay_seconds: float = key(
        default_of(m.ThrottleConfig, "delay_seconds"),
        "the first wait, doubling per failure ...",
        gt=0,
    )
    max_delay_seconds: float = key(
        default_of(m.ThrottleConfig, "max_delay_seconds"), "... up to this", gt=0
    )
    refuse_after: int = positive_int(
        m.ThrottleConfig, "refuse_after", "failures after which the address is refused ..."
    )
    forget_seconds: float = key(
        default_of(m.ThrottleConfig, "forget_seconds"),
        "... until this long after its last failure",
        gt=0,
    )
    max_sources: int = positive_int(
        m.ThrottleConfig, "max_sources", "addresses remembered (the oldest forgotten first)"
    )


class Logging(Section):
    level: Literal["debug", "info", "warning", "error"] = key(
        default_of(m.NodeConfig, "log_level"), "debug | info | warning | error", plain=True
    )
    format: Literal["json", "console"] = key(
        default_of(m.NodeConfig, "log_format"), "json (structlog) | console", plain=True
    )


# --- witness (decision 0026) ------------------------------------------------------------

_WITNESS_URL = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?")


def _tuple_of(shape: str) -> Any:
    def check(value: object) -> object:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise problem(f"must be a list of {shape}")
        return tuple(value)

    return check


class WitnessLog(Section):
    shape: ClassVar[str] = "a mapping with origin and vkey"
    origin: str = key(..., "the log's checkpoint origin line")
    vkey: str = key(..., "the log's note verifier key, <name>+<id>+<key>")

    @_model_validator(mode="after")
    def _check(self) -> WitnessLog:
        try:
            parse_note_vkey(self.vkey)
        except ValidationError as e:
            raise problem(f"vkey of {self.origin!r} is not a note verifier key: {e}") from e
        if not self.origin.strip() or len(self.origin) > 255 or any(c < " " for c in self.origin):
            raise problem(
                f"origin must be one line of at most 255 characters, found {self.origin!r}"
            )
        return self


class WitnessTarget(Section):
    shape: ClassVar[str] = "a mapping with name, vkey and url"
    name: str = key(..., "a label for logs and errors")
    vkey: str = key(..., "the witness's cosigner verifier key (type 0x04)")
    url: str = key(..., "its submission prefix (http:// or https://)")

    @_model_validator(mode="after")
    def _check(self) -> WitnessTarget:
        try:
            cosigner = parse_cosigner_vkey(self.vkey)
        except ValidationError as e:
            raise problem(f"vkey of witness {self.name!r}: {e}") from e
        if len(cosigner.name) > 255:
            raise problem(f"vkey of witness {self.name!r}: its name is over 255 characters")
        if not _WITNESS_URL.fullmatch(self.url):
            raise problem(
                f"url of witness {self.name!r} must be http(s)://HOST[/PREFIX], found {self.url!r}"
            )
        return self


class Witness(Section):
    comment: ClassVar[str] = (
        "C2SP witnessing (docs/auditor-guide.md, decision 0026). This node cosigns the "
        "checkpoints of its linked peers (and of the logs listed here) over the tlog-witness "
        "add-checkpoint protocol, with its own cosigner key; and it submits its own "
        "checkpoints to the witnesses under submit_to and serves their cosignatures with its "
        "checkpoint. `lapor-node witness key` prints this node's cosigner vkey."
    )
    example: ClassVar[str] = (
        "witness:\n"
        "  cosigner_key: keys/witness.pem\n"
        "  witness_peers: true\n"
        "  logs:\n"
        '    - {origin: "example.org/log", vkey: "example.org/log+0123abcd+AQ..."}\n'
        "  submit_to:\n"
        '    - {name: ombudsman, vkey: "ombudsman.go.id/w1+89abcdef+BA...", '
        'url: "https://witness.ombudsman.go.id"}\n'
        "  submit_interval_seconds: 60\n"
        "  timeout_seconds: 10\n"
    )
    cosigner_key: str = key(
        "keys/witness.pem", "Ed25519 cosigner key (mode 0600), made on first use", plain=True
    )
    witness_peers: bool = key(
        default_of(m.WitnessConfig, "witness_peers"), "cosign the linked peers' logs"
    )
    logs: tuple[WitnessLog, ...] = key((), "other logs to witness: {origin, vkey} each")
    submit_to: tuple[WitnessTarget, ...] = key((), "witnesses to ask: {name, vkey, url} each")
    submit_interval_seconds: float = key(
        default_of(m.WitnessConfig, "submit_interval_seconds"),
        "how often the latest checkpoint is offered to them",
        gt=0,
    )
    timeout_seconds: float = key(
        default_of(m.WitnessConfig, "timeout_seconds"), "per request", gt=0
    )

    _key_path = field_validator("cosigner_key", mode="before")(file_path)
    _logs = field_validator("logs", mode="before")(_tuple_of("{origin, vkey}"))
    _targets = field_validator("submit_to", mode="before")(_tuple_of("{name, vkey, url}"))

    @_model_validator(mode="after")
    def _unique(self) -> Witness:
        origins = [log.origin for log in self.logs]
        if len(set(origins)) != len(origins):
            raise problem("witness.logs lists an origin twice", "config_line")
        names = [t.name for t in self.submit_to]
        if len(set(names)) != len(names):
            raise problem("witness.submit_to lists a name twice", "config_line")
        return self
