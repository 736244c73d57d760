"""The dashboard's languages, formats, catalogues and escaping (node.web)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from node.errors import ValidationError
from node.web import catalogues, pages
from node.web.i18n import Formats, choose_language
from node.web.params import web_error

SWITCH = {"id": "/?lang=id", "en": "/?lang=en"}


def _accepting(*offered: str) -> object:
    return lambda languages: next((x for x in offered if x in languages), None)


@pytest.mark.parametrize(
    ("asked", "remembered", "browser", "chosen"),
    [
        pytest.param(None, None, (), "id", id="nothing-said-is-indonesian"),
        pytest.param(None, None, ("en",), "en", id="browser-english"),
        pytest.param(None, "en", ("id",), "en", id="cookie-beats-browser"),
        pytest.param("id", "en", ("en",), "id", id="switch-beats-cookie"),
        pytest.param("fr", None, (), "id", id="unknown-switch-ignored"),
    ],
)
def test_choose_language(
    asked: str | None, remembered: str | None, browser: tuple[str, ...], chosen: str
) -> None:
    """?lang= first, then the cookie, then Accept-Language, then Bahasa Indonesia."""
    assert choose_language(asked, remembered, _accepting(*browser)) == chosen  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("language", "zone", "number", "percent", "when"),
    [
        ("id", "Asia/Makassar", "2.490", "90,5%", "2020-04-30 10:00 WITA"),
        ("en", "Asia/Jakarta", "2,490", "90.5%", "2020-04-30 09:00 WIB"),
        ("id", "Asia/Jayapura", "2.490", "90,5%", "2020-04-30 11:00 WIT"),
    ],
)
def test_formats(language: str, zone: str, number: str, percent: str, when: str) -> None:
    """Numbers as the language writes them; times in the node's zone, the zone named."""
    fmt = Formats(language, zone, {"id-64-02": "Kabupaten Kutai Kartanegara"})
    assert fmt.number(2490) == number
    assert fmt.percent(90.5) == percent
    assert fmt.when("2020-04-30T02:00:00+00:00") == when
    assert fmt.unit("id-64-02") == "id-64-02 Kabupaten Kutai Kartanegara"
    assert fmt.unit("id-64-99") == "id-64-99"


def test_service_texts_are_translated_and_their_times_moved_to_the_zone() -> None:
    """Link states, statuses and missed deadlines from the documents read in Indonesian,
    and a "last seen" time in UTC is shown in the node's zone."""
    fmt = Formats("id", "Asia/Makassar", {})
    assert fmt.word("in_progress") == "ditindaklanjuti"
    assert fmt.missed("resolve (due 2020-03-20)") == "penyelesaian (batas 2020-03-20)"
    assert fmt.state("not connected, last seen 2020-03-02 01:00 UTC") == (
        "tidak terhubung",
        "terakhir terlihat 2020-03-02 09:00 WITA",
    )
    assert fmt.state("never linked") == ("belum pernah ditautkan", None)


def test_templates_escape_every_value() -> None:
    """Autoescaping: a value with markup reaches the page as text, in any language."""
    for language in ("id", "en"):
        fmt = Formats(language, "Asia/Jakarta", {})
        html = pages.render(
            "error.html", fmt, status=400, message="<script>x</script>", year=None, switch=SWITCH
        )
        assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>" not in html
        assert f'<html lang="{language}">' in html
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


def test_a_service_refusal_loses_its_command_line_advice() -> None:
    """A NodeError no page words itself is shown without its "pass --year" advice."""
    error = ValidationError(
        "no working-day calendar for 2019: this version knows 2020-2027; pass --year within "
        "that range"
    )
    text = web_error(error).text(Formats("en", "Asia/Jakarta", {}))
    assert "no working-day calendar for 2019" in text and "--year" not in text


def test_committed_catalogues_match_their_sources() -> None:
    """Every .mo holds what its .po compiles to, and every msgid is translated."""
    assert catalogues.problems() == []


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        pytest.param(
            lambda po: po.replace('msgstr "Diterima"', 'msgstr "Masuk"'),
            "does not match",
            id="po-edited-not-compiled",
        ),
        pytest.param(
            lambda po: po.replace('msgstr "Diterima"', 'msgstr ""'),
            "no translation of 'Received'",
            id="msgid-untranslated",
        ),
    ],
)
def test_catalogue_check_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: object, problem: str
) -> None:
    """The check fails on a .po edited without recompiling, and on a missing translation."""
    locale = tmp_path / "locale"
    shutil.copytree(catalogues.LOCALE_DIR, locale)
    po = locale / "id" / "LC_MESSAGES" / "dashboard.po"
    text = po.read_text()
    assert 'msgstr "Diterima"' in text
    po.write_text(edit(text))  # type: ignore[operator]
    if problem.startswith("no translation"):
        (po.with_suffix(".mo")).write_bytes(catalogues.compiled(po))
    monkeypatch.setattr(catalogues, "LOCALE_DIR", locale)
    found = catalogues.problems()
    assert found and any(problem in p for p in found), found
