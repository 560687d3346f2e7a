"""The bot's catalogs (translations/<lang>/LC_MESSAGES/bot.po): every comment the behaviours write is
there in English and Chinese, with the same fields, and a new catalog is a new language the bot speaks.

A message missing in Chinese would greet Chinese speakers in English, and a field a translation drops
or renames would raise while the comment is written; both fail here instead.
"""

from __future__ import annotations

import ast
import re
import shutil
import string
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

import catalogs
from engagement import greeting
from engagement.common.config import parse
from engagement.registry import BEHAVIOURS
from tests.conftest import REPO, ROOT, example, installed, run_rq_worker

BOT_PO = "LC_MESSAGES/bot.po"
# The config check answers in English: the problems it lists are the parser's, in English.
ENGLISH_ONLY = "config_check."
NEWCOMER = "marie-newcomer"


def catalog_files() -> list[Path]:
    return sorted((ROOT / "translations").glob(f"*/{BOT_PO}"))


def messages(path: Path) -> dict[str, tuple[str, bool]]:
    """msgid -> (msgstr, fuzzy), without the header."""
    with path.open("rb") as file:
        catalog = read_po(file)
    return {str(m.id): (str(m.string), m.fuzzy) for m in catalog if m.id}


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def used_keys() -> set[str]:
    """Every message key written in the behaviours' modules and the digest: a string named after a behaviour
    ("greeting.issue"), except a handler's `name=` (which reads the same but names a handler)."""
    key = re.compile(rf"^({'|'.join([*(b.NAME for b in BEHAVIOURS), 'digest'])})(\.[a-z0-9_]+)+$")
    found: set[str] = set()
    for path in [*(ROOT / "engagement").rglob("*.py"), ROOT / "readmodels" / "digest.py"]:
        if "common" in path.relative_to(ROOT).parts:
            continue  # shared code: config paths such as `good_first_issues.labels` are no messages
        tree = ast.parse(path.read_text(encoding="utf-8"))
        handler_names = {
            id(k.value) for n in ast.walk(tree) if isinstance(n, ast.Call) for k in n.keywords if k.arg == "name"
        }
        found |= {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and key.match(node.value)
            if id(node) not in handler_names
        }
    return found


def test_english_and_chinese_are_there_and_the_search_finds_keys():
    assert catalogs.languages(catalogs.BOT)[:1] == ("en",) and "zh" in catalogs.languages(catalogs.BOT)
    keys = used_keys()
    assert {"greeting.issue", "thanks.merged", "leaderboard.opted_out", "good_first_issues.guide"} <= keys
    assert "greeting.first_merge" in keys and "config_check.problems" in keys


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_message_used_is_in_english_and_chinese_and_not_empty(lang):
    found = messages(ROOT / "translations" / lang / BOT_PO)
    wanted = {key for key in used_keys() if lang == "en" or not key.startswith(ENGLISH_ONLY)}
    missing = sorted(key for key in wanted if not found.get(key, ("", False))[0].strip())
    assert not missing, f"translations/{lang}/{BOT_PO} lacks {missing}"


def test_every_english_message_is_used():
    unused = sorted(set(messages(ROOT / "translations/en" / BOT_PO)) - used_keys())
    assert not unused, f"messages no behaviour uses (remove them from every bot.po): {unused}"


@pytest.mark.parametrize("path", [pytest.param(p, id=p.parts[-3]) for p in catalog_files()])
def test_no_fuzzy_messages_and_the_same_fields_as_english(path):
    english = messages(ROOT / "translations/en" / BOT_PO)
    found = messages(path)
    assert not [key for key, (_, fuzzy) in found.items() if fuzzy], "fuzzy messages are not used: translate them"
    assert sorted(set(found) - set(english)) == [], "a message English does not have"
    wrong = {
        key: (text, english[key][0]) for key, (text, _) in found.items() if fields(text) != fields(english[key][0])
    }
    assert not wrong, f"fields differ from English: {wrong}"


# --- a third language


FRENCH = """msgid ""
msgstr ""
"Language: fr\\n"
"Content-Type: text/plain; charset=UTF-8\\n"

msgid "greeting.issue"
msgstr "Bienvenue, @{login}, et merci pour votre premier ticket dans {repo} ! 🎉{links}"

msgid "greeting.links_intro"
msgstr "Pendant que vous êtes là :"

msgid "greeting.signature"
msgstr "<sub>Je suis le robot LLMasOS Engage ; les gens de {repo} prendront le relais.</sub>"
"""


@pytest.fixture
def with_french(tmp_path, monkeypatch):
    """The translations folder as a translator's pull request would leave it: ours, plus fr/bot.po."""
    shutil.copytree(ROOT / "translations", tmp_path / "translations")
    french = tmp_path / "translations/fr" / BOT_PO
    french.parent.mkdir(parents=True)
    french.write_text(FRENCH, encoding="utf-8")
    monkeypatch.setattr(catalogs, "TRANSLATIONS", tmp_path / "translations")


def test_a_language_without_a_catalog_is_a_config_problem():
    loaded = parse("greeting:\n  language: fr\nthanks:\n  language: zh\n", [greeting])
    assert loaded.section("greeting")["language"] == "auto", "the default stands in"
    assert [str(p) for p in loaded.problems] == [
        "line 2: greeting.language: must be auto or one of en, zh",
        "line 3: thanks: unknown section (known: greeting)",
    ]


def test_a_language_with_a_catalog_can_be_chosen(with_french):
    loaded = parse("greeting:\n  language: fr\n", [greeting])
    assert loaded.problems == () and loaded.section("greeting")["language"] == "fr"


def test_a_new_bot_catalog_makes_the_bot_greet_in_that_language(with_french, make_app, redis_url, serve, github):
    github.set_file(REPO, ".github/engage.yml", "greeting:\n  language: fr\n")
    github.add_issue(REPO, 3, NEWCOMER, title="Installer crashes")
    payload = installed(example("issues.opened.1"))
    payload["issue"].update(number=3, title="Installer crashes", body="", author_association="NONE")
    payload["issue"]["user"].update(login=NEWCOMER, type="User")
    payload["sender"].update(login=NEWCOMER, type="User")
    server = serve(make_app(redis_url=redis_url, behaviours=()))
    server.deliver("issues", payload)
    run_rq_worker(server.app)
    [comment] = [c["body"] for c in github.comments(REPO, 3) if "engage:greeting" in c["body"]]
    assert f"Bienvenue, @{NEWCOMER}, et merci pour votre premier ticket dans {REPO} ! 🎉" in comment
    assert "\n\nPendant que vous êtes là :\n- 🌱 [Good first issues](" in comment, "an untranslated line: English"
    assert comment.endswith(f"<sub>Je suis le robot LLMasOS Engage ; les gens de {REPO} prendront le relais.</sub>")
    assert "Welcome" not in comment
