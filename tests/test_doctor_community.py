"""`flask --app app doctor` and the community's forum and chats (issue 12): a real process against the fake
Discourse and Telegram, read-only calls only (the fakes refuse any other), one finding per platform, and
no credential printed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import APP_ID, ROOT
from tests.support.fake_chat import DISCOURSE_API_KEY, DISCOURSE_API_USERNAME, TELEGRAM_TOKEN, FakeChat

BASE_URL = "https://engage.example.org"
DISCOURSE_SECRET = "discourse-secret-d1c0ur5e-7f3a9b"
TELEGRAM_SECRET = "telegram-secret-t3l3gram-5c2e8d"
ROCKETCHAT_TOKEN = "rocketchat-token-r0ck3t-9a1b4c"
SECRETS = (DISCOURSE_API_KEY, TELEGRAM_TOKEN, DISCOURSE_SECRET, TELEGRAM_SECRET, ROCKETCHAT_TOKEN)
COMMUNITY = ("DISCOURSE_", "TELEGRAM_", "ROCKETCHAT_", "COMMUNITY_ORG", "DESTINATION_", "BASE_URL")


@pytest.fixture
def chat() -> Iterator[FakeChat]:
    with FakeChat() as fake:
        yield fake
        fake.assert_no_violations()
        assert fake.posts == [], "doctor posted something"


@pytest.fixture
def doctor(database_url, github, app_key):
    """Runs doctor as an operator does, with the GitHub App set up well and `env` on top."""

    def run(**env: str) -> tuple[int, str]:
        environment = {
            k: v
            for k, v in os.environ.items()
            if k not in ("REDIS_URL", "DATABASE_URL", "PRIVATE_KEY_PATH") and not k.startswith(COMMUNITY)
        }
        environment.update(
            WEBHOOK_SECRET="a-long-random-webhook-secret-for-the-test",
            APP_ID=str(APP_ID),
            PRIVATE_KEY=app_key[0],
            GITHUB_API_URL=github.url,
            DATABASE_URL=database_url,
            ENV_FILE="/nonexistent/.env",
            **env,
        )
        result = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "doctor"],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        for secret in SECRETS:
            assert secret not in result.stdout + result.stderr
        return result.returncode, result.stdout

    return run


def community_env(chat: FakeChat, **changes: str) -> dict[str, str]:
    """A forum, a Telegram group and a Rocket.Chat, all recorded for llmasos."""
    return {
        "BASE_URL": BASE_URL,
        "COMMUNITY_ORG": "llmasos",
        "DISCOURSE_URL": chat.url,
        "DISCOURSE_API_KEY": DISCOURSE_API_KEY,
        "DISCOURSE_API_USERNAME": DISCOURSE_API_USERNAME,
        "DISCOURSE_WEBHOOK_SECRET": DISCOURSE_SECRET,
        "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
        "TELEGRAM_API_URL": chat.url,
        "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
        "ROCKETCHAT_URL": "https://chat.example.org",
        "ROCKETCHAT_WEBHOOK_TOKEN": ROCKETCHAT_TOKEN,
        "ROCKETCHAT_CHANNELS": "general,dev",
        **changes,
    }


def line(output: str, topic: str) -> str:
    found = [text for text in output.splitlines() if f" {topic}: " in text]
    assert len(found) == 1, f"not one line about {topic} in:\n{output}"
    return found[0]


def webhook_info(**fields: Any) -> dict[str, Any]:
    return {
        "url": f"{BASE_URL}/api/telegram/webhook",
        "has_custom_certificate": False,
        "pending_update_count": 0,
    } | fields


def test_every_platform_checked_and_fine(doctor, chat):
    chat.webhook_info = webhook_info(pending_update_count=3)

    code, output = doctor(**community_env(chat))

    assert code == 0, output
    assert (
        line(output, "Discourse API")
        == f"ok       Discourse API: {chat.url}: the key works, as @{DISCOURSE_API_USERNAME}"
    )
    assert chat.discourse_reads == [f"/u/{DISCOURSE_API_USERNAME}.json"]
    assert line(output, "Discourse webhook").startswith("ok") and "/api/discourse/webhooks" in output
    assert line(output, "Telegram bot") == "ok       Telegram bot: @community_helper_bot answers (token accepted)"
    assert line(output, "Telegram webhook") == (
        f"ok       Telegram webhook: Telegram delivers to {BASE_URL}/api/telegram/webhook, 3 pending, "
        "no error in the last 24 h"
    )
    rocketchat = line(output, "Rocket.Chat webhook")
    assert rocketchat.startswith("ok") and "channels: #general, #dev" in rocketchat
    assert "not checked over the network" in rocketchat
    assert line(output, "COMMUNITY_ORG").startswith("ok       COMMUNITY_ORG: llmasos")


def test_a_refused_discourse_key_names_the_variables_not_the_key(doctor, chat):
    wrong = "0badc0ffee0badc0ffee0badc0ffee0badc0ffee0badc0ffee0badc0ffee0bad"

    code, output = doctor(**community_env(chat, DISCOURSE_API_KEY=wrong))

    assert code == 1
    problem = line(output, "Discourse API")
    assert problem.startswith("problem") and "refused the key" in problem
    assert "DISCOURSE_API_KEY" in problem and f"DISCOURSE_API_USERNAME ({DISCOURSE_API_USERNAME})" in problem
    assert wrong not in output and "0badc0ffee" not in output
    assert line(output, "Telegram webhook").startswith("ok"), "the other platforms are still checked"


def test_a_telegram_webhook_pointing_elsewhere_is_a_problem(doctor, chat):
    chat.webhook_info = webhook_info(url="https://old-bot.example.net/hook", pending_update_count=12)

    code, output = doctor(**community_env(chat))

    assert code == 1
    assert line(output, "Telegram webhook") == (
        "problem  Telegram webhook: Telegram delivers to https://old-bot.example.net/hook, not to this app's "
        f"{BASE_URL}/api/telegram/webhook (12 pending): call setWebhook with url={BASE_URL}/api/telegram/webhook "
        "and secret_token set to TELEGRAM_WEBHOOK_SECRET"
    )


def test_telegram_s_last_delivery_error_is_reported_in_words(doctor, chat):
    failed_at = int(time.time()) - 600
    chat.webhook_info = webhook_info(
        pending_update_count=7,
        last_error_date=failed_at,
        last_error_message="Wrong response from the webhook: 502 Bad Gateway",
    )

    code, output = doctor(**community_env(chat))

    assert code == 1
    problem = line(output, "Telegram webhook")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(failed_at))
    assert (
        problem.startswith("problem")
        and f"failed at {when}: Wrong response from the webhook: 502 Bad Gateway" in problem
    )
    assert "(7 pending)" in problem


def test_an_old_delivery_error_is_not_a_problem(doctor, chat):
    chat.webhook_info = webhook_info(last_error_date=int(time.time()) - 3 * 24 * 3600, last_error_message="Timeout")

    code, output = doctor(**community_env(chat))

    assert code == 0 and line(output, "Telegram webhook").startswith("ok"), output


def test_a_bot_not_recording_and_a_refused_bot_token(doctor, chat):
    env = community_env(chat)
    del env["TELEGRAM_WEBHOOK_SECRET"]
    code, output = doctor(**env)
    assert code == 0, output
    assert line(output, "Telegram webhook").startswith("note") and "TELEGRAM_WEBHOOK_SECRET is not set" in output

    code, output = doctor(**community_env(chat, TELEGRAM_BOT_TOKEN="123456789:AAwrongwrongwrongwrongwrongwrongwro"))
    assert code == 1 and "wrongwrong" not in output
    problem = line(output, "Telegram bot")
    assert problem.startswith("problem") and "refused TELEGRAM_BOT_TOKEN" in problem and "401 Unauthorized" in problem
    assert " Telegram webhook: " not in output


def test_a_guessable_rocketchat_token_is_a_problem(doctor, chat):
    code, output = doctor(**community_env(chat, ROCKETCHAT_WEBHOOK_TOKEN="changeme"))

    assert code == 1
    assert line(output, "Rocket.Chat webhook").startswith("problem") and "guessable" in output
    assert "changeme" not in output


def test_nothing_configured_no_line_about_them(doctor, chat):
    code, output = doctor()

    assert code == 0, output
    for topic in ("Discourse", "Telegram", "Rocket.Chat", "COMMUNITY_ORG"):
        assert topic not in output
    assert chat.discourse_reads == []
