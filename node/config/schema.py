"""node.yaml's schema: every section and key, its type, default and meaning, in one place.

The pydantic models below are the single source of truth for node.yaml: load_config
validates a file against them, node.config.template renders the commented node.yaml from
their field descriptions and examples, and the committed node.yaml is that rendering.

Invariants:
1. A node.yaml is read once, by node.config.loader against NodeYaml; the rest of the
   code receives a frozen NodeConfig (node.config.model) and never sees raw YAML.
2. Every refusal is one line per problem, naming the key path and what is expected
   ("node.yaml: server.listen must be HOST:PORT (e.g. 127.0.0.1:7400), found ..."), never
   a raw pydantic report, and no partial config is returned.
3. Every relative path is relative to the folder that holds the file, so a data directory
   can be moved or copied whole.
4. Each default is written once: the schema reads those node.config.model's dataclasses
   have from there (default_of), and holds the rest (paths, database URL, time zone).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator
from pydantic import model_validator as _model_validator

from node.config import model as m
from node.config.sections import (
    Dashboard,
    Database,
    Deadlines,
    Federation,
    Keys,
    Ledger,
    Logging,
    Metrics,
    Node,
    Section,
    Server,
    Throttle,
    Transparency,
    Witness,
    Workflow,
    default_of,
    file_path,
    key,
    listen_address,
    positive_int,
    problem,
)
from node.errors import ValidationError
from node.ids import parse_node_id

__all__ = ["SECTIONS", "Auditor", "Gateway", "Intake", "NodeYaml", "Routing", "Section"]

_GATEWAY_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


_CHILDREN_SHAPE = 'a list of node ids or {id: id-64-02, name: "Kabupaten Kutai Kartanegara"}'


def _expected(value: object) -> tuple[m.ExpectedChild, ...]:
    """`expected_children`: node ids, or {id: ..., name: ...} mappings, or a mix."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise problem(f"expected_children must be {_CHILDREN_SHAPE}", "config_line")
    children: list[m.ExpectedChild] = []
    for n, item in enumerate(value):
        where = f"expected_children[{n}]"
        name: object = None
        if isinstance(item, dict):
            unknown = sorted(set(item) - {"id", "name"})
            if unknown:
                raise problem(f"unknown key(s) in '{where}': {', '.join(unknown)}", "config_line")
            node_id, name = item.get("id"), item.get("name")
            if name is not None and (not isinstance(name, str) or not name.strip()):
                raise problem(f"{where}.name must be the unit's name", "config_line")
        else:
            node_id = item
        try:
            child = m.ExpectedChild(parse_node_id(node_id), name)  # type: ignore[arg-type]
        except ValidationError as e:
            raise problem(f"expected_children: {e}", "config_line") from e
        if any(c.node_id == child.node_id for c in children):
            raise problem(f"{where}: {child.node_id} is listed twice", "config_line")
        children.append(child)
    return tuple(children)


class Auditor(Section):
    shape: ClassVar[str] = "a mapping with name and certificate"
    example: ClassVar[str] = (
        '  - name: "Ombudsman RI"\n    certificate: auditors/ombudsman-ri.crt\n'
    )
    name: str = key(..., "the auditor's name, e.g. 'Ombudsman RI'")
    certificate: str = key(
        "", "the file `lapor-node audit identity` made for them", validate_default=True
    )

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: object) -> object:
        if not isinstance(value, str) or not value.strip():
            raise problem("must be the auditor's name, e.g. 'Ombudsman RI'")
        return value

    _path = field_validator("certificate", mode="before")(file_path)


def _list(shape: str) -> Any:
    def check(value: object) -> object:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise problem(f"must be a list of {shape}")
        return tuple(value)

    return check


