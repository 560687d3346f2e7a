"""The JSON log of one delivery: a line when it is accepted, one per handler and one when it is
processed, each with the fields an operator filters on; no secret or token on any line."""

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

    handlers = [e for e in lines if e["msg"] == "handler done"]
    routed = {h.name for h in services(app).router.handlers_for("issues", "opened")}
    assert {e["handler"] for e in handlers} == routed
    for entry in handlers:
        assert entry.items() >= {**COMMON, "outcome": "done"}.items()
        assert entry["behaviour"] == entry["handler"].split(".")[0] and entry["duration_ms"] >= 0
    assert {e["behaviour"] for e in handlers} >= {"ledger", "greeting", "test"}

    [processed] = [e for e in lines if e["msg"] == "delivery processed"]
    assert processed.items() >= {**COMMON, "outcome": "done", "attempt": 1}.items()
    assert processed["duration_ms"] > 0

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
    [failed] = [e for e in json_lines() if e.get("delivery_id") == DELIVERY and e["msg"] == "handler failed"]
    assert failed.items() >= {**COMMON, "handler": "test.crash", "behaviour": "test", "outcome": "failed"}.items()
    assert "handler bug for the test" in failed["error"] and "duration_ms" in failed and "exception" in failed


def test_tokens_and_jwts_are_scrubbed_from_any_line():
    record = logging.LogRecord(
        "t", logging.INFO, __file__, 1, "got %s", ("ghs_16C7e42F292c6912E7710c838347Ae178B4a",), None
    )
    record.error = "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiI0MjQyIn0.c2lnbmF0dXJlc2lnbmF0dXJl"
    entry = json.loads(logs.JSONFormatter().format(record))
    assert entry["msg"] == "got [redacted]" and "eyJ" not in entry["error"]
