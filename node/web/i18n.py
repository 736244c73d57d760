"""The dashboard's languages and formats: Bahasa Indonesia by default, English on request.

Invariants:

1. The words of every page are msgids in the templates (English, gettext's source
   language), translated from the catalogue node/web/locale/<lang>/LC_MESSAGES/dashboard.mo,
   compiled from its .po and committed beside it (tests/unit/web/test_catalogues.py checks
   they match; scripts/compile_messages.py recompiles them). English needs no catalogue.
2. A request's language: ``?lang=`` (remembered in a cookie), else the cookie, else the
   best of the browser's Accept-Language, else Indonesian.
3. Numbers are written as the language writes them (2.490 and 90,5% in Indonesian) and
   every time in the node's time zone with the zone named (WITA, Asia/Makassar).
"""

from __future__ import annotations

import datetime as dt
import gettext
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal
from markupsafe import Markup

__all__ = [
    "DEFAULT",
    "DOMAIN",
    "LANGUAGES",
    "LOCALE_DIR",
    "Formats",
    "choose_language",
    "translations",
]

DOMAIN = "dashboard"
LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT = "id"
LANGUAGES: Mapping[str, str] = {"id": "Bahasa Indonesia", "en": "English"}
"""The languages offered, each with its name as written in itself (for the switch)."""


def N_(message: str) -> str:
    """Mark a msgid for extraction without translating it (translated where shown)."""
    return message


# Values that come from the node's documents and are shown translated (link states of
# node.services.links, complaint statuses of node.workflow.lifecycle).
SERVICE_WORDS = (
    N_("connected"),
    N_("not connected"),
    N_("never connected"),
    N_("revoked"),
    N_("invited"),
    N_("waiting for approval"),
    N_("approved"),
    N_("never linked"),
    N_("submitted"),
    N_("verified"),
    N_("referred"),
    N_("accepted"),
    N_("in_progress"),
    N_("resolved"),
    N_("closed"),
    N_("held"),
    N_("archived"),
    N_("returned"),
    N_("escalated"),
    N_("not yet covered"),
    N_("(this node)"),
    N_("verify"),
    N_("first_follow_up"),
    N_("resolve"),
)

_LAST_SEEN = re.compile(
    r"^(?:(?P<state>[a-z ]+), )?last seen "
    r"(?P<when>\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})?) UTC$"
)
_MISSED = re.compile(r"^(?P<deadline>[a-z_]+) \(due (?P<due>\d{4}-\d{2}-\d{2})\)$")


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalogue of ``language`` (English, the source language, has none)."""
    if language == "en":
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[language])


def choose_language(
    asked: str | None, remembered: str | None, accept: Callable[[list[str]], str | None]
) -> str:
    """The language of a request (invariant 2); ``accept`` is the Accept-Language match."""
    for candidate in (asked, remembered):
        if candidate is not None and candidate in LANGUAGES:
            return candidate
    return accept(list(LANGUAGES)) or DEFAULT


@dataclass(frozen=True)
class Formats:
    """How one request writes numbers, shares and times, and names units."""

    language: str
    timezone: str
    names: Mapping[str, str]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def gettext(self, message: str, **values: Any) -> str:
        text = translations(self.language).gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: Any) -> str:
        text = translations(self.language).ngettext(singular, plural, n)
        return text % {"num": n, **values}

    def markup_gettext(self, message: str, **values: Any) -> Markup:
        """gettext for autoescaped templates: the translation is trusted, values escaped."""
        text = Markup(translations(self.language).gettext(message))  # noqa: S704 - our catalogue
        return text % values if values else text

    def markup_ngettext(self, singular: str, plural: str, n: int, **values: Any) -> Markup:
        text = Markup(translations(self.language).ngettext(singular, plural, n))  # noqa: S704
        return text % {"num": n, **values}

    def number(self, value: int | float) -> str:
        return str(format_decimal(value, locale=self.language))

    def percent(self, value: float) -> str:
        """A share with the one decimal the documents fix, e.g. 90,5% or 90.5%."""
        return str(format_decimal(value, format="0.0", locale=self.language)) + "%"

    def median(self, value: float | None) -> str:
        return "-" if value is None else str(format_decimal(value, locale=self.language))

    def zone_abbreviation(self, when: dt.datetime | None = None) -> str:
        moment = when or dt.datetime.now(dt.UTC)
        return moment.astimezone(self.zone).tzname() or self.timezone

    def when(self, value: str | dt.datetime | None) -> str:
        """A moment in the node's zone with the zone's abbreviation: 2020-04-30 08:00 WITA."""
        if not value:
            return "-"
        moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        local = moment.astimezone(self.zone)
        return f"{local:%Y-%m-%d %H:%M} {local.tzname() or self.timezone}"

    def unit(self, node_id: str) -> str:
        """A node id with its unit's name when this node knows it."""
        name = self.names.get(node_id)
        return f"{node_id} {name}" if name else node_id

    def state(self, value: str) -> tuple[str, str | None]:
        """A link state as the documents write it ("not connected, last seen 2020-03-02
        01:00 UTC"): the state in this language, and when last seen in the node's zone."""
        found = _LAST_SEEN.match(value)
        if found is None:
            return self.word(value), None
        seen = dt.datetime.fromisoformat(found["when"]).replace(tzinfo=dt.UTC)
        # `link list` words a child that is not connected by when it was last seen alone.
        state = self.word(found["state"] or "not connected")
        return state, self.gettext("last seen %(when)s", when=self.when(seen))

    def missed(self, value: str) -> str:
        """A missed deadline as the documents write it ("resolve (due 2020-03-20)")."""
        found = _MISSED.match(value)
        if found is None:
            return value
        return self.gettext(
            "%(deadline)s (due %(due)s)",
            deadline=self.word(found["deadline"]),
            due=found["due"],
        )

    def word(self, value: str) -> str:
        """A status or link state from the documents, in this language."""
        return translations(self.language).gettext(value)