class Gateway(Section):
    shape: ClassVar[str] = (
        "a mapping with name, channels and token_sha256 (the lines `lapor-node intake "
        "gateway add` printed)"
    )
    name: str = key(..., "a lowercase slug such as 'sms-1708-kaltim'")
    channels: tuple[str, ...] = key(..., f"some of {', '.join(m.GATEWAY_CHANNELS)}")
    token_sha256: str = key(..., "the SHA-256 of the gateway's token, never the token")

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: object) -> object:
        if not isinstance(value, str) or not _GATEWAY_NAME.fullmatch(value):
            raise problem(f"must be a lowercase slug such as 'sms-1708-kaltim', found {value!r}")
        return value

    @field_validator("channels", mode="before")
    @classmethod
    def _channels(cls, value: object) -> object:
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(c, str) and c in m.GATEWAY_CHANNELS for c in value)
        ):
            raise problem(
                f"must be a non-empty list of {', '.join(m.GATEWAY_CHANNELS)}; found {value!r}"
            )
        return tuple(dict.fromkeys(value))

    @field_validator("token_sha256", mode="before")
    @classmethod
    def _digest(cls, value: object) -> object:
        try:
            digest = bytes.fromhex(value) if isinstance(value, str) else b""
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise problem(
                "must be 64 hex digits (the SHA-256 of the gateway's token, never the token itself)"
            )
        return value


class Intake(Section):
    comment: ClassVar[str] = (
        "Complaints from channel gateways (the web form, the SMS 1708 bridge, Twitter "
        "@lapor1708, mobile apps, integrated systems): TLS with this node's certificate, "
        "each gateway with its own bearer token (docs/intake.md). Off while this section is "
        'absent or listen is "". Issue a gateway with `lapor-node intake gateway add NAME '
        "--channel sms_1708 --config node.yaml`, paste the lines it prints under gateways, "
        "and restart `serve`."
    )
    example: ClassVar[str] = (
        "intake:\n"
        '  listen: "0.0.0.0:7466"\n'
        "  max_attachment_bytes: 10485760   # one file (also walk-ins); more: RESOURCE_EXHAUSTED\n"
        "  max_total_bytes: 26214400        # all files of one complaint together\n"
        "  gateways:\n"
        '    - name: "sms-1708-kaltim"\n'
        "      channels: [sms_1708]\n"
        '      token_sha256: "..."          # printed by `intake gateway add`; never the token\n'
    )
    listen: str = key(default_of(m.IntakeConfig, "listen"), 'HOST:PORT; "" turns it off')
    max_attachment_bytes: int = positive_int(
        m.IntakeConfig,
        "max_attachment_bytes",
        "one file (also walk-ins); more: RESOURCE_EXHAUSTED",
    )
    max_total_bytes: int = positive_int(
        m.IntakeConfig, "max_total_bytes", "all files of one complaint together"
    )
    gateways: tuple[Gateway, ...] = key((), "the lines `intake gateway add` prints")

    @field_validator("listen", mode="before")
    @classmethod
    def _listen(cls, value: object) -> str:
        return listen_address(value, "0.0.0.0:7466")

    _gateway_list = field_validator("gateways", mode="before")(
        _list("{name, channels, token_sha256}")
    )

    @_model_validator(mode="after")
    def _consistent(self) -> Intake:
        if self.max_total_bytes < self.max_attachment_bytes:
            raise problem(
                "intake.max_total_bytes must be at least intake.max_attachment_bytes",
                "config_line",
            )
        for n, gateway in enumerate(self.gateways):
            for other in self.gateways[:n]:
                if other.name == gateway.name:
                    raise problem(f"gateway {gateway.name!r} is listed twice", "config_line")
                if other.token_sha256 == gateway.token_sha256:
                    raise problem(
                        f"gateways {other.name!r} and {gateway.name!r} have the same token; "
                        "issue each its own with `lapor-node intake gateway add`",
                        "config_line",
                    )
        return self


