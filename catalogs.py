"""The app's words in every language: gettext catalogs, `translations/<lang>/LC_MESSAGES/<domain>.po`.

Two domains: `messages` (what the pages show) and `bot` (the comments the app writes on GitHub). A
translator adds a language by adding a `.po` file, and no code. Message ids are stable keys
("greeting.issue"), with the English in `en`; a message a language lacks falls back to English. The
`.po` files are compiled in memory when first needed, so there is no `.mo` to compile and forget.
Messages take `{name}` fields.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
DEFAULT = "en"
PAGES, BOT = "messages", "bot"


@functools.cache
def _load(domain: str, folder: Path) -> dict[str, Translations]:
    found: dict[str, Translations] = {}
    for po in sorted(folder.glob(f"*/LC_MESSAGES/{domain}.po")):
        lang = po.parts[-3]
        with po.open("rb") as file:
            catalog = read_po(file, locale=lang, domain=domain)
        compiled = io.BytesIO()
        write_mo(compiled, catalog)  # fuzzy messages are left out, as msgfmt does
        compiled.seek(0)
        found[lang] = Translations(compiled, domain=domain)
    english = found.pop(DEFAULT)
    for translations in found.values():
        translations.add_fallback(english)
    return {DEFAULT: english, **found}


def load(domain: str = PAGES, folder: Path | None = None) -> dict[str, Translations]:
    """Every language with a catalog of `domain` (in `folder`, by default `translations/`), English
    first, each falling back to English."""
    return _load(domain, folder or TRANSLATIONS)


def languages(domain: str = PAGES) -> tuple[str, ...]:
    return tuple(load(domain))


def catalog(lang: str, domain: str = PAGES) -> Translations:
    """The catalog of `lang`, or English when there is none."""
    found = load(domain)
    return found.get(lang) or found[DEFAULT]


def text(lang: str, key: str, **fields: str) -> str:
    """A bot message in `lang` with its `{name}` fields filled in (the text as written when none are
    given, for a caller that fills it with the repository's own fields)."""
    message = catalog(lang, BOT).gettext(key)
    return message.format(**fields) if fields else message
