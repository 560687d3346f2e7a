"""The delivery store's hot statements (insert, claim, finish) run as driver SQL: what they store and read
back must be what the Core statements stored and read (times as times, comparable in SQL)."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from storage.db import deliveries, utcnow
from storage.deliveries import DONE, FAILED, PENDING, PROCESSING, RETRYING, DeliveryStore
from storage.installations import REMOVED, SUSPENDED, Installation, InstallationStore


def _insert(store: DeliveryStore, delivery_id: str, installation_id: int | None = 7) -> bool:
    return store.insert(
        id=delivery_id,
        event="issue_comment",
        action="created",
        installation_id=installation_id,
        repository="octo/hello",
        sender="mona",
        payload_text='{"action": "created", "text": "100% \\u00e9t\\u00e9 ?"}',
    )


def test_a_claimed_delivery_reads_as_stored_and_a_second_claim_is_refused(engine: sa.Engine) -> None:
    store = DeliveryStore(engine)
    before = utcnow()
    assert _insert(store, "d-1")
    assert not _insert(store, "d-1"), "a redelivery is refused by the id"
    claimed = store.claim("d-1")
    assert claimed is not None
    stored = store.get("d-1")
    assert stored is not None
    assert (claimed.status, claimed.attempts, claimed.installation_state) == (PROCESSING, 1, None)
    assert isinstance(claimed.received_at, datetime) and before <= claimed.received_at <= utcnow()
    assert claimed.payload == {"action": "created", "text": "100% été ?"}
    assert (claimed.id, claimed.event, claimed.action, claimed.sender) == (stored.id, stored.event, "created", "mona")
    assert (claimed.received_at, claimed.finished_at, claimed.next_attempt_at) == (stored.received_at, None, None)
    assert store.claim("d-1") is None, "being processed: nobody else takes it within the lease"


def test_the_claim_reads_the_installations_state(engine: sa.Engine) -> None:
    store, installations = DeliveryStore(engine), InstallationStore(engine)
    installations.observe(Installation(7, "octo", "Organization", suspended_at=utcnow()))
    installations.observe(Installation(8, "gone", "Organization"))
    installations.delete(Installation(8, "gone", "Organization"))
    for delivery_id, installation_id in (("suspended", 7), ("removed", 8), ("unknown", 9), ("none", None)):
        _insert(store, delivery_id, installation_id)
    states = {d: store.claim(d).installation_state for d in ("suspended", "removed", "unknown", "none")}  # type: ignore[union-attr]
    assert states == {"suspended": SUSPENDED, "removed": REMOVED, "unknown": None, "none": None}


def test_finish_stores_times_the_sweeper_compares_and_outcomes_replace_earlier_ones(engine: sa.Engine) -> None:
    store = DeliveryStore(engine, lease_seconds=0.05)
    _insert(store, "retry-me")
    assert store.claim("retry-me") is not None
    store.finish("retry-me", RETRYING, "boom", utcnow() - timedelta(seconds=1), {"a": (DONE, None), "b": (FAILED, "x")})
    assert store.due(grace_seconds=60) == [("retry-me", 1, RETRYING)], "a due retry is found by its stored time"
    again = store.claim("retry-me")
    assert again is not None and again.attempts == 2 and again.last_error == "boom"
    time.sleep(0.1)
    assert store.claim("retry-me") is not None, "an expired lease is taken over (its claimed_at compared in SQL)"
    store.finish("retry-me", DONE, outcomes={"b": (DONE, None)})
    assert store.handler_outcomes("retry-me") == {"a": (DONE, None), "b": (DONE, None)}
    finished = store.get("retry-me")
    assert finished is not None and finished.status == DONE and finished.last_error is None
    assert isinstance(finished.finished_at, datetime) and finished.next_attempt_at is None
    assert store.claim("retry-me") is None, "done: never claimed again"
    _insert(store, "fresh")
    assert store.due(grace_seconds=3600) == [], "a pending delivery within its grace is not due"
    assert [d[0] for d in store.due(grace_seconds=0) if d[2] == PENDING] == ["fresh"]


def test_concurrent_deliveries_and_redeliveries_are_each_stored_once(engine: sa.Engine) -> None:
    """Answer threads commit together (storage/group_commit.py): a redelivery arriving beside its first
    delivery is still told apart, and no delivery of a batch is lost or mixed with another's payload."""
    store = DeliveryStore(engine)
    ids = [f"burst-{i}" for i in range(24)]
    answers: dict[str, list[bool]] = {delivery_id: [] for delivery_id in ids}
    start = threading.Barrier(16)

    def answer(share: list[str]) -> None:
        start.wait(5)
        for delivery_id in share:
            new = store.insert(
                id=delivery_id,
                event="push",
                action=None,
                installation_id=7,
                repository="octo/hello",
                sender="mona",
                payload_text=f'{{"ref": "{delivery_id}"}}',
            )
            answers[delivery_id].append(new)

    shares = [[ids[(t * 3 + k) % len(ids)] for k in range(3)] for t in range(16)]  # 48 sends of 24 ids
    threads = [threading.Thread(target=answer, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert {delivery_id: sorted(seen) for delivery_id, seen in answers.items()} == {
        delivery_id: [False, True] for delivery_id in ids
    }
    for delivery_id in ids:
        stored = store.get(delivery_id)
        assert stored is not None and stored.payload == {"ref": delivery_id} and stored.status == PENDING


def test_the_intakes_connection_is_kept_between_deliveries_and_given_back_at_shutdown(engine: sa.Engine) -> None:
    """Answers write on one connection kept for them, not one taken from the pool each time; closing the
    store (the app's shutdown) or disposing of the engine leaves no connection of it open."""
    store = DeliveryStore(engine)
    _insert(store, "kept-1")
    kept = store._intake.conn
    assert kept is not None and engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    _insert(store, "kept-2")
    assert store._intake.conn is kept, "the next delivery is written on the same connection"
    store.close()
    assert engine.pool.checkedout() == 0, "closed: given back to the pool"  # type: ignore[attr-defined]
    _insert(store, "kept-3")
    dbapi_connection = store._intake.conn.connection.dbapi_connection  # type: ignore[union-attr]
    engine.dispose()
    with pytest.raises(Exception, match=r"(?i)closed"):
        dbapi_connection.cursor().execute("SELECT 1")
    assert _insert(store, "kept-4") and store.get("kept-4") is not None, "the next delivery opens a new one"


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="PostgreSQL only (CI sets DATABASE_URL)"
)
@pytest.mark.parametrize("listening", [True, False], ids=["statements counted", "on the driver's cursor"])
def test_on_postgresql_a_batch_of_answers_is_one_statement_committed_as_it_runs(
    engine: sa.Engine, listening: bool
) -> None:
    """Answers written together go out as one INSERT, without a BEGIN and a COMMIT around it (each a round trip
    for every batch); the rows are committed when it returns, and a redelivery in the batch is told apart. The
    same whether someone counts statements (SQLAlchemy's path) or not (storage.prepared's raw cursor)."""
    store = DeliveryStore(engine)
    sent: list[str] = []

    def count(_conn, _cursor, statement, *_) -> None:  # type: ignore[no-untyped-def]
        sent.append(statement)

    rows = [
        dict(
            id=delivery_id,
            event="push",
            action=None,
            installation_id=7,
            repository="octo/hello",
            sender="mona",
            payload=f'{{"ref": "{delivery_id}"}}',
            received_at=utcnow(),
            status=PENDING,
            attempts=0,
            last_error=None,
            next_attempt_at=None,
            claimed_at=None,
            finished_at=None,
        )
        for delivery_id in ("one", "two", "one", "three")
    ]
    if listening:
        sa.event.listen(engine, "before_cursor_execute", count)
    try:
        assert store._insert_rows(rows) == [True, True, False, True]
    finally:
        if listening:
            sa.event.remove(engine, "before_cursor_execute", count)
    if listening:
        assert len(sent) == 1 and sent[0].startswith("INSERT INTO deliveries"), sent
    kept = store._intake.conn
    assert kept is not None and kept.connection.dbapi_connection.info.transaction_status == 0  # type: ignore[union-attr]
    with engine.connect() as other:
        ids = other.execute(sa.select(deliveries.c.id).where(deliveries.c.id.in_(["one", "two", "three"])))
        assert sorted(ids.scalars()) == ["one", "three", "two"], "committed, seen from another session"
    assert store.get("one").payload == {"ref": "one"}  # type: ignore[union-attr]
    store.close()


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="PostgreSQL only (CI sets DATABASE_URL)"
)
def test_on_postgresql_payloads_are_stored_compressed_with_lz4(engine: sa.Engine) -> None:
    """A webhook's answer waits while PostgreSQL compresses its payload: lz4, not the slower default (pglz)."""
    store = DeliveryStore(engine)
    review = json.dumps({"action": "submitted", "review": {"body": "Looks good to me. " * 1200}})
    assert store.insert(
        id="large",
        event="pull_request_review",
        action="submitted",
        installation_id=7,
        repository="octo/hello",
        sender="mona",
        payload_text=review,
    )
    with engine.connect() as conn:
        method = conn.execute(sa.text("SELECT pg_column_compression(payload) FROM deliveries WHERE id = 'large'"))
        assert method.scalar_one() == "lz4"
    assert store.get("large").payload == json.loads(review)  # type: ignore[union-attr]
    store.close()
