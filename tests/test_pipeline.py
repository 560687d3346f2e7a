"""Deliveries through the whole pipeline: real HTTP in, RQ on a real Redis or the embedded worker,
handlers calling the fake GitHub, outcomes stored."""

from __future__ import annotations

import json
import threading
from datetime import UTC

import pytest

from tests.conftest import REPO, example, installed, run_rq_worker, services, wait_for
from tests.support import behaviours
from webhooks.jobs import process


@pytest.fixture(autouse=True)
def handlers_behave():
    behaviours.BREAK["crash"] = False
    yield
    behaviours.BREAK["crash"] = False


def opened(number: int = 1, login: str = "octo-newcomer") -> dict:
    payload = installed(example("issues.opened.1"))
    payload["issue"].update(number=number)
    payload["issue"]["user"].update(login=login)
    payload["sender"].update(login=login)
    return payload


def store_only(svc, delivery_id: str) -> None:
    """What the endpoint had done when its process died: the row is stored, nothing was queued."""
    svc.store.insert(
        id=delivery_id,
        event="issues",
        action="opened",
        installation_id=9001,
        repository=REPO,
        sender="octo-newcomer",
        payload_text=json.dumps(opened()),
    )


def acks(github, number: int = 1) -> list[str]:
    return [c["body"] for c in github.comments(REPO, number) if behaviours.MARKER in c["body"]]


def test_rq_worker_processes_a_delivery_once_even_when_redelivered(make_app, serve, redis_url, github):
    server = serve(make_app(redis_url=redis_url))
    for _ in range(3):
        server.deliver("issues", opened(), delivery_id="guid-1")
    run_rq_worker(server.app)
    assert acks(github) == [behaviours.ACK.format(login="octo-newcomer")]
    delivery = services(server.app).store.get("guid-1")
    assert (delivery.status, delivery.attempts) == ("done", 1)


def test_embedded_worker_processes_deliveries_without_redis(make_app, serve, github):
    server = serve(make_app())
    server.deliver("issues", opened(1), delivery_id="e-1")
    server.deliver("issues", opened(2), delivery_id="e-2")
    store = services(server.app).store
    wait_for(lambda: store.get("e-1").status == "done" and store.get("e-2").status == "done", message="processing")
    assert len(acks(github, 1)) == 1 and len(acks(github, 2)) == 1


def test_a_job_run_twice_acts_once(make_app, serve, redis_url, github):
    """RQ may run a job again (a worker lost after finishing); the claim makes the second run a no-op."""
    server = serve(make_app(redis_url=redis_url))
    server.deliver("issues", opened(), delivery_id="twice")
    svc = services(server.app)
    assert process(svc, "twice") == "done"
    assert process(svc, "twice") == "skipped"
    assert len(acks(github)) == 1


def test_concurrent_workers_on_one_delivery_act_once(make_app, serve, redis_url, github):
    server = serve(make_app(redis_url=redis_url))
    server.deliver("issues", opened(), delivery_id="race")
    svc = services(server.app)
    results: list[str] = []
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        results.append(process(svc, "race"))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["done", "skipped", "skipped", "skipped"]
    assert len(acks(github)) == 1


def test_a_failing_handler_does_not_stop_the_others_and_the_delivery_shows_failed(make_app, serve, redis_url, github):
    behaviours.BREAK["crash"] = True
    server = serve(make_app(redis_url=redis_url))
    server.deliver("issues", opened(), delivery_id="crashy")
    run_rq_worker(server.app)
    store = services(server.app).store
    delivery = store.get("crashy")
    assert delivery.status == "failed" and "test.crash" in delivery.last_error
    assert store.handler_outcomes("crashy")["test.ack"] == ("done", None)
    assert len(acks(github)) == 1


def test_github_5xx_is_retried_with_backoff_and_then_succeeds(make_app, serve, redis_url, github):
    github.fail_next("POST", r"/issues/1/comments$", 502, times=2)
    server = serve(make_app(redis_url=redis_url))
    server.deliver("issues", opened(), delivery_id="flaky")
    store = services(server.app).store
    run_rq_worker(server.app)
    first = store.get("flaky")
    assert first.status == "retrying" and "ServerError" in first.last_error and first.next_attempt_at
    for _ in range(2):
        wait_for(lambda: store.get("flaky").next_attempt_at is None or store.due(0), message="retry due")
        run_rq_worker(server.app)
    assert store.get("flaky").status == "done"
    assert len(acks(github)) == 1
    assert store.get("flaky").attempts == 3


def test_rate_limit_waits_until_githubs_reset_time(make_app, serve, redis_url, github):
    import time
    from datetime import datetime

    reset = int(time.time()) + 120
    github.fail_next(
        "POST",
        r"/issues/1/comments$",
        403,
        body={"message": "API rate limit exceeded"},
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
    )
    server = serve(make_app(redis_url=redis_url))
    server.deliver("issues", opened(), delivery_id="limited")
    run_rq_worker(server.app)
    delivery = services(server.app).store.get("limited")
    assert delivery.status == "retrying" and "RateLimited" in delivery.last_error
    next_at = delivery.next_attempt_at.replace(tzinfo=UTC)
    assert next_at >= datetime.fromtimestamp(reset - 5, UTC)
    assert acks(github) == []


