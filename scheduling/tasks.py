"""Periodic work, registered the way webhook handlers are: a name, an interval or a cron expression, a time zone.

Pure: a task knows which period is due at a given moment; `scheduling.runner` claims and runs it.
A period is named by its scheduled start (UTC), so every worker computes the same key for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter  # RQ's own dependency for its cron scheduler

TaskFn = Callable[[Any], object]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Task:
    """`every` (aligned to the Unix epoch, so all workers agree) or `cron` (in `timezone`), not both."""

    name: str
    fn: TaskFn
    every: timedelta | None = None
    cron: str | None = None
    timezone: str = "UTC"
    # Housekeeping the ticking process does itself (sweeping the queue must work when the queue does not).
    inline: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if (self.every is None) == (self.cron is None):
            raise ValueError(f"task {self.name}: give exactly one of every= or cron=")
        if self.every is not None and self.every <= timedelta(0):
            raise ValueError(f"task {self.name}: every= must be positive")
        if self.cron is not None and not croniter.is_valid(self.cron):
            raise ValueError(f"task {self.name}: not a cron expression: {self.cron!r}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"task {self.name}: unknown time zone {self.timezone!r}") from exc

    @property
    def schedule(self) -> str:
        if self.every is not None:
            return f"every {_duration(self.every)}"
        return f"cron {self.cron} ({self.timezone})"

    def due_period(self, now: datetime) -> datetime:
        """The start of the latest period at or before `now` (UTC): the run that should have happened."""
        if self.every is not None:
            step = self.every.total_seconds()
            elapsed = (now - EPOCH).total_seconds()
            return EPOCH + timedelta(seconds=(elapsed // step) * step)
        local = now.astimezone(ZoneInfo(self.timezone))
        if croniter.match(str(self.cron), local):
            return local.replace(second=0, microsecond=0).astimezone(UTC)
        previous: datetime = croniter(str(self.cron), local).get_prev(datetime)
        return previous.astimezone(UTC)

    def next_run(self, now: datetime) -> datetime:
        """The start of the first period after `now` (UTC)."""
        if self.every is not None:
            return self.due_period(now) + self.every
        upcoming: datetime = croniter(str(self.cron), now.astimezone(ZoneInfo(self.timezone))).get_next(datetime)
        return upcoming.astimezone(UTC)


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{span.total_seconds():g} s"


class Schedule:
    """A behaviour module's periodic tasks, as `router` holds its webhook handlers."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}

    def add(self, task: Task) -> Task:
        if task.name in self._tasks:
            raise ValueError(f"task {task.name} registered twice")
        self._tasks[task.name] = task
        return task

    def every(self, interval: timedelta, name: str | None = None, description: str = "") -> Callable[[TaskFn], TaskFn]:
        """Decorator: `@schedule.every(timedelta(hours=1))`."""

        def register(fn: TaskFn) -> TaskFn:
            self.add(Task(name or _default_name(fn), fn, every=interval, description=description))
            return fn

        return register

    def cron(
        self, expression: str, timezone: str = "UTC", name: str | None = None, description: str = ""
    ) -> Callable[[TaskFn], TaskFn]:
        """Decorator: `@schedule.cron("0 9 * * MON", timezone="Asia/Shanghai")`."""

        def register(fn: TaskFn) -> TaskFn:
            self.add(Task(name or _default_name(fn), fn, cron=expression, timezone=timezone, description=description))
            return fn

        return register

    def include(self, other: Schedule) -> None:
        for task in other.tasks:
            self.add(task)

    def get(self, name: str) -> Task | None:
        return self._tasks.get(name)

    @property
    def tasks(self) -> list[Task]:
        return list(self._tasks.values())


def _default_name(fn: TaskFn) -> str:
    return f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"


def compose(schedules: Iterable[Schedule]) -> Schedule:
    combined = Schedule()
    for schedule in schedules:
        combined.include(schedule)
    return combined
