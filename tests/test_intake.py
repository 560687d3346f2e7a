"""The webhook endpoint over real HTTP: every recorded payload, and every way a delivery can be bad."""

from __future__ import annotations

import json

import pytest
import requests

from storage.db import deliveries
from tests.conftest import EXAMPLES, SECRET, example, installed, post_cut_short, services, table_count
from webhooks.signature import sign

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


def _with(edit):
    payload = installed(example("issues.opened.1"))
    edit(payload)
    return json.dumps(payload).encode()


ISSUE = json.dumps(installed(example("issues.opened.1")))
# Signed (so from whoever holds the secret) but odd: each used to answer 500, or a false 503 "database
# unavailable" on PostgreSQL, or was stored with values that do not fit the columns.
ODD_BODIES = [
    ("UTF-16 JSON", {}, ISSUE.encode("utf-16"), "must be UTF-8"),
    ("a 5,000-digit integer", {}, b'{"action": "opened", "number": ' + b"7" * 5000 + b"}", "not valid JSON"),
    ("100k nested arrays", {}, b'{"action": "opened", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested"),
    ("installation id over 64 bits", {}, _with(lambda p: p["installation"].update(id=2**70)), "installation.id"),
    ("installation id under 64 bits", {}, _with(lambda p: p["installation"].update(id=-(2**70))), "installation.id"),
    ("installation id a string", {}, _with(lambda p: p["installation"].update(id="9001")), "installation.id"),
    ("sender login an object", {}, _with(lambda p: p["sender"].update(login={"a": 1})), "sender.login"),
    ("sender login over 255", {}, _with(lambda p: p["sender"].update(login="x" * 256)), "sender.login is too long"),
    ("sender login with NUL", {}, _with(lambda p: p["sender"].update(login="li\x00")), "NUL"),
    ("sender login a lone surrogate", {}, _with(lambda p: p["sender"].update(login="\ud800")), "surrogate"),
    ("action over 64", {}, _with(lambda p: p.update(action="o" * 65)), "action is too long"),
    ("action a number", {}, _with(lambda p: p.update(action=7)), "action must be a string"),
    ("repository name over 255", {}, _with(lambda p: p["repository"].update(full_name="o/" + "r" * 254)), "too long"),
    ("event name over 64", {"X-GitHub-Event": "e" * 65}, ISSUE.encode(), "X-GitHub-Event header is too long"),
]


@pytest.mark.parametrize("headers, body, reason", [c[1:] for c in ODD_BODIES], ids=[c[0] for c in ODD_BODIES])
def test_signed_but_odd_bodies_get_400_with_the_reason_and_store_nothing(server, headers, body, reason):
    answer = server.deliver("issues", body, headers=headers)
    assert (answer.status_code, reason in answer.json()["message"]) == (400, True), answer.text
    assert table_count(server.app, deliveries) == 0


def test_the_longest_values_the_columns_hold_are_accepted(server):
    """The limits are the columns' sizes, not stricter: GitHub's own values always fit."""
    body = _with(lambda p: (p["sender"].update(login="l" * 255), p["installation"].update(id=2**63 - 1)))
    answer = server.deliver("e" * 64, body)
    assert answer.status_code == 202, answer.text
    stored = services(server.app).store.get(answer.json()["delivery_id"])
    assert (stored.sender, stored.installation_id, stored.event) == ("l" * 255, 2**63 - 1, "e" * 64)


def test_valid_json_the_fast_reader_refuses_is_still_accepted(server):
    """The intake reads bodies with orjson, which refuses what the JSON grammar allows and GitHub may send in
    someone's text: an integer past 64 bits, an escaped lone surrogate. Those deliveries are kept all the same."""
    body = _with(lambda p: p["issue"].update(body="half an emoji: \ud83d", reactions={"total_count": 2**70}))
    assert b"\\ud83d" in body
    answer = server.deliver("issues", body)
    assert answer.status_code == 202, answer.text
    stored = services(server.app).store.get(answer.json()["delivery_id"])
    assert stored.payload["issue"]["reactions"]["total_count"] == 2**70
    assert stored.payload["issue"]["body"] == "half an emoji: \ud83d"


def test_flasks_own_route_answers_like_the_path_in_front_of_it(make_app):
    """`flask routes` lists the webhook path; a request that reaches Flask's route (a deployment that wraps
    the app's WSGI callable differently) gets the same answer as the path served in front of Flask."""
    from werkzeug.test import EnvironBuilder

    from tests.conftest import SECRET
    from webhooks.signature import sign

    app = make_app()
    body = json.dumps(installed(example("issues.opened.1"))).encode()
    headers = {"X-GitHub-Event": "issues", "X-Hub-Signature-256": sign(SECRET, body)}
    answers = {}
    for name, wsgi in (("in front", app.wsgi_app), ("flask", app.wsgi_app.flask_app)):
        environ = EnvironBuilder(
            path="/api/github/webhooks",
            method="POST",
            data=body,
            content_type="application/json",
            headers={**headers, "X-GitHub-Delivery": f"route-{name}"},
        ).get_environ()
        statuses: list[str] = []
        answer = json.loads(b"".join(wsgi(environ, lambda status, _h, _e=None, seen=statuses: seen.append(status))))
        answers[name] = (statuses[0][:3], answer["message"], answer["outcome"])
    assert answers["in front"] == answers["flask"] == ("202", "accepted", "pending")


def _chunked(server, body: bytes, size: int) -> requests.Response:
    """`body` sent in chunks, with no Content-Length (requests sends a generator so)."""
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": "chunked-1",
        "X-Hub-Signature-256": sign(SECRET, body),
    }
    chunks = (body[i : i + size] for i in range(0, len(body), size))
    return server.session.post(server.webhook_url, data=chunks, headers=headers, timeout=30)


def test_a_chunked_body_past_githubs_cap_gets_413(server):
    """No Content-Length to refuse up front: the read stops at the cap."""
    answer = _chunked(server, b'{"padding": "' + b"x" * (25 * 1024 * 1024) + b'"}', 1 << 20)
    assert answer.status_code == 413
    assert table_count(server.app, deliveries) == 0


def test_a_chunked_delivery_is_read_whole_and_stored(server):
    answer = _chunked(server, json.dumps(installed(example("issues.opened.1"))).encode(), 1000)
    assert answer.status_code == 202, answer.text
    assert table_count(server.app, deliveries) == 1


def test_a_body_that_ends_before_its_content_length_gets_400_and_nothing_is_stored(server):
    body = json.dumps(installed(example("issues.opened.1"))).encode()
    answer = post_cut_short(server.webhook_url, body, 100)
    assert answer.startswith("HTTP/1.1 400"), answer
    assert f"the body ended after 100 of the {len(body)} bytes" in answer
    assert table_count(server.app, deliveries) == 0
