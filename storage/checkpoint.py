"""SQLite's WAL folded into the database by a thread of its own, not inside whichever commit passes 1,000 pages.

SQLite checkpoints on the connection whose COMMIT takes the WAL past `wal_autocheckpoint` pages, inside
that COMMIT, and the app commits under its process-wide SQLite turn (storage/db.py): every transaction of
the process waited for the checkpoint's reads, writes and fdatasync. Under a burst of webhooks that wait was
the answers' p99 (bench/README.md). With a checkpointer, the engine's connections do not checkpoint; this
thread does, every 0.1 s, a PASSIVE checkpoint on a connection of its own, outside the turn: SQLite runs it
beside a writer, and the sqlite3 module lets go of the interpreter lock meanwhile.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from storage.db import sqlite_turn

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 0.1
# Under writes without a pause, a passive checkpoint never catches up with the last frames, and SQLite
# starts the WAL over only once every frame is in the database: it would grow as long as the burst lasts.
# Past this many pages, one checkpoint runs while the process's writers wait (their turn), and completes.
CATCH_UP_PAGES = 10_000


class WalCheckpointer:
    """The checkpoint thread of one SQLite database file, in each process that writes to it."""

    def __init__(self, path: str, turn: threading.RLock, interval: float = INTERVAL_SECONDS) -> None:
        self.path, self.turn, self.interval = path, turn, interval
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @classmethod
    def attach(cls, engine: Engine) -> WalCheckpointer | None:
        """For a SQLite file: the engine's connections made from now on do not checkpoint, and the first one
        starts the thread. None for PostgreSQL or an in-memory database. Attach before the first connection."""
        path = engine.url.database
        if engine.dialect.name != "sqlite" or not path or path == ":memory:":
            return None
        checkpointer = cls(path, sqlite_turn(engine))

        def without_autocheckpoint(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")
            checkpointer.ensure_running()

        sa.event.listen(engine, "connect", without_autocheckpoint)
        return checkpointer

    def ensure_running(self) -> None:
        """Start the thread in this process if it is not running (after a fork: gunicorn --preload forks
        after the app is made, and a thread does not cross a fork). Cheap enough for every write."""
        if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
                self._pid, self._stop = os.getpid(), threading.Event()
                self._thread = threading.Thread(target=self._run, args=(self._stop,), name="engage-wal", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Stop the thread; one last checkpoint is run by it on the way out."""
        self._stop.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout=5)

    def _run(self, stop: threading.Event) -> None:
        connection: sqlite3.Connection | None = None
        while True:
            stopping = stop.wait(self.interval)
            try:
                connection = connection or sqlite3.connect(self.path, timeout=15, isolation_level=None)
                _, pages, _ = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if pages >= CATCH_UP_PAGES:
                    with self.turn:
                        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:  # a locked or missing file: the next round tries again
                log.warning("WAL checkpoint failed", extra={"error": str(exc)})
                if connection is not None:
                    connection.close()
                connection = None
            if stopping:
                break
        if connection is not None:
            connection.close()
