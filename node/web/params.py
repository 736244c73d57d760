"""The dashboard's parameters and refusals: every query value a page takes is checked here,
and refused in words for the person at the browser (node.web.app, invariant 3).

Invariants:

1. A refusal is a WebError: a msgid of the catalogue (node.web.i18n) and its values, put
   into words in the page's language only when shown; it names what to change on the page,
   never a command-line option, and repeats at most a short prefix of what was typed.
2. A NodeError that no page words itself loses the command-line advice it may carry.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from node.errors import NodeError, NotFoundError
from node.services import dashboard_queries, reports
from node.services.context import NodeContext
from node.web.i18n import N_, Formats
from node.workflow.holidays import covered_years

__all__ = ["WebError", "child", "deadline", "page", "web_error", "year", "year_or_none"]

_CLI_HINT = re.compile(r"[;:,]\s*(pass|run|use)\s.*$", re.DOTALL)


class WebError(NodeError):
    """A refusal for the person at the browser: a msgid of the catalogue and its values."""

    def __init__(self, status: HTTPStatus, message: str, **values: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.values = values

    def text(self, fmt: Formats) -> str:
        return fmt.gettext(self.message, **self.values)


def year(ctx: NodeContext, args: Mapping[str, str]) -> int:
    """The year asked for (this year by default), refused in words for a web user."""
    raw = args.get("year", "").strip()
    this_year = reports.today(ctx).year
    if not raw:
        return this_year
    if not raw.isdigit() or len(raw) > 4:
        raise WebError(
            HTTPStatus.BAD_REQUEST,
            N_("The year must be a number such as %(example)s; “%(found)s” is not one."),
            example=this_year,
            found=raw[:20],
        )
    year = int(raw)
    covered = sorted(covered_years())
    if year not in covered:
        raise WebError(
            HTTPStatus.BAD_REQUEST,
            N_(
                "There is no working-day calendar for %(year)s on this node: choose a "
                "year from %(first)s to %(last)s."
            ),
            year=year,
            first=covered[0],
            last=covered[-1],
        )
    if year > this_year:
        raise WebError(
            HTTPStatus.BAD_REQUEST,
            N_("%(year)s has not started yet: choose %(this)s or an earlier year."),
            year=year,
            this=this_year,
        )
    years = dashboard_queries.years_with_complaints(ctx)
    if years and year not in years:
        raise WebError(
            HTTPStatus.NOT_FOUND,
            N_(
                "No complaint submitted in %(year)s is known to this node: choose a year "
                "from %(first)s to %(last)s."
            ),
            year=year,
            first=years[0],
            last=years[-1],
        )
    return year


def year_or_none(ctx: NodeContext, args: Mapping[str, str]) -> int | None:
    try:
        return year(ctx, args)
    except (WebError, NodeError):
        return None


def deadline(ctx: NodeContext, args: Mapping[str, str]) -> dt.date:
    raw = args.get("deadline", "").strip()
    try:
        deadline = dt.date.fromisoformat(raw)
    except ValueError as e:
        raise WebError(
            HTTPStatus.BAD_REQUEST,
            N_(
                "The deadline must be a date written as year-month-day, such as "
                "%(example)s; “%(found)s” is not one."
            ),
            example=f"{reports.today(ctx).year}-12-31",
            found=raw[:20],
        ) from e
    today = reports.today(ctx)
    if deadline < today:
        raise WebError(
            HTTPStatus.BAD_REQUEST,
            N_(
                "The deadline %(deadline)s is in the past (today is %(today)s in "
                "%(zone)s): choose a date from today on."
            ),
            deadline=deadline.isoformat(),
            today=today.isoformat(),
            zone=ctx.config.timezone,
        )
    return deadline


def page(args: Mapping[str, str]) -> int:
    raw = args.get("page", "1").strip()
    if not raw.isdigit() or int(raw) < 1:
        raise WebError(
            HTTPStatus.BAD_REQUEST,
            N_("The page must be a number from 1 on; “%(found)s” is not one."),
            found=raw[:20],
        )
    return int(raw)


def child(args: Mapping[str, str], known: Iterable[str]) -> str | None:
    child = args.get("child") or None
    if child is not None and child not in set(known):
        raise WebError(
            HTTPStatus.NOT_FOUND,
            N_("%(child)s is not one of this node's children; pick one from the list."),
            child=child[:64],
        )
    return child


def web_error(error: NodeError) -> WebError:
    """`error` as a refusal for the browser: a WebError as it is; another NodeError no
    endpoint words itself without the command-line advice it may carry."""
    if isinstance(error, WebError):
        return error
    status = HTTPStatus.NOT_FOUND if isinstance(error, NotFoundError) else HTTPStatus.BAD_REQUEST
    detail = _CLI_HINT.sub("", str(error)).strip()
    return WebError(status, N_("This page cannot be shown: %(detail)s."), detail=detail)
