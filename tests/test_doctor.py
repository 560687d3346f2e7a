"""`flask --app app doctor`: every check against the real pieces (fake GitHub, database, Redis), and
each problem named together with its fix; no secret is ever printed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from rq import SimpleWorker

from cli.doctor import key_fingerprint, redact_url
from engagement import history
from jobs.backfill import state_key
from storage import db
from storage.db import repositories
from storage.ledger import WHOLE_HISTORY
from tests.conftest import APP_ID, ROOT, SECRET, services
from tests.support.fake_channel import FakeChannel


def doctor(app) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["doctor"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def line(output: str, topic: str) -> str:
    found = [text for text in output.splitlines() if f" {topic}: " in text]
    assert found, f"no line about {topic} in:\n{output}"
    return found[0]


def no_secrets(output: str, private_key: str) -> None:
    assert SECRET not in output and "PRIVATE KEY" not in output and "ghs_" not in output
    body = "".join(private_key.strip().splitlines()[1:-1])
    assert body[:40] not in output.replace("\n", "")


def other_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_all_good_with_the_embedded_worker(make_app, app_key):
    code, output = doctor(make_app())
    assert code == 0, output
    assert line(output, "GitHub").startswith("ok") and f"belongs to app {APP_ID}" in output
    assert key_fingerprint(app_key[0]) in line(output, "private key")
    assert line(output, "installations").endswith("Codertocat")
    assert line(output, "WEBHOOK_SECRET").startswith("ok")
    assert line(output, "migrations").startswith("ok") and line(output, "deliveries").startswith("ok")
    assert line(output, "worker").startswith("note") and "embedded worker" in output
    assert output.rstrip().endswith("everything checked is fine")
    no_secrets(output, app_key[0])


def test_all_good_with_redis_and_a_worker_alive(make_app, redis_url, app_key):
    app = make_app(redis_url=redis_url)
    svc = services(app)
    code, output = doctor(app)
    assert code == 1 and "no RQ worker listens on queue 'engage'" in line(output, "workers")
    assert "flask --app app worker" in line(output, "workers")
    worker = SimpleWorker([svc.settings.queue_name], connection=svc.redis)
    worker.register_birth()
    try:
        code, output = doctor(app)
    finally:
        worker.register_death()
    assert code == 0, output
    assert line(output, "Redis").startswith("ok") and "1 RQ worker(s)" in line(output, "workers")


def test_a_key_of_another_app_is_named_with_the_fix(make_app, github, app_key):
    wrong = other_key()
    code, output = doctor(make_app(private_key=wrong))
    assert code == 1
    problem = line(output, "GitHub")
    assert problem.startswith("problem") and f"the key does not belong to app {APP_ID}" in problem
    assert key_fingerprint(wrong) in problem and key_fingerprint(app_key[0]) not in output
    no_secrets(output, wrong)
    # The fake GitHub counts the refused JWT as a client mistake; here it is the point of the test.
    assert github.violations and all("app JWT rejected" in v for v in github.violations)
    github.violations.clear()


@pytest.mark.parametrize(
    "case, secret, expected",
    [
        ("missing", None, "not set: set it to the webhook secret on the GitHub App's settings page"),
        ("a placeholder", "development", "guessable"),
        ("too short to resist guessing", "s3cret", "guessable"),
    ],
)
def test_a_missing_or_weak_webhook_secret_is_a_problem(make_app, case, secret, expected):
    code, output = doctor(make_app(webhook_secret=secret))
    assert code == 1, case
    assert line(output, "WEBHOOK_SECRET").startswith("problem") and expected in output, case
    if secret:
        assert secret not in output.replace("WEBHOOK_SECRET", "")


def test_sign_in_is_checked_against_the_apps_own_client_id_and_its_secret_never_shown(make_app, github):
    code, output = doctor(make_app())
    assert code == 0 and line(output, "sign-in").startswith("note") and "off" in line(output, "sign-in")
    secret = "a-client-secret-of-40-characters-0123456"
    github.set_oauth_client("Iv1.theappsownid00", secret)
    code, output = doctor(make_app(github_client_id="Iv1.0123456789abcdef", github_client_secret=secret))
    assert code == 1 and "not this App's (Iv1.theappsownid00)" in line(output, "sign-in")
    base = "https://engage.example.org"
    app = make_app(github_client_id="Iv1.theappsownid00", github_client_secret=secret, base_url=base)
    code, output = doctor(app)
    assert code == 0, output
    assert line(output, "sign-in").startswith("ok") and "(this App's)" in output
    assert f"{base}/auth/callback" in line(output, "sign-in callback")
    assert secret not in output


def test_the_webhook_proxy_channel_is_checked_without_printing_its_address(make_app):
    channel = FakeChannel(SECRET)
    try:
        code, output = doctor(make_app(webhook_proxy_url=channel.url))
        assert code == 0, output
        assert line(output, "WEBHOOK_PROXY_URL").startswith("ok")
        code, output = doctor(make_app(webhook_proxy_url=channel.url + "Gone"))
    finally:
        channel.close()
    assert code == 1 and "answered 404" in line(output, "WEBHOOK_PROXY_URL")
    code, output = doctor(make_app(webhook_proxy_url=f"http://127.0.0.1:{closed_port()}/AChannel"))
    assert code == 1 and "cannot reach" in line(output, "WEBHOOK_PROXY_URL")
    assert "EngageTestChannel1" not in output and "AChannel" not in output


def test_missing_app_credentials(make_app):
    code, output = doctor(make_app(app_id=None, private_key=None))
    assert code == 1 and "APP_ID: not set" in output


def test_redis_down_is_reported_without_a_crash(make_app):
    url = f"redis://:hunter2hunter2@127.0.0.1:{closed_port()}/0"
    code, output = doctor(make_app(redis_url=url))
    assert code == 1
    assert line(output, "Redis").startswith("problem") and "unreachable" in output and "REDIS_URL" in output
    assert "hunter2" not in output and "Traceback" not in output
    assert line(output, "database").startswith("ok"), "the other checks still ran"


def test_a_database_not_migrated_is_a_problem(make_app, monkeypatch):
    app = make_app()
    monkeypatch.setattr(db, "MIGRATIONS", [*db.MIGRATIONS, (999, "a later release", lambda conn: None)])
    code, output = doctor(app)
    assert code == 1 and "[999] pending: run `flask --app app db upgrade`" in line(output, "migrations")


def test_an_unreachable_database_is_a_problem(make_app):
    app = make_app(database_url="postgresql+psycopg://postgres@127.0.0.1:1/nowhere")  # nothing listens on port 1
    code, output = doctor(app)
    assert code == 1 and line(output, "database").startswith("problem") and "DATABASE_URL" in output


def test_recent_failures_are_shown_with_the_newest_error(make_app):
    app = make_app()
    store = services(app).store
    for delivery_id, error in (
        ("older", "ServerError: 502"),
        ("newest", "RuntimeError: handler bug ghs_abcdefghijkl1234"),
    ):
        store.insert(
            id=delivery_id,
            event="issues",
            action="opened",
            installation_id=None,
            repository=None,
            sender=None,
            payload_text="{}",
        )
        store.claim(delivery_id)
        store.finish(delivery_id, "failed", error)
    code, output = doctor(app)
    problem = line(output, "deliveries")
    assert code == 1 and problem.startswith("problem") and "2 failed in the last 24 h" in problem
    assert "newest (issues): RuntimeError: handler bug [redacted]" in problem
    assert "deliveries retry --all-failed" in problem


def add_repositories(app, *rows: tuple[int, str, datetime | None]) -> None:
    with services(app).store.engine.begin() as conn:
        for repo_id, name, complete in rows:
            conn.execute(
                repositories.insert().values(
                    id=repo_id,
                    full_name=name,
                    owner="llmasos",
                    private=False,
                    installation_id=1,
                    ledger_complete_since=complete,
                    updated_at=db.utcnow(),
                )
            )


def test_repositories_without_a_backfill_are_a_hint_not_a_failure(make_app):
    app = make_app()  # the background import off, as in every test that does not turn it on
    add_repositories(app, (1, "llmasos/kernel", None), (2, "llmasos/docs", db.utcnow()))
    code, output = doctor(app)
    hint = line(output, "ledger")
    assert code == 0 and hint.startswith("note") and "1 of 2 installed repositories" in hint
    assert "BACKFILL_CALLS_PER_HOUR=0 turned the background import off" in hint
    assert "backfill OWNER/REPO` for llmasos/kernel" in hint


def test_the_background_import_says_where_it_is_and_what_it_could_not_read(make_app):
    app = make_app(backfill_calls_per_hour=600)
    add_repositories(
        app,
        (1, "llmasos/kernel", None),
        (2, "llmasos/gone", None),
        (3, "llmasos/docs", WHOLE_HISTORY),  # backfilled whole
        (4, "llmasos/site", db.utcnow()),  # backfilled --since a day: the background import brings the rest
    )
    ledger = services(app).stores.ledger
    ledger.set_state(state_key(1), json.dumps({"stage": "pulls", "page": 3, "since": None, "counts": {}}))
    error = "llmasos/gone is unknown to the app: it does not exist"
    ledger.set_state(history.failure_key(2), json.dumps({"at": db.utcnow().isoformat(), "error": error}))
    code, output = doctor(app)
    assert code == 0, output
    lines = [text for text in output.splitlines() if "ledger" in text]
    assert any(
        text.startswith("ok")
        and "3 of 4 installed repositories are having their history imported" in text
        and "at most 600 GitHub requests an hour of each installation" in text
        and "llmasos/kernel (at page 3 of pulls)" in text
        and "llmasos/site" in text
        and "llmasos/docs" not in text
        for text in lines
    ), lines
    assert any(
        text.startswith("note") and f"llmasos/gone: the history import failed ({error})" in text for text in lines
    )


@pytest.mark.parametrize(
    "url, shown",
    [
        ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://user:pw@host/1", "redis://user:***@host/1"),
        ("redis://host:6379/0", "redis://host:6379/0"),
    ],
)
def test_urls_are_printed_without_their_password(url, shown):
    assert redact_url(url) == shown


def test_the_real_command_with_a_key_file(database_url, github, app_key, tmp_path):
    """As an operator runs it: a real process, the key in a .pem file readable by others."""
    pem = tmp_path / "app.pem"
    pem.write_text(app_key[0])
    pem.chmod(0o644)
    environment = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "PRIVATE_KEY")}
    environment.update(
        WEBHOOK_SECRET="a-long-random-webhook-secret-for-the-test",
        APP_ID=str(APP_ID),
        PRIVATE_KEY_PATH=str(pem),
        GITHUB_API_URL=github.url,
        DATABASE_URL=database_url,
        ENV_FILE="/nonexistent/.env",
    )
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "doctor"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"note     private key: {pem} can be read by other users: chmod 600 {pem}" in result.stdout
    assert "a-long-random-webhook-secret" not in result.stdout + result.stderr
    no_secrets(result.stdout + result.stderr, app_key[0])
    assert all(json.loads(text) for text in result.stderr.splitlines() if text.startswith("{"))
