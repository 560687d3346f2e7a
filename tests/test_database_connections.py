"""PostgreSQL drops the app's connections (a restart, a failover, an idle timeout at a pooler): the next
deliveries are still answered 202 and processed, with no failed delivery and nothing to redeliver."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tests.conftest import example, installed, services, wait_for

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="PostgreSQL only (CI sets DATABASE_URL)"
)


def drop_connections(database_url: str) -> int:
    """What a PostgreSQL restart does to the app's pool: every other session of the database is ended."""
    admin = sa.create_engine(database_url, poolclass=NullPool)
    with admin.connect() as conn:
        ended = conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    admin.dispose()
    return int(ended)


def comment(number: int) -> dict[str, object]:
    payload = installed(example("issue_comment.created.1"))
    payload["comment"]["id"] = number  # type: ignore[index]
    return payload


@pytest.mark.parametrize("mode", ["embedded", "rq"])
def test_deliveries_after_the_database_dropped_every_connection_are_answered_and_processed(
    make_app, serve, database_url, redis_url, mode
):
    from tests.conftest import run_rq_worker

    app = make_app(redis_url=redis_url) if mode == "rq" else make_app()
    server, store = serve(app), services(app).store
    ids = [f"{mode}-before-{n}" for n in range(3)]
    for n, delivery_id in enumerate(ids):
        assert server.deliver("issue_comment", comment(100 + n), delivery_id=delivery_id).status_code == 202
    if mode == "rq":
        run_rq_worker(app)
    wait_for(lambda: all(store.get(d).status == "done" for d in ids), message="the first deliveries processed")

    assert drop_connections(database_url) >= 1, "the app held no connection to drop"
    after = [f"{mode}-after-{n}" for n in range(5)]
    answers = [server.deliver("issue_comment", comment(200 + n), delivery_id=d) for n, d in enumerate(after)]
    assert [a.status_code for a in answers] == [202] * 5, [a.text for a in answers]
    if mode == "rq":
        run_rq_worker(app)
    wait_for(lambda: all(store.get(d).status == "done" for d in after), message="the later deliveries processed")
    assert [d.id for d in store.list(["failed"])] == []


def test_pages_after_the_database_dropped_every_connection_answer(make_app, serve, database_url):
    server = serve(make_app())
    assert server.deliver("issue_comment", comment(300), delivery_id="page-before").status_code == 202
    wait_for(lambda: services(server.app).store.get("page-before").status == "done", message="processed")
    for path in ("/healthz", "/leaderboard?repo=Codertocat/Hello-World"):
        assert server.session.get(server.url + path).status_code == 200
    assert drop_connections(database_url) >= 1
    for path in ("/leaderboard?repo=Codertocat/Hello-World", "/healthz"):
        assert server.session.get(server.url + path).status_code == 200, path
