"""Several deliveries processed at once (WORKER_THREADS): a slow GitHub round trip holds up only its own
delivery. Real HTTP in, the fake GitHub made slow with `delay_next`, outcomes read where a user sees them."""

from __future__ import annotations

import itertools
import json
import threading

import pytest
import sqlalchemy as sa
from rq.job import Job
from rq.serializers import JSONSerializer

import worker
from storage import db
from tests.conftest import REPO, example, installed, run_rq_worker, services, wait_for
from tests.support.fake_github import RecordedRequest
from webhooks.dispatch import FINISHED_BATCH_TTL_SECONDS

CREATE_COMMENT = rf"^/repos/{REPO}/issues/\d+/comments$"


def issue_opened(number: int, login: str) -> dict:
    payload = installed(example("issues.opened.1"))
    payload["issue"].update(number=number, author_association="NONE")
    payload["issue"]["user"].update(login=login, type="User")
    payload["sender"].update(login=login, type="User")
    return payload


def comment_created(login: str, comment_id: int) -> dict:
    payload = installed(example("issue_comment.created.1"))
    person = {"login": login, "id": 502, "type": "User", "node_id": "x", "site_admin": False}
    payload["comment"].update(id=comment_id, user=person, author_association="CONTRIBUTOR")
    payload["sender"] = person
    return payload


def greetings(github, number: int) -> list[str]:
    return [c["body"] for c in github.comments(REPO, number) if "engage:greeting" in c["body"]]


def greetings_posted(github) -> list[RecordedRequest]:
    """The requests that posted a greeting (the sweeper's tasks may post other comments meanwhile)."""
    return [r for r in github.calls("POST", f"/repos/{REPO}/issues/") if "engage:greeting" in str(r.json)]


def side_by_side(requests: list[RecordedRequest]) -> bool:
    """Every one of them was in flight at one moment: the last arrived before the first was answered."""
    answered = [r.answered for r in requests]
    assert all(at is not None for at in answered)
    return max(r.received for r in requests) < min(at for at in answered if at is not None)


def comments_recorded(app) -> list[str]:
    with services(app).store.engine.connect() as conn:
        query = sa.select(db.contributions.c.actor_login).where(db.contributions.c.kind == "comment")
        return list(conn.scalars(query))


def test_slow_greetings_are_posted_side_by_side_and_a_comment_behind_them_does_not_wait(make_app, serve, github):
    """Three newcomers' greetings each wait 1.5 s for GitHub; the default 4 threads post them together,
    and a comment sent after them is in the ledger while they are still waiting."""
    app = make_app(behaviours=())
    server = serve(app)
    store = services(app).store
    newcomers = {3: "ana-new", 4: "bo-new", 5: "cy-new"}
    for number, login in newcomers.items():
        github.add_issue(REPO, number, login)
    github.delay_next("POST", CREATE_COMMENT, 1.5, times=len(newcomers))
    for number, login in newcomers.items():
        server.deliver("issues", issue_opened(number, login), delivery_id=f"newcomer-{number}")
    wait_for(lambda: len(greetings_posted(github)) == len(newcomers), message="all greetings sent to GitHub")

    server.deliver("issue_comment", comment_created("sam", 9001), delivery_id="comment-behind")
    wait_for(lambda: store.get("comment-behind").status == "done", message="the comment processed")
    assert comments_recorded(app) == ["sam"]
    assert all(r.answered is None for r in greetings_posted(github)), "the greetings were still waiting for GitHub"

    wait_for(lambda: all(store.get(f"newcomer-{n}").status == "done" for n in newcomers), message="greetings done")
    assert {n: len(greetings(github, n)) for n in newcomers} == {n: 1 for n in newcomers}
    assert len(greetings_posted(github)) == len(newcomers), "each greeting posted once"
    assert side_by_side(greetings_posted(github))
    assert services(app).dispatcher.health() == (True, "embedded worker ok, 4 threads")


