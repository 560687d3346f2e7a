"""Processing one delivery takes one database connection from the pool, not one per transaction, and
each of its transactions still commits, rolls back and lets other threads in on its own."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading

import pytest
import sqlalchemy as sa

from storage import db
from storage.db import intents
from storage.intents import NEW, TAKEN, IntentStore
from storage.prepared import Prepared
from tests.conftest import REPO, example, installed, services
from tests.test_database_connections import drop_connections
from webhooks.jobs import process

NEWCOMER = "first-timer"


def checkouts(engine: sa.Engine) -> list[str]:
    """The names of the threads that take a connection from the engine's pool, as they do."""
    taken: list[str] = []
    sa.event.listen(engine, "checkout", lambda *_: taken.append(threading.current_thread().name))
    return taken


def test_a_greeting_is_processed_on_one_connection(make_app, serve, github, redis_url):
    app = make_app(redis_url=redis_url, behaviours=())  # queued on RQ: processed below, in this thread
    server, svc = serve(app), services(app)
    github.add_issue(REPO, 3, NEWCOMER, title="Installer crashes")
    payload = installed(example("issues.opened.1"))
    payload["issue"].update(number=3, author_association="NONE")
    payload["issue"]["user"].update(login=NEWCOMER, type="User")
    payload["sender"].update(login=NEWCOMER, type="User")
    assert server.deliver("issues", payload, delivery_id="greeted").status_code == 202
    taken = checkouts(svc.store.engine)

    assert process(svc, "greeted") == "done"
    assert [c["body"] for c in github.comments(REPO, 3) if "engage:greeting" in c["body"]], "greeted"
    assert taken.count(threading.current_thread().name) == 1, taken
    assert svc.store.engine.pool.checkedout() <= 1, "given back: only the intake's own may be out"  # type: ignore[attr-defined]


def test_each_transaction_commits_on_its_own_and_a_failed_one_rolls_back_alone(engine: sa.Engine) -> None:
    store, seen = IntentStore(engine), []

    def others_see() -> list[str]:  # another thread, so another connection: what is committed
        reader = threading.Thread(target=lambda: seen.append(_keys(engine)))
        reader.start()
        reader.join(10)
        return seen.pop()

    with db.one_connection(engine):
        assert store.start("greeting:1", "delivery-1") == NEW
        assert others_see() == ["greeting:1"], "committed before the block ends (before the comment is posted)"
        with pytest.raises(ZeroDivisionError), db.begin(engine) as conn:
            conn.execute(intents.insert().values(key="greeting:2", delivery_id="delivery-1", created_at=db.utcnow()))
            raise ZeroDivisionError
        assert store.start("greeting:3", "delivery-1") == NEW
        assert others_see() == ["greeting:1", "greeting:3"]


def test_a_read_left_open_ends_with_its_block_so_other_threads_can_write(engine: sa.Engine) -> None:
    """A read left open on the kept connection must end with its block: on SQLite, had it taken the process's
    write turn (as reads did before `_statements_on_their_own`), every other thread's write would wait for the
    whole delivery."""
    wrote = threading.Event()

    def write() -> None:
        IntentStore(engine).start("thanks:1", "delivery-2")
        wrote.set()

    with db.one_connection(engine):
        with db.connect(engine) as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(intents)).scalar_one() == 0
        writer = threading.Thread(target=write)
        writer.start()
        assert wrote.wait(10), "another thread's write waited for the kept connection"
        writer.join()
    assert _keys(engine) == ["thanks:1"]


