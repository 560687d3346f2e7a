"""Shared fixtures: one fake GitHub for the session, a real Redis, a real database, the app over HTTP."""

from __future__ import annotations

import copy
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from rq import SimpleWorker
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer
from werkzeug.serving import make_server

from services import Services
from storage import db
from tests.support.fake_github import FakeGitHub
from webhooks.signature import sign

# A developer's .env must not leak into the tests: settings read ENV_FILE only, and the `flask` commands
# the tests start (which inherit this environment) do not read ./.env on their own.
os.environ["ENV_FILE"] = "/nonexistent/.env"
os.environ["FLASK_SKIP_DOTENV"] = "1"

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "tests" / "contract" / "github"
EXAMPLES = CONTRACT / "webhook-examples"
SECRET = "test-webhook-secret"
APP_ID = 4242
INSTALLATION_ID = 9001
REPO = "Codertocat/Hello-World"
TEST_BEHAVIOURS = ("tests.support.behaviours",)


def example(name: str) -> dict[str, Any]:
    """A real recorded payload, e.g. example("issues.opened.1"), as a fresh copy to edit."""
    return copy.deepcopy(json.loads((EXAMPLES / f"{name}.json").read_text()))


def installed(payload: dict[str, Any], installation_id: int = INSTALLATION_ID) -> dict[str, Any]:
    """Today's App deliveries always carry `installation`; most recorded examples predate that."""
    payload["installation"] = {"id": installation_id, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="}
    return payload


def pushed(paths: list[str], branch: str = "master") -> dict[str, Any]:
    """A push to `branch` of Codertocat/Hello-World that changes `paths`, as GitHub delivers it (the
    recorded push, edited): what tells the app that files it keeps a copy of changed."""
    payload = installed(example("push.none.5"))
    commit = {**payload["head_commit"], "added": [], "removed": [], "modified": list(paths)}
    payload.update(ref=f"refs/heads/{branch}", commits=[commit], head_commit=commit, forced=False)
    return payload


@pytest.fixture(scope="session")
def app_key() -> tuple[str, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


@pytest.fixture(scope="session")
def fake_github_server(app_key: tuple[str, bytes]) -> Iterator[FakeGitHub]:
    fake = FakeGitHub(APP_ID, app_key[1])
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def github(fake_github_server: FakeGitHub) -> Iterator[FakeGitHub]:
    """The fake GitHub, emptied, with our installation on Codertocat/Hello-World; fails on bad requests."""
    fake = fake_github_server
    fake.reset()
    fake.add_repo(REPO, default_branch="master")  # as in the recorded payloads
    fake.add_installation(INSTALLATION_ID, "Codertocat", [REPO])
    for number in (1, 2):
        fake.add_issue(REPO, number, "Codertocat", title="Spelling error in the README file")
    yield fake
    fake.assert_no_violations()


@pytest.fixture
def redis_url() -> Iterator[str]:
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    connection = redis.Redis.from_url(url)
    connection.flushdb()
    yield url
    connection.flushdb()
    connection.close()


def database_url_for(folder: Path) -> str:
    """SQLite in `folder`, or the PostgreSQL of DATABASE_URL (as in CI), emptied and migrated."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        return f"sqlite:///{folder / 'engage.sqlite3'}"
    url = url.replace("postgresql://", "postgresql+psycopg://", 1).replace("postgres://", "postgresql+psycopg://", 1)
    engine = db.make_engine(url)
    db.metadata.drop_all(engine)
    db.migrate(engine)
    engine.dispose()
    return url


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return database_url_for(tmp_path)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """The test database, migrated, for tests of the stores without an app."""
    engine = db.make_engine(database_url)
    db.migrate(engine)
    yield engine
    engine.dispose()


MakeApp = Callable[..., Flask]


def build_test_app(api_url: str, app_key: tuple[str, bytes], database_url: str, /, **overrides: Any) -> Flask:
    """An app wired to the fake GitHub and a test database, with the embedded worker; `overrides`
    replace Settings fields."""
    from app import create_app

    settings = dict(
        testing=True,
        webhook_secret=SECRET,
        database_url=database_url,
        redis_url=None,
        app_id=APP_ID,
        private_key=app_key[0],
        github_api_url=api_url,
        write_interval_seconds=0.0,
        backfill_calls_per_hour=0,  # tests that want the history import turn it on
        retry_base_seconds=0.05,
        sweep_interval_seconds=0.2,
        sweep_grace_seconds=0.0,
        behaviours=TEST_BEHAVIOURS,
        log_format="text",
    )
    return create_app({**settings, **overrides})


@pytest.fixture
def make_app(database_url: str, github: FakeGitHub, app_key: tuple[str, bytes]) -> Iterator[MakeApp]:
    """Build apps wired to the fake GitHub and the test database; keyword arguments override Settings."""
    apps: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        app = build_test_app(github.url, app_key, database_url, **overrides)
        apps.append(app)
        return app

    yield build
    for app in apps:
        services(app).close()


def services(app: Flask) -> Services:
    found: Services = app.extensions["engage"]
    return found


class LiveServer:
    """The app behind a real HTTP server on a random port, and a way to send it signed deliveries."""

    def __init__(self, app: Flask):
        self.app = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self.webhook_url = self.url + services(app).settings.webhook_path
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        self.session = requests.Session()

    def deliver(
        self,
        event: str,
        payload: dict[str, Any] | bytes,
        delivery_id: str | None = None,
        secret: str = SECRET,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        all_headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/test",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
            "X-GitHub-Hook-ID": "1",
            "X-Hub-Signature-256": sign(secret, body),
            **(headers or {}),
        }
        return self.session.post(self.webhook_url, data=body, headers=all_headers, timeout=30)

    def close(self) -> None:
        self._server.shutdown()
        self.session.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Flask], LiveServer]]:
    servers: list[LiveServer] = []

    def start(app: Flask) -> LiveServer:
        server = LiveServer(app)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def run_rq_worker(app: Flask) -> None:
    """Process everything queued (and every scheduled retry now due) with a real RQ worker, then stop."""
    svc = services(app)
    svc.dispatcher.wait_idle()  # what the endpoint submitted is in Redis
    # RQ's own scheduler moves due retries (enqueue_in) to the queue, as `worker --with-scheduler` does.
    scheduler = RQScheduler([svc.settings.queue_name], connection=svc.redis, serializer=JSONSerializer)
    scheduler.acquire_locks()
    scheduler.enqueue_scheduled_jobs()
    scheduler.release_locks()
    scheduler.connection.close()  # the scheduler opens a connection of its own
    worker = SimpleWorker([svc.settings.queue_name], connection=svc.redis, serializer=JSONSerializer)
    worker.work(burst=True)


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {message}")


def post_cut_short(url: str, body: bytes, sent: int) -> str:
    """A signed delivery whose sender stops after `sent` bytes of the `body` its Content-Length announces (a
    dropped connection, a proxy cutting it): the raw answer. `url` is the webhook's, http://host:port/path."""
    host, _, rest = url.removeprefix("http://").partition(":")
    port, _, path = rest.partition("/")
    head = (
        f"POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nX-GitHub-Event: issues\r\n"
        f"X-GitHub-Delivery: {uuid.uuid4()}\r\nX-Hub-Signature-256: {sign(SECRET, body)}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(head + body[:sent])
        conn.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: conn.recv(65536), b"")).decode(errors="replace")


def table_count(app: Flask, table: sa.Table) -> int:
    with services(app).store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
