"""`serve` runs the scheduler's pass in slices (node.federation.periodic over
node.services.scheduler.DuePass): every due complaint is acted on, one write transaction
per slice, and the pass's log line says how many slices it took."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import func, select

from node.clock import FixedClock
from node.services import complaints, scheduler
from node.store.models import Complaint
from tests.conftest import NodeFactory
from tests.fault.conftest import draft
from tests.support.waits import recovery_bound, wait_until


def test_serve_escalates_every_due_complaint_in_slices(nodes: NodeFactory) -> None:
    """2.5 slices' worth of complaints past their verify deadline, auto_escalate on: the
    pass at start escalates all of them in 3 slices and logs it once."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    text = province.config.read_text()
    province.config.write_text(text.replace("auto_escalate: false", "auto_escalate: true", 1))
    ctx = province.ctx()
    ctx.clock = FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    total = scheduler.SLICE_COMPLAINTS * 2 + scheduler.SLICE_COMPLAINTS // 2
    complaints.submit_many(ctx, [draft(n) for n in range(total)])

    def escalated() -> int:
        with ctx.db.read() as session:
            return (
                session.scalar(
                    select(func.count())
                    .select_from(Complaint)
                    .where(Complaint.status == "escalated")
                )
                or 0
            )

    def scheduled() -> list[dict[str, object]]:
        return [
            json.loads(line)
            for line in province.log_path.read_text().splitlines()
            if '"complaints.scheduled"' in line
        ]

    province.start()
    wait_until(lambda: scheduled() != [], timeout=4 * recovery_bound(), what="the pass's line")
    assert [(e["escalated"], e["slices"], e["failed"]) for e in scheduled()] == [(total, 3, [])]
    assert escalated() == total
