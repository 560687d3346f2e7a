"""The webhook endpoint over real HTTP: every recorded payload, and every way a delivery can be bad."""

from __future__ import annotations

import json

import pytest

from storage.db import deliveries
from tests.conftest import EXAMPLES, example, installed, services, table_count

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json"))


@pytest.fixture
def server(make_app, serve, redis_url):
    # RQ mode with no worker running: what the endpoint stores stays visible, untouched by processing.
    return serve(make_app(redis_url=redis_url))


def test_all_recorded_examples_are_present():
    assert len(EXAMPLE_FILES) >= 80, f"webhook examples not found in {EXAMPLES}"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.stem for p in EXAMPLE_FILES])
def test_every_real_payload_is_acknowledged_and_stored(server, path):
    event = path.name.split(".")[0]
    body = path.read_bytes()
    answer = server.deliver(event, body, delivery_id=f"example-{path.stem}")
    assert answer.status_code in (200, 202), answer.text
    stored = services(server.app).store.get(f"example-{path.stem}")
    assert stored is not None and stored.event == event
    assert json.loads(stored.payload_text) == json.loads(body)
    payload = json.loads(body)
    assert stored.action == payload.get("action")
    assert stored.repository == (payload.get("repository") or {}).get("full_name")


def test_delivery_is_answered_202_and_queued_without_calling_github(server, github):
    answer = server.deliver("issues", installed(example("issues.opened.1")), delivery_id="d-202")
    assert answer.status_code == 202 and answer.json()["delivery_id"] == "d-202"
    assert services(server.app).dispatcher.wait_idle()
    assert services(server.app).store.get("d-202").status == "pending"
    assert services(server.app).redis.llen("rq:queue:engage") == 1
    assert github.requests == []


def test_redelivery_is_acknowledged_and_stored_once(server):
    payload = installed(example("issues.opened.1"))
    first = server.deliver("issues", payload, delivery_id="same-guid")
    again = server.deliver("issues", payload, delivery_id="same-guid")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["message"] == "already received"
    assert table_count(server.app, deliveries) == 1
    assert services(server.app).dispatcher.wait_idle()
    assert services(server.app).redis.llen("rq:queue:engage") == 1


def test_ping_answers_200(server):
    answer = server.deliver("ping", example("ping.none.1"))
    assert answer.status_code == 200 and answer.json()["message"] == "pong"


def test_unknown_event_is_stored_and_marked_ignored(server):
    answer = server.deliver(
        "sponsorship", {"action": "created", "sender": {"login": "x", "type": "User"}}, delivery_id="unknown-1"
    )
    assert answer.status_code == 202
    stored = services(server.app).store.get("unknown-1")
    assert (stored.status, stored.last_error) == ("ignored", "no handler for sponsorship.created")


def test_bot_events_are_recorded_but_not_queued(server):
    payload = installed(example("issues.opened.1"))
    payload["sender"].update(login="dependabot[bot]", type="Bot")
    server.deliver("issues", payload, delivery_id="bot-1")
    stored = services(server.app).store.get("bot-1")
    assert stored.status == "ignored" and "is a bot" in stored.last_error
    assert services(server.app).dispatcher.wait_idle()
    assert services(server.app).redis.llen("rq:queue:engage") == 0


@pytest.mark.parametrize(
    "case, status, reason",
    [
        ("no signature", 401, "missing X-Hub-Signature-256"),
        ("wrong secret", 401, "check WEBHOOK_SECRET"),
        ("body changed after signing", 401, "does not match"),
        ("form-encoded content type", 415, "application/json"),
        ("empty body", 400, "empty body"),
        ("truncated JSON, signed", 400, "not valid JSON"),
        ("no delivery id", 400, "X-GitHub-Delivery"),
        ("no event header", 400, "X-GitHub-Event"),
    ],
)
def test_bad_deliveries_get_a_clear_answer_and_store_nothing(server, case, status, reason):
    body = json.dumps(example("issues.opened.1")).encode()
    if case == "no signature":
        answer = server.deliver("issues", body, headers={"X-Hub-Signature-256": ""})
    elif case == "wrong secret":
        answer = server.deliver("issues", body, secret="not-the-secret")
    elif case == "body changed after signing":
        from webhooks.signature import sign

        answer = server.deliver(
            "issues", body[: len(body) // 2], headers={"X-Hub-Signature-256": sign("test-webhook-secret", body)}
        )
    elif case == "form-encoded content type":
        answer = server.deliver(
            "issues", b"payload=" + body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
    elif case == "empty body":
        answer = server.deliver("issues", b"")
    elif case == "truncated JSON, signed":
        answer = server.deliver("issues", body[:100])
    elif case == "no delivery id":
        answer = server.deliver("issues", body, headers={"X-GitHub-Delivery": ""})
    else:
        answer = server.deliver("issues", body, headers={"X-GitHub-Event": ""})
    assert answer.status_code == status
    assert reason in answer.json()["message"]
    assert table_count(server.app, deliveries) == 0


def test_bodies_over_githubs_25_mb_cap_get_413(server):
    body = b'{"padding": "' + b"x" * (25 * 1024 * 1024) + b'"}'
    answer = server.deliver("issues", body)
    assert answer.status_code == 413
    assert table_count(server.app, deliveries) == 0


def test_webhook_path_is_configurable(make_app, serve):
    server = serve(make_app(webhook_path="/hooks/github"))
    assert server.webhook_url.endswith("/hooks/github")
    assert server.deliver("ping", example("ping.none.1")).status_code == 200