def test_a_transaction_inside_another_gets_a_connection_of_its_own(engine: sa.Engine) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite takes one transaction at a time per process: none nests there, with or without")
    with db.one_connection(engine), db.begin(engine) as outer:
        with db.begin(engine) as inner:
            assert inner is not outer
            inner.execute(intents.insert().values(key="inner", delivery_id="d", created_at=db.utcnow()))
        assert outer.execute(sa.select(intents.c.key)).scalars().all() == ["inner"], "committed on its own"


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="PostgreSQL only (CI sets DATABASE_URL)"
)
def test_a_kept_connection_the_database_dropped_is_replaced(engine: sa.Engine, database_url: str) -> None:
    store = IntentStore(engine)
    with db.one_connection(engine):
        assert store.start("greeting:1", "delivery-1") == NEW
        assert drop_connections(database_url) >= 1
        with pytest.raises(sa.exc.DBAPIError):  # what was under way fails once, as on a pool connection
            store.start("greeting:2", "delivery-1")
        assert db.once_more_if_dropped(lambda: store.start("greeting:3", "delivery-1")) == NEW
        assert store.start("greeting:4", "delivery-1") == NEW, "the connection that replaced it is kept"
    assert engine.pool.checkedout() == 0, "the replacement is given back too"  # type: ignore[attr-defined]
    assert _keys(engine) == ["greeting:1", "greeting:3", "greeting:4"]


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="PostgreSQL only (CI sets DATABASE_URL)"
)
def test_after_one_dropped_connection_the_pooled_ones_opened_before_it_are_replaced(engine: sa.Engine) -> None:
    """A restart ends every session, but a pooled one may not show it yet when it is next taken (the server's
    farewell is still on its way): the intake's one retry must not take it, or a webhook is answered 503."""
    with engine.connect() as idle, engine.connect() as failing:
        pid = "SELECT pg_backend_pid()"
        pooled, ended = idle.exec_driver_sql(pid).scalar_one(), failing.exec_driver_sql(pid).scalar_one()
        idle.rollback()
        failing.rollback()
        idle.close()  # back in the pool, alive: it stands for a session whose end the app has not seen yet
        with engine.connect() as admin:
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({ended})")
        _wait_until_ended(engine, ended)
        with pytest.raises(sa.exc.DBAPIError) as failed:
            Prepared(sa.select(intents.c.key)).execute(failing)  # as the intake's and the pipeline's statements run
        assert failed.value.connection_invalidated
    with engine.connect() as conn:
        assert conn.exec_driver_sql(pid).scalar_one() != pooled, "a connection opened before the drop was reused"


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="PostgreSQL only (CI sets DATABASE_URL)"
)
def test_a_deliverys_reads_open_no_transaction_and_its_writes_still_do(engine: sa.Engine) -> None:
    """On PostgreSQL a read on the kept connection runs without a transaction: under READ COMMITTED one gives a
    read nothing, and its BEGIN and ROLLBACK were two of a greeting's round trips each. A write after it is still
    one transaction, which the server shows as open until it commits, and a failed one still rolls back."""
    with db.one_connection(engine):
        with db.connect(engine) as conn:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            assert conn.execute(sa.select(sa.func.count()).select_from(intents)).scalar_one() == 0
            assert _state_of(engine, pid) == "idle", "the read opened a transaction"
        with db.begin(engine) as conn:
            conn.execute(intents.insert().values(key="greeting:1", delivery_id="d", created_at=db.utcnow()))
            assert _state_of(engine, pid) == "idle in transaction"
        with pytest.raises(ZeroDivisionError), db.begin(engine) as conn:
            conn.execute(intents.insert().values(key="greeting:2", delivery_id="d", created_at=db.utcnow()))
            raise ZeroDivisionError
        with db.connect(engine) as conn:
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() == pid, "on the kept connection"
    assert _keys(engine) == ["greeting:1"]


@pytest.mark.parametrize("kept", [True, False], ids=["kept connection", "pool's connection"])
def test_a_read_does_not_wait_for_another_threads_write_under_way(engine: sa.Engine, kept: bool) -> None:
    """On SQLite a read took the process's turn, so a delivery's reads and a page's waited for every write under
    way (the intake's, under a burst) and held the writers up in turn. It sees what is committed."""
    IntentStore(engine).start("greeting:1", "delivery-1")
    writing, release = threading.Event(), threading.Event()

    def write() -> None:
        with db.begin(engine) as conn:
            conn.execute(intents.insert().values(key="greeting:2", delivery_id="delivery-2", created_at=db.utcnow()))
            writing.set()
            release.wait(20)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert writing.wait(10)
        assert _read_at_once(engine, kept) == ["greeting:1"], "waited for the write, or saw it uncommitted"
    finally:
        release.set()
        writer.join(20)
    assert _read_at_once(engine, kept) == ["greeting:1", "greeting:2"]


