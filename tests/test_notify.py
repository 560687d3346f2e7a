"""The notifier: chat messages posted once, retried politely, paced, dry-run aware, and never leaking a credential.

Everything goes over real HTTP to `tests/support/fake_chat.py`, which checks each request against the
platforms' contracts (`tests/contract/telegram/`, `tests/contract/rocketchat/`).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
import requests

import logs
from githubapp.errors import TransientError
from notify.notifier import DestinationGone, DestinationUnavailable, Message, Notifier
from ops import metrics
from settings import ConfigError, from_environment
from settings.destinations import destinations
from tests.conftest import ROOT, services
from tests.support.fake_chat import (
    ROCKETCHAT_HOOK,
    SLACK_HOOK,
    TELEGRAM,
    TELEGRAM_TOKEN,
    FakeChat,
)
from tests.test_metrics import Scrape

HOOK_SECRET = ROCKETCHAT_HOOK.rsplit("/", 1)[1]
SLACK_SECRET = SLACK_HOOK.rsplit("/", 1)[1]


@pytest.fixture
def chat() -> Iterator[FakeChat]:
    with FakeChat() as fake:
        yield fake
        fake.assert_no_violations()


def chat_env(url: str, interval: str = "0") -> dict[str, str]:
    """The operator's environment for four destinations, one of each kind (a forum topic too)."""
    return {
        "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
        "TELEGRAM_API_URL": url,
        "DESTINATION_TEAM_KIND": "telegram",
        "DESTINATION_TEAM_CHAT_ID": "-1001987654321",
        "DESTINATION_TOPIC_KIND": "telegram",
        "DESTINATION_TOPIC_CHAT_ID": "-1002233445566",
        "DESTINATION_TOPIC_THREAD_ID": "17",
        "DESTINATION_RC_KIND": "rocketchat",
        "DESTINATION_RC_WEBHOOK_URL": url + ROCKETCHAT_HOOK,
        "DESTINATION_SLACK_KIND": "slack",
        "DESTINATION_SLACK_WEBHOOK_URL": url + SLACK_HOOK,
        **{f"DESTINATION_{name}_INTERVAL": interval for name in ("TEAM", "TOPIC", "RC", "SLACK")},
    }


@pytest.fixture
def notifier(make_app: Any, chat: FakeChat) -> Notifier:
    """The app's own notifier; its waits are recorded in `notifier.waits` instead of slept."""
    app = make_app(destinations=destinations(chat_env(chat.url)))
    notifier: Notifier = services(app).notifier
    waits: list[float] = []
    notifier.sleep = waits.append
    notifier.waits = waits  # type: ignore[attr-defined]
    return notifier


def scrape(notifier: Notifier) -> Scrape:
    """What /metrics shows of the notifier's counts (the recorder the app's /metrics reads)."""
    snapshot = notifier.metrics.snapshot()
    assert snapshot is not None
    return Scrape(metrics.exposition(metrics.recorded_samples(snapshot)))


@pytest.mark.parametrize(
    "name, kind",
    [("team", "telegram"), ("topic", "telegram"), ("rc", "rocketchat"), ("slack", "slack")],
    ids=["telegram group", "telegram forum topic", "rocket.chat hook", "slack-compatible hook"],
)
def test_a_message_posts_once_under_redelivery_and_another_owner(notifier, chat, name, kind):
    message = Message("digest:octo-org:2026-W48", "Weekly digest: 3 newcomers <welcome> & thanks")

    assert notifier.send(name, message, "delivery-1") == "sent"
    assert notifier.send(name, message, "delivery-1") == "duplicate"  # the same job again
    assert notifier.send(name, message, "delivery-2") == "duplicate"  # another delivery or worker

    assert len(chat.posts) == 1 and chat.posts[0].kind == kind
    expected = {
        "telegram": "Weekly digest: 3 newcomers &lt;welcome&gt; &amp; thanks",  # HTML mode, escaped
        "rocketchat": message.text,
        "slack": "Weekly digest: 3 newcomers &lt;welcome&gt; &amp; thanks",  # mrkdwn control characters
    }[kind]
    assert chat.texts() == [expected]
    if name == "topic":
        assert chat.posts[0].body["message_thread_id"] == 17
    # A new key is a new message.
    assert notifier.send(name, Message("digest:octo-org:2026-W49", "next week"), "delivery-3") == "sent"
    assert len(chat.posts) == 2


