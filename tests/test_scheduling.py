"""Scheduled tasks: the due period, once per period across workers and restarts, catch-up, retries."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from scheduling.runner import FAILED, QUEUED, RAN, TAKEN, TaskRunner
from scheduling.tasks import Schedule, Task
from storage.task_runs import MAX_ATTEMPTS, TaskRunStore
from tests.conftest import run_rq_worker, services


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC) if "+" not in text else datetime.fromisoformat(text)


def noop(_: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("case", "task", "now", "due", "following"),
    [
        (
            "every 30 s, mid-period",
            Task("t", noop, every=timedelta(seconds=30)),
            "2026-12-04 10:00:45",
            "2026-12-04 10:00:30",
            "2026-12-04 10:01:00",
        ),
        (
            "hourly, on the hour",
            Task("t", noop, every=timedelta(hours=1)),
            "2026-12-04 10:00:00",
            "2026-12-04 10:00:00",
            "2026-12-04 11:00:00",
        ),
        (
            "weekly cron in Shanghai, Monday 09:00 local is 01:00 UTC",
            Task("t", noop, cron="0 9 * * MON", timezone="Asia/Shanghai"),
            "2026-12-09 12:00:00",
            "2026-12-07 01:00:00",
            "2026-12-14 01:00:00",
        ),
        (
            "cron, exactly at its time",
            Task("t", noop, cron="0 9 * * MON", timezone="Asia/Shanghai"),
            "2026-12-07 01:00:00",
            "2026-12-07 01:00:00",
            "2026-12-14 01:00:00",
        ),
        (
            "cron, a second before its time",
            Task("t", noop, cron="0 9 * * MON", timezone="Asia/Shanghai"),
            "2026-12-07 00:59:59",
            "2026-11-30 01:00:00",
            "2026-12-07 01:00:00",
        ),
        (
            "daily cron across a DST change",
            Task("t", noop, cron="30 2 * * *", timezone="Europe/Berlin"),
            "2026-10-25 12:00:00",
            "2026-10-25 01:30:00",
            "2026-10-26 01:30:00",
        ),
    ],
)
def test_due_period_and_next_run(case: str, task: Task, now: str, due: str, following: str) -> None:
    assert task.due_period(at(now)) == at(due), case
    assert task.next_run(at(now)) == at(following), case


@pytest.mark.parametrize(
    ("case", "kwargs", "words"),
    [
        ("neither", {}, "exactly one of"),
        ("both", {"every": timedelta(minutes=1), "cron": "* * * * *"}, "exactly one of"),
        ("bad cron", {"cron": "every monday"}, "not a cron expression"),
        ("bad zone", {"cron": "0 9 * * MON", "timezone": "Mars/Olympus"}, "unknown time zone"),
        ("zero interval", {"every": timedelta(0)}, "must be positive"),
    ],
)
def test_a_task_is_refused_with_a_reason(case: str, kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Task("t", noop, **kwargs)


class Clock:
    def __init__(self, start: str):
        self.now = at(start)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **span: float) -> None:
        self.now += timedelta(**span)


class Counter:
    def __init__(self, fail_times: int = 0):
        self.periods: list[datetime] = []
        self.fail_times = fail_times
        self.lock = threading.Lock()

    def __call__(self, context: Any) -> None:
        with self.lock:
            if self.fail_times:
                self.fail_times -= 1
                raise RuntimeError("GitHub answered 502")
            self.periods.append(context)


def runner(engine: sa.Engine, schedule: Schedule, clock: Clock) -> TaskRunner:
    """One worker's runner on the shared database; the task receives its period as its context."""
    return TaskRunner(schedule, TaskRunStore(engine), lambda task, period: period, clock=clock)


def hourly(counter: Counter) -> Schedule:
    schedule = Schedule()
    schedule.add(Task("digest.hourly", counter, every=timedelta(hours=1)))
    return schedule


