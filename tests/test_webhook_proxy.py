"""Local development like Probot's: deliveries from a smee-style channel reach the real app over HTTP with
their signatures intact, through drops and replays, and nothing else gets through."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest
import requests

from ops import sse
from ops.webhook_proxy import EnvelopeError, Forwarder, envelope, local_target
from tests.conftest import APP_ID, REPO, ROOT, SECRET, services, wait_for
from tests.support.fake_channel import FakeChannel, github_bytes, stringify
from tests.test_greeting import NEWCOMER, greetings, issue_opened
from tests.test_setup import begin, env_file, unregistered  # noqa: F401 (fixtures)
from webhooks.signature import sign

# --- the event stream, as the HTML standard reads it -------------------------------------------------


SPLIT = "data: 安装".encode()  # byte 8 is inside the first character


def events_of(*chunks: bytes) -> list[tuple[str, str, str | None]]:
    parser = sse.Parser()
    return [(e.event, e.data, e.id) for chunk in chunks for e in parser.feed(chunk)]


@pytest.mark.parametrize(
    ("case", "chunks", "expected"),
    [
        ("a message", [b"data: {}\n\n"], [("message", "{}", None)]),
        ("a named event with an id", [b"id: 7\nevent: ready\ndata: {}\n\n"], [("ready", "{}", "7")]),
        ("data lines join with a line feed", [b'data: {"a":\ndata: 1}\n\n'], [("message", '{"a":\n1}', None)]),
        ("CRLF line ends", [b"id: 1\r\ndata: x\r\n\r\n"], [("message", "x", "1")]),
        ("CR line ends", [b"data: x\r\r"], [("message", "x", None)]),
        ("a CRLF split across two reads", [b"data: x\r", b"\n\r", b"\n"], [("message", "x", None)]),
        ("an event split anywhere", [b"da", b"ta: he", b"llo\n", b"\n"], [("message", "hello", None)]),
        ("comments are keepalives", [b": keepalive\n\n:another\ndata: x\n\n"], [("message", "x", None)]),
        ("no space after the colon", [b"data:x\n\n"], [("message", "x", None)]),
        ("a field with no colon is a field with no value", [b"data\ndata: x\n\n"], [("message", "\nx", None)]),
        ("an event without data is not dispatched", [b"event: ping\n\n"], []),
        (
            "the id persists for later events",
            [b"id: 3\ndata: a\n\ndata: b\n\n"],
            [("message", "a", "3"), ("message", "b", "3")],
        ),
        ("a byte order mark opening the stream", [b"\xef\xbb", b"\xbfdata: x\n\n"], [("message", "x", None)]),
        ("an unknown field is ignored", [b"foo: bar\ndata: x\n\n"], [("message", "x", None)]),
        ("an event cut off by the end of the stream is dropped", [b"data: x\n"], []),
        (
            "UTF-8 split across reads",
            ["data: 安装".encode()[:8], "data: 安装".encode()[8:] + b"\n\n"],
            [("message", "安装", None)],
        ),
    ],
)
def test_the_stream_is_read_as_the_standard_says(case, chunks, expected):
    assert events_of(*chunks) == expected, case


def test_the_channel_sets_the_reconnection_delay_and_an_event_larger_than_a_webhook_ends_the_stream():
    parser = sse.Parser(max_event_bytes=100)
    parser.feed(b"retry: 250\n\nretry: soon\n\n")
    assert parser.retry_ms == 250
    with pytest.raises(sse.StreamError):
        for _ in range(20):
            parser.feed(b"data: " + b"x" * 10)


# --- the envelope: which bytes GitHub signed ----------------------------------------------------------

PAYLOAD = {"action": "opened", "issue": {"title": "安装程序崩溃 <b>", "body": "log: \x1b[31mred\x1b[0m \\u0041"}}


def smee_envelope(body: bytes, payload: object = PAYLOAD, **members: object) -> str:
    headers = {"x-github-event": "issues", "x-github-delivery": "d-1", "x-hub-signature-256": sign(SECRET, body)}
    return stringify({"host": "smee.io", "content-type": "application/json", **headers, "body": payload, **members})


@pytest.mark.parametrize(
    ("case", "signed", "data"),
    [
        ("GitHub's own serialisation (control characters in upper-case hex)", github_bytes(PAYLOAD), None),
        ("the raw body a channel kept", json.dumps(PAYLOAD, indent=2).encode(), "raw"),
        ("a channel that wrote its envelope with spaces", github_bytes(PAYLOAD), "spaced"),
    ],
)
def test_the_forwarded_body_is_the_one_github_signed(case, signed, data):
    text = smee_envelope(signed)
    if data == "raw":
        text = smee_envelope(signed, rawbody=signed.decode())
    elif data == "spaced":
        text = json.dumps(json.loads(text), indent=1, ensure_ascii=True)
    delivery = envelope(text, SECRET)
    assert (delivery.body, delivery.signature_matches) == (signed, True), case


def test_only_githubs_headers_and_the_content_type_are_forwarded():
    text = smee_envelope(github_bytes(PAYLOAD), **{"x-github-hook-id": "1", "x-github-evil": "a\r\nHost: x"})
    delivery = envelope(text, SECRET)
    assert set(delivery.headers) == {
        "content-type",
        "x-github-event",
        "x-github-delivery",
        "x-hub-signature-256",
        "x-github-hook-id",
    }


def test_a_changed_body_is_sent_as_it_is_for_the_app_to_refuse():
    signed = github_bytes(PAYLOAD)
    delivery = envelope(smee_envelope(signed, payload={**PAYLOAD, "action": "closed"}), SECRET)
    assert delivery.signature_matches is False and b'"action":"closed"' in delivery.body


@pytest.mark.parametrize("data", ["[]", "{}", '{"body": {}', "not json", '{"body": {}} trailing'])
def test_what_is_not_an_envelope_is_skipped(data):
    with pytest.raises(EnvelopeError):
        envelope(data, SECRET)


# --- where it may send --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "http://127.0.0.1:3000/hooks"),
        ("localhost", "http://localhost:3000/hooks"),
        ("0.0.0.0", "http://127.0.0.1:3000/hooks"),
        ("::1", "http://[::1]:3000/hooks"),
        ("127.0.0.2", "http://127.0.0.2:3000/hooks"),
    ],
)
def test_the_target_is_this_machine(host, expected):
    assert local_target(host, 3000, "/hooks") == expected


@pytest.mark.parametrize("host", ["example.org", "10.0.0.5", "192.168.1.1", "localhost.example.org", "169.254.169.254"])
def test_any_other_host_is_refused(host):
    with pytest.raises(ValueError, match="only to this machine"):
        local_target(host, 3000, "/hooks")


# --- through the real app over HTTP -------------------------------------------------------------------


@pytest.fixture
def channel() -> Iterator[FakeChannel]:
    fake = FakeChannel(SECRET)
    yield fake
    fake.close()


@pytest.fixture
def server(make_app, serve):
    return serve(make_app(behaviours=()))


@pytest.fixture
def forwarding(channel, server, caplog) -> Iterator[Callable[[], Forwarder]]:
    """Start the forwarder from the channel to the live app, in a thread, as `flask proxy` runs it."""
    caplog.set_level(logging.INFO, logger="ops.webhook_proxy")
    started: list[tuple[Forwarder, threading.Thread]] = []

    def start() -> Forwarder:
        port = int(server.url.rsplit(":", 1)[1])
        target = local_target("127.0.0.1", port, services(server.app).settings.webhook_path)
        forwarder = Forwarder(channel.url, target, SECRET, first_backoff=0.05, max_backoff=0.2)
        thread = threading.Thread(target=forwarder.run, daemon=True)
        thread.start()
        started.append((forwarder, thread))
        return forwarder

    yield start
    for forwarder, _ in started:
        forwarder.stop()
    channel.cut()
    for _, thread in started:
        thread.join(timeout=10)
        assert not thread.is_alive()


def forwards(caplog, status: int | None = None) -> list[str]:
    """The delivery ids the forwarder logged as forwarded (with `status`)."""
    return [
        r.delivery_id  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "ops.webhook_proxy" and hasattr(r, "status") and (status is None or r.status == status)  # type: ignore[attr-defined]
    ]


def test_a_wrong_channel_address_is_retried_with_growing_delays_and_logged_without_its_path(channel, caplog):
    caplog.set_level(logging.INFO, logger="ops.webhook_proxy")
    target = local_target("127.0.0.1", 9, "/hooks")
    forwarder = Forwarder(channel.url + "-typo", target, SECRET, first_backoff=0.05, max_backoff=0.2)
    thread = threading.Thread(target=forwarder.run, daemon=True)
    thread.start()
    retries = lambda: [r for r in caplog.records if hasattr(r, "retry_in")]  # noqa: E731
    wait_for(lambda: len(retries()) >= 4, message="four retries")
    forwarder.stop()
    thread.join(timeout=10)
    assert [r.retry_in for r in retries()[:4]] == [0.05, 0.1, 0.2, 0.2]  # type: ignore[attr-defined]
    message = retries()[0].getMessage()
    assert "the channel answered 404" in message and "EngageTestChannel1" not in message


def test_deliveries_from_the_channel_are_verified_and_processed_by_the_app(channel, forwarding, server, github):
    forwarding()
    channel.wait_for_listeners(1)
    title, body = "安装程序崩溃", "日志如下：\x1b[31m错误\x1b[0m <stack>"
    github.add_issue(REPO, 3, NEWCOMER)
    github.add_issue(REPO, 4, "wang-newcomer", title=title, body=body)
    english = channel.publish("issues", issue_opened(3))
    chinese_issue = issue_opened(4, login="wang-newcomer", title=title, body=body)
    chinese = channel.publish("issues", chinese_issue, data_lines=True, crlf=True)
    wait_for(lambda: greetings(github, 3) and greetings(github, 4), message="both greetings")
    assert f"Welcome, @{NEWCOMER}" in greetings(github, 3)[0]
    assert "欢迎你" in greetings(github, 4)[0]
    store = services(server.app).store
    assert [store.get(english).event, store.get(chinese).event] == ["issues", "issues"]  # type: ignore[union-attr]
    assert json.loads(store.get(chinese).payload_text)["issue"]["body"] == body  # type: ignore[union-attr]


def test_a_stream_cut_mid_event_resumes_from_the_last_whole_event_and_loses_none(
    channel, forwarding, server, github, caplog
):
    forwarding()
    channel.wait_for_listeners(1)
    for number in (3, 4, 5):
        github.add_issue(REPO, number, f"newcomer-{number}")
    first = channel.publish("issues", issue_opened(3, login="newcomer-3"))
    wait_for(lambda: first in forwards(caplog), message="the first forward")
    channel.cut(mid_event=True)
    second = channel.publish("issues", issue_opened(4, login="newcomer-4"))
    channel.wait_for_listeners(2)
    third = channel.publish("issues", issue_opened(5, login="newcomer-5"))
    for number in (3, 4, 5):
        wait_for(lambda n=number: greetings(github, n), message=f"a greeting on #{number}")
    assert channel.last_event_ids[:2] == [None, "1"], "the reconnection resumed after the last whole event"
    assert sorted(forwards(caplog, 202)) == sorted([first, second, third])
    services(server.app).dispatcher.wait_idle()
    assert [len(greetings(github, n)) for n in (3, 4, 5)] == [1, 1, 1]


def test_a_channel_that_replays_everything_duplicates_nothing(channel, forwarding, server, github, caplog):
    channel.replay_everything = True
    forwarding()
    channel.wait_for_listeners(1)
    github.add_issue(REPO, 3, NEWCOMER)
    delivered = channel.publish("issues", issue_opened(3))
    wait_for(lambda: greetings(github, 3), message="the greeting")
    channel.cut()
    channel.wait_for_listeners(2)
    wait_for(
        lambda: any(getattr(r, "outcome", None) == "duplicate" for r in caplog.records),
        message="the replayed event recognised",
    )
    assert forwards(caplog) == [delivered], "posted once"
    services(server.app).dispatcher.wait_idle()
    assert len(greetings(github, 3)) == 1


def test_a_tampered_event_is_refused_by_the_app_and_the_forwarder_goes_on(channel, forwarding, server, github, caplog):
    forwarding()
    channel.wait_for_listeners(1)
    github.add_issue(REPO, 3, NEWCOMER)
    github.add_issue(REPO, 4, "wang-newcomer")
    signed = github_bytes(issue_opened(3))
    tampered = channel.publish("issues", issue_opened(3, title="Click here: https://phish.example"), signed_body=signed)
    genuine = channel.publish("issues", issue_opened(4, login="wang-newcomer"))
    wait_for(lambda: greetings(github, 4), message="the genuine delivery processed")
    assert forwards(caplog, 401) == [tampered]
    assert services(server.app).store.get(tampered) is None, "nothing stored"
    assert greetings(github, 3) == []
    assert genuine in forwards(caplog, 202)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "bad signature" in messages and SECRET not in messages and channel.url not in messages


def test_registering_the_app_points_its_webhook_at_the_channel(unregistered):  # noqa: F811
    server = unregistered(webhook_proxy_url="https://smee.io/EngageDevChannel")
    manifest = json.loads(begin(server, requests.Session()).inputs["manifest"])
    assert manifest["hook_attributes"]["url"] == "https://smee.io/EngageDevChannel"
    assert manifest["redirect_url"] == server.url + "/setup/callback", "the browser comes back to this machine"
    assert 'data-warning="local"' not in requests.get(server.url + "/setup", timeout=30).text


# --- the command --------------------------------------------------------------------------------------


def flask_proxy(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "WEBHOOK_PROXY_URL")}
    environment.update(
        WEBHOOK_SECRET=SECRET, APP_ID=str(APP_ID), LOG_FORMAT="json", ENV_FILE="/nonexistent/.env", **env
    )
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "proxy", *args],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_command_says_what_to_set_and_refuses_another_host(database_url, app_key):
    key = {"PRIVATE_KEY": app_key[0].replace("\n", "\\n"), "DATABASE_URL": database_url}
    unset = flask_proxy(env=key)
    assert unset.wait(60) == 1 and "WEBHOOK_PROXY_URL is not set" in unset.communicate()[1]
    elsewhere = flask_proxy("--host", "example.org", env={**key, "WEBHOOK_PROXY_URL": "https://smee.io/abc"})
    assert elsewhere.wait(60) == 1 and "only to this machine" in elsewhere.communicate()[1]


def test_the_command_forwards_to_the_app_on_this_machine(channel, server, github, database_url, app_key):
    port = server.url.rsplit(":", 1)[1]
    env = {"PRIVATE_KEY": app_key[0].replace("\n", "\\n"), "DATABASE_URL": database_url, "PORT": port}
    process = flask_proxy(env={**env, "WEBHOOK_PROXY_URL": channel.url, "GITHUB_API_URL": github.url})
    try:
        channel.wait_for_listeners(1, timeout=60)
        github.add_issue(REPO, 3, NEWCOMER)
        delivered = channel.publish("issues", issue_opened(3))
        wait_for(lambda: greetings(github, 3), message="the greeting")
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert f"to http://127.0.0.1:{port}/api/github/webhooks" in stderr
    forwarded = [json.loads(line) for line in stderr.splitlines() if line.startswith("{") and '"forwarded"' in line]
    assert [(line["delivery_id"], line["status"]) for line in forwarded] == [(delivered, 202)]
    assert "EngageTestChannel1" not in stderr, "the channel's address is its key: never logged"