def test_two_workers_sending_at_once_post_once(make_app, chat):
    """Two processes (two apps on one database) race for the same message: one posts, the other stands back."""
    env = destinations(chat_env(chat.url))
    senders = [services(make_app(destinations=env)).notifier for _ in range(2)]
    chat.delay = 0.3  # the first post is still in flight when the second sender arrives
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def send(notifier: Notifier, owner: str) -> None:
        start.wait()
        outcomes.append(notifier.send("rc", Message("digest:w48", "hello"), owner))

    threads = [threading.Thread(target=send, args=(n, f"worker-{i}")) for i, n in enumerate(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(outcomes) == ["duplicate", "sent"]
    assert chat.texts() == ["hello"]


@pytest.mark.parametrize(
    "name, kind",
    [("team", "telegram"), ("rc", "rocketchat")],
    ids=["telegram parameters.retry_after", "Retry-After header"],
)
def test_429_waits_as_long_as_the_receiver_asks(notifier, chat, name, kind):
    chat.fail_next(kind, 429, retry_after=5)

    assert notifier.send(name, Message("k", "hello"), "delivery-1") == "sent"

    assert notifier.waits == [5.0]  # not the 1 s backoff: never sooner than asked
    assert len(chat.posts) == 1
    counts = scrape(notifier)
    assert counts.value("engage_notifications_total", destination=name, outcome="retrying") == 1
    assert counts.value("engage_notifications_total", destination=name, outcome="sent") == 1


def test_server_errors_are_retried_with_backoff(notifier, chat):
    chat.fail_next("slack", 503, times=2)

    assert notifier.send("slack", Message("k", "hello"), "delivery-1") == "sent"

    assert notifier.waits == [1.0, 2.0]
    assert chat.texts() == ["hello"]


def test_a_destination_still_down_is_left_to_the_job_retry_then_posts_once(notifier, chat):
    chat.fail_next("telegram", 502, times=3)

    with pytest.raises(DestinationUnavailable) as down:
        notifier.send("team", Message("k", "hello"), "delivery-1")
    assert isinstance(down.value, TransientError)  # the job layer retries it with backoff
    assert notifier.waits == [1.0, 2.0] and chat.posts == []

    # The job's retry (the same owner) posts it; nobody else does meanwhile.
    assert notifier.send("team", Message("k", "hello"), "delivery-2") == "duplicate"
    assert notifier.send("team", Message("k", "hello"), "delivery-1") == "sent"
    assert len(chat.posts) == 1
    assert scrape(notifier).value("engage_notifications_total", destination="team", outcome="retry_later") == 1


def test_a_long_flood_wait_goes_back_to_the_job_layer_at_once(notifier, chat):
    chat.fail_next("telegram", 429, retry_after=3600)

    with pytest.raises(DestinationUnavailable) as flood:
        notifier.send("team", Message("k", "hello"), "delivery-1")

    assert flood.value.retry_after == 3600  # the job is retried no sooner than that
    assert notifier.waits == []  # no worker blocked for an hour


def test_a_gone_destination_is_reported_and_not_retried(notifier, chat):
    chat.fail_next("telegram", 403)

    with pytest.raises(DestinationGone) as gone:
        notifier.send("team", Message("k", "hello"), "delivery-1")

    assert not isinstance(gone.value, TransientError)
    assert "bot was kicked" in str(gone.value) and str(gone.value).startswith("team: 403")
    assert notifier.waits == [] and chat.posts == []
    assert scrape(notifier).value("engage_notifications_total", destination="team", outcome="gone") == 1


def test_dry_run_posts_nothing_and_logs_no_credential(make_app, chat, caplog):
    caplog.set_level(logging.DEBUG)
    app = make_app(destinations=destinations(chat_env(chat.url)), dry_run=True)

    assert services(app).notifier.send("team", Message("k", "hello"), "delivery-1") == "dry_run"
    assert services(app).notifier.send("rc", Message("k", "hello"), "delivery-1") == "dry_run"

    assert chat.posts == []
    would = [r for r in caplog.records if r.getMessage() == "dry run: would notify"]
    assert [(r.destination, r.count) for r in would] == [("team", 5), ("rc", 5)]  # type: ignore[attr-defined]
    assert TELEGRAM_TOKEN not in caplog.text and HOOK_SECRET not in caplog.text


def test_no_credential_reaches_logs_or_errors_when_the_platform_is_unreachable(make_app, caplog):
    caplog.set_level(logging.DEBUG)
    closed = "http://127.0.0.1:9"  # nothing listens: requests' own error would quote the URL
    app = make_app(destinations=destinations(chat_env(closed)))
    notifier = services(app).notifier
    notifier.sleep = lambda seconds: None

    errors = []
    for name in ("team", "rc", "slack"):
        with pytest.raises(DestinationUnavailable) as down:
            notifier.send(name, Message("k", "hello"), "delivery-1")
        errors.append("".join(traceback.format_exception(down.value)))
        assert str(down.value) == f"{name}: no answer (ConnectionError)"

    seen = caplog.text + "".join(errors)
    for secret in (TELEGRAM_TOKEN, HOOK_SECRET, SLACK_SECRET):
        assert secret not in seen
    assert "notification will be retried later" in caplog.text


def test_logs_scrub_chat_credentials_whatever_a_caller_passes():
    line = logs.scrub(f"POST http://x/bot{TELEGRAM_TOKEN}/sendMessage http://x{ROCKETCHAT_HOOK} http://x{SLACK_HOOK}")
    for secret in (TELEGRAM_TOKEN.split(":")[1], HOOK_SECRET, SLACK_SECRET):
        assert secret not in line


def test_posts_are_paced_per_destination_across_workers(make_app, chat, redis_url):
    """Telegram allows about 20 messages a minute per group: two workers sharing Redis leave 3 s between posts."""
    env = destinations(chat_env(chat.url, interval="3"))
    first, second = (services(make_app(destinations=env, redis_url=redis_url)).notifier for _ in range(2))
    waits: list[float] = []
    first.sleep = second.sleep = waits.append

    first.send("team", Message("a", "one"), "delivery-1")
    second.send("team", Message("b", "two"), "delivery-2")  # another worker, same group
    second.send("rc", Message("c", "three"), "delivery-3")  # another destination has its own pace

    assert len(waits) == 1 and 2.0 < waits[0] <= 3.0
    assert chat.texts() == ["one", "two", "three"]


def test_the_fake_holds_requests_to_the_recorded_contract(chat):
    """The fake takes the recorded example requests and refuses what Telegram would misread."""
    for name in ("sendMessage.request", "sendMessage.topic.request"):
        body = json.loads((TELEGRAM / "examples" / f"{name}.json").read_text())
        assert requests.post(f"{chat.url}/bot{TELEGRAM_TOKEN}/sendMessage", json=body, timeout=5).status_code == 200
    incoming = json.loads((TELEGRAM.parent / "rocketchat" / "examples" / "incoming.request.json").read_text())
    assert requests.post(chat.url + ROCKETCHAT_HOOK, json=incoming, timeout=5).json() == {"success": True}
    chat.assert_no_violations()

    unescaped = {"chat_id": 1, "text": "a < b & c", "parse_mode": "HTML"}
    assert requests.post(f"{chat.url}/bot{TELEGRAM_TOKEN}/sendMessage", json=unescaped, timeout=5).status_code == 400
    unknown = {"chat_id": 1, "text": "hi", "thread_id": 17}
    assert requests.post(f"{chat.url}/bot{TELEGRAM_TOKEN}/sendMessage", json=unknown, timeout=5).status_code == 400
    assert len(chat.violations) == 2
    chat.violations.clear()


@pytest.fixture
def flask_notify(database_url):
    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        environment.update(WEBHOOK_SECRET="s3cret", DATABASE_URL=database_url, ENV_FILE="/nonexistent/.env", **env)
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", *args],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def test_notify_test_command_posts_through_the_real_path(flask_notify, chat):
    env = chat_env(chat.url)

    sent = flask_notify("notify", "test", "topic", **env)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip() == "topic: sent"
    assert chat.texts() == ["A test message from LLMasOS Engage: the destination topic works."]
    assert chat.posts[0].body["message_thread_id"] == 17

    chat.fail_next("telegram", 403)
    kicked = flask_notify("notify", "test", "team", **env)
    assert kicked.returncode == 1
    assert "not sent: team: 403 Forbidden: bot was kicked from the supergroup chat" in kicked.stderr

    unknown = flask_notify("notify", "test", "nope", **env)
    assert unknown.returncode == 1 and "no destination named 'nope' (known: rc, slack, team, topic)" in unknown.stderr

    dry = flask_notify("notify", "test", "rc", DRY_RUN="1", **env)
    assert dry.stdout.strip() == "rc: dry_run (DRY_RUN is on: nothing was posted)"
    assert len(chat.posts) == 1
    for result in (sent, kicked, unknown, dry):
        assert TELEGRAM_TOKEN not in result.stdout + result.stderr
        assert HOOK_SECRET not in result.stdout + result.stderr


def test_doctor_checks_each_destination_without_posting(flask_notify, chat):
    result = flask_notify("doctor", **chat_env(chat.url))

    lines = result.stdout.splitlines()
    assert "ok       destination team: telegram: bot @community_helper_bot answers" in "\n".join(lines)
    rc = next(line for line in lines if "destination rc:" in line)
    assert rc.startswith("note") and "flask --app app notify test rc" in rc
    assert chat.posts == []
    assert TELEGRAM_TOKEN not in result.stdout + result.stderr


def test_doctor_reports_a_refused_bot_token(flask_notify, chat):
    env = {**chat_env(chat.url), "TELEGRAM_BOT_TOKEN": "123456789:AAwrongwrongwrongwrongwrongwrongwro"}

    result = flask_notify("doctor", **env)

    line = next(line for line in result.stdout.splitlines() if "destination team:" in line)
    assert line.startswith("problem") and "401 Unauthorized" in line
    assert result.returncode == 1 and "wrongwrong" not in result.stdout


BAD_ENVIRONMENTS = {
    "unknown kind": ({"DESTINATION_X_KIND": "irc"}, "DESTINATION_X_KIND must be one of telegram, rocketchat, slack"),
    "telegram without token": (
        {"DESTINATION_X_KIND": "telegram", "DESTINATION_X_CHAT_ID": "-100123"},
        "DESTINATION_X_KIND is telegram, so TELEGRAM_BOT_TOKEN must be",
    ),
    "telegram without chat": (
        {"DESTINATION_X_KIND": "telegram", "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN},
        "DESTINATION_X_CHAT_ID must be the chat's numeric id",
    ),
    "thread not a number": (
        {
            "DESTINATION_X_KIND": "telegram",
            "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
            "DESTINATION_X_CHAT_ID": "-100123",
            "DESTINATION_X_THREAD_ID": "general",
        },
        "DESTINATION_X_THREAD_ID must be the forum topic's number",
    ),
    "hook without address": ({"DESTINATION_X_KIND": "slack"}, "DESTINATION_X_WEBHOOK_URL must be"),
    "hook address not http": (
        {"DESTINATION_X_KIND": "rocketchat", "DESTINATION_X_WEBHOOK_URL": f"chat.example.org{ROCKETCHAT_HOOK}"},
        "DESTINATION_X_WEBHOOK_URL must be the incoming webhook's http(s) address (rocketchat)",
    ),
    "settings without a kind": (
        {"DESTINATION_X_CHAT_ID": "-100123"},
        "DESTINATION_X_CHAT_ID is set but no DESTINATION_<NAME>_KIND names its destination",
    ),
    "reserved name": ({"DESTINATION_GITHUB_KIND": "slack"}, "'github' is reserved"),
    "negative interval": (
        {
            "DESTINATION_X_KIND": "slack",
            "DESTINATION_X_WEBHOOK_URL": "https://h.example/x",
            "DESTINATION_X_INTERVAL": "-1",
        },
        "DESTINATION_X_INTERVAL must be a number of seconds",
    ),
}


@pytest.mark.parametrize("env, message", list(BAD_ENVIRONMENTS.values()), ids=list(BAD_ENVIRONMENTS))
def test_a_bad_destination_is_refused_at_start_naming_the_variable(env, message):
    with pytest.raises(ConfigError) as refused:
        from_environment(env)
    assert message in str(refused.value)
    assert HOOK_SECRET not in str(refused.value)  # a webhook address is a credential: never quoted


def test_destinations_come_from_the_environment():
    found = {d.name: d for d in from_environment(chat_env("https://tg.example")).destinations}
    assert sorted(found) == ["rc", "slack", "team", "topic"]
    assert (found["topic"].kind, found["topic"].chat_id, found["topic"].thread_id) == ("telegram", "-1002233445566", 17)
    assert TELEGRAM_TOKEN not in repr(found) and HOOK_SECRET not in repr(found)
    assert from_environment({}).destinations == ()
