"""Hot statements compiled once per dialect and run on the driver's own cursor.

SQLAlchemy's execute path costs 12-27 µs a statement in Python (its compiled cache lookup, execution
context, parameter and result set-up, events) where SQLite runs a small statement in 2-5 µs, and a
delivery processed runs a dozen such statements: the claim, the ledger's contribution and rollups, the
finish. A `Prepared` statement stays written in Core and runs inside the caller's Connection and
transaction (its pool, events, the SQLite write lock stay SQLAlchemy's), but its SQL is compiled once
and handed to the DBAPI cursor, with the column types' own processors converting parameters and
results (SQLite's text times), and driver errors raised as SQLAlchemy's (`IntegrityError`, a dropped
connection invalidated). What the shortcut cannot do as SQLAlchemy would (an IN list, a column default
computed in Python), and every statement of an engine someone listens to (`before_cursor_execute`: the
tests and `bench/ledger.py` count statements), runs through `Connection.execute` instead.

On PostgreSQL the SQL is compiled with PostgreSQL's own `$1` placeholders and run on a raw cursor kept with the
connection: psycopg's default cursor rewrites `%(name)s` into `$n` and reorders the values at every execute, and a
new cursor each time builds its adapters again. 44-46 µs of the client's CPU a statement against 62-69 (a script
of the day, bench/README.md "The eighth sitting"), and a greeting sends twenty-odd.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections import namedtuple
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect


class Rows:
    """What a statement returned, fetched at once: rows by attribute (`row.name`) or position."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: Sequence[Any], rowcount: int):
        self.rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)

    def all(self) -> list[Any]:
        return list(self.rows)

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def one(self) -> Any:
        if len(self.rows) != 1:
            raise sa.exc.NoResultFound("no row") if not self.rows else sa.exc.MultipleResultsFound("several rows")
        return self.rows[0]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]


class _Compiled:
    """One statement's SQL for one dialect and one set of parameter names, and how to convert values."""

    def __init__(self, statement: Any, dialect: Dialect, keys: Sequence[str] | None):
        self.raw = dialect.driver == "psycopg"  # run on a kept RawCursor (`_run`)
        compiled = statement.compile(
            dialect=_with_dollar_placeholders(dialect) if self.raw else dialect,
            column_keys=list(keys) if keys is not None else None,
        )
        # A Python-side column default or an IN list needs SQLAlchemy's execution context; so does a literal `%`
        # on PostgreSQL, which the dialect's quoting doubled for psycopg's `%(name)s` style.
        self.fallback = bool(
            getattr(compiled, "insert_prefetch", None)
            or getattr(compiled, "update_prefetch", None)
            or any(bind.expanding for bind in compiled.binds.values())
            or (self.raw and "%" in compiled.string)
        )
        self.sql = compiled.string
        self.order: list[str] | None = compiled.positiontup  # positional paramstyle (SQLite's ?); None: named
        self.fixed: dict[str, Any] = {}  # the statement's own literals (statuses, the attempts' + 1)
        self.convert: dict[str, Any] = {}  # name -> the type's bind processor, where it has one
        for bind, name in compiled.bind_names.items():
            processor = _bind_processor(bind.type, dialect)
            if not bind.required and (keys is None or name not in keys):
                self.fixed[name] = processor(bind.value) if processor and bind.value is not None else bind.value
            elif processor is not None:
                self.convert[name] = processor
        columns = list(getattr(statement, "exported_columns", ()))
        self.row_type = namedtuple("Row", [column.key for column in columns], rename=True)  # type: ignore[misc]
        self.results = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]
        self.converts_results = any(self.results)
        # Per positional parameter: (name, its processor, whether the statement fixes it, the fixed value).
        self.plan = [
            (name, self.convert.get(name), name in self.fixed, self.fixed.get(name)) for name in self.order or ()
        ]

    def parameters(self, values: Mapping[str, Any]) -> Any:
        if self.order is None:  # named (psycopg's pyformat)
            merged = dict(self.fixed)
            for name, value in values.items():
                processor = self.convert.get(name)
                merged[name] = processor(value) if processor is not None and value is not None else value
            return merged
        ordered = []
        for name, processor, fixed, literal in self.plan:
            if fixed:
                ordered.append(literal)
                continue
            value = values[name]
            ordered.append(value if processor is None or value is None else processor(value))
        return ordered

    def row(self, raw: Sequence[Any]) -> Any:
        if self.converts_results:
            raw = [
                value if p is None or value is None else p(value) for p, value in zip(self.results, raw, strict=False)
            ]
        return self.row_type(*raw)


def _with_dollar_placeholders(dialect: Dialect) -> Dialect:
    """The connection's dialect (its server's version and features), compiling `$1` where it wrote `%(name)s`."""
    dollar = copy.copy(dialect)
    dollar.paramstyle, dollar.positional = "numeric_dollar", True
    return dollar


