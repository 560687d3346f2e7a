"""Atomic upserts on SQLite and PostgreSQL alike, for the ledger and its rollups."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def insert_for(conn: Connection, table: sa.Table) -> Any:
    """The dialect's INSERT, which has ON CONFLICT."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def add_counts(conn: Connection, table: sa.Table, keys: Mapping[str, Any], counts: Mapping[str, int]) -> None:
    """INSERT the row or add `counts` to it (atomic on both databases)."""
    statement = insert_for(conn, table).values(**keys, **counts)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: table.c[name] + statement.excluded[name] for name in counts}
    )
    conn.execute(statement)


def insert_ignore(conn: Connection, table: sa.Table, values: Mapping[str, Any]) -> bool:
    """INSERT unless the key exists; True when a row was inserted."""
    # RETURNING, not rowcount: psycopg reports no row count for ON CONFLICT DO NOTHING.
    first_key = next(iter(table.primary_key.columns))
    statement = insert_for(conn, table).values(**values).on_conflict_do_nothing().returning(first_key)
    return conn.execute(statement).first() is not None
