"""Reading node.yaml: YAML without duplicate keys, the schema, one line per problem.

load_config is the only way a NodeConfig is made from a file. Steps:
1. Parse the YAML; a key written twice in one mapping is refused with its path and lines
   (YAML itself would keep the last one silently).
2. Validate against node.config.schema.NodeYaml; every problem becomes one line naming its
   key path ("node.yaml: federation.window must be positive, found 0").
3. Resolve paths against the file's folder and read what the config points at (auditor
   certificates), then build the frozen node.config.model values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError as PydanticError

from node.config import model as m
from node.config.schema import Auditor, NodeYaml
from node.crypto.tls import fingerprint
from node.errors import ConfigError, ValidationError
from node.ids import NodeId
from node.workflow.deadlines import DeadlinePolicy
from node.workflow.routing import Rule, parse_rules

__all__ = ["load_config", "parse_text", "validate"]


def _shown(name: object) -> str:
    """A key as messages show it: as written, or quoted when it holds a line break or
    another character that would break the one-line message."""
    text = str(name)
    return text if text.isprintable() else repr(text)


# libyaml's parser when PyYAML was built with it (the wheels are): 25 times faster than the
# pure-Python one on node.yaml (1 ms against 24), and node.yaml is read by every command.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):  # type: ignore[valid-type,misc]
    """PyYAML's safe loader; duplicate keys are checked on the composed tree first."""


def _duplicates(
    node: yaml.Node, path: str, done: set[int] | None = None, open_: set[int] | None = None
) -> None:
    """Refuse a mapping key written twice, naming the key path and both lines, and an
    alias inside its own anchor (a recursive value). A node reached again through an
    alias is checked once, so aliases of aliases cost no more than the tree."""
    done = set() if done is None else done
    open_ = set() if open_ is None else open_
    if id(node) in open_:
        raise ConfigError(
            f"node.yaml: {path or 'the top level'} (line {node.start_mark.line + 1}) contains "
            "itself through an alias; write the value out instead"
        )
    if id(node) in done:
        return
    open_.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[object, int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            where = f"{path}.{_shown(name)}" if path else _shown(name)
            if name is not None and name != "<<":
                line = key.start_mark.line + 1
                if name in seen:
                    raise ConfigError(
                        f"node.yaml: {where} is written twice (lines {seen[name]} and {line}); "
                        "keep one of them"
                    )
                seen[name] = line
            _duplicates(value, where, done, open_)
    elif isinstance(node, yaml.SequenceNode):
        for n, item in enumerate(node.value):
            _duplicates(item, f"{path}[{n}]", done, open_)
    open_.discard(id(node))
    done.add(id(node))


def _yaml_problem(e: yaml.YAMLError) -> str:
    """PyYAML's error as one line: what is wrong and where (its own text spans lines)."""
    if isinstance(e, yaml.MarkedYAMLError) and e.problem_mark is not None:
        mark = e.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        return " ".join(f"{e.context or ''} {e.problem or ''} at {where}".split())
    return " ".join(str(e).replace('"<unicode string>"', "the file").split())


def parse_text(text: str, source: str = "node.yaml") -> Any:
    """The YAML document in `text`, refusing duplicate keys."""
    try:
        loader = _Loader(text)  # a character YAML does not allow is refused here already
    except yaml.YAMLError as e:
        raise ConfigError(f"{source} is not valid YAML: {_yaml_problem(e)}") from e
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _duplicates(node, "")
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source} is not valid YAML: {_yaml_problem(e)}") from e
    except RecursionError as e:  # nesting under libyaml's limit (1,000) but past Python's
        raise ConfigError(
            f"{source} nests its values too deeply to read; node.yaml needs a few levels"
        ) from e
    finally:
        loader.dispose()


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        shown = _shown(part)
        out += f"[{part}]" if isinstance(part, int) else (f".{shown}" if out else shown)
    return out


_TYPES = {
    "int_type": "int",
    "int_parsing": "int",
    "int_from_float": "int",
    "float_type": "float",
    "float_parsing": "float",
    "string_type": "str",
    "bool_type": "true or false",
}


def _line(error: Any) -> str:
    """One pydantic error as one operator-facing line (without the "node.yaml: " prefix)."""
    loc = tuple(error["loc"])
    kind, value, where = error["type"], error.get("input"), _where(loc)
    if kind == "config":
        return f"{where} {error['msg']}"
    if kind == "config_at":
        return f"{where}: {error['msg']}"
    if kind == "config_line":
        return str(error["msg"])
    if kind == "not_mapping":
        ctx = error["ctx"]
        if len(loc) == 1:
            return f"'{where}' must be a mapping, found {ctx['found']}"
        return f"{where} must be {ctx['shape']}, found {ctx['value']}"
    if kind in _TYPES:
        return f"{where} must be {_TYPES[kind]}, found {value!r}"
    if kind == "greater_than":
        return f"{where} must be positive, found {value!r}"
    if kind == "finite_number":
        return f"{where} must be a positive finite number, found {value!r}"
    if kind == "literal_error":
        return f"{where} must be {error['ctx']['expected']}, found {value!r}"
    if kind == "missing":
        return f"{where} is required"
    if kind == "invalid_key":  # a key YAML read as a number, a date, ...
        return f"unknown key {loc[-1]!r} in '{_where(loc[:-1]) or 'the top level'}'"
    return f"{where}: {error['msg']}"