def _bind_processor(type_: Any, dialect: Dialect) -> Any:
    """The type's own processor; for a DateTime on SQLite, `isoformat` where it writes the same text.

    SQLAlchemy's SQLite DATETIME formats each value with a %-template of seven fields (3 µs; a comment
    binds about twenty): `isoformat` writes the same text for a naive datetime in 1 µs.
    Checked against the type's own processor here, once, so a column with another storage format keeps
    its own; an aware datetime, or anything else, still goes through it."""
    processor = type_.dialect_impl(dialect).bind_processor(dialect)
    if processor is None or dialect.name != "sqlite" or not isinstance(type_, sa.DateTime):
        return processor

    def isoformat(value: Any) -> Any:
        if type(value) is datetime and value.tzinfo is None:
            return value.isoformat(" ", "microseconds")
        return processor(value)

    samples = (datetime(2026, 12, 6, 4, 52, 7, 120), datetime(999, 1, 2))
    return isoformat if all(isoformat(sample) == processor(sample) for sample in samples) else processor


class Prepared:
    """A Core statement run on the DBAPI cursor (see the module's docstring); build it once, at import."""

    def __init__(self, statement: Any):
        self.statement = statement
        self._dml = isinstance(statement, sa.sql.dml.UpdateBase)
        self._compiled: dict[tuple[str, tuple[str, ...] | None], _Compiled] = {}
        self._lock = threading.Lock()

    def execute(self, conn: Connection, values: Mapping[str, Any] | None = None) -> Rows:
        """Run once with `values` (parameter and, for INSERT and UPDATE, column names)."""
        values = values or {}
        compiled = self._for(conn.dialect, values)
        if compiled.fallback or conn.dispatch.before_cursor_execute:
            return _through_sqlalchemy(conn.execute(self.statement, dict(values)))
        return _run(conn, compiled, compiled.parameters(values), many=False)

    def executemany(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Run once per row (the rows share their names); returns the rows affected."""
        if not rows:
            return 0
        compiled = self._for(conn.dialect, rows[0])
        if compiled.fallback or conn.dispatch.before_cursor_execute:
            return int(conn.execute(self.statement, [dict(row) for row in rows]).rowcount)
        return _run(conn, compiled, [compiled.parameters(row) for row in rows], many=True).rowcount

    def _for(self, dialect: Dialect, values: Mapping[str, Any]) -> _Compiled:
        key = (dialect.name, tuple(sorted(values)) if self._dml else None)
        compiled = self._compiled.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(key) or _Compiled(self.statement, dialect, key[1])
                self._compiled[key] = compiled
        return compiled


def _run(conn: Connection, compiled: _Compiled, parameters: Any, many: bool) -> Rows:
    dialect = conn.dialect
    dbapi_connection = conn.connection.dbapi_connection
    assert dbapi_connection is not None
    if not conn.in_transaction() and not (compiled.raw and dbapi_connection.autocommit):
        conn.begin()  # as SQLAlchemy's autobegin would: SQLite's BEGIN IMMEDIATE and the process's lock
    cursor = None
    try:
        cursor = _kept_cursor(conn, dbapi_connection) if compiled.raw else dbapi_connection.cursor()
        if many:
            cursor.executemany(compiled.sql, parameters)
            return Rows([], cursor.rowcount)
        cursor.execute(compiled.sql, parameters)
        if not compiled.raw:
            rows = [compiled.row(raw) for raw in cursor.fetchall()] if cursor.description else []
            return Rows(rows, cursor.rowcount)
        result = cursor.pgresult  # its field count, not `description`, which builds an object for each column
        if not result.nfields:
            return Rows([], cursor.rowcount)
        rows = [compiled.row(raw) for raw in cursor.fetchall()]
        result.clear()  # read: the kept cursor would hold it until its next statement (a claim's payload is megabytes)
        return Rows(rows, cursor.rowcount)
    except dialect.loaded_dbapi.Error as exc:
        if compiled.raw:
            conn.connection.info.pop(_CURSOR, None)  # the next statement starts on a new one
        dropped = bool(dialect.is_disconnect(exc, dbapi_connection, cursor))
        if dropped:
            # As SQLAlchemy does: the pool replaces this connection and every one opened before it (a restart
            # ended them all, though some have not said so yet), and `once_more_if_dropped` retries.
            conn.engine.pool._invalidate(conn.connection, exc)
            conn.invalidate(exc)
        raise sa.exc.DBAPIError.instance(
            compiled.sql, parameters, exc, dialect.loaded_dbapi.Error, connection_invalidated=dropped, dialect=dialect
        ) from exc
    finally:
        if cursor is not None and not compiled.raw:
            with contextlib.suppress(dialect.loaded_dbapi.Error):
                cursor.close()


_CURSOR = "engage.raw_cursor"


def _kept_cursor(conn: Connection, dbapi_connection: Any) -> Any:
    """The RawCursor kept with this DBAPI connection (in the pool's `info` for it), made at its first statement.
    A connection the pool replaced gets a new one: the kept cursor names the connection it belongs to."""
    info = conn.connection.info
    cursor = info.get(_CURSOR)
    if cursor is None or cursor.connection is not dbapi_connection:
        cursor = info[_CURSOR] = conn.dialect.loaded_dbapi.RawCursor(dbapi_connection)
    return cursor


def _through_sqlalchemy(result: Any) -> Rows:
    rows = result.all() if result.returns_rows else []
    return Rows(rows, result.rowcount)
