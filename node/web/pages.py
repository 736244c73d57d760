"""The dashboard's HTML: one overview page and one trail page, rendered on the server from
the same documents `lapor-node report --format json` prints (node.services.reports).

Invariants:

1. Every value is escaped (html.escape) before it reaches the page; the page has no script
   and loads nothing from elsewhere (CSS inline, charts as inline SVG), so it works on a
   machine without internet and under a Content-Security-Policy of default-src 'none'.
2. A figure is shown as the document has it (counts as integers, percents with the one
   decimal node.workflow.reports fixed); each carries ``data-scope`` and ``data-figure``
   so a test can compare the page with the JSON.
3. Nothing personal: the documents carry no content or reporter, and the pages add none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

__all__ = ["error_page", "overview_page", "trail_page"]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1d2733;background:#f6f7f9}
h1{font-size:1.4rem;margin:0 0 .2rem} h2{font-size:1.1rem;margin:1.6rem 0 .5rem}
.muted{color:#5b6775;font-size:.9rem} a{color:#0b5cad}
table{border-collapse:collapse;background:#fff;font-size:.9rem}
th,td{border:1px solid #d5dae0;padding:.3rem .5rem;text-align:right;vertical-align:middle}
th{background:#eef1f4} td.l,th.l{text-align:left}
.bar{display:inline-block;width:7rem;height:.8rem;background:#e3e7ec;vertical-align:middle;
margin-right:.4rem} .bar span{display:block;height:100%}
.fu span{background:#2f7ed8} .rs span{background:#2e9d5b}
.on{color:#1e7b45;font-weight:600} .off{color:#b3261e;font-weight:600}
.cards{display:flex;gap:.8rem;flex-wrap:wrap}
.card{background:#fff;border:1px solid #d5dae0;padding:.6rem .9rem;min-width:8rem}
.card b{display:block;font-size:1.4rem}
.error{background:#fdecea;border:1px solid #f5c2bd;padding:.8rem}
code{font-size:.8rem;word-break:break-all}
"""


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def _fig(scope: str, name: str, value: Any, text: str | None = None) -> str:
    shown = escape(str(value) if text is None else text)
    return f'<span data-scope="{escape(scope)}" data-figure="{escape(name)}">{shown}</span>'


def _bar(kind: str, scope: str, name: str, share: Mapping[str, Any]) -> str:
    pct = float(share["percent"])
    text = f"{pct:.1f}%"
    return (
        f'<span class="bar {kind}" title="{share["count"]} of {share["of"]}">'
        f'<span style="width:{min(100.0, max(0.0, pct)):.1f}%"></span></span>'
        + _fig(scope, name, pct, text)
        + f' <span class="muted">({share["count"]}/{share["of"]})</span>'
    )


