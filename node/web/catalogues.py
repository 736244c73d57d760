"""The dashboard's message catalogues: extract the msgids, compile the .po, check the .mo.

    python -m node.web.catalogues extract   # templates and node/web/*.py -> dashboard.pot,
                                            # merged into every language's .po
    python -m node.web.catalogues compile   # every .po -> its .mo (committed beside it)
    python -m node.web.catalogues check     # fails if a .mo differs from its .po, or if a
                                            # msgid of the code has no translation

Invariants:

1. The committed .mo holds exactly the translations ``compile`` makes of the committed .po,
   so a fresh clone serves translated pages without a build step and a .po edited without
   recompiling fails the suite (tests/unit/web).
2. Every msgid the templates and node/web use is translated in every catalogue; English is
   the source language and has none.
"""

from __future__ import annotations

import argparse
import gettext
import io
import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from node.web.i18n import DOMAIN, LOCALE_DIR

__all__ = ["compiled", "extract", "main", "problems"]

WEB_DIR = Path(__file__).parent
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
METHODS = [("templates/**.html", "jinja2"), ("*.py", "python")]
TEMPLATE_OPTIONS = {"templates/**.html": {"trim_blocks": "true", "lstrip_blocks": "true"}}


def _po_files() -> Iterator[Path]:
    yield from sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def extract() -> Catalog:
    """Every msgid of the templates and of node/web's modules."""
    catalog = Catalog(project="lapor-node", domain=DOMAIN)
    found = extract_from_dir(
        WEB_DIR, METHODS, keywords=KEYWORDS, options_map=TEMPLATE_OPTIONS, strip_comment_tags=True
    )
    for filename, lineno, message, comments, context in found:
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def compiled(po: Path) -> bytes:
    """The .mo that ``po`` compiles to."""
    with po.open("rb") as f:
        catalog = read_po(f, locale=po.parent.parent.name, domain=DOMAIN)
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def _messages(mo: bytes) -> dict[object, object]:
    """A compiled catalogue's translations, without its header (which names the Babel
    version that compiled it, so it may differ from machine to machine)."""
    catalogue = gettext.GNUTranslations(io.BytesIO(mo))
    return {k: v for k, v in catalogue._catalog.items() if k != ""}  # type: ignore[attr-defined]


def problems() -> list[str]:
    """What is wrong with the committed catalogues (invariants 1 and 2); [] when nothing."""
    found: list[str] = []
    wanted = {m.id for m in extract() if m.id}
    for po in _po_files():
        mo = po.with_suffix(".mo")
        if not mo.exists() or _messages(mo.read_bytes()) != _messages(compiled(po)):
            found.append(
                f"{mo} does not match {po.name}: run python -m node.web.catalogues compile"
            )
        with po.open("rb") as f:
            catalog = read_po(f, locale=po.parent.parent.name, domain=DOMAIN)
        for msgid in sorted(wanted, key=str):
            message = catalog.get(msgid)
            if message is None or not message.string or message.fuzzy:
                found.append(f"{po}: no translation of {msgid!r}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m node.web.catalogues")
    parser.add_argument("action", choices=["extract", "compile", "check"])
    action = parser.parse_args(argv).action
    if action == "extract":
        template = extract()
        with (LOCALE_DIR / f"{DOMAIN}.pot").open("wb") as f:
            write_po(f, template, omit_header=True, sort_output=True, width=100)
        for po in _po_files():
            with po.open("rb") as f:
                catalog = read_po(f, locale=po.parent.parent.name, domain=DOMAIN)
            catalog.update(template, no_fuzzy_matching=True)
            with po.open("wb") as f:
                write_po(f, catalog, sort_output=True, width=100)
    elif action == "compile":
        for po in _po_files():
            po.with_suffix(".mo").write_bytes(compiled(po))
    else:
        wrong = problems()
        for line in wrong:
            print(line, file=sys.stderr)
        return 1 if wrong else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
