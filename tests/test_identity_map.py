"""The operator's IDENTITY_MAP_FILE: `flask identities sync` links what it lists once the accounts are
known, unlinks the operator's links it no longer lists, leaves people's own links alone, and refuses a
broken file naming the line, changing nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from domain.contributions import TELEGRAM
from engagement import identity_map
from storage.identities import Account
from tests.conftest import services, wait_for
from tests.support.fake_chat import DISCOURSE_API_KEY, DISCOURSE_API_USERNAME, TELEGRAM_TOKEN, FakeChat
from tests.test_chat_intake import Chats, settled, update
from tests.test_discourse_intake import Forum_, payload_of
from tests.test_identity_linking import ALICE, FORUM_SECRET, OCTOCAT, ORG, SECRET, actors, comment
from webhooks import telegram

BOB = 598765432  # the Telegram examples' Bob


@pytest.fixture
def mapped(make_app: Any, serve: Any, tmp_path: Path) -> tuple[Any, Any, Path]:
    chat = FakeChat().start()
    path = tmp_path / "identities.yml"
    path.write_text("")
    app = make_app(
        community_org=ORG,
        telegram_bot_token=TELEGRAM_TOKEN,
        telegram_webhook_secret=SECRET,
        telegram_api_url=chat.url,
        discourse_url=chat.url,
        discourse_webhook_secret=FORUM_SECRET,
        discourse_api_key=DISCOURSE_API_KEY,
        discourse_api_username=DISCOURSE_API_USERNAME,
        identity_map_file=str(path),
    )
    yield app, serve(app), path
    chat.stop()


def sync(app: Any) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["identities", "sync"])
    return result.exit_code, result.output


def test_the_file_links_and_unlinks_its_own_and_leaves_peoples_links_alone(
    mapped: tuple[Any, Any, Path], github: Any
) -> None:
    app, server, path = mapped
    assert settled(app, Chats(server).telegram(update("message.group_text"))) == "done"  # alice
    assert settled(app, Forum_(server).send("post_created.reply.json", secret=FORUM_SECRET)) == "done"  # alice
    server.deliver("issue_comment", comment(github, OCTOCAT, 7301, "Thanks!"))
    wait_for(lambda: len(actors(app)) == 3)
    path.write_text(
        "- github: octocat\n  telegram: 412345678\n  discourse: Alice\n- github: hubot\n  telegram: 598765432\n"
    )
    code, output = sync(app)
    assert code == 0, output
    assert "linked 2, unchanged 0, unlinked 0" in output
    assert "waiting: line 4: telegram 598765432 -> @hubot: GitHub login not seen yet" in output
    assert sorted(kind for kind, actor in actors(app) if actor == OCTOCAT["id"]) == [
        "chat_message",
        "comment",
        "forum_reply",
    ]
    assert "linked 0, unchanged 2, unlinked 0" in sync(app)[1], "a second run changes nothing"

    # Bob links himself (as `/engage link CODE` does); the operator drops alice's forum account from the file.
    place = identity_map.places(services(app).settings)[TELEGRAM]
    bob = Account(telegram.chat_of(ORG).person(BOB), TELEGRAM, place, "bob_builds")
    assert services(app).stores.identities.link(bob, 777, "hubot", source="self").status == "linked"
    path.write_text("- github: octocat\n  telegram: 412345678\n")
    code, output = sync(app)
    assert code == 0 and "unlinked: discourse Alice -> @octocat" in output
    assert sorted(kind for kind, actor in actors(app) if actor == OCTOCAT["id"]) == ["chat_message", "comment"]
    assert [link.github_login for link in services(app).stores.identities.all_links()] == ["hubot", "octocat"]


def test_a_broken_file_changes_nothing_and_names_the_line(mapped: tuple[Any, Any, Path]) -> None:
    app, _, path = mapped
    path.write_text("- github: octocat\n  telegram: 412345678\n- github: hubot\n  telegram: '@hubot'\n")
    code, output = sync(app)
    assert code != 0 and "line 3: telegram must be the numeric user id; nothing changed" in output
    path.write_text(json.dumps({"octocat": 1}))
    assert "must be a list of entries" in sync(app)[1]
    path.write_text("- github: octocat\n  matrix: '@octo:example.org'\n")
    assert "line 2: unknown key 'matrix'" in sync(app)[1]
    assert services(app).stores.identities.all_links() == []


def test_parse_reads_each_platform() -> None:
    [entry] = identity_map.parse("- github: '@octocat'\n  telegram: 412345678\n  rocketchat: alice\n")
    assert entry.github == "octocat" and entry.accounts == (("telegram", str(ALICE)), ("rocketchat", "alice"))
    assert identity_map.parse("") == [] and payload_of("post_created.reply.json")["post"]["username"] == "alice"
