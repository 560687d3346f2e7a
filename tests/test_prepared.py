"""`storage.prepared`: hot statements run on the driver's cursor must store, read and fail exactly as the
same Core statements run by SQLAlchemy do, on SQLite and (DATABASE_URL) PostgreSQL."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from storage.db import intents
from storage.prepared import Prepared, _bind_processor

_START = Prepared(intents.insert())
_DONE = Prepared(intents.update().where(intents.c.key == sa.bindparam("b_key")))
_READ = Prepared(sa.select(intents).where(intents.c.key == sa.bindparam("b_key")))
_KEYS_LIKE = Prepared(sa.select(intents.c.key).where(intents.c.key.in_(sa.bindparam("keys", expanding=True))))


def _core_row(engine: Engine, key: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(intents).where(intents.c.key == key)).one()


def test_values_written_and_read_match_sqlalchemys_own(engine: Engine) -> None:
    """Times with and without microseconds, text and NULL come back as Core stores and reads them (SQLite
    keeps times as text: a different format would sort and compare wrongly against Core's rows)."""
    whole, fine = datetime(2026, 12, 5, 9, 30), datetime(2026, 12, 5, 9, 30, 0, 250)
    with engine.begin() as conn:
        _START.execute(conn, {"key": "a", "delivery_id": "d1", "created_at": whole})
        conn.execute(intents.insert(), {"key": "b", "delivery_id": "d2", "created_at": fine})
        conn.execute(intents.insert(), {"key": "c", "delivery_id": "d3", "created_at": whole})
    with engine.begin() as conn:
        assert _DONE.execute(conn, {"b_key": "a", "done_at": fine, "result": "greeted 你好"}).rowcount == 1
    with engine.connect() as conn:
        prepared = _READ.execute(conn, {"b_key": "a"}).one()
        other = _READ.execute(conn, {"b_key": "b"}).one()
        # Core's comparison of the stored text with a bound time: the formats must agree.
        same = conn.execute(sa.select(intents.c.key).where(intents.c.created_at == whole)).scalars().all()
        later = conn.execute(sa.select(intents.c.key).where(intents.c.created_at > whole)).scalars().all()
    core = _core_row(engine, "a")
    assert tuple(prepared) == tuple(core)
    assert prepared.created_at == whole and prepared.done_at == fine and prepared.result == "greeted 你好"
    assert other.created_at == fine and other.done_at is None
    assert sorted(same) == ["a", "c"] and later == ["b"]


def test_a_duplicate_is_sqlalchemys_integrity_error_and_the_transaction_rolls_back(engine: Engine) -> None:
    with engine.begin() as conn:
        _START.execute(conn, {"key": "once", "delivery_id": "d1", "created_at": datetime(2026, 12, 5)})
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _START.execute(conn, {"key": "other", "delivery_id": "d2", "created_at": datetime(2026, 12, 5)})
        _START.execute(conn, {"key": "once", "delivery_id": "d3", "created_at": datetime(2026, 12, 5)})
    with engine.connect() as conn:
        assert conn.execute(sa.select(intents.c.key)).scalars().all() == ["once"]  # "other" went with it
    with engine.begin() as conn:  # and the pool's connection is fine afterwards
        _START.execute(conn, {"key": "next", "delivery_id": "d4", "created_at": datetime(2026, 12, 5)})
    assert _core_row(engine, "next").delivery_id == "d4"


def test_a_write_outside_begin_is_in_a_transaction_like_sqlalchemys_autobegin(engine: Engine) -> None:
    """Not committed, not kept: the statement did not run in the driver's autocommit mode."""
    with engine.connect() as conn:
        _START.execute(conn, {"key": "k", "delivery_id": "d", "created_at": datetime(2026, 12, 5)})
        assert conn.in_transaction()
    with engine.connect() as conn:
        assert _READ.execute(conn, {"b_key": "k"}).first() is None


def test_many_rows_an_in_list_and_a_listening_engine(engine: Engine) -> None:
    rows = [{"key": f"k{n}", "delivery_id": "d", "created_at": datetime(2026, 12, 5, n)} for n in range(3)]
    with engine.begin() as conn:
        assert _START.executemany(conn, rows) == 3
    seen: list[str] = []

    def sent(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", sent)
    try:
        with engine.connect() as conn:
            found = _KEYS_LIKE.execute(conn, {"keys": ["k0", "k2", "nope"]})  # an IN list: SQLAlchemy's path
            assert sorted(row.key for row in found) == ["k0", "k2"]
            assert _READ.execute(conn, {"b_key": "k1"}).one().created_at == datetime(2026, 12, 5, 1)
    finally:
        sa.event.remove(engine, "before_cursor_execute", sent)
    assert len(seen) == 2  # whoever counts statements still sees each one


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 12, 6, 4, 52, 7, 120),
        datetime(2026, 12, 6, 4, 52, 7),
        datetime(999, 1, 2),
        datetime(2026, 12, 6, 4, 52, tzinfo=UTC),
        date(2026, 12, 6),
    ],
)
def test_sqlite_times_are_written_as_sqlalchemy_writes_them(value):
    """The quicker DateTime processor on SQLite writes the very text SQLAlchemy's would (times compare as text)."""
    dialect = sqlite.dialect()
    own = sa.DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert _bind_processor(sa.DateTime(), dialect)(value) == own(value)
    other_format = sqlite.DATETIME(storage_format="%(year)04d/%(month)02d/%(day)02d %(hour)02d:%(minute)02d")
    assert _bind_processor(other_format, dialect)(value) == other_format.bind_processor(dialect)(value)


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="PostgreSQL only (CI sets DATABASE_URL)"
)
def test_a_large_value_read_is_not_kept_with_the_connection(engine: Engine) -> None:
    """The raw cursor kept with a PostgreSQL connection drops what it read once it is read: a claim reads a
    webhook's payload (GitHub sends up to 25 MB), and an idle pooled connection would hold it until its next
    statement."""
    large = "x" * 2_000_000
    with engine.begin() as conn:
        _START.execute(conn, {"key": "big", "delivery_id": "d", "created_at": datetime(2026, 12, 7)})
        conn.execute(intents.update().where(intents.c.key == "big").values(result=large))
    with engine.connect() as conn:
        row = _READ.execute(conn, {"b_key": "big"}).one()
        kept = [value for value in conn.connection.info.values() if hasattr(value, "pgresult")]
        assert row.result == large, "the rows read are the caller's, whole"
        assert kept, "the connection keeps its cursor for the next statement"
        assert all(cursor.pgresult is None or cursor.pgresult.ntuples == 0 for cursor in kept)
