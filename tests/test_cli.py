"""The operator commands, run as real processes the way a maintainer types them."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import pytest
import sqlalchemy as sa

from storage import db
from tests.conftest import APP_ID, REPO, ROOT, example, installed
from tests.support import behaviours


@pytest.fixture
def flask_cli(database_url, github, app_key, tmp_path):
    def environment(**env: str) -> dict[str, str]:
        environment = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        environment.update(
            WEBHOOK_SECRET="s3cret",
            APP_ID=str(APP_ID),
            PRIVATE_KEY=app_key[0].replace("\n", "\\n"),
            GITHUB_API_URL=github.url,
            DATABASE_URL=database_url,
            GITHUB_WRITE_INTERVAL="0",
            ENGAGE_BEHAVIOURS="tests.support.behaviours",
            LOG_FORMAT="json",
            ENV_FILE="/nonexistent/.env",
        )
        environment.update(env)
        return environment

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            FLASK + list(args), cwd=ROOT, env=environment(**env), capture_output=True, text=True, timeout=120
        )

    run.environment = environment  # type: ignore[attr-defined]
    return run


FLASK = [sys.executable, "-m", "flask", "--app", "app"]


def run_on_terminal(flask_cli, args: tuple[str, ...], **env: str) -> list[str]:
    """The command's output lines as a person at a terminal sees them: stdout and stderr on a pseudo-terminal."""
    main, attached = pty.openpty()
    process = subprocess.Popen(
        FLASK + list(args), cwd=ROOT, env=flask_cli.environment(**env), stdout=attached, stderr=attached
    )
    os.close(attached)
    output = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        output += chunk
    os.close(main)
    assert process.wait(timeout=120) == 0, output
    return output.decode().replace("\r\n", "\n").splitlines()


@pytest.fixture
def payload_file(tmp_path):
    path = tmp_path / "issue-opened.json"
    payload = installed(example("issues.opened.1"))
    payload["issue"]["number"] = 1
    path.write_text(json.dumps(payload))
    return path


def test_replay_runs_a_payload_through_the_real_pipeline(flask_cli, payload_file, github):
    result = flask_cli("replay", str(payload_file), "--event", "issues", "--delivery-id", "replay-1")
    assert result.returncode == 0, result.stderr
    assert "replay-1 issues.opened: done" in result.stdout
    assert "test.ack: done" in result.stdout
    assert [c["body"] for c in github.comments(REPO, 1)] == [behaviours.ACK.format(login="Codertocat")]


