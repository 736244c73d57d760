"""Certificates that never expire unseen (issue 21.2): each certificate's end in `keys show`
and `link list`, a gauge and log warnings 30 days ahead, the dashboard's warning, `link
join` saying "certificate expired" (ours or the parent's) instead of "cannot reach", and
`keys rotate` renewing the certificate. Time comes from injected clocks (FixedClock, or
LAPOR_NODE_FAKE_NOW for a CLI process)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from structlog.testing import capture_logs

from node.clock import FAKE_NOW_ENV, FixedClock
from node.config import DashboardConfig, load_config
from node.crypto.keyfiles import read_file, write_private, write_public
from node.crypto.linking import JoinToken
from node.crypto.tls import CERTIFICATE_DAYS, generate_tls_identity, valid_until
from node.errors import NodeError
from node.federation.enrollment_port import join
from node.ids import NodeId
from node.metrics import REGISTRY
from node.services import certificates, links, rotation
from node.services.context import NodeContext
from node.services.setup import init_node
from node.web import DashboardServer
from tests.conftest import NodeFactory
from tests.support.cli import run_cli
from tests.support.nodes import TestNode, free_ports, link, snapshot, wait_until

START = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)
LIFE = dt.timedelta(days=CERTIFICATE_DAYS)
GAUGE = "lapor_node_certificate_expiry_timestamp_seconds"
PROVINCE = ("id-64", "Provinsi Kalimantan Timur")
KUKAR = ("id-64-02", "Kabupaten Kutai Kartanegara")


def _cli(
    config: Path, *args: str, now: dt.datetime | None = None
) -> subprocess.CompletedProcess[str]:
    """`lapor-node ARGS --config CONFIG` in this process (tests/support/cli.py), its clock at
    `now` if given (the fake clock is read from the environment at each look)."""
    env = {"COLUMNS": "250"}
    if now is not None:
        env[FAKE_NOW_ENV] = now.isoformat()
    return run_cli([*args, "--config", str(config)], env=env)


def _ctx(node: TestNode, now: dt.datetime) -> NodeContext:
    """The node as a process whose clock reads `now`."""
    base = node.ctx()
    return NodeContext(base.config, base.db, base.signing_key, FixedClock(now))


def _cert_end(node: TestNode) -> dt.datetime:
    return valid_until(read_file(load_config(node.config).tls_cert, "TLS certificate"))


def _replace_certificate(node: TestNode, made_at: dt.datetime) -> None:
    """Give `node` a certificate made at `made_at` (before it is linked or serves)."""
    config = load_config(node.config)
    tls = generate_tls_identity(NodeId(node.node_id), made_at)
    config.tls_key.unlink()
    config.tls_cert.unlink()
    write_private(config.tls_key, tls.key_pem)
    write_public(config.tls_cert, tls.cert_pem)


def test_keys_show_gives_the_certificate_end_and_the_init_time(
    database_url: str, tmp_path: Path
) -> None:
    """`init` at a known time: `keys show` gives the first generation activated then (not
    1970-01-01) and the certificate valid until 825 days later, in JSON and in text."""
    config = init_node(
        tmp_path / "kukar", *KUKAR, database_url=database_url, clock=FixedClock(START)
    )
    shown = json.loads(_cli(config, "keys", "show", "--json").stdout)
    assert len(shown) == 1
    assert shown[0]["activated_at"] == START.isoformat()
    assert shown[0]["tls_valid_until"] == (START + LIFE).isoformat()
    assert shown[0]["tls_accepted_until"] is None
    text = _cli(config, "keys", "show", now=START).stdout
    assert "TLS valid until" in text and (START + LIFE).strftime("%Y-%m-%d %H:%M:%S") in text
    assert "1970" not in text


def test_fake_now_reaches_the_certificate_init_makes(database_url: str, tmp_path: Path) -> None:
    """`lapor-node init` under LAPOR_NODE_FAKE_NOW makes a certificate valid from that
    instant (less five minutes) for 825 days, and `keys show` dates the first generation
    then (node.clock: what the test clock moves)."""
    directory = tmp_path / "kukar"
    made = subprocess.run(
        [
            sys.executable, "-m", "node.cli.main", "init", "--dir", str(directory),
            "--id", KUKAR[0], "--name", KUKAR[1], "--database-url", database_url,
        ],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, FAKE_NOW_ENV: START.isoformat()},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    config = directory / "node.yaml"
    cert = x509.load_pem_x509_certificate(
        read_file(load_config(config).tls_cert, "TLS certificate")
    )
    assert cert.not_valid_before_utc == START - dt.timedelta(minutes=5)
    assert cert.not_valid_after_utc == START + LIFE
    shown = json.loads(_cli(config, "keys", "show", "--json").stdout)
    assert shown[0]["activated_at"] == START.isoformat()


def test_keys_show_warns_30_days_ahead_and_once_expired(database_url: str, tmp_path: Path) -> None:
    """Within 30 days of the end, `keys show` says when it ends and to rotate; past it,
    that it expired."""
    config = init_node(
        tmp_path / "kukar", *KUKAR, database_url=database_url, clock=FixedClock(START)
    )
    end = START + LIFE
    quiet = _cli(config, "keys", "show", now=end - dt.timedelta(days=31))
    assert quiet.returncode == 0 and "rotate" not in quiet.stderr
    soon = _cli(config, "keys", "show", now=end - dt.timedelta(days=29))
    assert "ends on" in soon.stderr and "in 29 days" in soon.stderr
    assert "lapor-node keys rotate" in soon.stderr
    late = _cli(config, "keys", "show", now=end + dt.timedelta(days=1))
    assert "certificate expired" in late.stderr and "lapor-node keys rotate" in late.stderr
    assert "(expired)" in late.stdout
    # `keys rotate` renews it: 825 days from the rotation, and the warning is gone.
    renewed_at = end + dt.timedelta(days=1)
    rotated = _cli(config, "keys", "rotate", now=renewed_at)
    assert rotated.returncode == 0, rotated.stderr
    assert f"valid until {renewed_at + LIFE:%Y-%m-%d %H:%M:%S}" in rotated.stdout
    after = _cli(config, "keys", "show", now=renewed_at)
    assert after.stderr == "" and after.stdout.count("(expired)") == 1


def test_keys_rotate_renews_the_certificate(nodes: NodeFactory) -> None:
    """An expired certificate is renewed by `keys rotate`: the new one is valid for 825 days
    from the rotation, and the expired one is not presented during the grace period (every
    handshake with it would fail), while an old one still valid is."""
    regency = nodes(*KUKAR)
    old_end = _cert_end(regency)
    late = old_end + dt.timedelta(days=2)
    clock = FixedClock(late)
    base = regency.ctx()
    ctx = NodeContext(base.config, base.db, base.signing_key, clock)
    done = rotation.rotate(ctx, dt.timedelta(hours=72))
    assert _cert_end(regency) == late + LIFE == done.new_tls_valid_until
    current = rotation.current_identity(ctx.config)
    server, client = rotation.presented_identities(ctx, None)
    assert server == current and client == current
    generations = rotation.generations(ctx)
    assert [g.tls_valid_until for g in generations] == [old_end, late + LIFE]
    assert generations[0].tls_accepted_until == done.old_tls_valid_until

    # A rotation before the end keeps presenting the old certificate in the grace period.
    clock.advance(dt.timedelta(days=10))
    rotation.rotate(ctx, dt.timedelta(hours=72))
    server, _ = rotation.presented_identities(ctx, None)
    assert server != rotation.current_identity(ctx.config)
    assert valid_until(server.cert_pem) == late + LIFE


def test_link_list_shows_each_peers_certificate_end(nodes: NodeFactory) -> None:
    """`link list` gives the end of the certificate pinned for each peer, in JSON and in
    the text table, marked once it is within 30 days."""
    province = nodes(*PROVINCE)
    regency = nodes(*KUKAR)
    link(province, regency)
    end = _cert_end(regency)
    rows = json.loads(_cli(province.config, "link", "list", "--json").stdout)
    assert [(r["peer_id"], r["tls_valid_until"]) for r in rows] == [
        (regency.node_id, end.isoformat())
    ]
    text = _cli(province.config, "link", "list", now=end - dt.timedelta(days=3)).stdout
    assert "certificate until" in text and f"{end:%Y-%m-%d} (expiring)" in text
    up = json.loads(_cli(regency.config, "link", "list", "--json").stdout)
    assert up[0]["tls_valid_until"] == _cert_end(province).isoformat()


def _gauge(certificate: str, peer: str) -> float | None:
    return REGISTRY.get_sample_value(GAUGE, {"certificate": certificate, "peer": peer})


def test_watch_sets_the_gauge_and_warns_30_days_ahead(nodes: NodeFactory) -> None:
    """What `serve` runs every minute: the gauge holds each certificate's end (own and
    per peer; an unlinked peer's series goes), and the log warns within 30 days (once a
    day per certificate) and errs once it has ended."""
    province = nodes(*PROVINCE)
    regency = nodes(*KUKAR)
    link(province, regency)
    own_end, peer_end = _cert_end(province), _cert_end(regency)
    clock = FixedClock(min(own_end, peer_end) - dt.timedelta(days=40))
    base = province.ctx()
    watch = certificates.CertificateWatch(
        NodeContext(base.config, base.db, base.signing_key, clock)
    )
    with capture_logs() as logs:
        watch.check()
    assert logs == []
    assert _gauge("own", "") == own_end.timestamp()
    assert _gauge("peer", regency.node_id) == peer_end.timestamp()

    clock.advance(dt.timedelta(days=11))
    with capture_logs() as logs:
        watch.check()
        watch.check()  # no repeat within a day
    assert sorted((e["event"], e["certificate"], e.get("peer", "")) for e in logs) == [
        ("certificate.expiring", "own", ""),
        ("certificate.expiring", "peer", regency.node_id),
    ]
    assert all(e["log_level"] == "warning" and "keys rotate" in e["message"] for e in logs)

    clock.advance(dt.timedelta(days=1))
    with capture_logs() as logs:
        watch.check()
    assert len(logs) == 2

    clock.advance(dt.timedelta(days=40))
    with capture_logs() as logs:
        watch.check()
    assert {(e["event"], e["log_level"]) for e in logs} == {("certificate.expired", "error")}
    assert all("certificate expired" in e["message"] for e in logs)

    links.revoke(province.ctx(), regency.node_id, "test")
    watch.check()
    assert _gauge("peer", regency.node_id) is None
    assert _gauge("own", "") == own_end.timestamp()


def test_dashboard_warns_30_days_ahead(nodes: NodeFactory) -> None:
    """The dashboard's overview shows the certificate warning on top within 30 days of
    the end, and none before."""
    province = nodes(*PROVINCE)
    end = _cert_end(province)
    p = province.ctx()
    config = dataclasses.replace(p.config, dashboard=DashboardConfig("127.0.0.1:0", None))
    pages = []
    for now in (end - dt.timedelta(days=31), end - dt.timedelta(days=29)):
        server = DashboardServer(NodeContext(config, p.db, p.signing_key, FixedClock(now)))
        server.start()
        try:
            # A year with a working-day calendar: the clock is years ahead of it.
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/?year=2026") as r:
                pages.append(r.read().decode())
        finally:
            server.stop()
    assert 'data-figure="certificate-warning"' not in pages[0]
    assert 'data-figure="certificate-warning"' in pages[1]
    assert "in 29 days" in pages[1] and "lapor-node keys rotate" in pages[1]


def test_serve_exports_the_gauge_and_logs_the_warning(
    nodes: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real `serve` (its clock moved near the end with LAPOR_NODE_FAKE_NOW) exports the
    gauge on /metrics and logs certificate.expiring at start."""
    province = nodes(*PROVINCE)
    end = _cert_end(province)
    (metrics_port,) = free_ports(1)
    text = province.config.read_text()
    province.config.write_text(
        text.replace('metrics:\n  listen: ""', f'metrics:\n  listen: "127.0.0.1:{metrics_port}"')
    )
    assert load_config(province.config).metrics.enabled
    monkeypatch.setenv(FAKE_NOW_ENV, (end - dt.timedelta(days=10)).isoformat())
    province.start()
    try:

        def scraped() -> str | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as r:
                    body: str = r.read().decode()
            except OSError:
                return None
            return body if GAUGE in body else None

        body = wait_until(scraped, what="the certificate gauge on /metrics")
        samples = {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in body.splitlines()
            if line.startswith(GAUGE)
        }
        assert samples == {f'{GAUGE}{{certificate="own",peer=""}}': end.timestamp()}
        wait_until(
            lambda: "certificate.expiring" in province.log_path.read_text(),
            what="the certificate warning in the log",
        )
    finally:
        province.stop()