class Routing(Section):
    comment: ClassVar[str] = (
        "Routing rules (docs/routing.md): which child a complaint is disposed to, by its "
        'region code (Kemendagri, matched on whole segments: "64.02" covers 64.02 and '
        "64.02.05, not 64.72) and its category or classification. The most specific matching "
        "rule wins: a rule that names classifications, then one that names categories, then "
        "the longer region prefix. Two equally specific rules that could match one complaint "
        "are refused when this loads. `lapor-node complaint route TRACKING_ID` shows where a "
        "complaint would go and why; `lapor-node complaint dispose TRACKING_ID [--to CHILD]` "
        "sends it there (or to CHILD). auto: true disposes by the rules when a complaint is "
        "verified here or accepted from the parent; one that no rule matches stays here, "
        "with the reason in the log."
    )
    example: ClassVar[str] = "\n".join(
        [
            "routing:",
            "  auto: false",
            "  rules:",
            '    - {region: "64.01", to: id-64-01}   # Kabupaten Paser (quote region codes)',
            '    - {region: "64.02", to: id-64-02}   # Kabupaten Kutai Kartanegara',
            '    - {region: "64.03", to: id-64-03}   # Kabupaten Berau',
            '    - {region: "64.07", to: id-64-07}   # Kabupaten Kutai Barat',
            '    - {region: "64.08", to: id-64-08}   # Kabupaten Kutai Timur',
            '    - {region: "64.09", to: id-64-09}   # Kabupaten Penajam Paser Utara',
            '    - {region: "64.11", to: id-64-11}   # Kabupaten Mahakam Ulu',
            '    - {region: "64.71", to: id-64-71}   # Kota Balikpapan',
            '    - {region: "64.72", to: id-64-72}   # Kota Samarinda',
            '    - {region: "64.74", to: id-64-74}   # Kota Bontang',
            "    # Health complaints from anywhere in the province go to the provincial health",
            "    # office's node, except in Samarinda, whose own rule below is more specific.",
            '    - {name: Dinkes Provinsi, region: "64", categories: [kesehatan], '
            "to: id-64-dinkes}",
            '    - {region: "64.72", categories: [kesehatan], to: id-64-72}',
            "",
        ]
    )
    auto: bool = key(
        default_of(m.RoutingConfig, "auto"), "dispose by the rules when verified or accepted"
    )
    rules: Any = key(None, "{region, categories, classifications, to, name} each")


class NodeYaml(Section):
    """A whole node.yaml. Field order is the order of the rendered file."""

    node: Node
    database: Database = Field(default_factory=Database)
    keys: Keys = Field(default_factory=Keys)
    server: Server = Field(default_factory=Server)
    federation: Federation = Field(default_factory=Federation)
    ledger: Ledger = Field(default_factory=Ledger)
    deadlines: Deadlines = Field(default_factory=Deadlines)
    workflow: Workflow = Field(default_factory=Workflow)
    metrics: Metrics = Field(default_factory=Metrics)
    dashboard: Dashboard = Field(default_factory=Dashboard)
    transparency: Transparency = Field(default_factory=Transparency)
    logging: Logging = Field(default_factory=Logging)
    throttle: Throttle = Field(default_factory=Throttle)
    expected_children: Annotated[tuple[m.ExpectedChild, ...], Field(strict=False)] = key(
        (),
        "",
        note="Children this node should be linked to: `link list` shows each, linked or "
        'not, and tallies them ("8 of 10 expected children connected; not connected: '
        '..."). A node id, or {id, name} to show the name before the child has linked.',
    )
    auditors: tuple[Auditor, ...] = key(
        (),
        "",
        note="Auditors who may read this ledger over the Audit service (same port and "
        "mutual TLS as the federation; read-only). Each gives you the certificate that "
        "`lapor-node audit identity --name NAME --dir DIR` made for them; its SHA-256 is "
        "pinned. Linked peers may read the ledger too; nobody else. Restart `serve` after "
        "a change.",
    )
    intake: Intake = Field(default_factory=Intake)
    routing: Routing = Field(default_factory=Routing)
    witness: Witness = Field(default_factory=Witness)

    _children = field_validator("expected_children", mode="plain")(_expected)
    _auditor_list = field_validator("auditors", mode="before")(
        _list("{name: ..., certificate: path/to/auditor.crt}")
    )

    @field_validator("auditors")
    @classmethod
    def _auditor_names(cls, value: tuple[Auditor, ...]) -> tuple[Auditor, ...]:
        for n, auditor in enumerate(value):
            if any(other.name == auditor.name for other in value[:n]):
                raise problem(
                    f"auditors[{n}]: auditor {auditor.name!r} is listed twice", "config_line"
                )
        return value

    @_model_validator(mode="after")
    def _across_sections(self) -> NodeYaml:
        listen = self.intake.listen
        server = m.ServerConfig(self.server.listen, enrollment_listen=self.server.enrollment_listen)
        if listen and listen in (server.listen, server.enrollment_address):
            raise problem(
                f"intake.listen ({listen!r}) must differ from server.listen and the "
                "enrollment port",
                "config_line",
            )
        return self  # routing.rules need the node id: node.config.loader parses them


# Top-level keys in the order node.yaml lists them.
SECTIONS = tuple(NodeYaml.model_fields)
