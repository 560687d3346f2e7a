"""Small writes of concurrent callers committed together: one transaction for all who arrived meanwhile.

A webhook's 202 waits for its delivery's row to be committed, and under a burst every answer thread
runs a transaction of one INSERT: SQLAlchemy's transaction set-up, the process's SQLite turn (or
PostgreSQL's flush of its log) and the COMMIT cost several times the INSERT itself. Group commit, as
databases do for their own log: the first caller to find no batch under way leads, and runs every item
queued so far in one transaction; callers arriving meanwhile queue, and the first of them leads the
next batch once it is done. Nobody waits on purpose: a lone caller runs at once, a batch forms only
while another one is being written. Each caller returns only when its own item is committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# The errors that mean the database cannot be reached or is overloaded now, which a later try may get past.
# They fail the whole batch alike; any other error is one item's (a value the database refuses), and the
# batch's items are then run one by one, so only that item's caller sees it.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)

# A batch's size is bounded: a webhook body may be megabytes, and one transaction need not hold a burst.
MAX_BATCH = 32

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Slot(Generic[Item, Result]):
    __slots__ = ("done", "error", "item", "result")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.done = False
        self.result: Result | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[Item, Result]):
    """Runs `write(items)`, one transaction returning a result per item, for batches of concurrent callers."""

    def __init__(self, write: Callable[[Sequence[Item]], Sequence[Result]], max_batch: int = MAX_BATCH) -> None:
        self._write = write
        self._max_batch = max_batch
        self._queue: list[_Slot[Item, Result]] = []
        self._leading = False
        self._changed = threading.Condition()

    def submit(self, item: Item) -> Result:
        """`item` written and committed (with others, perhaps); raises what its write raised."""
        slot: _Slot[Item, Result] = _Slot(item)
        with self._changed:
            self._queue.append(slot)
        while not slot.done:
            with self._changed:
                while self._leading and not slot.done:
                    self._changed.wait()
                if slot.done:
                    break
                # Lead: the oldest queued items, this caller's among them unless more than a batch waits.
                self._leading = True
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            try:
                self._run(batch)
            finally:
                with self._changed:
                    self._leading = False
                    self._changed.notify_all()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def between_batches(self, action: Callable[[], None]) -> None:
        """Run `action` while no batch is being written, none starting before it ends (a shutdown's)."""
        with self._changed:
            while self._leading:
                self._changed.wait()
            self._leading = True
        try:
            action()
        finally:
            with self._changed:
                self._leading = False
                self._changed.notify_all()

    def _run(self, batch: list[_Slot[Item, Result]]) -> None:
        try:
            results = self._write([slot.item for slot in batch])
        except BaseException as exc:
            if len(batch) == 1 or isinstance(exc, DATABASE_UNAVAILABLE) or not isinstance(exc, Exception):
                for slot in batch:
                    slot.error, slot.done = exc, True
                return
            for slot in batch:  # one item's error: find whose, each in a transaction of its own
                self._run([slot])
            return
        for slot, result in zip(batch, results, strict=True):
            slot.result, slot.done = result, True
