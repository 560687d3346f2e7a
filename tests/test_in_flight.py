"""The embedded worker lets webhook answers go first, for a bounded while (ops/in_flight.py)."""

from __future__ import annotations

import threading
import time

from ops.in_flight import InFlight


def test_the_worker_waits_for_answers_under_way_then_goes_on_when_they_end() -> None:
    gauge = InFlight()
    assert gauge.wait_quiet(0) is True  # nothing under way: no wait at all
    entered, release = threading.Event(), threading.Event()

    def answer() -> None:
        with gauge.answering():
            entered.set()
            release.wait(10)

    threading.Thread(target=answer).start()
    entered.wait(10)
    waited: list[bool] = []
    worker = threading.Thread(target=lambda: waited.append(gauge.wait_quiet(10)))
    worker.start()
    worker.join(0.2)
    assert worker.is_alive(), "the worker went ahead while an answer was under way"
    release.set()
    worker.join(5)
    assert waited == [True], "the worker was not woken when the answer ended"


def test_the_wait_is_bounded_so_processing_moves_during_a_long_burst() -> None:
    gauge = InFlight()
    release = threading.Event()
    started = threading.Event()

    def answer() -> None:
        with gauge.answering():
            started.set()
            release.wait(10)

    thread = threading.Thread(target=answer)
    thread.start()
    started.wait(10)
    begun = time.monotonic()
    assert gauge.wait_quiet(0.05) is False
    assert time.monotonic() - begun < 5
    release.set()
    thread.join(5)
    assert gauge.wait_quiet(0) is True


def test_an_answer_that_raises_still_ends() -> None:
    gauge = InFlight()
    try:
        with gauge.answering():
            raise RuntimeError("the view failed")
    except RuntimeError:
        pass
    assert gauge.wait_quiet(0) is True
