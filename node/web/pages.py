"""The dashboard's HTML: Jinja2 templates under node/web/templates, rendered on the server
from the same documents `lapor-node report --format json` prints (node.services.reports).

Invariants:

1. Autoescaping is on for every template: a value from a document reaches the page escaped.
   The page has no script and loads nothing from elsewhere (CSS inline, charts as inline
   SVG), so it works on a machine without internet and under a Content-Security-Policy of
   default-src 'none'.
2. Every figure carries ``data-scope`` and ``data-figure`` so a test can compare the page
   with the JSON; its text is the figure as the page's language writes it (90,5% in
   Indonesian, 90.5% in English, from the one decimal node.workflow.reports fixed).
3. Nothing personal: the documents carry no content or reporter, and the pages add none.
4. The words are msgids translated per request (node.web.i18n), never set on the shared
   environment, so two requests in two languages cannot mix.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from babel.dates import get_month_names
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from node.web.i18n import LANGUAGES, Formats

__all__ = ["render"]

_ENV = Environment(
    loader=PackageLoader("node.web", "templates"),
    autoescape=select_autoescape(["html"], default_for_string=True, default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["q"] = lambda value: quote(str(value), safe="")


def _month_bars(by_month: list[int]) -> dict[str, Any]:
    """Geometry of the complaints-per-month chart (an inline SVG, invariant 1)."""
    width, height, top, bottom = 600, 200, 20, 30
    peak = max(by_month) if any(by_month) else 1
    step = width / 12
    bars = []
    for i, n in enumerate(by_month):
        h = (height - top - bottom) * n / peak
        x = i * step + 6
        y = height - bottom - h
        bars.append(
            {
                "n": n,
                "x": f"{x:.1f}",
                "y": f"{y:.1f}",
                "w": f"{step - 12:.1f}",
                "h": f"{h:.1f}",
                "mid": f"{x + (step - 12) / 2:.1f}",
                "label_y": f"{y - 4:.1f}",
            }
        )
    return {"width": width, "height": height, "bars": bars}


_ENV.globals["month_bars"] = _month_bars


def _months(language: str) -> list[str]:
    names = get_month_names("abbreviated", locale=language)
    return [str(names[m]) for m in range(1, 13)]


def render(template: str, fmt: Formats, **context: Any) -> str:
    """``template`` rendered in ``fmt``'s language and time zone."""
    return _ENV.get_template(template).render(
        fmt=fmt,
        _=fmt.markup_gettext,
        ngettext=fmt.markup_ngettext,
        languages=LANGUAGES,
        months=_months(fmt.language),
        zone_abbreviation=fmt.zone_abbreviation(),
        **context,
    )