def test_after_the_last_try_the_delivery_is_failed_and_can_be_retried_from_the_cli(make_app, serve, redis_url, github):
    github.fail_next("POST", r"/issues/1/comments$", 503, times=2)
    app = make_app(redis_url=redis_url, max_attempts=2)
    server = serve(app)
    server.deliver("issues", opened(), delivery_id="doomed")
    store = services(app).store
    run_rq_worker(app)
    wait_for(lambda: store.due(0), message="retry due")
    run_rq_worker(app)
    assert store.get("doomed").status == "failed"

    runner = app.test_cli_runner()
    listing = runner.invoke(args=["deliveries", "list", "--status", "failed"])
    assert "doomed" in listing.output and "ServerError" in listing.output
    retried = runner.invoke(args=["deliveries", "retry", "doomed"])
    assert "doomed: requeued" in retried.output
    run_rq_worker(app)
    assert store.get("doomed").status == "done"
    assert len(acks(github)) == 1


def test_events_from_bots_trigger_nothing(make_app, serve, github):
    payload = opened(login="renovate[bot]")
    payload["sender"]["type"] = "Bot"
    server = serve(make_app())
    assert server.deliver("issues", payload, delivery_id="bot").status_code == 202
    assert services(server.app).store.get("bot").status == "ignored"
    assert github.requests == []


def test_a_delivery_without_installation_skips_github_handlers_and_says_why(make_app, serve, redis_url, github):
    server = serve(make_app(redis_url=redis_url))
    server.deliver("issues", example("issues.opened.1"), delivery_id="no-inst")
    run_rq_worker(server.app)
    store = services(server.app).store
    assert store.get("no-inst").status == "done"
    assert store.handler_outcomes("no-inst")["test.ack"] == ("skipped", "no installation in payload")
    assert github.requests == []


def test_redis_down_loses_nothing(make_app, serve, redis_url, github):
    """Webhooks arriving while Redis is unreachable are all acknowledged, and all processed once it is back."""
    from tests.support.proxy import Proxy

    proxy = Proxy("127.0.0.1", 6379)
    try:
        url = f"redis://127.0.0.1:{proxy.port}/{redis_url.rsplit('/', 1)[1]}"  # the test Redis database, via the proxy
        app = make_app(redis_url=url)
        server = serve(app)
        proxy.cut()
        answers = [server.deliver("issues", opened(n), delivery_id=f"down-{n}").status_code for n in (1, 2)]
        assert answers == [202, 202]
        # Let the web process's enqueue thread give up on both before Redis comes back (it lingers 25 ms).
        services(app).dispatcher.wait_idle()
        health = server.session.get(server.url + "/healthz")
        assert health.status_code == 503 and "redis unreachable" in health.json()["queue"]
        store = services(app).store
        assert [store.get(f"down-{n}").status for n in (1, 2)] == ["pending", "pending"]

        proxy.restore()
        services(app).dispatcher._open_until = 0  # skip the breaker's pause instead of sleeping through it
        assert services(app).sweep() == 2
        run_rq_worker(app)
        assert [store.get(f"down-{n}").status for n in (1, 2)] == ["done", "done"]
        assert len(acks(github, 1)) == 1 and len(acks(github, 2)) == 1
    finally:
        proxy.close()


def test_deliveries_lost_with_redis_are_found_again(make_app, serve, redis_url, github):
    """Redis restarted without persistence: queued deliveries vanish from it, not from the database."""
    app = make_app(redis_url=redis_url)
    server = serve(app)
    server.deliver("issues", opened(), delivery_id="lost")
    svc = services(app)
    svc.dispatcher.wait_idle()
    assert svc.sweep() == 0, "a delivery waiting in the queue is not dispatched twice"
    svc.redis.flushdb()
    assert svc.sweep() == 1
    run_rq_worker(app)
    assert svc.store.get("lost").status == "done" and len(acks(github)) == 1


def test_a_crash_between_storing_and_dispatching_is_recovered_by_the_sweeper(make_app, github):
    app = make_app()
    svc = services(app)
    store_only(svc, "orphan")
    assert svc.sweep() == 1
    wait_for(lambda: svc.store.get("orphan").status == "done", message="sweeper to dispatch")
    assert len(acks(github)) == 1


def test_embedded_sweeper_runs_by_itself(make_app, github):
    svc = services(make_app())
    svc.dispatcher.start()
    store_only(svc, "stranded")
    wait_for(lambda: svc.store.get("stranded").status == "done", message="periodic sweep")


def test_writes_beyond_the_pace_wait_their_turn_without_using_up_tries(make_app, serve, redis_url, github):
    app = make_app(redis_url=redis_url, write_interval_seconds=30.0, max_attempts=1)
    server = serve(app)
    server.deliver("issues", opened(1), delivery_id="paced-1")
    server.deliver("issues", opened(2), delivery_id="paced-2")
    run_rq_worker(app)
    store = services(app).store
    # The batch's two deliveries are processed at once (WORKER_THREADS): either may take the first slot.
    first, second = sorted((1, 2), key=lambda n: store.get(f"paced-{n}").status)
    assert store.get(f"paced-{first}").status == "done" and len(acks(github, first)) == 1
    waiting = store.get(f"paced-{second}")
    assert waiting.status == "retrying" and "WritesThrottled" in waiting.last_error
    assert acks(github, second) == [], "the second write waits for its slot instead of following at once"
    delay = (waiting.next_attempt_at - waiting.received_at).total_seconds()
    assert 25 < delay < 40, delay
