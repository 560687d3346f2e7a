"""The gettext catalogs: every message the pages use is there, in every language, with the same fields.

A message missing in one language would show its key (or English) to that language's readers, and a
field one translation drops or renames would raise while the page renders; both fail here instead.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

import catalogs
from readmodels.insights import BETTER, SAME, SERIES, UNKNOWN, WORSE
from readmodels.leaderboard import COUNT_COLUMNS, POINT_COLUMNS
from readmodels.stats import FALLING, RISING, STEADY
from storage.windows import WINDOWS
from tests.conftest import MakeApp
from web import shell

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [*ROOT.glob("templates/*.html"), *ROOT.glob("web/*.py")]
# A quoted message key: "leaderboard.title", 'setup.reason.lacks', "brand".
QUOTED_KEY = re.compile(r"""["']([a-z_]+(?:\.[a-z0-9_]+)+|brand|language|footer|window)["']""")
FILE_NAMES = (".html", ".yml", ".css", ".svg")
# Keys built from names rather than written out: `t.kind(name)`, `t.series(name)`, ...
BUILT_KEYS = [
    *(f"window.{name}" for name in WINDOWS),
    *(f"kind.{name}" for name in COUNT_COLUMNS),
    *(f"point.{name}" for name in POINT_COLUMNS),
    *(f"series.{name}" for name in SERIES),
    *(f"series_help.{name}" for name in SERIES),
    *(f"unit.{unit}" for unit in set(SERIES.values()) - {"count"}),
    *(f"direction.{word}" for word in (RISING, FALLING, STEADY)),
    *(f"verdict.{word}" for word in (BETTER, WORSE, SAME, UNKNOWN)),
    "formula.points",
    "formula.none",
    "formula.cap",
]


def catalog_files() -> list[Path]:
    return sorted((ROOT / "translations").glob("*/LC_MESSAGES/messages.po"))


def messages(path: Path) -> dict[str, tuple[str, bool]]:
    """msgid -> (msgstr, fuzzy), without the header."""
    with path.open("rb") as file:
        catalog = read_po(file)
    return {str(m.id): (str(m.string), m.fuzzy) for m in catalog if m.id}


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


@pytest.fixture
def used_keys(make_app: MakeApp) -> set[str]:
    """Every message key written in templates/ and web/*.py, and the ones built from names."""
    endpoints = {rule.endpoint for rule in make_app().url_map.iter_rules()}  # "setup.start" is a route
    quoted = {key for path in SOURCES for key in QUOTED_KEY.findall(path.read_text(encoding="utf-8"))}
    quoted = {key for key in quoted if not key.endswith(FILE_NAMES)}
    return (quoted - endpoints - {"engage.admin_failure_limit"}) | set(BUILT_KEYS)


def each_catalog() -> list[object]:
    return [pytest.param(path, id=path.parts[-3]) for path in catalog_files()]


def test_english_and_chinese_are_there():
    assert catalogs.languages()[:1] == ("en",) and "zh" in catalogs.languages()
    assert [p.parts[-3] for p in catalog_files()] == sorted(catalogs.languages())


@pytest.mark.parametrize("path", each_catalog())
def test_every_message_used_is_in_every_catalog_and_not_empty(path, used_keys):
    found = messages(path)
    missing = sorted(key for key in used_keys if not found.get(key, ("", False))[0].strip())
    assert not missing, f"{path.relative_to(ROOT)} lacks {missing}"
    assert "setup.bad_state" in used_keys and "leaderboard.title" in used_keys, "the search finds keys"


@pytest.mark.parametrize("path", each_catalog())
def test_no_fuzzy_messages_and_the_same_fields_as_english(path):
    english = messages(ROOT / "translations/en/LC_MESSAGES/messages.po")
    found = messages(path)
    assert not [key for key, (_, fuzzy) in found.items() if fuzzy], "fuzzy messages are not shown: translate them"
    assert sorted(set(found) - set(english)) == [], "a message English does not have"
    wrong = {
        key: (text, english[key][0]) for key, (text, _) in found.items() if fields(text) != fields(english[key][0])
    }
    assert not wrong, f"fields differ from English: {wrong}"


def test_a_new_catalog_is_a_new_language_falling_back_to_english(tmp_path):
    for path in catalog_files():
        target = tmp_path / path.relative_to(ROOT / "translations")
        target.parent.mkdir(parents=True)
        target.write_bytes(path.read_bytes())
    french = tmp_path / "fr/LC_MESSAGES/messages.po"
    french.parent.mkdir(parents=True)
    french.write_text('msgid "nav.overview"\nmsgstr "Aperçu"\n\n#, fuzzy\nmsgid "nav.insights"\nmsgstr "Analyses"\n')
    found = catalogs.load(catalogs.PAGES, tmp_path)
    assert next(iter(found)) == "en" and set(found) == {"en", "fr", "zh"}
    assert found["fr"].gettext("nav.overview") == "Aperçu"
    assert found["fr"].gettext("nav.insights") == "Insights", "a fuzzy message is not used"
    assert found["fr"].gettext("nav.leaderboard") == "Leaderboard", "missing: English"
    assert (shell.language_name("fr"), shell.language_name("zh"), shell.language_name("en")) == (
        "Français",
        "中文",
        "English",
    )