def test_replay_with_dry_run_writes_nothing_and_logs_what_it_would_do(flask_cli, payload_file, github):
    result = flask_cli("replay", str(payload_file), "--event", "issues", DRY_RUN="1")
    assert result.returncode == 0, result.stderr
    assert github.writes() == []
    would = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{") and "dry run" in line]
    assert would and would[0]["method"] == "POST" and would[0]["path"] == f"/repos/{REPO}/issues/1/comments"
    assert "Thanks for opening this" in would[0]["body"]["body"]
    assert app_key_never_logged(result.stderr)


def app_key_never_logged(text: str) -> bool:
    return "PRIVATE KEY" not in text and "ghs_" not in text and "s3cret" not in text


def test_replay_explains_a_bad_payload_file(flask_cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"action": ')
    result = flask_cli("replay", str(bad), "--event", "issues")
    assert result.returncode != 0 and "not valid JSON" in result.stderr


def test_the_app_refuses_to_start_without_a_webhook_secret(flask_cli):
    result = flask_cli("deliveries", "list", WEBHOOK_SECRET="")
    assert result.returncode != 0 and "WEBHOOK_SECRET is not set" in result.stderr


def test_deliveries_waiting_for_a_retry_are_listed_with_their_error(flask_cli, payload_file, github):
    github.fail_next("POST", r"/comments$", 500)
    first = flask_cli("replay", str(payload_file), "--event", "issues", "--delivery-id", "r-fail")
    assert "r-fail issues.opened: retrying" in first.stdout
    listing = flask_cli("deliveries", "list", "--status", "retrying")
    assert "r-fail" in listing.stdout and "ServerError" in listing.stdout
    shown = flask_cli("deliveries", "show", "r-fail")
    assert json.loads(shown.stdout)["status"] == "retrying"


def test_deliveries_show_lists_each_handler_of_a_done_delivery_though_its_first_attempt_stored_none(
    flask_cli, payload_file, github, database_url
):
    """A first attempt that ends done writes no row per handler that simply ran (a comment's nine rows were half
    its finish's cost); the operator still sees each routed handler as done, and a retry's outcomes are stored."""
    github.fail_next("POST", r"/comments$", 403, body={"message": "Resource not accessible by integration"})
    flask_cli("replay", str(payload_file), "--event", "issues", "--delivery-id", "s-2")
    assert flask_cli("deliveries", "retry", "s-2").stdout.strip() == "s-2: retried here: done"
    flask_cli("replay", str(payload_file), "--event", "issues", "--delivery-id", "s-1")
    shown = json.loads(flask_cli("deliveries", "show", "s-1").stdout)
    assert shown["status"] == "done" and shown["handlers"]["test.ack"] == ["done", None]
    engine = db.make_engine(database_url)
    try:
        with engine.connect() as conn:
            query = sa.select(db.handler_runs.c.delivery_id, db.handler_runs.c.handler, db.handler_runs.c.status)
            rows = {(row.delivery_id, row.handler): row.status for row in conn.execute(query)}
    finally:
        engine.dispose()
    assert [key for key in rows if key[0] == "s-1"] == []
    assert rows[("s-2", "test.ack")] == "done", "the retry's outcome replaced the failure"
    assert json.loads(flask_cli("deliveries", "show", "s-2").stdout)["handlers"]["test.ack"] == ["done", None]


def test_db_upgrade_and_status(flask_cli):
    assert "up to date" in flask_cli("db", "upgrade").stdout
    status = flask_cli("db", "status")
    assert status.returncode == 0 and "up to date" in status.stdout


def test_failed_deliveries_are_listed_with_each_failed_handlers_error(flask_cli, payload_file, github):
    github.fail_next("POST", r"/comments$", 403, body={"message": "Resource not accessible by integration"})
    first = flask_cli("replay", str(payload_file), "--event", "issues", "--delivery-id", "f-1")
    assert "f-1 issues.opened: failed" in first.stdout
    listing = flask_cli("deliveries", "list", "--status", "failed")
    assert listing.returncode == 0, listing.stderr
    [row, handler_line] = [line for line in listing.stdout.splitlines() if line.strip()]
    assert "f-1" in row and "failed handlers: test.ack" in row
    assert handler_line.startswith("    test.ack: ") and "Resource not accessible by integration" in handler_line


def test_retry_says_what_became_of_a_delivery_it_ran_here(flask_cli, payload_file, github):
    """Without Redis the retry runs in the command: a second failure is told as one (exit 1), not "requeued"."""
    github.fail_next("POST", r"/comments$", 403, body={"message": "Resource not accessible by integration"}, times=2)
    flask_cli("replay", str(payload_file), "--event", "issues", "--delivery-id", "f-2")
    again = flask_cli("deliveries", "retry", "f-2")
    assert again.returncode == 1
    assert "f-2: retried here and FAILED again: failed handlers: test.ack" in again.stdout
    assert "requeued" not in again.stdout and "Resource not accessible by integration" in again.stdout
    fixed = flask_cli("deliveries", "retry", "f-2")
    assert fixed.returncode == 0 and fixed.stdout.strip() == "f-2: retried here: done"
    assert [c["body"] for c in github.comments(REPO, 1)] == [behaviours.ACK.format(login="Codertocat")]
    assert flask_cli("deliveries", "retry", "f-2").stdout.strip() == "f-2: not failed, left alone"


def test_retry_with_a_queue_says_requeued(flask_cli, payload_file, github, redis_url):
    github.fail_next("POST", r"/comments$", 403, body={"message": "Resource not accessible by integration"})
    flask_cli("replay", str(payload_file), "--event", "issues", "--delivery-id", "f-3")
    queued = flask_cli("deliveries", "retry", "f-3", REDIS_URL=redis_url)
    assert queued.returncode == 0, queued.stderr
    assert queued.stdout.strip() == "f-3: requeued (a worker will run it)"


@pytest.mark.parametrize(
    "log_format, terminal, expected",
    [
        ("", True, "text"),
        ("", False, "json"),
        ("json", True, "json"),
        ("text", False, "text"),
    ],
    ids=["a terminal reads text", "a pipe reads JSON", "LOG_FORMAT=json wins", "LOG_FORMAT=text wins"],
)
def test_commands_log_text_on_a_terminal_and_json_otherwise(flask_cli, payload_file, log_format, terminal, expected):
    args = ("replay", str(payload_file), "--event", "issues", "--delivery-id", f"log-{expected}-{terminal}")
    if terminal:
        lines = run_on_terminal(flask_cli, args, LOG_FORMAT=log_format)
    else:
        lines = flask_cli(*args, LOG_FORMAT=log_format).stderr.splitlines()
    logged = [line for line in lines if line.strip() and "issues.opened:" not in line and ": done" not in line]
    assert any("delivery processed" in line for line in logged), lines
    if expected == "json":
        assert all(json.loads(line)["level"] for line in logged)
    else:
        assert not any(line.startswith("{") for line in logged)
        assert any(line.startswith("INFO    webhooks.jobs: delivery processed") for line in logged)


def test_an_unknown_log_format_is_refused_with_the_choices(flask_cli):
    result = flask_cli("db", "status", LOG_FORMAT="yaml")
    assert result.returncode != 0 and "LOG_FORMAT must be auto, text or json" in result.stderr