def test_link_join_refuses_with_an_expired_certificate_of_this_node(nodes: NodeFactory) -> None:
    """A child whose own certificate has ended is told so ("certificate expired", rotate
    keys) before anything is sent; neither node changes."""
    province = nodes(*PROVINCE)
    regency = nodes(*KUKAR)
    late = _cert_end(regency) + dt.timedelta(days=1)
    token = _cli(
        province.config, "link", "invite", "--child", KUKAR[0], "--name", KUKAR[1], now=late
    ).stdout.strip()
    before = [snapshot(province), snapshot(regency)]
    refused = _cli(regency.config, "link", "join", token, now=late)
    assert refused.returncode == 1
    assert "certificate expired" in refused.stderr and "this node's" in refused.stderr
    assert "lapor-node keys rotate" in refused.stderr and "cannot reach" not in refused.stderr
    assert [snapshot(province), snapshot(regency)] == before


def test_link_join_says_the_parents_certificate_expired(nodes: NodeFactory) -> None:
    """A parent serving with an expired certificate: the join says "certificate expired",
    names the parent and tells its operator to rotate keys, instead of "cannot reach ...
    retry"."""
    province = nodes(*PROVINCE)
    regency = nodes(*KUKAR)
    now = dt.datetime.now(dt.UTC)
    _replace_certificate(province, now - LIFE - dt.timedelta(days=2))
    province.start()
    try:
        host, _, port = load_config(province.config).server.enrollment_address.rpartition(":")
        wait_until(lambda: _listening(host, int(port)), what="the enrollment port")
        out = province.cli("link", "invite", "--child", KUKAR[0], "--name", KUKAR[1])
        token = JoinToken.decode(out.stdout.strip())
        with pytest.raises(NodeError) as refused:
            join(regency.ctx(), token, wait=dt.timedelta(seconds=5))
        message = str(refused.value)
        assert "certificate expired" in message and f"{province.node_id}'s" in message
        assert "lapor-node keys rotate" in message and "cannot reach" not in message
        assert links.list_links(regency.ctx()) == []
    finally:
        province.stop()


def _listening(host: str, port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0
