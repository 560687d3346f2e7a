"""The sweeper after Redis restarts: a retry whose RQ scheduler died still runs, on the next sweep, and
the sweep says what it did (not what it found already queued)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from rq import SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from tests.conftest import REPO, example, installed, run_rq_worker, services, wait_for
from tests.support import behaviours
from webhooks.dispatch import SCHEDULER_LATE_SECONDS, job_id


def acks(github) -> list[str]:
    return [c["body"] for c in github.comments(REPO, 1) if behaviours.MARKER in c["body"]]


def work_without_scheduler(app) -> None:
    """An RQ worker whose scheduler died: it runs what is in the queue, and nothing moves scheduled jobs."""
    svc = services(app)
    SimpleWorker([svc.settings.queue_name], connection=svc.redis, serializer=JSONSerializer).work(burst=True)


def test_a_retry_whose_scheduler_died_runs_on_the_next_sweep(make_app, serve, redis_url, github, caplog):
    github.fail_next("POST", r"/issues/1/comments$", 502)
    app = make_app(redis_url=redis_url)
    server = serve(app)
    server.deliver("issues", installed(example("issues.opened.1")), delivery_id="stalled")
    svc = services(app)
    run_rq_worker(app)  # the first attempt fails; its retry is scheduled in RQ
    assert svc.store.get("stalled").status == "retrying"
    wait_for(lambda: svc.store.due(0), message="retry due")  # retry_base_seconds is 0.05 in tests
    retry_job = job_id("stalled", 1)
    schedule = ScheduledJobRegistry(svc.settings.queue_name, connection=svc.redis)
    assert retry_job in schedule.get_job_ids()

    with caplog.at_level(logging.DEBUG, logger="webhooks.dispatch"):
        assert svc.sweep() == 0, "a retry its scheduler is about to queue is left to it, and not counted"
    assert "queued 1" not in caplog.text and "queued or running already" in caplog.text
    assert retry_job in schedule.get_job_ids()

    # Redis restarted: the worker's scheduler process died with its keys, and the retry's time went by.
    for key in svc.redis.scan_iter("rq:scheduler*"):
        svc.redis.delete(key)
    late = datetime.now(UTC) - timedelta(seconds=SCHEDULER_LATE_SECONDS + 50)
    schedule.schedule(Job.fetch(retry_job, connection=svc.redis, serializer=JSONSerializer), late)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="webhooks.dispatch"):
        assert svc.sweep() == 1
    assert "sweeper queued 1 due deliveries (0 were queued or running already" in caplog.text
    assert "its RQ scheduler is gone" in caplog.text
    assert retry_job not in schedule.get_job_ids()

    work_without_scheduler(app)
    assert svc.store.get("stalled").status == "done"
    assert acks(github) == [behaviours.ACK.format(login="Codertocat")]
    assert svc.sweep() == 0


def test_a_retry_marked_scheduled_but_on_no_schedule_is_queued(make_app, serve, redis_url, github):
    """Redis lost the schedule but kept the job (or a sweeper stopped between taking it off and queueing it)."""
    github.fail_next("POST", r"/issues/1/comments$", 502)
    app = make_app(redis_url=redis_url)
    server = serve(app)
    server.deliver("issues", installed(example("issues.opened.1")), delivery_id="unscheduled")
    svc = services(app)
    run_rq_worker(app)
    wait_for(lambda: svc.store.due(0), message="retry due")
    svc.redis.delete(ScheduledJobRegistry(svc.settings.queue_name, connection=svc.redis).key)

    assert svc.sweep() == 1
    work_without_scheduler(app)
    assert svc.store.get("unscheduled").status == "done"
    assert len(acks(github)) == 1


def test_a_sweep_counts_only_what_it_queued(make_app, serve, redis_url, github, caplog):
    """Deliveries already waiting in the queue are reported as such, never as dispatched again."""
    app = make_app(redis_url=redis_url)
    server = serve(app)
    payload = installed(example("issues.opened.1"))
    server.deliver("issues", payload, delivery_id="waiting")
    svc = services(app)
    svc.dispatcher.wait_idle()
    svc.store.insert(
        id="stranded",
        event="issues",
        action="opened",
        installation_id=9001,
        repository=REPO,
        sender="Codertocat",
        payload_text=json.dumps(payload),
    )
    with caplog.at_level(logging.INFO, logger="webhooks.dispatch"):
        assert svc.sweep() == 1
    assert "sweeper queued 1 due deliveries (1 were queued or running already, 0 left" in caplog.text
