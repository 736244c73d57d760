"""`lapor-node demo`: a local federation on loopback, on the embedded SQLite default.

National -> Provinsi Kalimantan Timur -> Kutai Kartanegara and Kutai Timur, each a real
`lapor-node serve` process with mutual TLS. Complaints are submitted at the national node
and at the province and referred down two levels; the demo waits for every signed receipt,
prints where each complaint is on every node, and stops the nodes with SIGTERM.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from node.clock import SystemClock
from node.complaints import ComplaintDraft
from node.errors import NodeError, NotFoundError, PeerUnavailableError
from node.services import audit, complaints, links
from node.services.context import NodeContext
from node.services.setup import init_node

__all__ = ["run_demo"]

console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)


@dataclass
class _Node:
    node_id: str
    name: str
    timezone: str
    parent: str | None
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    ctx: NodeContext | None = None


TREE = [
    _Node("id", "Nasional (KemenPAN-RB)", "Asia/Jakarta", None),
    _Node("id-64", "Provinsi Kalimantan Timur", "Asia/Makassar", "id"),
    _Node("id-64-02", "Kabupaten Kutai Kartanegara", "Asia/Makassar", "id-64"),
    _Node("id-64-08", "Kabupaten Kutai Timur", "Asia/Makassar", "id-64"),
]

COMPLAINTS = [
    # (entered at, path of referrals, draft)
    (
        "id",
        ["id-64", "id-64-02"],
        ComplaintDraft(
            title="Jalan poros Tenggarong-Samarinda berlubang",
            description="Lubang besar di km 12, sudah dua motor jatuh minggu ini.",
            classification="pengaduan",
            category="infrastruktur",
            region_code="64.02",
            channel="web",
            reporter_name="Siti Aminah",
            reporter_contact="081355501234",
        ),
    ),
    (
        "id",
        ["id-64", "id-64-08"],
        ComplaintDraft(
            title="Bantuan sosial tidak sampai",
            description="Nama kami terdaftar tetapi bantuan tidak pernah diterima.",
            classification="pengaduan",
            category="bantuan sosial",
            region_code="64.08",
            channel="sms_1708",
            reporter_name="Rahmat Hidayat",
            anonymous=True,
        ),
    ),
    (
        "id-64",
        ["id-64-02"],
        ComplaintDraft(
            title="Jam layanan puskesmas",
            description="Mohon informasi jam layanan Puskesmas Loa Kulu pada hari Sabtu.",
            classification="permintaan_informasi",
            category="kesehatan",
            region_code="64.02",
            channel="twitter",
            reporter_name="Dewi Lestari",
        ),
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise PeerUnavailableError(f"demo: timed out waiting for {what}")
        time.sleep(0.05)


def _where(node: _Node, tracking_id: str) -> str:
    assert node.ctx is not None
    try:
        view = complaints.show(node.ctx, tracking_id)
    except NotFoundError:
        return "-"
    return view.status if view.holder == node.node_id else f"{view.status} -> {view.holder}"


def run_demo(directory: Path, base_port: int | None = None) -> None:
    if directory.exists():
        shutil.rmtree(directory)
    by_id = {n.node_id: n for n in TREE}
    console.rule("[bold]lapor-node demo: a local federation on SQLite")
    for i, n in enumerate(TREE):
        n.port = base_port + i if base_port else _free_port()
        init_node(
            directory / n.node_id,
            n.node_id,
            n.name,
            listen=f"127.0.0.1:{n.port}",
            timezone=n.timezone,
        )
        n.ctx = NodeContext.open(directory / n.node_id / "node.yaml")
        console.print(f"init   {n.node_id:<9} {n.name:<30} 127.0.0.1:{n.port}")
    dashboard = _enable_dashboard(directory / "id-64" / "node.yaml")
    for n in TREE:
        if n.parent:
            parent = by_id[n.parent]
            assert parent.ctx is not None and n.ctx is not None
            links.add_link(parent.ctx, links.own_card(n.ctx), "child")
            links.add_link(n.ctx, links.own_card(parent.ctx), "parent", f"127.0.0.1:{parent.port}")
            console.print(f"link   {parent.node_id} <-> {n.node_id} (cards exchanged and pinned)")
    try:
        for n in TREE:
            log = (directory / n.node_id / "serve.log").open("ab")
            n.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "node.cli.main",
                    "serve",
                    "--config",
                    str(directory / n.node_id / "node.yaml"),
                ],
                stdout=log,
                stderr=log,
            )
            log.close()
        for n in TREE:
            _wait(lambda n=n: _listening(n.port), f"{n.node_id} to listen")
        console.print("serve  4 nodes up (mutual TLS, pinned certificates)")
        _run_complaints(by_id)
    finally:
        for n in TREE:
            if n.process is not None and n.process.poll() is None:
                n.process.send_signal(signal.SIGTERM)
        for n in TREE:
            if n.process is not None:
                code = n.process.wait(30)
                console.print(f"stop   {n.node_id:<9} exit {code}")
            if n.ctx is not None:
                n.ctx.close()
    console.print(
        f"\nData, keys and logs are in {directory}/<node id>/ ; try e.g.\n"
        f"  lapor-node complaint list --config {directory}/id-64/node.yaml\n"
        f"  lapor-node link list --config {directory}/id-64/node.yaml"
    )
    _print_report(directory / "id-64" / "node.yaml", dashboard)


def _enable_dashboard(config: Path) -> str:
    """Turn on the province's dashboard (loopback, so no token); return its address."""
    address = f"127.0.0.1:{_free_port()}"
    config.write_text(config.read_text() + f'\ndashboard:\n  listen: "{address}"\n')
    return f"http://{address}/"


