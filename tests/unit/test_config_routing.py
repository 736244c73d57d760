"""node.yaml's `routing:` section: auto and rules parsed into RoutingConfig, the commented
examples load once uncommented, and every bad rule is refused with a message naming it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from node.config import RoutingConfig, load_config, render_config
from node.errors import ConfigError
from node.ids import NodeId
from node.workflow.routing import Rule

RENDERED = render_config("id-64", "Provinsi Kalimantan Timur", listen="127.0.0.1:7464")
REPO_YAML = Path(__file__).resolve().parents[2] / "node.yaml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text(text)
    return path


def _with_routing(tmp_path: Path, routing: str) -> Path:
    return _write(tmp_path, RENDERED + "\nrouting:\n" + routing)


def _uncommented_routing(text: str) -> str:
    """The commented `# routing:` block of a config, uncommented."""
    start = text.index("# routing:")
    lines = []
    for line in text[start:].splitlines():
        if not line.startswith("#"):
            break
        lines.append(re.sub(r"^# ?", "", line))
    return "\n".join(lines) + "\n"


def test_no_routing_section_means_no_rules_and_no_auto(tmp_path: Path) -> None:
    """Without `routing:` a node has no rules and disposes nothing by itself."""
    assert load_config(_write(tmp_path, RENDERED)).routing == RoutingConfig()


def test_routing_section_is_parsed(tmp_path: Path) -> None:
    """auto and the rules (numbered from 0, values sorted) land in NodeConfig.routing."""
    config = load_config(
        _with_routing(
            tmp_path,
            "  auto: true\n"
            "  rules:\n"
            '    - {region: "64.02", to: id-64-02}\n'
            "    - name: Dinkes Provinsi\n"
            '      region: "64"\n'
            "      categories: [kesehatan, gizi]\n"
            "      classifications: [pengaduan]\n"
            "      to: id-64-dinkes\n",
        )
    )
    assert config.routing.auto is True
    assert config.routing.rules == (
        Rule(NodeId("id-64-02"), "64.02", position=0),
        Rule(
            NodeId("id-64-dinkes"),
            "64",
            ("gizi", "kesehatan"),
            ("pengaduan",),
            name="Dinkes Provinsi",
            position=1,
        ),
    )


@pytest.mark.parametrize(
    "source",
    [pytest.param(RENDERED, id="init-template"), pytest.param(None, id="repo-node-yaml")],
)
def test_commented_examples_load_once_uncommented(tmp_path: Path, source: str | None) -> None:
    """The examples in the `init` template and in the repo's node.yaml are valid rules."""
    text = REPO_YAML.read_text() if source is None else source
    block = _uncommented_routing(text)
    config = load_config(_write(tmp_path, RENDERED + "\n" + block))
    assert config.routing.rules and config.routing.auto is False
    assert all(r.to.startswith("id-64-") for r in config.routing.rules)


BAD = [
    ("routing: [1]", "'routing' must be a mapping"),
    ("  auto: true\n  rule: []\n", "unknown key(s) in 'routing': rule"),
    ("  auto: 1\n", "routing.auto must be true or false, found 1"),
    ("  rules: {region: '64.02', to: id-64-02}\n", "routing.rules must be a list"),
    ("  rules: [id-64-02]\n", "routing.rules[0] must be a mapping"),
    (
        "  rules:\n    - {region: '64.02', to: id-64-02}\n"
        "    - {category: kesehatan, to: id-64-02}\n",
        "routing.rules[1]: unknown key(s) category; known keys: to, region",
    ),
    ("  rules: [{region: '64.02', to: 'Kab Kukar'}]\n", "routing.rules[0].to: invalid node id"),
    ("  rules: [{region: '64.02'}]\n", "routing.rules[0].to: invalid node id None"),
    ("  rules: [{region: '64.02', to: id-64}]\n", "routing.rules[0].to is this node (id-64)"),
    ("  rules: [{region: 64.10, to: id-64-10}]\n", "routing.rules[0].region must be a quoted"),
    ("  rules: [{region: 64, to: id-64-10}]\n", "routing.rules[0].region must be a quoted"),
    ("  rules: [{region: '64.2', to: id-64-02}]\n", "'64.2' is not a Kemendagri code prefix"),
    ("  rules: [{region: '64.02.', to: id-64-02}]\n", "not a Kemendagri code prefix"),
    (
        "  rules: [{region: '64', categories: [Kesehatan], to: id-64-dinkes}]\n",
        "routing.rules[0].categories: 'Kesehatan' is not a category",
    ),
    (
        "  rules: [{region: '64', categories: [], to: id-64-dinkes}]\n",
        "routing.rules[0].categories must be a non-empty list",
    ),
    (
        "  rules: [{region: '64', categories: kesehatan, to: id-64-dinkes}]\n",
        "routing.rules[0].categories must be a non-empty list such as [kesehatan, pendidikan]",
    ),
    (
        "  rules: [{classifications: [keluhan], to: id-64-inspektorat}]\n",
        "unknown classification 'keluhan'",
    ),
    (
        "  rules:\n    - {region: '64.02', to: id-64-02}\n    - {region: '64.08', to: id-64-08}\n"
        "    - {region: '64.02', to: id-64-72}\n",
        "routing.rules[2] ties with routing.rules[0]",
    ),
    (
        "  rules:\n    - {region: '64', categories: [kesehatan, gizi], to: id-64-dinkes}\n"
        "    - {region: '64', categories: [gizi], to: id-64-72}\n",
        "routing.rules[1] ties with routing.rules[0]: both match region 64, category gizi",
    ),
    (
        "  rules:\n    - {to: id-64-02}\n    - {to: id-64-08}\n",
        "routing.rules[1] ties with routing.rules[0]: both match region (any)",
    ),
    ("  rules: [{region: '64.02', to: id-64-02, name: 7}]\n", "routing.rules[0].name must be"),
]


@pytest.mark.parametrize(
    ("routing", "message"),
    [pytest.param(r, m, id=m.split(":")[0][:40]) for r, m in BAD],
)
def test_bad_routing_config_is_refused_naming_the_rule(
    tmp_path: Path, routing: str, message: str
) -> None:
    """Each bad routing section is a ConfigError that says which rule and what is wrong."""
    text = RENDERED + "\n" + routing if routing.startswith("routing:") else None
    path = _write(tmp_path, text) if text else _with_routing(tmp_path, routing)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith("node.yaml: ")
    assert message in str(caught.value)
