"""On SQLite, the app's threads take turns at writing (`storage.db._serialise_sqlite_transactions`): a
transaction's turn ends only once its COMMIT or ROLLBACK is done, so the next thread's BEGIN IMMEDIATE
finds SQLite's write lock free instead of sleeping in SQLite's busy handler while it holds the turn (under a
burst of webhooks that tripled each transaction's turn and capped the answers at about 1,000 a second)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage import db

notes = sa.Table("notes", sa.MetaData(), sa.Column("text", sa.String))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    made = db.make_engine(f"sqlite:///{tmp_path / 'turns.sqlite3'}")
    notes.create(made)
    yield made
    made.dispose()


def next_writer_sees(engine: sa.Engine) -> tuple[bool, list[str]]:
    """What another connection finds right after a turn ends: whether it can start writing at once (no
    waiting at all), and the notes committed."""
    other = sqlite3.connect(engine.url.database or "", timeout=0, isolation_level=None)
    try:
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            free = True
        except sqlite3.OperationalError:  # database is locked
            free = False
        return free, [row[0] for row in other.execute("SELECT text FROM notes")]
    finally:
        other.close()


@pytest.mark.parametrize("ending", ["commit", "rollback"])
def test_when_a_turn_ends_the_transaction_has_ended_too(engine: sa.Engine, ending: str) -> None:
    seen: list[tuple[bool, list[str]]] = []
    # Registered after the app's own listener, so it runs when the turn has just been handed on.
    sa.event.listen(engine, ending, lambda conn: seen.append(next_writer_sees(engine)))
    with engine.connect() as conn:
        conn.execute(notes.insert().values(text="hello"))
        conn.commit() if ending == "commit" else conn.rollback()
    assert seen == [(True, ["hello"] if ending == "commit" else [])]
    with engine.connect() as conn:  # and SQLAlchemy's own COMMIT or ROLLBACK, after it, changed nothing
        assert conn.execute(sa.select(notes.c.text)).scalars().all() == (["hello"] if ending == "commit" else [])
