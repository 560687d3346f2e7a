"""The embedded layout as `scripts/run` starts it: `scripts/serve` (granian, one process, the in-process
worker and SQLite), configured only through environment variables, driven over real HTTP.

The rest of the suite runs the app in werkzeug's server; this file checks what the production server adds
or could take away: every delivery of a concurrent burst acknowledged and processed once, a body past
GitHub's cap refused before it is read, query strings kept out of the access log, and a clean stop on
SIGTERM. SQLite is the embedded layout's database, so the PostgreSQL pass skips it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from engagement import greeting
from storage.db import deliveries
from tests.conftest import REPO, ROOT, SECRET, example, installed, post_cut_short
from tests.support.fake_github import FakeGitHub
from tests.support.processes import Process, answers, fake_for_processes, free_port, operator_env
from webhooks.intake import MAX_WEBHOOK_BYTES
from webhooks.signature import sign

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")),
    reason="the embedded layout runs on SQLite: the PostgreSQL pass would only repeat it",
)

BURST = 40
SENDERS = 16


class Embedded:
    def __init__(self, process: Process, url: str, database_url: str):
        self.process, self.url, self.database_url = process, url, database_url

    def post(self, body: bytes, delivery_id: str, event: str = "issues") -> requests.Response:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/test",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id,
            "X-Hub-Signature-256": sign(SECRET, body),
        }
        return requests.post(self.url + "/api/github/webhooks", data=body, headers=headers, timeout=30)

    def statuses(self, ids: list[str]) -> dict[str, str]:
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.select(deliveries.c.id, deliveries.c.status).where(deliveries.c.id.in_(ids)))
                return {row.id: row.status for row in rows}
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def fake(fake_github_server: FakeGitHub) -> FakeGitHub:
    return fake_for_processes(fake_github_server)


def start(fake: FakeGitHub, private_key: str, folder: Path) -> Embedded:
    database_url = f"sqlite:///{folder}/engage.sqlite3"
    port = free_port()
    env = {**operator_env(database_url, fake.url, private_key), "PORT": str(port), "HOST": "127.0.0.1"}
    process = Process("embedded", [str(ROOT / "scripts/serve")], env, folder)
    url = f"http://127.0.0.1:{port}"
    process.wait_until(lambda: answers(url + "/healthz"), "answer /healthz")
    return Embedded(process, url, database_url)


@pytest.fixture(scope="module")
def server(
    fake: FakeGitHub, app_key: tuple[str, bytes], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Embedded]:
    running = start(fake, app_key[0], tmp_path_factory.mktemp("embedded"))
    try:
        yield running
    finally:
        running.process.stop()


@pytest.fixture(autouse=True)
def log_on_failure(server: Embedded) -> Iterator[None]:
    yield
    print(f"--- the server's last lines:\n{server.process.tail(60)}")  # pytest shows it for a failed test


def newcomer_issue(fake: FakeGitHub, number: int) -> tuple[str, bytes]:
    """`issues.opened` by someone the repository has never seen: (delivery id, body)."""
    login = f"first-timer-{number}"
    payload = installed(example("issues.opened.1"))
    user = {**payload["issue"]["user"], "login": login, "id": 71_000_000 + number}
    payload["issue"].update(number=number, id=81_000_000 + number, user=user, author_association="NONE")
    payload["sender"] = dict(user)
    fake.add_issue(REPO, number, login, title=payload["issue"]["title"])
    return str(uuid.uuid4()), json.dumps(payload).encode()


def test_a_burst_with_redeliveries_is_acknowledged_and_each_newcomer_greeted_once(
    server: Embedded, fake: FakeGitHub
) -> None:
    burst = [newcomer_issue(fake, number) for number in range(500, 500 + BURST)]
    again = burst[::4]  # GitHub redelivers some, while the first copies are still being processed
    sends = burst + again
    with ThreadPoolExecutor(SENDERS) as pool:
        codes = list(pool.map(lambda send: server.post(send[1], send[0]).status_code, sends))
    answers: dict[str, list[int]] = {}
    for (delivery_id, _), code in zip(sends, codes, strict=True):
        answers.setdefault(delivery_id, []).append(code)
    # Each delivery accepted once: the copy GitHub sent again is "already received", unless it overtook the
    # first one in the server's queue, which is then the one answered 200.
    assert Counter(tuple(sorted(seen)) for seen in answers.values()) == {
        (202,): BURST - len(again),
        (200, 202): len(again),
    }

    ids = [delivery_id for delivery_id, _ in burst]
    deadline = time.monotonic() + 60
    while Counter(server.statuses(ids).values()) != {"done": BURST} and time.monotonic() < deadline:
        time.sleep(0.2)
    assert Counter(server.statuses(ids).values()) == {"done": BURST}
    for number in range(500, 500 + BURST):
        marker = greeting.marker(greeting.ISSUE, f"first-timer-{number}")
        greetings = [c for c in fake.comments(REPO, number) if marker in str(c.get("body"))]
        assert len(greetings) == 1, (number, fake.comments(REPO, number))


def test_a_body_past_githubs_cap_is_refused_before_it_is_read(server: Embedded) -> None:
    head = (
        "POST /api/github/webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"X-GitHub-Event: issues\r\nX-GitHub-Delivery: {uuid.uuid4()}\r\n"
        f"Content-Length: {MAX_WEBHOOK_BYTES + 1}\r\n\r\n"
    ).encode()
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(head + b"{" * 65536)  # a sliver of the 25 MB announced: the answer must not wait for the rest
        answer = conn.recv(65536).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer
    assert "body too large" in answer
    assert answers(server.url + "/healthz")


def test_a_body_cut_short_of_its_content_length_gets_400_and_a_chunked_one_is_read_whole(server: Embedded) -> None:
    body = json.dumps(installed(example("issues.opened.1"))).encode()
    answer = post_cut_short(server.url + "/api/github/webhooks", body, 100)
    assert answer.startswith("HTTP/1.1 400"), answer
    assert f"the body ended after 100 of the {len(body)} bytes" in answer
    chunked = requests.post(
        server.url + "/api/github/webhooks",
        data=(body[i : i + 1000] for i in range(0, len(body), 1000)),
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "issues",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(SECRET, body),
        },
        timeout=10,
    )
    assert chunked.status_code == 202, chunked.text


def test_the_access_log_leaves_query_strings_out(server: Embedded) -> None:
    requests.get(server.url + "/admin", params={"token": "s3cret-in-the-address"}, timeout=10)
    deadline = time.monotonic() + 5
    while '"GET /admin"' not in server.process.text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert '"GET /admin"' in server.process.text()
    assert "s3cret-in-the-address" not in server.process.text()


def test_sigterm_stops_it_and_a_restart_takes_up_where_it_stopped(
    fake: FakeGitHub, app_key: tuple[str, bytes], tmp_path: Path
) -> None:
    first = start(fake, app_key[0], tmp_path)
    delivery_id, body = newcomer_issue(fake, 900)
    assert first.post(body, delivery_id).status_code == 202
    os.killpg(first.process.pid, signal.SIGTERM)
    first.process.popen.wait(timeout=40)
    assert not any(entry.get("level") in ("error", "critical") for entry in first.process.log_entries())

    second = start(fake, app_key[0], tmp_path)  # the same database: what the first left is the sweeper's
    try:
        deadline = time.monotonic() + 30
        while second.statuses([delivery_id]).get(delivery_id) != "done" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert second.statuses([delivery_id]) == {delivery_id: "done"}
        marker = greeting.marker(greeting.ISSUE, "first-timer-900")
        assert sum(marker in str(c.get("body")) for c in fake.comments(REPO, 900)) == 1
        assert second.post(body, delivery_id).status_code == 200  # its redelivery is known across the restart
    finally:
        second.process.stop()
