"""The sweeper after Redis restarts: a retry whose RQ scheduler died still runs, on the next sweep, and
the sweep says what it did (not what it found already queued). After a worker dies mid-batch: what the batch
had not begun goes back to the queue once the batch's heartbeat lapses, and a batch that lives keeps its own."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from rq import SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from tests.conftest import REPO, example, installed, run_rq_worker, services, wait_for
from tests.support import behaviours
from webhooks import dispatch
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


def opened_issues(server, github, numbers: list[int]) -> list[str]:
    """Issues opened one after the other, queued together in one batch (the intake's linger); their ids."""
    for number in numbers:
        github.add_issue(REPO, number, "Codertocat", title="Spelling error in the README file")
        payload = installed(example("issues.opened.1"))
        payload["issue"]["number"] = number
        server.deliver("issues", payload, delivery_id=f"opened-{number}")
    return [f"opened-{number}" for number in numbers]


def acks_on(github, number: int) -> list[str]:
    return [c["body"] for c in github.comments(REPO, number) if behaviours.MARKER in c["body"]]


def test_a_batch_whose_worker_died_gives_back_what_it_had_not_begun_once_its_heartbeat_lapses(
    make_app, serve, redis_url, github, monkeypatch
):
    """RQ takes a SimpleWorker's job for lost only a minute after its whole timeout (JOB_TIMEOUT_SECONDS per
    delivery of a batch); the batch's heartbeat says so within BATCH_LAPSE_SECONDS."""
    monkeypatch.setattr(dispatch, "BATCH_LAPSE_SECONDS", 1.0)
    app = make_app(redis_url=redis_url)
    server, svc = serve(app), services(app)
    ids = opened_issues(server, github, [31, 32, 33])
    svc.dispatcher.wait_idle()
    # A worker takes the (first) batch as RQ's SimpleWorker does, and is killed before it begins a delivery.
    dying = SimpleWorker([svc.settings.queue_name], connection=svc.redis, serializer=JSONSerializer)
    taken = dying.dequeue_job_and_maintain_ttl(timeout=1)
    assert taken is not None
    batch = taken[0]
    dying.prepare_execution(batch)
    dying.prepare_job_execution(batch)
    stranded = batch.args[0]
    assert stranded and set(stranded) <= set(ids)

    assert svc.sweep() == 0, "a batch begun a moment ago holds its deliveries: its first heartbeat may be coming"
    time.sleep(dispatch.BATCH_LAPSE_SECONDS + 0.2)
    assert svc.sweep() == len(stranded), "what the dead worker's batch held went back to the queue"

    work_without_scheduler(app)
    assert [svc.store.get(d).status for d in ids] == ["done"] * 3
    assert [len(acks_on(github, n)) for n in (31, 32, 33)] == [1, 1, 1]
    assert svc.sweep() == 0


def test_a_batch_held_up_longer_than_the_lapse_keeps_its_deliveries_while_its_worker_lives(
    make_app, serve, redis_url, github, monkeypatch
):
    monkeypatch.setattr(dispatch, "BATCH_LAPSE_SECONDS", 1.0)
    monkeypatch.setattr(dispatch, "BATCH_HEARTBEAT_SECONDS", 0.2)
    app = make_app(redis_url=redis_url, worker_threads=1)
    server, svc = serve(app), services(app)
    ids = opened_issues(server, github, [41, 42, 43])
    svc.dispatcher.wait_idle()
    github.delay_next("POST", r"/issues/41/comments$", seconds=3 * dispatch.BATCH_LAPSE_SECONDS)
    swept: list[int] = []

    def sweep_while_held() -> None:
        wait_for(lambda: svc.store.get("opened-41").status == "processing", message="the batch begun")
        time.sleep(2 * dispatch.BATCH_LAPSE_SECONDS)
        swept.append(svc.sweep())

    sweeper = threading.Thread(target=sweep_while_held)
    sweeper.start()
    work_without_scheduler(app)  # the batch, in this thread, held up on its first comment
    sweeper.join()
    assert swept == [0], "the batch's deliveries were dispatched again while its worker was still on them"
    assert [svc.store.get(d).status for d in ids] == ["done"] * 3
    assert [len(acks_on(github, n)) for n in (41, 42, 43)] == [1, 1, 1]