def _lines(e: PydanticError) -> list[str]:
    """Each problem once, unknown keys of one mapping together, in the file's order."""
    lines: list[str] = []
    unknown: dict[tuple[int | str, ...], list[str]] = {}
    for error in e.errors():
        loc = tuple(error["loc"])
        if error["type"] == "extra_forbidden":
            parent = loc[:-1]
            if parent not in unknown:
                unknown[parent] = []
                lines.append(f"\0{len(unknown) - 1}")
            unknown[parent].append(_shown(loc[-1]))
            continue
        line = _line(error)
        if line not in lines:
            lines.append(line)
    groups = list(unknown.items())
    out = []
    for line in lines:
        if line.startswith("\0"):
            parent, keys = groups[int(line[1:])]
            names = ", ".join(sorted(keys))
            where = _where(parent)
            line = (
                f"unknown key(s) in '{where}': {names}"
                if where
                else f"unknown section(s): {names}; known: {', '.join(NodeYaml.model_fields)}"
            )
        out.append(f"node.yaml: {line}")
    return out


def validate(raw: object) -> NodeYaml:
    """`raw` (a parsed node.yaml) checked against the schema, or ConfigError."""
    try:
        return NodeYaml.model_validate(raw)
    except PydanticError as e:
        raise ConfigError("\n".join(_lines(e))) from None


def _resolve_url(url: str, base: Path) -> str:
    """Make a relative SQLite path absolute against the config's folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        return prefix + str((base / url[len(prefix) :]).resolve())
    return url


def _auditors(items: tuple[Auditor, ...], base: Path) -> tuple[m.AuditorConfig, ...]:
    """Each auditor's certificate, read now and pinned by its SHA-256."""
    auditors: list[m.AuditorConfig] = []
    for n, item in enumerate(items):
        where = f"auditors[{n}]"
        cert_path = base / item.certificate
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
            if other.fingerprint == pinned:
                raise ConfigError(
                    f"node.yaml: {where}: {cert_path} is the same certificate as "
                    f"auditor {other.name!r}'s"
                )
        auditors.append(m.AuditorConfig(item.name, cert_path, cert_pem, pinned))
    return tuple(auditors)


def _rules(raw: object, node_id: NodeId) -> tuple[Rule, ...]:
    """routing.rules, checked by node.workflow.routing (each message names its rule)."""
    try:
        return parse_rules(raw, node_id)
    except ConfigError as e:
        raise ConfigError(f"node.yaml: {e}") from e


def build(doc: NodeYaml, path: Path) -> m.NodeConfig:
    """The frozen NodeConfig of a validated node.yaml at `path`."""
    base = path.parent
    s, d, i, w = doc.server, doc.dashboard, doc.intake, doc.workflow
    node_id = NodeId(doc.node.id)
    return m.NodeConfig(
        path=path,
        node_id=node_id,
        name=doc.node.name,
        timezone=doc.node.timezone,
        database_url=_resolve_url(doc.database.url, base),
        signing_key=base / doc.keys.signing,
        tls_key=base / doc.keys.tls_key,
        tls_cert=base / doc.keys.tls_cert,
        sealing_key=base / doc.keys.sealing,
        server=m.ServerConfig(s.listen, s.max_message_bytes, s.grace_seconds, s.enrollment_listen),
        federation=m.FederationConfig(**doc.federation.model_dump()),
        ledger=m.LedgerConfig(**doc.ledger.model_dump()),
        metrics=m.MetricsConfig(doc.metrics.listen),
        dashboard=m.DashboardConfig(
            d.listen, bytes.fromhex(d.token_sha256) if d.listen and d.token_sha256 else None
        ),
        transparency=m.TransparencyConfig(doc.transparency.listen, doc.transparency.tls),
        log_level=doc.logging.level,
        log_format=doc.logging.format,
        expected_children=tuple(c.node_id for c in doc.expected_children),
        auditors=_auditors(doc.auditors, base),
        expected=doc.expected_children,
        intake=m.IntakeConfig(
            i.listen,
            i.max_attachment_bytes,
            i.max_total_bytes,
            tuple(
                m.GatewayConfig(g.name, g.channels, bytes.fromhex(g.token_sha256))
                for g in i.gateways
            ),
        ),
        deadlines=DeadlinePolicy(**doc.deadlines.model_dump()),
        workflow=m.WorkflowConfig(
            w.auto_escalate,
            w.scheduler_interval_seconds,
            w.collective_leave,
            w.holidays_extra,
            w.holidays_removed,
        ),
        routing=m.RoutingConfig(doc.routing.auto, _rules(doc.routing.rules, node_id)),
        witness=m.WitnessConfig(
            base / doc.witness.cosigner_key,
            doc.witness.witness_peers,
            tuple(m.WitnessedLog(x.origin, x.vkey) for x in doc.witness.logs),
            tuple(m.WitnessTarget(x.name, x.vkey, x.url) for x in doc.witness.submit_to),
            doc.witness.submit_interval_seconds,
            doc.witness.timeout_seconds,
        ),
        throttle=m.ThrottleConfig(**doc.throttle.model_dump()),
    )


def load_config(path: Path) -> m.NodeConfig:
    """Read and validate node.yaml at `path` (ConfigError: one line per problem)."""
    if not path.is_file():
        raise ConfigError(
            f"no config at {path}: create a node with `lapor-node init --id ID --name NAME "
            "--dir DIR`, or pass --config PATH (or set LAPOR_NODE_CONFIG)"
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    raw = parse_text(text, str(path))
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return build(validate(raw), path.resolve())