def test_one_delivery_dispatched_several_times_at_once_greets_once(make_app, serve, github):
    app = make_app(behaviours=())
    server = serve(app)
    svc = services(app)
    github.add_issue(REPO, 3, "ana-new")
    github.delay_next("POST", CREATE_COMMENT, 0.5)
    for _ in range(2):  # GitHub's redelivery: stored once
        server.deliver("issues", issue_opened(3, "ana-new"), delivery_id="twice")
    server.deliver("issues", issue_opened(3, "ana-new"), delivery_id="github-sent-it-again")
    for _ in range(3):  # and the sweeper finding it meanwhile: four threads on one delivery
        svc.dispatcher.dispatch("twice")
    assert svc.dispatcher.wait_idle(15)
    assert svc.store.get("twice").attempts == 1
    wait_for(lambda: svc.store.get("github-sent-it-again").status == "done", message="the copy settled")
    assert len(greetings(github, 3)) == 1 and len(greetings_posted(github)) == 1


def test_closing_lets_every_thread_finish_its_delivery(make_app, serve, github):
    app = make_app(worker_threads=2, behaviours=())
    server = serve(app)
    svc = services(app)
    github.delay_next("POST", CREATE_COMMENT, 1.0, times=2)
    for number in (3, 4):
        github.add_issue(REPO, number, f"new-{number}")
        server.deliver("issues", issue_opened(number, f"new-{number}"), delivery_id=f"closing-{number}")
    wait_for(lambda: len(greetings_posted(github)) == 2, message="both deliveries waiting for GitHub")
    assert svc.dispatcher.health() == (True, "embedded worker ok, 2 threads")
    svc.dispatcher.close()
    assert [svc.store.get(f"closing-{n}").status for n in (3, 4)] == ["done", "done"]
    assert not any(t.name.startswith("engage-worker") and t.is_alive() for t in threading.enumerate())


@pytest.mark.parametrize("threads", [1, 4])
def test_an_rq_batch_processes_its_deliveries_at_once_and_a_crash_leaves_the_others_be(
    make_app, redis_url, github, threads
):
    app = make_app(redis_url=redis_url, worker_threads=threads, behaviours=())
    svc = services(app)
    for number in (3, 4, 5):
        github.add_issue(REPO, number, f"new-{number}")
        store(svc, f"batch-{number}", json.dumps(issue_opened(number, f"new-{number}")))
    store(svc, "unreadable", "{not json")
    github.delay_next("POST", CREATE_COMMENT, 0.3, times=3)

    outcomes = worker.process_deliveries(["batch-3", "unreadable", "batch-4", "batch-5", "batch-3"])

    assert outcomes[1:4] == ["crashed", "done", "done"], "in the batch's order"
    assert sorted([outcomes[0], outcomes[4]]) == ["done", "skipped"], "a delivery twice in a batch runs once"
    assert [len(greetings(github, n)) for n in (3, 4, 5)] == [1, 1, 1]
    posted = greetings_posted(github)
    assert len(posted) == 3
    if threads == 1:  # one after the other, in the batch's order
        assert [r.path for r in posted] == [f"/repos/{REPO}/issues/{n}/comments" for n in (3, 4, 5)]
        assert all(a.answered is not None and a.answered <= b.received for a, b in itertools.pairwise(posted))
    else:
        assert side_by_side(posted)


def store(svc, delivery_id: str, payload_text: str) -> None:
    """A new delivery as the endpoint stores it, for the batch to process."""
    svc.store.insert(
        id=delivery_id,
        event="issues",
        action="opened",
        installation_id=9001,
        repository=REPO,
        sender="someone",
        payload_text=payload_text,
    )


def comment_on(number: int, login: str, comment_id: int, author: str = "Codertocat") -> dict:
    payload = comment_created(login, comment_id)
    payload["issue"]["number"] = number
    payload["issue"]["user"]["login"] = author  # as GitHub sends it: the issue's author, in every delivery about it
    return payload


