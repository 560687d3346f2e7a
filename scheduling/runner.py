"""Run each scheduled task once per period, whichever worker gets there first.

Every worker process (and the embedded worker) ticks the runner every sweep interval. A tick finds
the tasks whose latest period has not run and either runs them here (housekeeping, and everything in
embedded mode) or queues them on RQ under a job id made of the task and the period, so RQ refuses
duplicates. Whoever runs a task first claims its period in the database (`TaskRunStore.claim`), which
is what makes it exactly once; a period missed while every worker was down runs once when one is back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from scheduling.tasks import Schedule, Task
from storage.task_runs import TaskRunStore, TaskState

log = logging.getLogger(__name__)

RAN, FAILED, QUEUED, TAKEN, UNKNOWN = "ran", "failed", "queued", "taken by another worker", "unknown task"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Outcome:
    task: str
    period: datetime
    result: str
    error: str | None = None


@dataclass(frozen=True)
class TaskStatus:
    """What `tasks list` shows for one task."""

    task: Task
    state: TaskState | None
    next_run: datetime


class TaskRunner:
    def __init__(
        self,
        schedule: Schedule,
        store: TaskRunStore,
        make_context: Callable[[Task, datetime], Any],
        enqueue: Callable[[str, datetime], bool] | None = None,
        clock: Callable[[], datetime] = utc_now,
        lease: timedelta = timedelta(minutes=10),
    ):
        self.schedule = schedule
        self.store = store
        self.make_context = make_context
        self.enqueue = enqueue  # None: run everything in this process (embedded mode)
        self.clock = clock
        self.lease = lease

    def tick(self) -> list[Outcome]:
        """Run or queue every task whose period is due and not yet run; what was done, task by task."""
        now = self.clock()
        states = self.store.states()
        outcomes = []
        for task in self.schedule.tasks:
            period = task.due_period(now)
            state = states.get(task.name)
            if state is None:
                # A cron task first seen mid-period waits for its next one (a weekly digest does not go
                # out on a Wednesday because the app was installed then); an interval task runs at once.
                self.store.ensure(task.name, period if task.cron else None)
                if task.cron:
                    continue
            elif state.settled(period, now):
                continue
            if task.inline or self.enqueue is None:
                outcomes.append(self.run(task.name, period))
            elif self.enqueue(task.name, period):
                outcomes.append(Outcome(task.name, period, QUEUED))
        return outcomes

    def run(self, name: str, period: datetime) -> Outcome:
        """Run `name` for `period` if this caller wins the claim (also the RQ job's body)."""
        task = self.schedule.get(name)
        if task is None:
            log.error("no such scheduled task", extra={"task": name})
            return Outcome(name, period, UNKNOWN)
        if not self.store.claim(name, period, self.clock(), self.lease):
            log.debug("scheduled task already claimed", extra={"task": name, "period": period.isoformat()})
            return Outcome(name, period, TAKEN)
        try:
            task.fn(self.make_context(task, period))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.exception("scheduled task failed", extra={"task": name, "period": period.isoformat()})
            self.store.finish(name, period, self.clock(), error)
            return Outcome(name, period, FAILED, error)
        self.store.finish(name, period, self.clock())
        log.debug("scheduled task ran", extra={"task": name, "period": period.isoformat()})
        return Outcome(name, period, RAN)

    def run_now(self, name: str) -> Outcome:
        """Run a task at once, as the operator asked: this moment counts as its current period's run."""
        self.store.ensure(name, None)
        return self.run(name, self.clock())

    def status(self) -> list[TaskStatus]:
        now = self.clock()
        states = self.store.states()
        return [TaskStatus(task, states.get(task.name), task.next_run(now)) for task in self.schedule.tasks]
