"""Payload retention: old finished deliveries are pruned with their handler runs, failed ones wait
four times as long, pending work and the ledger are never touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from settings import ConfigError, from_environment
from storage.db import contributions, deliveries, handler_runs, intents, utcnow
from storage.retention import prune
from tests.conftest import example, installed, run_rq_worker, services, table_count

DAYS = 30


def store(svc, delivery_id: str, status: str, age_days: float) -> None:
    """A delivery received and finished `age_days` ago, with one handler run."""
    svc.store.insert(
        id=delivery_id,
        event="issues",
        action="opened",
        installation_id=None,
        repository=None,
        sender=None,
        payload_text="{}",
    )
    svc.store.claim(delivery_id)
    svc.store.finish(delivery_id, status, outcomes={"test.ack": ("done", None)})
    age(svc, delivery_id, age_days)


def age(svc, delivery_id: str, days: float) -> None:
    then = utcnow() - timedelta(days=days)
    with svc.store.engine.begin() as conn:
        conn.execute(
            deliveries.update().where(deliveries.c.id == delivery_id).values(received_at=then, finished_at=then)
        )


def kept(svc) -> set[str]:
    with svc.store.engine.connect() as conn:
        return set(conn.execute(sa.select(deliveries.c.id)).scalars())


def table_count_of(svc, table: sa.Table) -> int:
    with svc.store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


@pytest.mark.parametrize(
    "case, status, age_days, pruned",
    [
        ("done, older than the retention", "done", DAYS + 1, True),
        ("ignored, older than the retention", "ignored", DAYS + 1, True),
        ("done, recent", "done", DAYS - 1, False),
        ("failed, older than the retention: kept for someone to retry", "failed", DAYS + 1, False),
        ("failed, older than four times the retention", "failed", 4 * DAYS + 1, True),
        ("retrying: never pruned, however old", "retrying", 10 * DAYS, False),
    ],
)
def test_what_is_pruned(make_app, case, status, age_days, pruned):
    svc = services(make_app())
    store(svc, "d", status, age_days)
    result = prune(svc.store.engine, DAYS)
    assert ("d" not in kept(svc)) == pruned, case
    assert result.total == int(pruned)
    assert table_count_of(svc, handler_runs) == (0 if pruned else 1), "handler runs go with their delivery"


def test_a_failed_delivery_retried_today_is_kept_although_received_long_ago(make_app):
    svc = services(make_app())
    store(svc, "retried", "done", DAYS + 5)
    with svc.store.engine.begin() as conn:
        conn.execute(deliveries.update().where(deliveries.c.id == "retried").values(finished_at=utcnow()))
    prune(svc.store.engine, DAYS)
    assert kept(svc) == {"retried"}


def test_the_ledger_and_intents_are_untouched(make_app, serve, redis_url, github):
    server = serve(make_app(redis_url=redis_url))
    payload = installed(example("issues.opened.1"))
    server.deliver("issues", payload, delivery_id="recorded")
    run_rq_worker(server.app)
    svc = services(server.app)
    assert svc.store.get("recorded").status == "done"
    before = (table_count(server.app, contributions), table_count(server.app, intents))
    assert before[0] == 1
    age(svc, "recorded", DAYS + 1)
    assert prune(svc.store.engine, DAYS).finished == 1
    assert svc.store.get("recorded") is None
    assert (table_count(server.app, contributions), table_count(server.app, intents)) == before


def test_large_backlogs_are_pruned_in_batches(make_app, monkeypatch):
    import storage.retention

    monkeypatch.setattr(storage.retention, "BATCH", 3)
    svc = services(make_app())
    for n in range(8):
        store(svc, f"old-{n}", "done", DAYS + 1)
    store(svc, "new", "done", 1)
    assert prune(svc.store.engine, DAYS).finished == 8
    assert kept(svc) == {"new"}


def test_the_scheduled_prune_runs_once_an_hour(make_app):
    svc = services(make_app(payload_retention_days=DAYS))
    now = datetime(2026, 12, 4, 10, 5, tzinfo=UTC)
    svc.tasks.clock = lambda: now
    store(svc, "first", "done", DAYS + 1)
    svc.tick()
    assert kept(svc) == set()
    store(svc, "second", "done", DAYS + 1)
    now += timedelta(minutes=54)
    svc.tick()
    assert kept(svc) == {"second"}, "the next prune waits for the next hour"
    now += timedelta(minutes=2)
    svc.tick()
    assert kept(svc) == set()


def test_retention_zero_keeps_everything(make_app):
    svc = services(make_app(payload_retention_days=0))
    store(svc, "ancient", "done", 3650)
    svc.tick()
    assert kept(svc) == {"ancient"}
    result = make_app(payload_retention_days=0).test_cli_runner().invoke(args=["deliveries", "prune"])
    assert result.exit_code != 0 and "PAYLOAD_RETENTION_DAYS=0 keeps payloads forever" in result.output


def test_the_prune_command(make_app):
    app = make_app()
    svc = services(app)
    store(svc, "week-old", "done", 8)
    store(svc, "failed-week-old", "failed", 8)
    result = app.test_cli_runner().invoke(args=["deliveries", "prune", "--days", "7"])
    assert result.exit_code == 0, result.output
    assert "pruned 1 done or ignored deliveries older than 7 days and 0 failed ones older than 28 days" in result.output
    assert kept(svc) == {"failed-week-old"}


@pytest.mark.parametrize(
    "value, expected",
    [(None, 30), ("", 30), ("0", 0), ("90", 90), ("-1", ConfigError), ("a month", ConfigError)],
)
def test_the_setting(value, expected):
    env = {"WEBHOOK_SECRET": "x"} | ({"PAYLOAD_RETENTION_DAYS": value} if value is not None else {})
    if expected is ConfigError:
        with pytest.raises(ConfigError, match="PAYLOAD_RETENTION_DAYS must be a whole number of days"):
            from_environment(env)
    else:
        assert from_environment(env).payload_retention_days == expected
