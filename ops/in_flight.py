"""Webhook requests a process is answering now, so its background work can let them go first."""

from __future__ import annotations

import threading


class InFlight:
    """Counts the webhook answers under way in this process; `wait_quiet` blocks until there are none.

    The embedded worker's threads and the web server's threads share one interpreter lock, so a delivery
    being processed delays every answer behind it: in a burst, GitHub would wait on work it does not need
    done before its 202. The worker waits (a bounded while) for the answers under way before it takes
    the next delivery; what it defers is processed as soon as the burst thins, and stays durable meanwhile.
    """

    def __init__(self) -> None:
        self._count = 0
        self._quiet = threading.Condition(threading.Lock())

    def answering(self) -> InFlight:
        """`with in_flight.answering():` around an answer (a plain context manager: a generator-based one
        cost as much as the counting itself)."""
        return self

    def __enter__(self) -> None:
        with self._quiet:
            self._count += 1

    def __exit__(self, *_: object) -> None:
        with self._quiet:
            self._count -= 1
            if self._count == 0:
                self._quiet.notify_all()

    def wait_quiet(self, timeout: float) -> bool:
        """Block until no answer is under way, or `timeout` seconds; True if it is quiet."""
        with self._quiet:
            return self._quiet.wait_for(lambda: self._count == 0, timeout)
