"""Atomic upserts on SQLite and PostgreSQL alike, for the ledger and its rollups.

The statements `add_counts` and `insert_ignore` run are built once per dialect and table, and take
their values as parameters: SQLAlchemy caches a statement's compiled form by its structure, but
building the construct is itself the larger part of a small statement's cost, and a structure that
varies per call (the columns one kind counts in) compiles again. They run as `storage.prepared`
statements: every contribution recorded runs several.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from storage.prepared import Prepared


def insert_for(conn: Connection, table: sa.Table) -> Any:
    """The dialect's INSERT, which has ON CONFLICT."""
    return dialect_insert(conn.dialect.name, table)


def dialect_insert(dialect: str, table: sa.Table) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def add_counts(conn: Connection, table: sa.Table, rows: Iterable[Mapping[str, Any]]) -> None:
    """INSERT each row (its primary key and some counts) or add its counts to the stored one, atomic on
    both databases, in one execution. Rows with the same key are added together first (one INSERT
    may not update a row twice), and sent in key order, so that concurrent writers lock in one order."""
    keys = [column.name for column in table.primary_key.columns]
    counts = [column.name for column in table.c if not column.primary_key]
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[name] for name in keys)
        total = merged.setdefault(key, {**dict.fromkeys(counts, 0), **{name: row[name] for name in keys}})
        for name, value in row.items():
            if name not in keys:
                total[name] += value
    if merged:
        _adding(conn.dialect.name, table).executemany(conn, [merged[key] for key in sorted(merged)])


def insert_ignore(conn: Connection, table: sa.Table, values: Mapping[str, Any]) -> bool:
    """INSERT unless the key exists; True when a row was inserted."""
    return _ignoring(conn.dialect.name, table).execute(conn, values).first() is not None


@cache
def _adding(dialect: str, table: sa.Table) -> Prepared:
    """Every count column given (0 where nothing is added): one statement for every row of the table."""
    statement = dialect_insert(dialect, table)
    adding = {column.name: column + statement.excluded[column.name] for column in table.c if not column.primary_key}
    return Prepared(statement.on_conflict_do_update(index_elements=list(table.primary_key.columns), set_=adding))


@cache
def _ignoring(dialect: str, table: sa.Table) -> Prepared:
    # RETURNING, not rowcount: psycopg reports no row count for ON CONFLICT DO NOTHING.
    first_key = next(iter(table.primary_key.columns))
    return Prepared(dialect_insert(dialect, table).on_conflict_do_nothing().returning(first_key))
