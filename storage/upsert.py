"""Atomic upserts on SQLite and PostgreSQL alike, for the ledger and its rollups.

The statements `add_counts`, `replace_rows` and `insert_ignore` run are built once per dialect and table (and, for
the first two, set of columns and number of rows), and take their values as parameters: SQLAlchemy caches a statement's
compiled form by its structure, but building the construct is itself the larger part of a small
statement's cost. They run as `storage.prepared` statements: every contribution recorded runs several.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cache
from itertools import groupby
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
    both databases. Rows with the same key are added together first (one INSERT may not update a row
    twice), and sent in key order, so that concurrent writers lock in one order. A statement names only
    the counts its rows add to (a comment's rows: two of nineteen), and consecutive rows adding to the same
    counts go in one multi-row statement: a contribution's ten leaderboard-window rows are one INSERT, where
    running it once per row cost each row its own execution on the server and the client."""
    keys = [column.name for column in table.primary_key.columns]
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[name] for name in keys)
        total = merged.setdefault(key, {name: row[name] for name in keys})
        for name, value in row.items():
            if name not in keys and value:
                total[name] = total.get(name, 0) + value
    in_order = ({name: value for name, value in merged[key].items() if name in keys or value} for key in sorted(merged))
    for names, run in groupby(in_order, key=lambda row: tuple(sorted(row))):
        for count, values in _statements_of(list(run)):
            _adding(conn.dialect.name, table, names, count).execute(conn, values)


def replace_rows(conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write each row (all with the same columns) over the stored row of its key: one statement, where an
    `executemany` of UPDATEs ran one per row. For rows the caller has read and holds locked (a person's first and
    latest contribution times in two scopes), so every row meets its stored one and updates it."""
    names = tuple(sorted(rows[0])) if rows else ()
    for count, values in _statements_of(rows):
        _replacing(conn.dialect.name, table, names, count).execute(conn, values)


def _statements_of(rows: Sequence[Mapping[str, Any]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The rows MAX_ROWS at a time, each time as one statement's values: the nth row's named `<name>_<n>`."""
    for start in range(0, len(rows), MAX_ROWS):
        chunk = rows[start : start + MAX_ROWS]
        yield len(chunk), numbered_values(chunk)


def numbered_rows(table: sa.Table, names: Sequence[str], count: int) -> list[dict[str, Any]]:
    """`count` rows of these columns as one multi-row INSERT's VALUES, the nth row's values named `<name>_<n>`."""
    return [{name: sa.bindparam(f"{name}_{n}", type_=table.c[name].type) for name in names} for n in range(count)]


def numbered_values(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The rows' values as `numbered_rows` names them."""
    return {f"{name}_{n}": value for n, row in enumerate(rows) for name, value in row.items()}


def insert_ignore(conn: Connection, table: sa.Table, values: Mapping[str, Any]) -> bool:
    """INSERT unless the key exists; True when a row was inserted."""
    return _ignoring(conn.dialect.name, table).execute(conn, values).first() is not None


# The most rows one statement writes: a contribution writes ten at most; each number of rows is a statement of its own.
MAX_ROWS = 16


@cache
def _adding(dialect: str, table: sa.Table, names: tuple[str, ...], count: int) -> Prepared:
    """`count` rows' keys and the counts they add to (`names`), the nth row's values named `<name>_<n>`: the other
    counts start at their default, 0, and are left as stored. A few statements per table, one for each set of
    counts a kind of contribution adds and each number of rows."""
    statement = _inserting(dialect, table, names, count)
    index = list(table.primary_key.columns)
    adding = {name: table.c[name] + statement.excluded[name] for name in names if not table.c[name].primary_key}
    if not adding:  # the key alone: the row, if it is not there yet
        return Prepared(statement.on_conflict_do_nothing(index_elements=index))
    return Prepared(statement.on_conflict_do_update(index_elements=index, set_=adding))


@cache
def _replacing(dialect: str, table: sa.Table, names: tuple[str, ...], count: int) -> Prepared:
    statement = _inserting(dialect, table, names, count)
    replacing = {name: statement.excluded[name] for name in names if not table.c[name].primary_key}
    return Prepared(statement.on_conflict_do_update(index_elements=list(table.primary_key.columns), set_=replacing))


def _inserting(dialect: str, table: sa.Table, names: tuple[str, ...], count: int) -> Any:
    return dialect_insert(dialect, table).values(numbered_rows(table, names, count))


@cache
def _ignoring(dialect: str, table: sa.Table) -> Prepared:
    # RETURNING, not rowcount: psycopg reports no row count for ON CONFLICT DO NOTHING.
    first_key = next(iter(table.primary_key.columns))
    return Prepared(dialect_insert(dialect, table).on_conflict_do_nothing().returning(first_key))