def test_two_workers_ticking_together_run_a_period_once(engine: sa.Engine) -> None:
    counter, clock = Counter(), Clock("2026-12-04 10:15:00")
    workers = [runner(engine, hourly(counter), clock) for _ in range(4)]
    start = threading.Barrier(len(workers))

    def tick(worker: TaskRunner) -> None:
        start.wait()
        worker.tick()

    threads = [threading.Thread(target=tick, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.periods == [at("2026-12-04 10:00:00")]
    clock.advance(minutes=30)
    assert [w.tick() for w in workers] == [[], [], [], []], "same period: nothing to do"
    clock.advance(minutes=20)  # 11:05
    outcomes = [o.result for w in workers for o in w.tick()]
    assert outcomes == [RAN] and counter.periods[-1] == at("2026-12-04 11:00:00")


def test_periods_missed_while_every_worker_was_down_run_once_when_one_is_back(engine: sa.Engine) -> None:
    counter, clock = Counter(), Clock("2026-12-04 10:15:00")
    runner(engine, hourly(counter), clock).tick()
    clock.advance(hours=7)  # all workers down for seven periods; a new process starts
    runner(engine, hourly(counter), clock).tick()
    assert counter.periods == [at("2026-12-04 10:00:00"), at("2026-12-04 17:00:00")]


def test_a_new_cron_task_waits_for_its_next_period(engine: sa.Engine) -> None:
    counter, clock = Counter(), Clock("2026-12-09 12:00:00")  # a Wednesday
    schedule = Schedule()
    schedule.add(Task("digest.weekly", counter, cron="0 9 * * MON", timezone="Asia/Shanghai"))
    worker = runner(engine, schedule, clock)
    assert worker.tick() == [] and counter.periods == []
    clock.now = at("2026-12-14 01:00:30")  # Monday 09:00:30 in Shanghai
    assert [o.result for o in worker.tick()] == [RAN]
    assert counter.periods == [at("2026-12-14 01:00:00")]


def test_a_failed_period_is_tried_again_after_a_back_off_then_left_until_the_next(engine: sa.Engine) -> None:
    counter, clock = Counter(fail_times=MAX_ATTEMPTS), Clock("2026-12-04 10:15:00")
    worker = runner(engine, hourly(counter), clock)
    assert [o.result for o in worker.tick()] == [FAILED]
    assert worker.tick() == [], "not again before the back-off"
    for _ in range(MAX_ATTEMPTS - 1):
        clock.advance(minutes=5)
        assert [o.result for o in worker.tick()] == [FAILED]
    clock.advance(minutes=20)
    assert worker.tick() == [], "tries used up for this period"
    (status,) = worker.status()
    assert status.state is not None and status.state.error == "RuntimeError: GitHub answered 502"
    clock.advance(minutes=30)  # 11:10: the next period
    assert [o.result for o in worker.tick()] == [RAN]


def test_a_claim_held_by_a_worker_that_died_is_taken_over_after_its_lease(engine: sa.Engine) -> None:
    counter, clock = Counter(), Clock("2026-12-04 10:15:00")
    store = TaskRunStore(engine)
    store.ensure("digest.hourly", None)
    assert store.claim("digest.hourly", at("2026-12-04 10:00:00"), clock(), timedelta(minutes=10))  # then died
    worker = runner(engine, hourly(counter), clock)
    assert worker.tick() == [] and counter.periods == []
    clock.advance(minutes=11)
    assert [o.result for o in worker.tick()] == [RAN] and counter.periods == [at("2026-12-04 10:00:00")]


def test_run_now_runs_once_and_counts_as_the_current_period(engine: sa.Engine) -> None:
    counter, clock = Counter(), Clock("2026-12-04 10:15:00")
    worker = runner(engine, hourly(counter), clock)
    assert worker.run_now("digest.hourly").result == RAN
    assert worker.tick() == [], "the scheduled run of this period is the one the operator made"
    assert worker.run("digest.hourly", clock()).result == TAKEN, "the same claim twice runs once"
    assert len(counter.periods) == 1
    clock.advance(hours=1)
    assert [o.result for o in worker.tick()] == [RAN]


def test_a_schedule_refuses_two_tasks_of_one_name() -> None:
    schedule = Schedule()
    schedule.every(timedelta(minutes=1), name="x")(noop)
    with pytest.raises(ValueError, match="registered twice"):
        schedule.cron("* * * * *", name="x")(noop)


def test_on_rq_a_due_task_is_one_job_whichever_worker_ticks_and_runs_once(make_app, redis_url) -> None:
    app = make_app(redis_url=redis_url)
    svc = services(app)
    ran: list[datetime] = []
    svc.tasks.schedule.add(Task("test.hourly", lambda s: ran.append(s.tasks.clock()), every=timedelta(hours=1)))
    svc.tasks.clock = lambda: at("2026-12-04 10:15:00")
    first = {o.task: o.result for o in svc.tick()}
    again = {o.task: o.result for o in svc.tick()}  # a second worker's tick, before any worker took the job
    assert first["test.hourly"] == QUEUED and "test.hourly" not in again
    assert first["deliveries.sweep"] == RAN, "the sweep runs in the ticking process, queue or not"
    run_rq_worker(app)
    assert ran == [at("2026-12-04 10:15:00")]
    assert "test.hourly" not in {o.task for o in svc.tick()}, "done for this period"


def test_operators_list_the_tasks_and_run_one_now_once(make_app) -> None:
    app = make_app(payload_retention_days=30)
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["tasks", "list"])
    assert listed.exit_code == 0
    line = next(row for row in listed.output.splitlines() if row.startswith("deliveries.prune"))
    assert "every 1 h" in line and "never" in line
    assert runner.invoke(args=["tasks", "run", "deliveries.prune"]).output.strip() == "deliveries.prune: ran"
    line = next(row for row in runner.invoke(args=["tasks", "list"]).output.splitlines() if "deliveries.prune" in row)
    assert "never" not in line and " done " in line
    assert "deliveries.prune" not in {o.task for o in services(app).tick()}, "the operator's run was this period's"
    unknown = runner.invoke(args=["tasks", "run", "nightly-report"])
    assert (
        unknown.exit_code != 0
        and "no task named 'nightly-report'" in unknown.output
        and "deliveries.sweep" in unknown.output
    )