def test_a_read_does_not_wait_for_another_process_writing_to_sqlite(engine: sa.Engine) -> None:
    """Another process's write (an RQ worker's, a rebuild's) holds SQLite's write lock for its transaction; a
    read that asked for that lock too waited for it, up to the 15 s busy timeout, then failed."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock; PostgreSQL's reads never waited for writers")
    IntentStore(engine).start("greeting:1", "delivery-1")
    other = sqlite3.connect(str(engine.url.database), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO intents (key, delivery_id, created_at) VALUES ('greeting:2', 'd', '2026-12-07')")
        assert _read_at_once(engine, kept=True) == ["greeting:1"]
        assert _read_at_once(engine, kept=False) == ["greeting:1"]
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_write_inside_a_read_block_is_still_one_transaction(engine: sa.Engine) -> None:
    """A read block's statements run each on its own; a `begin` inside it must not inherit that, or a failed
    write would leave its first statements behind."""
    with db.one_connection(engine), db.connect(engine) as reader:
        with pytest.raises(ZeroDivisionError), db.begin(engine) as writer:  # before the block's first read
            writer.execute(intents.insert().values(key="greeting:1", delivery_id="d", created_at=db.utcnow()))
            writer.execute(intents.insert().values(key="greeting:2", delivery_id="d", created_at=db.utcnow()))
            raise ZeroDivisionError
        with db.begin(engine) as writer:
            writer.execute(intents.insert().values(key="greeting:3", delivery_id="d", created_at=db.utcnow()))
        assert reader.execute(sa.select(intents.c.key)).scalars().all() == ["greeting:3"]


def _read_at_once(engine: sa.Engine, kept: bool) -> list[str]:
    """The intents' keys as a store's read gets them (`db.connect`), asked in a thread given 5 s to answer."""
    answers: list[list[str]] = []

    def read() -> None:
        with db.one_connection(engine) if kept else contextlib.nullcontext(), db.connect(engine) as conn:
            answers.append(list(conn.execute(sa.select(intents.c.key).order_by(intents.c.key)).scalars()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(5)
    assert answers, "the read waited"
    return answers[0]


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="PostgreSQL only (CI sets DATABASE_URL)"
)
def test_a_one_statement_write_is_committed_without_a_transaction_around_it(engine: sa.Engine) -> None:
    """A delivery's claim and finish and an intent's start and end are one statement each: on PostgreSQL the
    statement commits on its own, without a BEGIN and a COMMIT (a round trip each). A key already taken still
    fails alone, and the next write is still one transaction."""
    store = IntentStore(engine)
    with db.one_connection(engine):
        with db.one_statement(engine) as conn:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            conn.execute(intents.insert().values(key="greeting:1", delivery_id="d", created_at=db.utcnow()))
            assert _keys(engine) == ["greeting:1"], "not committed when the statement ran"
            assert _state_of(engine, pid) == "idle"
        assert store.start("greeting:1", "delivery-2") == TAKEN
        assert store.start("greeting:2", "delivery-2") == NEW
        with db.begin(engine) as conn:
            conn.execute(intents.insert().values(key="greeting:3", delivery_id="d", created_at=db.utcnow()))
            assert _state_of(engine, pid) == "idle in transaction"
    assert _keys(engine) == ["greeting:1", "greeting:2", "greeting:3"]


def _state_of(engine: sa.Engine, pid: int) -> str:
    """What the server shows of a session: "idle", "idle in transaction", ..."""
    with engine.connect() as watcher:  # a connection of the pool's, as another thread's would be
        query = sa.text("SELECT state FROM pg_stat_activity WHERE pid = :pid")
        return str(watcher.execute(query, {"pid": pid}).scalar())


def _wait_until_ended(engine: sa.Engine, pid: int) -> None:
    with engine.connect() as conn:
        for _ in range(100):
            if not conn.exec_driver_sql(f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}").scalar_one():
                return
            conn.rollback()
            threading.Event().wait(0.05)
    raise AssertionError(f"backend {pid} still running")


def _keys(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(intents.c.key).order_by(intents.c.key)).scalars())
