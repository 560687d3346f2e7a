"""The JSON log of one delivery: a line when it is accepted and one when it is processed, which carries each
handler's time (a handler that fails logs its own line), each with the fields an operator filters on; no secret or
token on any line."""

from __future__ import annotations

import io
import json
import logging

import pytest

import logs
from tests.conftest import REPO, SECRET, example, installed, run_rq_worker, services

DELIVERY = "logged-1"
COMMON = {"delivery_id": DELIVERY, "event": "issues", "action": "opened", "repo": REPO, "installation_id": 9001}


@pytest.fixture
def json_lines():
    """Everything logged during the test, formatted as the app formats it in production."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JSONFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(text) for text in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


def test_one_delivery_logs_its_path_with_the_fields_operators_need(
    make_app, serve, redis_url, github, app_key, json_lines
):
    app = make_app(redis_url=redis_url, log_format="json")
    assert any(isinstance(h.formatter, logs.JSONFormatter) for h in logging.getLogger().handlers)
    server = serve(app)
    server.deliver("issues", installed(example("issues.opened.1")), delivery_id=DELIVERY)
    run_rq_worker(app)
    assert services(app).store.get(DELIVERY).status == "done"
    lines = [entry for entry in json_lines() if entry.get("delivery_id") == DELIVERY]

    [accepted] = [e for e in lines if e["msg"] == "delivery accepted"]
    assert accepted.items() >= {**COMMON, "outcome": "pending"}.items()

    assert [e["msg"] for e in lines] == ["delivery accepted", "delivery processed"], "one line each, none per handler"
    [processed] = [e for e in lines if e["msg"] == "delivery processed"]
    assert processed.items() >= {**COMMON, "outcome": "done", "attempt": 1}.items()
    assert processed["duration_ms"] > 0
    routed = {h.name for h in services(app).router.handlers_for("issues", "opened")}
    assert set(processed["handlers"]) == routed and {"ledger.record", "greeting.issue"} <= routed
    assert all(0 <= took <= processed["duration_ms"] for took in processed["handlers"].values())

    text = "\n".join(json.dumps(entry) for entry in json_lines())
    credentials = {r.headers.get("Authorization", "").split(" ", 1)[-1] for r in github.requests} - {""}
    assert credentials, "the handlers called GitHub with a token"
    for secret in (SECRET, *credentials, *app_key[0].strip().splitlines()[1:-1]):
        assert secret not in text


def test_a_failing_handler_logs_its_error_with_its_name(make_app, serve, redis_url, github, json_lines):
    from tests.support import behaviours

    behaviours.BREAK["crash"] = True
    try:
        server = serve(make_app(redis_url=redis_url))
        server.deliver("issues", installed(example("issues.opened.1")), delivery_id=DELIVERY)
        run_rq_worker(server.app)
    finally:
        behaviours.BREAK["crash"] = False
    lines = [e for e in json_lines() if e.get("delivery_id") == DELIVERY]
    [failed] = [e for e in lines if e["msg"] == "handler failed"]
    assert failed.items() >= {**COMMON, "handler": "test.crash", "behaviour": "test", "outcome": "failed"}.items()
    assert "handler bug for the test" in failed["error"] and "duration_ms" in failed and "exception" in failed
    [processed] = [e for e in lines if e["msg"] == "delivery processed"]
    assert processed["outcome"] == "failed" and "test.crash" in processed["handlers"]


def test_at_debug_each_handler_done_logs_its_own_line(make_app, serve, redis_url, github, json_lines):
    server = serve(make_app(redis_url=redis_url, log_level="DEBUG"))
    server.deliver("issues", installed(example("issues.opened.1")), delivery_id=DELIVERY)
    run_rq_worker(server.app)
    done = {e["handler"] for e in json_lines() if e.get("delivery_id") == DELIVERY and e["msg"] == "handler done"}
    assert done == {h.name for h in services(server.app).router.handlers_for("issues", "opened")}


def test_tokens_and_jwts_are_scrubbed_from_any_line():
    record = logging.LogRecord(
        "t", logging.INFO, __file__, 1, "got %s", ("ghs_16C7e42F292c6912E7710c838347Ae178B4a",), None
    )
    record.error = "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiI0MjQyIn0.c2lnbmF0dXJlc2lnbmF0dXJl"
    entry = json.loads(logs.JSONFormatter().format(record))
    assert entry["msg"] == "got [redacted]" and "eyJ" not in entry["error"]


@pytest.mark.parametrize(
    "secret",
    [
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        "gho_16C7e42F292c6912E7710c838347Ae178B4a",
        "ghu_16C7e42F292c6912E7710c838347Ae178B4a",
        "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
        "ghr_16C7e42F292c6912E7710c838347Ae178B4a",
        "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiI0MjQyIn0.c2lnbmF0dXJlc2lnbmF0dXJl",
        "Bearer abcdefghijklmnopqrstuvwx",
        "BEARER abcdefghijklmnopqrstuvwx",
        "token abcdefghijklmnopqrstuvwx",
        "ToKeN abcdefghijklmnopqrstuvwx",
        "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1",
    ],
)
def test_every_kind_of_credential_is_scrubbed_in_a_json_line(secret):
    """The JSON line looks for a secret's tell-tale words before it runs the full pattern (issue 14):
    every kind the pattern knows is still found, in a line with a timestamp and numbers around it."""
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "calling %s", (f"https://x/{secret}/y",), None)
    record.duration_ms, record.installation_id = 12.5, 9001
    line = logs.JSONFormatter().format(record)
    assert "[redacted]" in line and secret.split()[-1] not in line


@pytest.mark.parametrize(
    "word, secret",
    [
        ("hooks", "T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"),
        ("services", "T000/B000/XXXXXXXXXXXXXXXX"),
        ("webhooks", "1234/XXXXXXXXXXXXXXXXXXXXXXXX"),
    ],
)
def test_incoming_webhook_addresses_lose_their_secret_part(word, secret):
    line = logs.scrub(f"posted to https://chat.example.org/{word}/{secret}")
    assert line == f"posted to https://chat.example.org/{word}/[redacted]"


def test_a_line_without_credentials_is_left_as_it_is():
    line = '{"time": "2026-12-04T17:28:35.390+00:00", "msg": "handler done", "delivery_id": "b14c2bd5-c0af"}'
    assert logs.scrub(line) == line
