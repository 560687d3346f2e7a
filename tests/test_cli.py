"""The operator commands, run as real processes the way a maintainer types them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import APP_ID, REPO, ROOT, example, installed
from tests.support import behaviours


@pytest.fixture
def flask_cli(database_url, github, app_key, tmp_path):
    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
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
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", *args],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


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


def test_db_upgrade_and_status(flask_cli):
    assert "up to date" in flask_cli("db", "upgrade").stdout
    status = flask_cli("db", "status")
    assert status.returncode == 0 and "up to date" in status.stdout
