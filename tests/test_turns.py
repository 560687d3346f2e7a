"""One delivery computes at a time; one waiting for GitHub lets the next go on; nobody waits for ever. With
PostgreSQL, whose round trips are the deliveries' own turns, every worker thread computes when it will."""

from __future__ import annotations

import threading
import time

from ops.turns import ProcessingTurn
from tests.conftest import services


def test_a_delivery_waits_for_the_turn_and_gets_it_while_the_holder_waits_for_github() -> None:
    turn = ProcessingTurn(patience=30)
    events: list[str] = []
    calling, answered = threading.Event(), threading.Event()

    def holder() -> None:
        with turn.taken():
            events.append("A computes")
            time.sleep(0.2)  # B is kept waiting meanwhile
            with turn.waiting():
                calling.set()
                answered.wait(10)  # GitHub takes its time: B computes now
            events.append("A computes again")

    def other() -> None:
        with turn.taken():
            events.append("B computes")
            answered.set()

    a = threading.Thread(target=holder)
    a.start()
    time.sleep(0.05)
    b = threading.Thread(target=other)
    b.start()
    a.join(10)
    b.join(10)
    assert events == ["A computes", "B computes", "A computes again"]


def test_nobody_waits_longer_than_the_patience_for_a_holder_that_waits_on_them() -> None:
    """A holder that waits for something only the other thread can do (a token it is fetching, SQLite's
    lock) must not deadlock: the other goes on without the turn after `patience`."""
    turn = ProcessingTurn(patience=0.05)
    fetched = threading.Event()

    def holder() -> None:
        with turn.taken():
            fetched.wait(10)

    a = threading.Thread(target=holder)
    a.start()
    time.sleep(0.02)
    with turn.taken():
        fetched.set()
    a.join(5)
    assert not a.is_alive()


def test_waiting_outside_a_turn_changes_nothing() -> None:
    turn = ProcessingTurn()
    with turn.waiting():  # a web request calling GitHub: it holds no turn and gives none
        pass
    with turn.taken():
        pass


def test_a_turn_that_is_not_shared_lets_every_thread_compute_at_once() -> None:
    turn = ProcessingTurn(shared=False)
    all_inside = threading.Barrier(3, timeout=5)
    broken: list[BaseException] = []

    def deliver() -> None:
        with turn.taken():
            try:
                all_inside.wait()
            except threading.BrokenBarrierError as exc:
                broken.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert broken == [], "a thread waited for the turn"


def test_the_worker_threads_share_a_turn_on_sqlite_only(make_app) -> None:
    """With PostgreSQL a delivery holding the turn across its database round trips left the CPU idle."""
    svc = services(make_app())
    assert svc.turn.shared is (svc.store.engine.dialect.name == "sqlite")