def _median(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _year_form(year: int, token_note: str = "") -> str:
    return (
        '<form method="get" action="/" class="muted">Year <input name="year" size="5" '
        f'value="{year}"> <button>Show</button>{token_note}</form>'
        '<form method="get" action="/complaint" class="muted">Trail of a complaint: '
        '<input name="id" size="24" placeholder="id-64.2026.000001"> <button>Show</button></form>'
    )


def _cards(scope: str, f: Mapping[str, Any]) -> str:
    items = [
        ("received", "received", f["received"]),
        ("followed up", "followed_up", f["followed_up"]),
        ("resolved", "resolved", f["resolved"]),
        ("not followed up", "not_followed_up", f["not_followed_up"]),
        ("overdue", "overdue", f["overdue"]),
    ]
    cards = "".join(
        f'<div class="card">{escape(label)}<b>{_fig(scope, key, value)}</b></div>'
        for label, key, value in items
    )
    follow_up = _bar("fu", scope, "follow_up_percent", f["follow_up_share"])
    resolved = _bar("rs", scope, "resolved_percent", f["resolved_share"])
    shares = (
        f'<div class="card">follow-up share<br>{follow_up}</div>'
        f'<div class="card">resolved share<br>{resolved}</div>'
    )
    return f'<div class="cards">{cards}{shares}</div>'


def _children(children: Sequence[Mapping[str, Any]]) -> str:
    if not children:
        return '<p class="muted">No children linked or expected.</p>'
    head = (
        '<tr><th class="l">child</th><th class="l">link</th><th class="l">figures as of</th>'
        '<th>received</th><th>followed up</th><th class="l">follow-up share</th>'
        '<th>resolved</th><th class="l">resolved share</th><th>not followed up</th>'
        "<th>overdue</th><th>median wd to follow-up</th><th>median wd to resolution</th></tr>"
    )
    rows = []
    for c in children:
        scope, f = c["node_id"], c["figures"]
        attrs = f'data-scope="{escape(scope)}" data-figure="connected"'
        link = (
            f'<span class="on" {attrs}>connected</span>'
            if c["connected"]
            else f'<span class="off" {attrs}>{escape(c["state"])}</span>'
        )
        rows.append(
            f'<tr data-child="{escape(scope)}"><td class="l"><b>{escape(scope)}</b> '
            f'{escape(c["name"])}</td><td class="l">{link}</td>'
            f'<td class="l">{escape(_when(c["as_of"]))}</td>'
            f"<td>{_fig(scope, 'received', f['received'])}</td>"
            f"<td>{_fig(scope, 'followed_up', f['followed_up'])}</td>"
            f'<td class="l">{_bar("fu", scope, "follow_up_percent", f["follow_up_share"])}</td>'
            f"<td>{_fig(scope, 'resolved', f['resolved'])}</td>"
            f'<td class="l">{_bar("rs", scope, "resolved_percent", f["resolved_share"])}</td>'
            f"<td>{_fig(scope, 'not_followed_up', f['not_followed_up'])}</td>"
            f"<td>{_fig(scope, 'overdue', f['overdue'])}</td>"
            f"<td>{_median(f['median_days_to_follow_up'])}</td>"
            f"<td>{_median(f['median_days_to_resolution'])}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _when(value: str | None) -> str:
    return "-" if not value else value[:19].replace("T", " ") + " UTC"


def _month_chart(scope: str, by_month: Sequence[int]) -> str:
    """Complaints received per month as an inline SVG bar chart."""
    width, height, top, bottom = 600, 200, 20, 30
    peak = max(by_month) if any(by_month) else 1
    step = width / 12
    bars = []
    for i, n in enumerate(by_month):
        h = (height - top - bottom) * n / peak
        x = i * step + 6
        y = height - bottom - h
        bars.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{step - 12:.1f}" height="{h:.1f}" '
            f'fill="#2f7ed8"><title>{_MONTHS[i]}: {n}</title></rect>'
            f'<text x="{x + (step - 12) / 2:.1f}" y="{y - 4:.1f}" font-size="11" '
            f'text-anchor="middle" data-scope="{escape(scope)}" data-figure="month-{i + 1}">'
            f"{n}</text>"
            f'<text x="{x + (step - 12) / 2:.1f}" y="{height - 10}" font-size="11" '
            f'text-anchor="middle">{_MONTHS[i]}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="complaints received per month">'
        f'<rect width="{width}" height="{height}" fill="#fff"/>{"".join(bars)}</svg>'
    )


def _overdue(items: Iterable[Mapping[str, Any]], query: str) -> str:
    rows = [
        f'<tr><td class="l"><a href="/complaint/{quote(i["tracking_id"])}{query}">'
        f"{escape(i['tracking_id'])}</a>{' (confidential)' if i['confidential'] else ''}</td>"
        f'<td class="l">{escape(i["child"])}</td><td class="l">{escape(i["status"])}</td>'
        f'<td class="l">{escape(i["holder"])}</td>'
        f'<td class="l">{escape(", ".join(i["overdue"]))}</td></tr>'
        for i in items
    ]
    if not rows:
        return '<p class="muted" data-figure="overdue-list">Nothing overdue.</p>'
    head = (
        '<tr><th class="l">tracking id</th><th class="l">child</th><th class="l">status</th>'
        '<th class="l">held by</th><th class="l">missed</th></tr>'
    )
    return f'<table data-figure="overdue-list">{head}{"".join(rows)}</table>'


def overview_page(
    report: Mapping[str, Any],
    overdue: Sequence[Mapping[str, Any]],
    query: str = "",
    warnings: Sequence[str] = (),
) -> str:
    """The overview: this node's figures, each child's, who is not connected, what is
    overdue, and complaints per month. ``query`` is appended to links (e.g. ``?year=``);
    ``warnings`` (certificates ending within 30 days) are shown first."""
    scope = report["node_id"]
    f = report["figures"]
    missing = "".join(
        f"<li>{escape(m['node_id'])} {escape(m['name'])}: {escape(m['state'])}</li>"
        for m in report["missing_children"]
    )
    tally = (
        f"<p>{report['connected_children']} of {report['expected_children']} expected children "
        "connected.</p>"
        if report["expected_children"]
        else ""
    )
    note = f'<p class="muted">{escape(report["note"])}</p>' if report.get("note") else ""
    alerts = "".join(
        f'<p class="error" data-figure="certificate-warning">{escape(w)}</p>' for w in warnings
    )
    body = (
        f"{alerts}<h1>{escape(scope)} {escape(report['name'])}</h1>"
        f'<p class="muted">Complaints submitted in <b data-figure="year">{report["year"]}</b>; '
        f"figures as of {escape(_when(report['generated_at']))}. Followed up = in progress, "
        "resolved or closed; shares rounded half up to one decimal; wd = working days from "
        f"submission.</p>{_year_form(int(report['year']))}{note}"
        f"<h2>This node</h2>{_cards(scope, f)}"
        f"<h2>Children</h2>{tally}{_children(report['children'])}"
        + (f"<h2>Expected, not connected</h2><ul>{missing}</ul>" if missing else "")
        + f"<h2>Overdue ({len(overdue)})</h2>{_overdue(overdue, query)}"
        f"<h2>Complaints per month</h2>{_month_chart(scope, f['by_month'])}"
        '<p class="muted">JSON: <a href="/api/report?year='
        f'{report["year"]}">/api/report?year={report["year"]}</a></p>'
    )
    return _page(f"{scope} dashboard {report['year']}", body)


def _proof(step: Mapping[str, Any]) -> str:
    if step["ledger_index"] is None:
        return "-"
    checked = escape(step["proof_checked"] or "-")
    doc = step.get("proof")
    if not doc:
        return f"entry {step['ledger_index']}: {checked}"
    path = "".join(f"<li><code>{escape(h)}</code></li>" for h in doc["audit_path"])
    return (
        f'<details><summary>entry {doc["leaf_index"]}: <span data-figure="proof">{checked}'
        f"</span> in tree size {doc['tree_size']}</summary>"
        f"leaf hash <code>{escape(doc['leaf_hash'])}</code><br>root <code>"
        f"{escape(doc['root'])}</code><br>audit path:<ol>{path}</ol>"
        f"<pre>{escape(doc['checkpoint'])}</pre></details>"
    )


def trail_page(trail: Mapping[str, Any], query: str = "") -> str:
    """A complaint's path across the tree and its events here, each with its proof."""
    nodes = " &rarr; ".join(escape(n) for n in trail["nodes"])
    rows = "".join(
        f'<tr><td class="l">{escape(_when(s["at"]))}</td><td class="l">{escape(s["status"])}</td>'
        f'<td class="l">{escape(s["actor"])}</td><td class="l">{escape(s["note"])}</td>'
        f'<td class="l">{_proof(s)}</td></tr>'
        for s in trail["steps"]
    )
    body = (
        f'<p><a href="/{query}">&larr; dashboard</a></p>'
        f"<h1>{escape(trail['tracking_id'])}</h1>"
        f'<p><span data-figure="status">{escape(trail["status"])}</span>, held by '
        f"<b>{escape(trail['holder'])}</b>"
        + (" (confidential: no content is shown anywhere)" if trail["confidential"] else "")
        + f'</p><p>Path: <span data-figure="path">{nodes}</span></p>'
        f'<p class="muted">Proofs are against this node\'s latest signed checkpoint '
        f"(size {trail['checkpoint_size']}), checked with its verifier key.</p>"
        '<table><tr><th class="l">when</th><th class="l">status</th><th class="l">by</th>'
        f'<th class="l">event</th><th class="l">ledger proof</th></tr>{rows}</table>'
    )
    return _page(f"{trail['tracking_id']} trail", body)


def error_page(status: int, message: str, year: int | None = None) -> str:
    """A refusal the operator can act on (the NodeError's message)."""
    form = _year_form(year) if year is not None else ""
    body = (
        f'<h1>{status}</h1><p class="error" data-figure="error">{escape(message)}</p>{form}'
        '<p><a href="/">dashboard</a></p>'
    )
    return _page(f"{status}", body)
