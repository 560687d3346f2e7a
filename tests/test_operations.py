"""What an operator relies on: health checks, the database going away, migrations, the manifest."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from services import build_router
from storage import db
from tests.conftest import ROOT, example, installed, services
from tests.support.processes import procfile
from tests.support.proxy import Proxy

LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:{port}/test"


def test_healthz_reports_database_and_queue(make_app, serve, redis_url):
    for app in (make_app(), make_app(redis_url=redis_url)):
        server = serve(app)
        answer = server.session.get(server.url + "/healthz")
        assert answer.status_code == 200
        assert answer.json()["database"] == "ok" and "ok" in answer.json()["queue"]


@pytest.fixture
def postgres_behind_proxy():
    """The local PostgreSQL reached through a proxy the test can cut, with a clean schema."""
    engine = db.make_engine(LOCAL_POSTGRES.format(port=5432))
    db.metadata.drop_all(engine)
    db.migrate(engine)
    engine.dispose()
    proxy = Proxy("127.0.0.1", 5432)
    yield proxy, LOCAL_POSTGRES.format(port=proxy.port)
    proxy.close()


def test_database_down_answers_503_so_github_can_redeliver(make_app, serve, postgres_behind_proxy, github):
    proxy, url = postgres_behind_proxy
    app = make_app(database_url=url)
    server = serve(app)
    payload = installed(example("issues.opened.1"))
    proxy.cut()
    refused = server.deliver("issues", payload, delivery_id="while-down")
    assert refused.status_code == 503 and "database unavailable" in refused.json()["message"]
    health = server.session.get(server.url + "/healthz")
    assert health.status_code == 503 and health.json()["database"].startswith("unreachable")

    proxy.restore()
    redelivered = server.deliver("issues", payload, delivery_id="while-down")  # GitHub's redelivery
    assert redelivered.status_code == 202
    store = services(app).store
    from tests.conftest import wait_for

    wait_for(lambda: store.get("while-down").status == "done", message="processing after the database is back")


def test_migrations_upgrade_an_existing_database_in_place(database_url, monkeypatch):
    engine = db.make_engine(database_url)
    try:
        db.migrate(engine)
        from storage.deliveries import DeliveryStore

        DeliveryStore(engine).insert(
            id="kept",
            event="issues",
            action="opened",
            installation_id=None,
            repository=None,
            sender=None,
            payload_text="{}",
        )

        def add_note_column(conn: sa.Connection) -> None:
            conn.execute(sa.text("ALTER TABLE deliveries ADD COLUMN note VARCHAR(40)"))

        monkeypatch.setattr(db, "MIGRATIONS", [*db.MIGRATIONS, (999, "a later release", add_note_column)])
        assert db.pending_migrations(engine) == [999]
        assert db.migrate(engine) == [999]
        assert db.migrate(engine) == [], "a second run changes nothing"
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT id, note FROM deliveries")).all() == [("kept", None)]
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM schema_version WHERE version = 999"))
        db.metadata.drop_all(engine)
        engine.dispose()


def test_manifest_subscribes_to_exactly_the_events_the_router_handles():
    manifest = yaml.safe_load((ROOT / "app.yml").read_text())
    assert sorted(manifest["default_events"]) == sorted(build_router(()).events)
    assert manifest["hook_attributes"]["url"].endswith("/api/github/webhooks")
    # Each subscribed event needs a permission that covers it (GitHub refuses the manifest otherwise).
    needs = {
        "issues": "issues",
        "issue_comment": "issues",
        "pull_request": "pull_requests",
        "pull_request_review": "pull_requests",
        "pull_request_review_comment": "pull_requests",
        "push": "contents",
        "repository": "metadata",
    }
    for event in manifest["default_events"]:
        assert needs.get(event) in manifest["default_permissions"], f"{event} lacks its permission"
    assert set(manifest["default_permissions"].values()) <= {"read", "write"}


def test_procfile_runs_the_app_factory_and_the_worker():
    commands = procfile()
    assert "'app:create_app()'" in commands["web"] and "gunicorn" in commands["web"]
    assert "worker" in commands["worker"] and "db upgrade" in commands["release"]


def test_the_web_unit_runs_gunicorn_as_the_procfile_does():
    """The systemd unit and the Procfile are two ways to run one server: its threads must not drift apart."""
    web = procfile()["web"]
    unit = Path(ROOT / "deploy" / "engage-web.service").read_text()
    for option in ("--worker-class", "--threads"):
        in_procfile = re.findall(rf"{option} (\S+)", web)
        assert in_procfile and re.findall(rf"{option} (\S+)", unit) == in_procfile, option
