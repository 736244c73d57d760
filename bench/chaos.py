"""A chaos campaign: a national node, a province and N regencies as real `lapor-node serve`
processes, every child dialing its parent through a TCP proxy (tests/support/proxy.py).

M complaints enter at the national node and travel the whole way: referred to the
province, referred on to a random regency, followed up and resolved there; each status
update travels back up two hops. Meanwhile K faults strike at random moments: a random
node is killed with SIGKILL (and restarted a moment later from its database), or a random
link is cut (and healed a moment later). Then everything heals, the campaign waits for the
tree to settle, and checks (tests/fault/invariants.py):
  lost        envelopes queued and never committed or acknowledged, plus complaints that
              never reached `resolved` at the national node;
  duplicated  envelopes recorded more than once, or receipted more than once;
  every ledger verifies (`audit verify`) and every parent/child pair reconciles
  (`audit reconcile`) without a discrepancy.
The last four lines are always `lost: N`, `duplicated: N`, `ledgers verified: yes|no`,
`reconciled: yes|no`; the exit status is 0 only if they read 0, 0, yes, yes.

Usage (from the repository root; the defaults run in well under two minutes):
    python bench/chaos.py [--regencies 3] [--referrals 60] [--faults 10]
                          [--database sqlite|postgresql] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy.exc import DBAPIError  # noqa: E402

from bench.referral_throughput import database_url, drop_databases  # noqa: E402
from node.services import complaints, lifecycle, links  # noqa: E402
from tests.fault.conftest import draft  # noqa: E402
from tests.fault.invariants import Tally, check_tree, quiet  # noqa: E402
from tests.support.nodes import TestNode, make_node  # noqa: E402
from tests.support.proxy import Proxy  # noqa: E402

SUBMIT_BATCH = 5


@dataclass
class Tree:
    """The nodes (national first, then the province, then the regencies) and, for each
    child, the proxy it dials its parent through."""

    nodes: list[TestNode]
    proxies: dict[str, Proxy]  # child id -> proxy in front of its parent
    pairs: list[tuple[str, str]]  # (parent id, child id)
    databases: list[str] = field(default_factory=list)

    @property
    def national(self) -> TestNode:
        return self.nodes[0]

    @property
    def province(self) -> TestNode:
        return self.nodes[1]

    @property
    def regencies(self) -> list[TestNode]:
        return self.nodes[2:]

    def node(self, node_id: str) -> TestNode:
        return next(n for n in self.nodes if n.node_id == node_id)


def build(root: Path, regencies: int, kind: str) -> Tree:
    specs = [("id", "Nasional"), ("id-64", "Provinsi Kalimantan Timur")]
    specs += [(f"id-64-{i + 1:02d}", f"Kabupaten {i + 1}") for i in range(regencies)]
    urls = [database_url(kind, root, node_id) for node_id, _ in specs]
    nodes = [make_node(root, nid, name, url) for (nid, name), url in zip(specs, urls, strict=True)]
    tree = Tree(nodes, {}, [], urls)
    for child in nodes[1:]:
        parent = nodes[0] if child.node_id == "id-64" else nodes[1]
        proxy = Proxy(parent.address, seed=len(tree.proxies)).start()
        links.add_link(parent.ctx(), child.card(), "child")
        enrollment = parent.ctx().config.server.enrollment_address
        links.add_link(child.ctx(), parent.card(), "parent", proxy.address, enrollment)
        tree.proxies[child.node_id] = proxy
        tree.pairs.append((parent.node_id, child.node_id))
    return tree


def deadlocked(error: DBAPIError) -> bool:
    """PostgreSQL chose this transaction as a deadlock victim (SQLSTATE 40P01)."""
    return getattr(error.orig, "sqlstate", None) == "40P01"


class Campaign:
    """Moves every complaint one step whenever the node that must act has it."""

    def __init__(self, tree: Tree, rng: random.Random) -> None:
        self.tree = tree
        self.rng = rng
        self.retried = 0  # operator actions retried after a database deadlock
        self.at_province: list[str] = []  # referred by the national node
        self.at_regency: dict[str, str] = {}  # tracking id -> regency it was referred to
        self.resolved_below: set[str] = set()
        self.submitted = 0

    def submit(self, n: int) -> None:
        national = self.tree.national.ctx()
        ids = complaints.submit_many(national, [draft(self.submitted + i) for i in range(n)])
        complaints.refer_many(national, ids, self.tree.province.node_id)
        self.submitted += n
        self.at_province += ids

    def _held(self, node: TestNode, status: str) -> set[str]:
        views = complaints.list_complaints(node.ctx(), status=status, limit=10**6)
        return {v.tracking_id for v in views if v.holder == node.node_id}

    def step(self) -> None:
        """Act where a complaint has arrived: the province refers it on, the regency
        follows it up and resolves it. An action that lost a deadlock is retried at the
        next step, as an operator would retry the command (and counted)."""
        try:
            self._step()
        except DBAPIError as e:
            if not deadlocked(e):
                raise
            self.retried += 1

    def _step(self) -> None:
        here = self._held(self.tree.province, "accepted")
        for tracking_id in [t for t in self.at_province if t in here]:
            regency = self.rng.choice(self.tree.regencies)
            complaints.refer(self.tree.province.ctx(), tracking_id, regency.node_id)
            self.at_province.remove(tracking_id)
            self.at_regency[tracking_id] = regency.node_id
        for regency in self.tree.regencies:
            arrived = self._held(regency, "accepted")
            # A follow-up committed before its resolve lost a deadlock: resolve it now.
            started = self._held(regency, "in_progress")
            for tracking_id, where in list(self.at_regency.items()):
                if where == regency.node_id and tracking_id in arrived | started:
                    if tracking_id in arrived:
                        lifecycle.follow_up(regency.ctx(), tracking_id, "Tim sudah turun")
                    lifecycle.resolve(regency.ctx(), tracking_id, "Sudah diperbaiki")
                    del self.at_regency[tracking_id]
                    self.resolved_below.add(tracking_id)

    def resolved_at_national(self) -> int:
        views = complaints.list_complaints(self.tree.national.ctx(), status="resolved", limit=10**6)
        return len(views)


class Faults:
    """Random kills and cuts, each healed after a short random outage."""

    def __init__(self, tree: Tree, rng: random.Random) -> None:
        self.tree = tree
        self.rng = rng
        self.pending: list[tuple[float, str, str]] = []  # (when to heal, kind, target)
        self.done = 0
        self.kills = 0
        self.cuts = 0

    def strike(self) -> None:
        busy = {target for _, _, target in self.pending}
        if self.rng.random() < 0.5:
            candidates = [n.node_id for n in self.tree.nodes if n.node_id not in busy]
            if candidates:
                target = self.rng.choice(candidates)
                self.tree.node(target).kill()
                self.kills += 1
                self._later("kill", target)
                print(f"  fault {self.done + 1}: SIGKILL {target}", flush=True)
                self.done += 1
                return
        candidates = [c for c in self.tree.proxies if c not in busy]
        target = self.rng.choice(candidates or list(self.tree.proxies))
        self.tree.proxies[target].cut()
        self.cuts += 1
        self._later("cut", target)
        print(f"  fault {self.done + 1}: link {target} -> parent cut", flush=True)
        self.done += 1

    def _later(self, kind: str, target: str) -> None:
        self.pending.append((time.monotonic() + self.rng.uniform(0.3, 2.0), kind, target))

    def heal_due(self, everything: bool = False) -> None:
        now = time.monotonic()
        for item in list(self.pending):
            when, kind, target = item
            if everything or when <= now:
                if kind == "kill":
                    self.tree.node(target).start()
                else:
                    self.tree.proxies[target].heal()
                self.pending.remove(item)


def logged_errors(nodes: list[TestNode]) -> dict[str, int]:
    """Error and critical events the nodes logged, by event name (for the operator's eye:
    a fault may legitimately log some, e.g. a link that could not be recorded as down)."""
    found: dict[str, int] = {}
    for node in nodes:
        if not node.log_path.exists():
            continue
        for line in node.log_path.read_text(errors="replace").splitlines():
            if '"level": "error"' in line or '"level": "critical"' in line:
                try:
                    record = json.loads(line)
                    event = str(record.get("event"))
                    if record.get("error_kind"):
                        event += f" ({record['error_kind']})"
                except ValueError:
                    event = "unparsed"
                found[event] = found.get(event, 0) + 1
            elif line.startswith("Traceback"):
                found["traceback"] = found.get("traceback", 0) + 1
    return found


def run(args: argparse.Namespace, root: Path) -> tuple[Tally, int]:
    rng = random.Random(args.seed)
    tree = build(root, args.regencies, args.database)
    try:
        for node in tree.nodes:
            node.start()
        campaign = Campaign(tree, rng)
        faults = Faults(tree, rng)
        # Faults strike at random moments while the complaints are submitted and move.
        span = max(3.0, args.referrals / SUBMIT_BATCH * 0.4)
        began = time.monotonic()
        strikes = sorted(began + rng.uniform(0.5, span) for _ in range(args.faults))
        while campaign.submitted < args.referrals or strikes:
            if campaign.submitted < args.referrals:
                campaign.submit(min(SUBMIT_BATCH, args.referrals - campaign.submitted))
            if strikes and time.monotonic() >= strikes[0]:
                strikes.pop(0)
                faults.strike()
            faults.heal_due()
            campaign.step()
            time.sleep(0.2)
        print(f"healing: {faults.kills} kills, {faults.cuts} cuts", flush=True)
        faults.heal_due(everything=True)
        deadline = time.monotonic() + args.settle_timeout
        contexts = [n.ctx() for n in tree.nodes]
        while time.monotonic() < deadline:
            campaign.step()
            if campaign.resolved_at_national() == args.referrals and quiet(contexts):
                break
            time.sleep(0.2)
        unfinished = args.referrals - campaign.resolved_at_national()
        print(f"settled in {time.monotonic() - began:.1f} s", flush=True)
        if campaign.retried:
            print(f"operator actions retried after a database deadlock: {campaign.retried}")
        errors = logged_errors(tree.nodes)
        if errors:
            print(f"error events in the nodes' logs: {errors}")
        return check_tree(contexts, tree.pairs), unfinished
    finally:
        for node in reversed(tree.nodes):
            try:
                node.close()
            except AssertionError:
                node.kill()
        for proxy in tree.proxies.values():
            proxy.close()
        drop_databases(tree.databases)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regencies", type=int, default=3, help="regency nodes (N)")
    parser.add_argument("--referrals", type=int, default=60, help="complaints pushed through (M)")
    parser.add_argument("--faults", type=int, default=10, help="kills and cuts (K)")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seed", type=int, default=None, help="replay a campaign")
    parser.add_argument("--settle-timeout", type=float, default=60.0, help="seconds")
    args = parser.parse_args()
    if args.regencies < 1 or args.referrals < 1 or args.faults < 0:
        parser.error("--regencies and --referrals must be at least 1, --faults at least 0")
    if args.seed is None:
        args.seed = random.randrange(1 << 31)
    print(
        f"chaos: 1 national, 1 province, {args.regencies} regencies ({args.database}); "
        f"{args.referrals} complaints, {args.faults} faults; seed {args.seed}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="lapor-chaos-") as tmp:
        tally, unfinished = run(args, Path(tmp))
    for problem in tally.problems[:20]:
        print(f"  {problem}")
    if unfinished:
        print(f"  {unfinished} complaint(s) never reached resolved at the national node")
    tally.lost += unfinished
    print(f"envelopes checked: {tally.envelopes}")
    for line in tally.lines():
        print(line)
    return 0 if tally.ok else 1


if __name__ == "__main__":
    sys.exit(main())
