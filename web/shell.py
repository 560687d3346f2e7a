"""What every page shares: its language, its words, its links and the layout's helpers (templates/base.html).

The LLMasOS community works in several languages, so every word a page shows is a message in a gettext
catalog, `translations/<lang>/LC_MESSAGES/messages.po`, loaded by `catalogs` (the bot's comments have
theirs too): a translator adds a language by adding a `.po` file, and no code. Flask-Babel picks each
request's locale with `choose`: a `?lang=` in the address wins (and is kept in the page's links);
otherwise the browser's Accept-Language decides, and English is the fallback. Messages take `{name}`
fields, filled in with `str.format`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from babel import Locale
from flask import g, request, url_for
from flask.sansio.app import App
from flask_babel import Babel, Domain, get_translations  # type: ignore[import-untyped]
from markupsafe import Markup, escape

import catalogs
from catalogs import DEFAULT, PAGES

# The `lang` attribute, where it says more than the catalog's name: Chinese here is simplified Chinese.
HTML_LANG = {"zh": "zh-CN"}
# In a message shown as HTML, `code` and **bold** (escaped first, so a translation cannot add markup).
_CODE, _BOLD = re.compile(r"`([^`]+)`"), re.compile(r"\*\*(.+?)\*\*")


def html_lang(lang: str) -> str:
    return HTML_LANG.get(lang, lang)


def language_name(lang: str) -> str:
    """The language's name in itself ("中文" for zh), from Babel's locale data."""
    name = Locale.parse(lang).get_display_name(lang) or lang
    return name[:1].upper() + name[1:]


def choose(requested: str | None, accepted: Any) -> tuple[str, bool]:
    """(language, chosen explicitly): `?lang=` when it names one of ours, else the best Accept-Language
    match (`accepted` is Werkzeug's LanguageAccept: zh-CN and zh-TW match zh), else English."""
    ours = catalogs.languages(PAGES)
    if requested in ours:
        return str(requested), True
    match = accepted.best_match(ours) if accepted is not None else None
    return (str(match) if match in ours else DEFAULT), False


def language() -> tuple[str, bool]:
    """This request's (language, chosen explicitly), decided once."""
    if "language" not in g:
        g.language = choose(request.args.get("lang"), request.accept_languages)
    found: tuple[str, bool] = g.language
    return found


def init_app(app: App) -> None:
    """Flask-Babel with our locale choice and the catalogs compiled from the `.po` files (once per app)."""
    if "babel" in app.extensions:
        return
    babel = Babel(app, locale_selector=lambda: language()[0], configure_jinja=False)
    # Flask-Babel's default domain loads .mo files into its cache; this one's cache holds ours already.
    domain = Domain()
    domain.cache.update({(lang, PAGES): translations for lang, translations in catalogs.load(PAGES).items()})
    babel.domain_instance = domain


def _format(text: str, fields: Mapping[str, Any]) -> str:
    return text.format(**fields) if fields else text


def english(key: str, **fields: Any) -> str:
    """A message in English, for the logs and the JSON and CSV endpoints (read by programs)."""
    return _format(catalogs.catalog(DEFAULT, PAGES).gettext(key), fields)


class Translator:
    """This request's words, for templates and views: `t("key", name=...)`, `t.kind("merged")`, ..."""

    def __call__(self, key: str, **fields: Any) -> str:
        return _format(get_translations().gettext(key), fields)

    def html(self, key: str, **fields: Any) -> Markup:
        """A message with `code` and **bold**, its fields escaped unless they are Markup already."""
        text = str(escape(get_translations().gettext(key)))
        text = _BOLD.sub(r"<strong>\1</strong>", _CODE.sub(r"<code>\1</code>", text))
        return Markup(text).format(**fields)

    def _named(self, prefix: str, name: str, default: str) -> str:
        key = f"{prefix}.{name}"
        text = self(key)
        return default if text == key else text

    @property
    def lang(self) -> str:
        return language()[0]

    @property
    def html_lang(self) -> str:
        return html_lang(self.lang)

    def kind(self, name: str) -> str:
        return self._named("kind", name, name)

    def series(self, name: str) -> str:
        return self._named("series", name, name)

    def series_help(self, name: str) -> str:
        return self._named("series_help", name, "")

    def direction(self, word: str) -> str:
        return self._named("direction", word, word)

    def unit(self, unit: str) -> str:
        return "" if unit == "count" else self._named("unit", unit, unit)

    def window(self, name: str) -> str:
        return self(f"window.{name}")

    def formula(self, formula: Mapping[str, Any]) -> tuple[str, str]:
        """(the sum, the comment cap sentence or ""), in this language, from the weights in use."""
        terms = [
            f"{weight} × {self._named('point', kind, kind)}"
            for kind, weight in dict(formula.get("points") or {}).items()
            if weight
        ]
        total = f"{self('formula.points')} = " + " + ".join(terms) if terms else self("formula.none")
        cap = int(formula.get("daily_comment_cap") or 0)
        return total, self("formula.cap", cap=cap) if cap else ""


def link(endpoint: str, **params: Any) -> str:
    """A URL to one of the pages, carrying `?lang=` when the visitor chose the language explicitly."""
    lang, explicit = language()
    if explicit and "lang" not in params:
        params["lang"] = lang
    return url_for(endpoint, **{key: value for key, value in params.items() if value not in (None, "")})


def here(**changes: Any) -> str:
    """This page's URL with some query parameters changed (None drops one)."""
    params: dict[str, Any] = dict(request.args.items())
    params.update(changes)
    return link(str(request.endpoint), **params)


def web_url(url: str) -> str:
    """A link to GitHub as stored, or nothing when it is not a plain http(s) address."""
    return url if re.match(r"https?://", url or "", re.I) else "#"


def template_helpers(switch: Callable[[str], str] | None = None) -> dict[str, Any]:
    """What templates/base.html and the pages use. `switch(lang)` is the address of this page in another
    language (by default this very address with `lang` changed)."""
    lang, explicit = language()
    to = switch or (lambda other: here(lang=other))
    toggles = [
        {"lang": other, "name": language_name(other), "html_lang": html_lang(other), "url": to(other)}
        for other in catalogs.languages(PAGES)
        if other != lang
    ]
    return {
        "t": Translator(),
        "lang": lang,
        "explicit_lang": explicit,
        "link": link,
        "here": here,
        "toggles": toggles,
        "web_url": web_url,
    }