@pytest.mark.parametrize("mode", ["embedded", "rq"])
def test_deliveries_about_one_authors_issues_are_processed_in_the_order_they_arrived(
    make_app, serve, github, redis_url, mode
):
    """A newcomer's issue whose greeting waits 1.5 s for GitHub; a reply on that issue and the same person's
    second issue right behind it wait for it (the reply would find no issue watched; the second issue would
    be counted while the first is still being recorded); a comment on someone else's issue does not. In RQ
    mode the deliveries' batches are run as one, as one worker would."""
    app = make_app(redis_url=redis_url, behaviours=()) if mode == "rq" else make_app(behaviours=())
    server, svc = serve(app), services(app)
    github.add_issue(REPO, 6, "dee-new")
    github.add_issue(REPO, 7, "dee-new")
    github.delay_next("POST", CREATE_COMMENT, 1.5)
    server.deliver("issues", issue_opened(6, "dee-new"), delivery_id="opened-6")
    server.deliver("issue_comment", comment_on(6, "sam", 9101, author="dee-new"), delivery_id="reply-6")
    server.deliver("issues", issue_opened(7, "Dee-New"), delivery_id="opened-7")
    server.deliver("issue_comment", comment_on(1, "kim", 9102), delivery_id="elsewhere-1")
    if mode == "rq":
        assert svc.dispatcher.wait_idle()
        jobs = [Job.fetch(i, connection=svc.redis, serializer=JSONSerializer) for i in svc.dispatcher.queue.job_ids]
        ids = [d for job in jobs for d in job.args[0]]
        lanes = [lane for job in jobs for lane in job.args[1]]
        assert ids == ["opened-6", "reply-6", "opened-7", "elsewhere-1"]
        dee, codertocat = f"{REPO}@dee-new", f"{REPO}@codertocat"
        assert lanes == [dee, dee, dee, codertocat], "the intake hands each delivery's lane to RQ"
        threading.Thread(target=worker.process_deliveries, args=(ids, lanes), daemon=True).start()
    wait_for(lambda: svc.store.get("elsewhere-1").status == "done", message="the other issue's comment processed")
    assert svc.store.get("reply-6").status == "pending", "the reply did not wait for its issue's opening"
    assert svc.store.get("opened-7").status == "pending", "the author's second issue did not wait for the first"
    wait_for(lambda: svc.store.get("opened-7").status == "done", message="the second issue processed")
    opened, reply, second = (svc.store.get(d) for d in ("opened-6", "reply-6", "opened-7"))
    assert opened.status == reply.status == "done"
    assert opened.finished_at <= reply.finished_at <= second.finished_at
    assert len(greetings(github, 6)) == 1 and greetings(github, 7) == []


def test_a_batch_that_ran_is_left_to_expire_within_a_minute_and_not_taken_for_one_still_coming(
    make_app, serve, redis_url
):
    """Redis holds nothing of a batch that ran for longer than FINISHED_BATCH_TTL_SECONDS, and the sweeper
    does not take its deliveries for ones still in the queue."""
    app = make_app(redis_url=redis_url, behaviours=())
    server, svc = serve(app), services(app)
    ids = [f"ran-{n}" for n in range(3)]
    for n, delivery_id in enumerate(ids):
        assert (
            server.deliver("issue_comment", comment_created("mona", 700 + n), delivery_id=delivery_id).status_code
            == 202
        )
    svc.dispatcher.wait_idle()
    run_rq_worker(app)
    assert [svc.store.get(d).status for d in ids] == ["done"] * 3

    batch_keys = [key for key in svc.redis.scan_iter("rq:*batch-*") if svc.redis.type(key) != b"none"]
    assert batch_keys, "the batch's job is kept a while (RQ deletes one kept for 0 s, at a cost)"
    assert all(0 < svc.redis.ttl(key) <= FINISHED_BATCH_TTL_SECONDS for key in batch_keys), [
        (key, svc.redis.ttl(key)) for key in batch_keys
    ]
    assert svc.dispatcher.queued(ids) == set()
