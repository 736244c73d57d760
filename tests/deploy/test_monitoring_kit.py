"""deploy/prometheus and deploy/grafana: the rules pass promtool's checks and unit tests,
and every metric they name is one the node exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from node.metrics import REGISTRY
from tests.deploy._tools import DEPLOY, require_tool

RULES = DEPLOY / "prometheus" / "lapor-node-rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "lapor-node-rules.test.yml"
DASHBOARD = DEPLOY / "grafana" / "lapor-node.json"

# Prometheus's own series, not the node's.
PROMETHEUS_BUILTIN = frozenset({"up"})

_NAME = re.compile(r"\b((?:lapor_node|process|python)_[a-z0-9_]+|up)\b")
_SUFFIXES = ("_bucket", "_count", "_sum", "_created")


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = require_tool("promtool", "apt-get install prometheus, or scripts/ensure_promtool.sh")
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=300, check=False
    )


_SERIES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "info": ("_info",),
    "gauge": ("",),
}


def _exported() -> set[str]:
    """Every series name the node's registry can expose, labelled ones before their first
    sample included (histogram series and all)."""
    names = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in _SERIES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def _rule_exprs() -> list[str]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule["expr"] for group in doc["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in doc["panels"] for t in panel.get("targets", [])]
    exprs += [v["definition"] for v in doc["templating"]["list"] if "definition" in v]
    return exprs


def _names(exprs: list[str]) -> set[str]:
    return {name for expr in exprs for name in _NAME.findall(expr)}


def _unknown(names: set[str]) -> set[str]:
    exported = _exported()
    allowed = exported | PROMETHEUS_BUILTIN
    return {n for n in names if n not in allowed and not any(n.endswith(s) for s in _SUFFIXES)} | {
        n
        for n in names
        if any(n.endswith(s) for s in _SUFFIXES[:3]) and n not in exported  # histograms
    }


def test_rules_pass_promtool_check() -> None:
    """promtool check rules accepts the alert rules."""
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout


def test_rules_pass_their_unit_tests() -> None:
    """promtool test rules: each alert fires in its case and stays silent in the near miss."""
    result = _promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_fails_a_wrong_expectation(tmp_path: Path) -> None:
    """The unit tests can fail: an expected alert that does not fire is reported."""
    tests = yaml.safe_load(RULE_TESTS.read_text())
    tests["rule_files"] = [str(RULES)]
    case = tests["tests"][0]["alert_rule_test"][0]
    case["eval_time"] = "3m"  # down for 2 minutes: not yet 5
    broken = tmp_path / "broken.test.yml"
    broken.write_text(yaml.safe_dump(tests))
    result = _promtool("test", "rules", str(broken))
    assert result.returncode != 0
    assert "LaporNodeDown" in result.stdout + result.stderr


def test_every_alert_of_the_issue_has_a_rule_and_a_test() -> None:
    """The rules cover the issue's list, and each rule is exercised by the unit tests."""
    doc = yaml.safe_load(RULES.read_text())
    alerts = {rule["alert"] for group in doc["groups"] for rule in group["rules"]}
    assert alerts >= {
        "LaporNodeChildDisconnected",
        "LaporNodeOutboxLag",
        "LaporNodeForkDetected",
        "LaporNodeCheckpointSigningStopped",
        "LaporNodeCertificateExpiring",
        "LaporNodeKeyRotationGraceEnding",
        "LaporNodeOverdueRising",
    }
    tests = yaml.safe_load(RULE_TESTS.read_text())
    tested = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    assert tested == alerts


def test_rules_name_only_exported_metrics() -> None:
    """Every metric an alert rule reads is exported by node.metrics (or by Prometheus)."""
    names = _names(_rule_exprs())
    assert "lapor_node_link_connected" in names
    assert _unknown(names) == set()


def test_dashboard_names_only_exported_metrics() -> None:
    """Every metric a Grafana panel queries is exported by node.metrics."""
    names = _names(_dashboard_exprs())
    assert "lapor_node_delivery_latency_seconds_bucket" in names
    assert _unknown(names) == set()


def test_cross_check_catches_a_misspelt_metric() -> None:
    """The two checks above can fail: a name the registry lacks is reported."""
    names = _names(["rate(lapor_node_refused_totl[5m])", "lapor_node_rpc_seconds_bucket"])
    assert _unknown(names) == {"lapor_node_refused_totl", "lapor_node_rpc_seconds_bucket"}


def test_dashboard_panels_have_unique_ids_and_a_node_selector() -> None:
    """Grafana needs unique panel ids; every query is filtered by the $instance variable."""
    doc = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in doc["panels"]:
        for target in panel["targets"]:
            assert 'instance=~"$instance"' in target["expr"], panel["title"]
