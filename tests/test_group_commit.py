"""Group commit: callers who arrive while a batch is written are written together in the next one, each
gets its own item's result or error, and a database that cannot be reached fails the batch once."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from storage.group_commit import GroupCommit


class Writer:
    """A write that records each batch; the first batch waits until `release` so that others queue."""

    def __init__(self, refuse: str | None = None, unavailable: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.first_started, self.release = threading.Event(), threading.Event()
        self.refuse, self.unavailable = refuse, unavailable

    def __call__(self, items: Sequence[str]) -> list[str]:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.first_started.set()
            assert self.release.wait(5)
        if self.unavailable:
            raise OperationalError("INSERT", {}, Exception("could not connect to server"))
        if self.refuse in items:
            raise IntegrityError("INSERT", {}, Exception(f"refused {self.refuse}"))
        return [f"stored {item}" for item in items]


def _submit_while_first_is_written(group: GroupCommit[str, str], writer: Writer, items: list[str]) -> dict[str, str]:
    """`first` starts alone; `items` are submitted while it is being written."""
    outcomes: dict[str, str] = {}

    def submit(item: str) -> None:
        try:
            outcomes[item] = group.submit(item)
        except Exception as exc:
            outcomes[item] = f"{type(exc).__name__}: {exc.orig}"  # type: ignore[attr-defined]

    first = threading.Thread(target=submit, args=("first",))
    first.start()
    assert writer.first_started.wait(5)
    others = [threading.Thread(target=submit, args=(item,)) for item in items]
    for thread in others:
        thread.start()
    while len(group._queue) < len(items):  # all queued behind the batch under way
        threading.Event().wait(0.001)
    writer.release.set()
    for thread in [first, *others]:
        thread.join(5)
    return outcomes


def test_callers_arriving_during_a_write_are_written_together_each_with_its_own_result() -> None:
    writer = Writer()
    group: GroupCommit[str, str] = GroupCommit(writer)
    items = [f"d{i}" for i in range(10)]
    outcomes = _submit_while_first_is_written(group, writer, items)
    assert writer.batches[0] == ["first"]
    assert sorted(writer.batches[1]) == items and len(writer.batches) == 2, "one transaction for the ten"
    assert outcomes == {item: f"stored {item}" for item in ["first", *items]}


def test_a_batch_is_bounded() -> None:
    writer = Writer()
    group: GroupCommit[str, str] = GroupCommit(writer, max_batch=4)
    items = [f"d{i}" for i in range(10)]
    outcomes = _submit_while_first_is_written(group, writer, items)
    assert [len(batch) for batch in writer.batches[1:]] == [4, 4, 2]
    assert outcomes == {item: f"stored {item}" for item in ["first", *items]}


def test_one_refused_item_fails_only_its_caller() -> None:
    writer = Writer(refuse="d3")
    group: GroupCommit[str, str] = GroupCommit(writer)
    items = [f"d{i}" for i in range(6)]
    outcomes = _submit_while_first_is_written(group, writer, items)
    assert outcomes.pop("d3") == "IntegrityError: refused d3"
    assert outcomes == {item: f"stored {item}" for item in ["first", *items] if item != "d3"}


def test_a_database_that_cannot_be_reached_fails_the_batch_once() -> None:
    writer = Writer(unavailable=True)
    group: GroupCommit[str, str] = GroupCommit(writer)
    items = [f"d{i}" for i in range(6)]
    outcomes = _submit_while_first_is_written(group, writer, items)
    assert len(writer.batches) == 2, "not retried item by item against a database that is down"
    assert set(outcomes.values()) == {"OperationalError: could not connect to server"}
    assert len(outcomes) == 7


def test_a_lone_caller_is_written_at_once() -> None:
    writer = Writer()
    writer.release.set()
    group: GroupCommit[str, str] = GroupCommit(writer)
    assert [group.submit("a"), group.submit("b")] == ["stored a", "stored b"]
    assert writer.batches == [["a"], ["b"]]


def test_a_lone_callers_refused_item_raises_its_error() -> None:
    writer = Writer(refuse="x")
    writer.release.set()
    with pytest.raises(IntegrityError, match="refused x"):
        GroupCommit(writer).submit("x")
    assert writer.batches == [["x"]]


def test_a_shutdown_runs_between_batches_never_inside_one() -> None:
    """The intake's connection is closed between batches: one being written finishes on it first."""
    writer, events = Writer(), []

    def write(items: Sequence[str]) -> list[str]:
        events.append(f"writing {', '.join(items)}")
        written = writer(items)
        events.append("written")
        return written

    group = GroupCommit(write)
    first = threading.Thread(target=group.submit, args=("first",))
    first.start()
    assert writer.first_started.wait(5)
    closing = threading.Thread(target=group.between_batches, args=(lambda: events.append("closed"),))
    closing.start()
    closing.join(0.2)
    assert closing.is_alive(), "the shutdown waits for the batch under way"
    writer.release.set()
    for thread in (first, closing):
        thread.join(5)
    assert group.submit("after") == "stored after", "batches go on once it has run"
    assert events == ["writing first", "written", "closed", "writing after", "written"]
