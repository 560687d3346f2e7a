"""One delivery's Python work at a time in a process; a delivery waiting for another service gives way."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

# A thread waits this long at most for the turn, then goes on without it: a delivery holding the turn may be
# waiting for this one (for a token it is fetching, or for SQLite's lock), and must never wait for ever.
PATIENCE_SECONDS = 0.1


class ProcessingTurn:
    """Taken by a worker thread for a delivery's processing, handed on while it waits for GitHub.

    A worker runs WORKER_THREADS deliveries at once so that one waiting for GitHub (a greeting's two calls,
    100-300 ms each) does not hold up the rest. But their Python work shares one interpreter lock: side by
    side, the threads only take turns at it, and each switch costs (with 4 threads a comment's CPU rose by
    a tenth or more, and the webhook answers slowed as much). With the turn, one thread computes while the
    others wait for GitHub or for the turn, as an event loop would.

    Not with PostgreSQL (`shared=False`: every thread computes when it will): a delivery then waits for the
    database twenty or thirty times (a round trip each, 0.1-0.2 ms), and those waits are where threads take
    turns by themselves. Held across them, the turn left the CPU idle: greetings per second went up by a quarter
    to a half without it, embedded on PostgreSQL (bench/README.md, "The seventh sitting").
    """

    def __init__(self, patience: float = PATIENCE_SECONDS, shared: bool = True) -> None:
        self._lock = threading.Lock()
        self._held = threading.local()
        self.patience = patience
        self.shared = shared

    def _take(self) -> None:
        self._held.value = self.shared and self._lock.acquire(timeout=self.patience)

    def _give(self) -> None:
        if getattr(self._held, "value", False):
            self._held.value = False
            self._lock.release()

    @contextmanager
    def taken(self) -> Iterator[None]:
        self._take()
        try:
            yield
        finally:
            self._give()

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """Around a call to another service: the turn goes to another delivery until it answers."""
        if not getattr(self._held, "value", False):
            yield
            return
        self._give()
        try:
            yield
        finally:
            self._take()