def _print_report(config: Path, dashboard: str) -> None:
    """The province's figures for this year per child, as its operator would print them,
    and where its dashboard is served."""
    year = SystemClock().now().year
    console.rule(f"[bold]lapor-node report --year {year} --by child (the province)")
    sys.stdout.flush()
    subprocess.run(
        [sys.executable, "-m", "node.cli.main", "report", "--year", str(year), "--by", "child",
         "--config", str(config)],
        check=False,
    )  # fmt: skip
    console.print(
        f"\nThe province's dashboard: {dashboard} (read-only; served while "
        f"`lapor-node serve --config {config}` runs)"
    )


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _run_complaints(by_id: dict[str, _Node]) -> None:
    tracked: list[str] = []
    started = time.monotonic()
    for entered, path, draft in COMPLAINTS:
        origin = by_id[entered]
        assert origin.ctx is not None
        tracking_id = complaints.submit(origin.ctx, draft)
        tracked.append(tracking_id)
        console.print(f"submit {tracking_id} at {entered} via {draft.channel}")
        holder = origin
        for child_id in path:
            assert holder.ctx is not None
            complaints.refer(holder.ctx, tracking_id, child_id)
            t0 = time.monotonic()

            def accepted(h: _Node = holder, c: str = child_id, t: str = tracking_id) -> bool:
                assert h.ctx is not None
                view = complaints.show(h.ctx, t)
                return view.status == "accepted" and view.holder == c

            _wait(accepted, f"{child_id}'s receipt for {tracking_id}")
            console.print(
                f"refer  {tracking_id} {holder.node_id} -> {child_id}: signed "
                f"receipt back in {(time.monotonic() - t0) * 1000:.0f} ms"
            )
            holder = by_id[child_id]
    console.print(f"all referrals received and receipted in {time.monotonic() - started:.1f} s\n")
    table = Table(
        title="Where each complaint is, as each node sees it (status, or status -> node holding it)"
    )
    table.add_column("tracking id")
    for n in TREE:
        table.add_column(n.node_id)
    for tracked_id in tracked:
        table.add_row(tracked_id, *[_where(n, tracked_id) for n in TREE])
    console.print(table)
    ledger = Table(title="Ledger entries and link traffic per node")
    for col in ("node", "ledger entries", "links (peer: sent/acked/received)"):
        ledger.add_column(col)
    for n in TREE:
        assert n.ctx is not None
        views = links.list_links(n.ctx)
        size = audit.head(n.ctx).ledger_size
        ledger.add_row(
            n.node_id,
            str(size),
            ", ".join(f"{v.peer_id}: {v.sent}/{v.acked}/{v.received}" for v in views),
        )
    console.print(ledger)


if __name__ == "__main__":  # pragma: no cover
    try:
        run_demo(Path("demo-data"))
    except NodeError as e:
        console.print(f"[red]error:[/] {e}")
        sys.exit(1)
