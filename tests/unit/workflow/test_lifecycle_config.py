"""node.yaml's `deadlines:` and `workflow:` sections, the scheduler's calendar, and the
test-only fake clock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from node.clock import FAKE_NOW_ENV, SystemClock
from node.config import WorkflowConfig, load_config, render_config
from node.errors import ConfigError
from node.services.scheduler import calendar_for
from node.workflow.deadlines import DeadlinePolicy


def _without_sections() -> str:
    """A fresh node.yaml with its deadlines: and workflow: sections cut out."""
    text = render_config("id-64", "Provinsi")
    start, end = text.index("# Service-level deadlines"), text.index("\nmetrics:")
    return text[:start] + text[end:]


def _config(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text(_without_sections() + extra)
    return path


def test_defaults_when_the_sections_are_absent(tmp_path: Path) -> None:
    """No deadlines:/workflow: means DESIGN.md's numbers and no automatic escalation."""
    cfg = load_config(_config(tmp_path, ""))
    assert "deadlines:" not in _without_sections()
    assert cfg.deadlines == DeadlinePolicy()
    assert cfg.workflow == WorkflowConfig()
    assert cfg.workflow.auto_escalate is False


def test_a_fresh_node_yaml_spells_out_the_defaults(tmp_path: Path) -> None:
    """`init` writes both sections with the default values, so operators see what to change."""
    path = tmp_path / "node.yaml"
    path.write_text(render_config("id-64", "Provinsi"))
    cfg = load_config(path)
    assert (cfg.deadlines, cfg.workflow) == (DeadlinePolicy(), WorkflowConfig())
    assert "auto_escalate: false" in path.read_text()


def test_the_sections_are_read(tmp_path: Path) -> None:
    """Overrides reach the policy, the scheduler and the calendar."""
    cfg = load_config(
        _config(
            tmp_path,
            "deadlines:\n  first_follow_up: 3\n  auto_close: 7\n"
            "workflow:\n  auto_escalate: true\n  scheduler_interval_seconds: 30\n"
            "  holidays_extra: [2026-05-05]\n",
        )
    )
    assert (cfg.deadlines.first_follow_up, cfg.deadlines.auto_close, cfg.deadlines.verify) == (
        3,
        7,
        3,
    )
    assert cfg.workflow.auto_escalate is True
    assert cfg.workflow.scheduler_interval_seconds == 30.0
    assert not calendar_for(cfg).is_working_day(dt.date(2026, 5, 5))
    assert calendar_for(cfg).is_working_day(dt.date(2026, 5, 6))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param("deadlines:\n  verify: 0\n", "deadlines.verify", id="zero-days"),
        pytest.param("deadlines:\n  resolv: 3\n", "unknown key deadlines.resolv", id="typo"),
        pytest.param("deadlines: 5\n", "'deadlines' must be a mapping", id="not-a-mapping"),
        pytest.param("workflow:\n  auto_escalate: yes please\n", "true or false", id="flag"),
        pytest.param("workflow:\n  scheduler_interval_seconds: -1\n", "positive", id="interval"),
        pytest.param("workflow:\n  holidays_extra: [tomorrow]\n", "list of dates", id="date"),
        pytest.param("workflow:\n  escalate: true\n", "unknown key", id="unknown"),
    ],
)
def test_bad_values_are_config_errors(tmp_path: Path, extra: str, message: str) -> None:
    """Each mistake is a ConfigError that names the key."""
    with pytest.raises(ConfigError, match=message):
        load_config(_config(tmp_path, extra))


def test_fake_now_moves_the_system_clock_for_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """LAPOR_NODE_FAKE_NOW (test-only) sets SystemClock's time; without a zone it is refused."""
    monkeypatch.setenv(FAKE_NOW_ENV, "2026-12-15T09:00:00+07:00")
    assert SystemClock().now() == dt.datetime(2026, 12, 15, 2, 0, tzinfo=dt.UTC)
    monkeypatch.setenv(FAKE_NOW_ENV, "2026-12-15T09:00:00")
    with pytest.raises(ValueError, match="needs a zone"):
        SystemClock().now()
    monkeypatch.delenv(FAKE_NOW_ENV)
    assert abs(SystemClock().now() - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)
