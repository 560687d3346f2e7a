"""Two gunicorn servers (the Procfile's web line: processes of eight threads) and two RQ workers on one
Redis and one PostgreSQL, as deployed: a burst of signed deliveries split across both servers,
redeliveries sent to the other one, and every delivery processed exactly once (its row `done`, its
handlers run once, one comment of each kind per issue on the fake GitHub). A second burst loses a
worker to SIGKILL a fifth of the way through.

The processes run the Procfile's commands and are configured only through environment variables, as an
operator would. They bring their own PostgreSQL database (`multiprocess`), so this file runs in the
SQLite pass of the suite only: the PostgreSQL pass (DATABASE_URL set) would repeat it unchanged.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
import requests
import sqlalchemy as sa
from rq import Worker
from rq.serializers import JSONSerializer

from domain import contributions as kinds
from engagement import greeting
from services import build_router
from storage.db import actor_days, contributions, deliveries, handler_runs, weekly
from tests.conftest import REPO, ROOT, SECRET, TEST_BEHAVIOURS, example, installed
from tests.support import behaviours
from tests.support.fake_github import FakeGitHub
from tests.support.processes import Process, answers, fake_for_processes, free_port, operator_env, procfile
from webhooks.event import Event
from webhooks.signature import sign

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")),
    reason="runs in the SQLite pass only: it brings its own PostgreSQL, so the PostgreSQL pass would only repeat it",
)

# The server `scripts/services` starts (and CI uses), as the superuser, to create the test's own database.
ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
DATABASE = "multiprocess"  # not "test": the other suites' PostgreSQL pass must not see it, nor it them
REDIS_URL = os.environ.get("TEST_MULTIPROCESS_REDIS_URL", "redis://127.0.0.1:6379/9")
QUEUE = "engage"
BIN = Path(sys.executable).parent
BURST = 200
REDELIVERED = 0.1  # share of deliveries GitHub redelivers, to the other web process
SENDERS = 16
# A killed worker's claimed delivery is taken over once its lease (2 x JOB_TIMEOUT_SECONDS, 20 s) ends; what its
# batch had not begun, once the batch's heartbeat lapses (webhooks.dispatch.BATCH_LAPSE_SECONDS, 20 s). RQ
# itself gives up on the job only a minute after its whole timeout (here 10 s a delivery: 150 s for 9).
DEADLINE_SECONDS = 180.0
STALL_SECONDS = 60.0
HOLD_SECONDS = 5.0
FINAL = ("done", "ignored", "failed")


# --- the processes


def cluster_env(database_url: str, github_url: str, private_key: str) -> dict[str, str]:
    return {**operator_env(database_url, github_url, private_key), "REDIS_URL": REDIS_URL, "QUEUE_NAME": QUEUE}


class Cluster:
    def __init__(self, env: dict[str, str], logs: Path, queue_redis: redis.Redis):
        self.env = env
        self.logs = logs
        self.redis = queue_redis
        self.processes: list[Process] = []
        self.web_urls: list[str] = []
        self.workers: list[Process] = []

    def run(self, name: str, *args: str) -> str:
        """A one-shot command (the release step); its output, or the test fails with it."""
        done = subprocess.run(
            [str(BIN / "flask"), "--app", "app", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"{name} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def start_web(self) -> None:
        """The Procfile's `web` line, run by a shell as honcho or a platform runs it: two processes of threads."""
        port = free_port()
        env = {"PORT": str(port), "WEB_CONCURRENCY": "2", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        process = self._start(f"web{len(self.web_urls) + 1}", ["bash", "-c", f"exec {procfile()['web']}"], env)
        url = f"http://127.0.0.1:{port}"
        process.wait_until(lambda: answers(url + "/healthz"), "answer /healthz")
        self.web_urls.append(url)

    def start_worker(self) -> Process:
        process = self._start(f"worker{len(self.workers) + 1}", [str(BIN / "flask"), "--app", "app", "worker"])
        process.wait_until(lambda: any(w.pid == process.pid for w in Worker.all(connection=self.redis)), "register")
        self.workers.append(process)
        return process

    def live_workers(self) -> list[Process]:
        return [w for w in self.workers if w.alive()]

    def _start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        process = Process(name, argv, {**self.env, **(env or {})}, self.logs)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            process.stop()

    def report(self) -> str:
        """Each process's warnings and errors, and its last lines."""
        parts = []
        for p in self.processes:
            bad = [e for e in p.log_entries() if e.get("level") in ("warning", "error", "critical")]
            parts.append(
                f"--- {p.name} (pid {p.pid}, exit code {p.popen.poll()}): {len(bad)} warnings and errors, last ones:\n"
                + "\n".join(json.dumps(e) for e in bad[-10:])
                + f"\n--- {p.name}, last lines:\n{p.tail()}"
            )
        return "\n".join(parts)


# --- fixtures: one PostgreSQL database, one Redis, one fake GitHub, the processes


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        conn = admin.connect()
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL unreachable at {ADMIN_URL} (scripts/services starts it): {exc.orig}")
    try:
        # Two runs at once (two people, or a suite and this file) would drop each other's database and
        # flush each other's Redis: the second waits for the first.
        conn.execute(sa.text("SET lock_timeout = '300s'"))
        conn.execute(sa.text("SELECT pg_advisory_lock(hashtext(:name))"), {"name": f"engage-test-{DATABASE}"})
        # Left in place after the run for a post-mortem; each run starts from an empty one.
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {DATABASE}"))
        yield admin.url.set(database=DATABASE).render_as_string(hide_password=False)
    finally:
        conn.close()  # releases the lock
        admin.dispose()


@pytest.fixture(scope="module")
def queue_redis(database_url: str) -> Iterator[redis.Redis]:
    """Redis db 9, flushed: after `database_url`, so under its lock."""
    connection = redis.Redis.from_url(REDIS_URL)
    try:
        connection.flushdb()
    except redis.ConnectionError as exc:
        pytest.skip(f"Redis unreachable at {REDIS_URL} (scripts/services starts it): {exc}")
    yield connection
    connection.flushdb()
    connection.close()


@pytest.fixture(scope="module")
def fake(fake_github_server: FakeGitHub) -> FakeGitHub:
    return fake_for_processes(fake_github_server)  # the processes cache its tokens in Redis


@pytest.fixture(scope="module")
def cluster(
    database_url: str,
    queue_redis: redis.Redis,
    fake: FakeGitHub,
    app_key: tuple[str, bytes],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    env = cluster_env(database_url, fake.url, app_key[0])
    processes = Cluster(env, tmp_path_factory.mktemp("multiprocess-logs"), queue_redis)
    try:
        processes.run("db upgrade", "db", "upgrade")  # the Procfile's release step
        processes.start_web()
        processes.start_web()
        processes.start_worker()
        processes.start_worker()
        yield processes
    finally:
        processes.stop()


@pytest.fixture(autouse=True)
def logs_on_failure(cluster: Cluster) -> Iterator[None]:
    yield
    print(cluster.report())  # captured: pytest shows it only for a test that failed


@pytest.fixture
def engine(cluster: Cluster) -> Iterator[sa.Engine]:
    found = sa.create_engine(cluster.env["DATABASE_URL"])
    yield found
    found.dispose()


# --- deliveries


@dataclass(frozen=True)
class Delivery:
    id: str
    number: int
    login: str
    body: bytes


def newcomer_issues(fake: FakeGitHub, first: int, count: int) -> list[Delivery]:
    """`issues.opened` for issues first.., each by a different first-time contributor (so each gets a
    greeting as well as the test behaviour's acknowledgement), known to the fake GitHub."""
    made = []
    for number in range(first, first + count):
        login = f"newcomer-{number}"
        payload = installed(example("issues.opened.1"))
        user = {**payload["issue"]["user"], "login": login, "id": 70_000_000 + number}
        # Opened now, as GitHub's delivery says: the recorded example's 2019 time made each a newcomer's issue
        # unanswered for years, which the response watch's pass (every 15 minutes) nudges when one falls
        # within the test.
        opened = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        payload["issue"].update(number=number, id=80_000_000 + number, user=user, author_association="NONE")
        payload["issue"].update(created_at=opened, updated_at=opened)
        payload["sender"] = dict(user)
        fake.add_issue(REPO, number, login, title=payload["issue"]["title"])
        made.append(Delivery(str(uuid.uuid4()), number, login, json.dumps(payload).encode()))
    return made


_sessions = threading.local()


def post(url: str, delivery: Delivery) -> int:
    session = getattr(_sessions, "session", None) or requests.Session()
    _sessions.session = session
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/test",
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": delivery.id,
        "X-GitHub-Hook-ID": "1",
        "X-Hub-Signature-256": sign(SECRET, delivery.body),
    }
    return session.post(url + "/api/github/webhooks", data=delivery.body, headers=headers, timeout=30).status_code


Send = tuple[str, Delivery]


def plan(cluster: Cluster, burst: list[Delivery], seed: int) -> list[Send]:
    """Each delivery to one web process in turn and ~10% again to the other one, all mixed."""
    rng = random.Random(seed)
    first, second = cluster.web_urls
    sends = [(first if i % 2 == 0 else second, d) for i, d in enumerate(burst)]
    sends += [(second if i % 2 == 0 else first, d) for i, d in enumerate(burst) if rng.random() < REDELIVERED]
    rng.shuffle(sends)
    return sends


def send_all(sends: list[Send]) -> dict[str, list[int]]:
    """Send concurrently; the answers per delivery id."""
    with ThreadPoolExecutor(SENDERS) as pool:
        codes = list(pool.map(lambda send: post(*send), sends))
    answers: dict[str, list[int]] = {}
    for (_, delivery), code in zip(sends, codes, strict=True):
        answers.setdefault(delivery.id, []).append(code)
    return answers


# --- what the database, the fake GitHub and the logs say


def statuses(engine: sa.Engine, ids: list[str]) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(deliveries.c.id, deliveries.c.status).where(deliveries.c.id.in_(ids)))
        return {row.id: row.status for row in rows}


def wait_until_final(engine: sa.Engine, cluster: Cluster, ids: list[str]) -> None:
    """Until every delivery is done, ignored or failed; fails after DEADLINE_SECONDS, or sooner when
    nothing has moved for STALL_SECONDS (longer than a dead worker's deliveries take to come back)."""
    end = time.monotonic() + DEADLINE_SECONDS
    last, moved = None, time.monotonic()
    while True:
        found = Counter(statuses(engine, ids).values())
        if sum(found[s] for s in FINAL) == len(ids):
            return
        if found != last:
            last, moved = found, time.monotonic()
        if time.monotonic() > end or time.monotonic() - moved > STALL_SECONDS:
            waited = time.monotonic() - end + DEADLINE_SECONDS
            raise AssertionError(f"not finished after {waited:.0f} s: {stuck(engine, cluster, ids)}")
        time.sleep(0.25)


def stuck(engine: sa.Engine, cluster: Cluster, ids: list[str]) -> str:
    """Statuses, each unfinished delivery with what the sweeper sees of it, and what dead workers held."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(deliveries).where(deliveries.c.id.in_(ids))).all()
    left = [row for row in rows if row.status not in FINAL]
    lines = [f"{Counter(row.status for row in rows)}, {len(ids) - len(rows)} not stored; unfinished:"]
    for row in left[:30]:
        ttl = cluster.redis.ttl(f"engage:queued:{row.id}")
        lines.append(
            f"  {row.id} {row.status} attempts={row.attempts} claimed_at={row.claimed_at} "
            + (f"queued-marker expires in {ttl} s" if ttl > 0 else "no queued-marker")
        )
    live = {w.pid for w in cluster.live_workers()}
    for worker in Worker.all(connection=cluster.redis, serializer=JSONSerializer):
        job = worker.get_current_job()
        lines.append(
            f"RQ worker pid {worker.pid} ({'alive' if worker.pid in live else 'dead'}): "
            + (f"in job {job.id} ({job.description}) {job.args}" if job else "no job in hand")
        )
    return "\n".join(lines)


def expected_handlers() -> set[str]:
    payload = installed(example("issues.opened.1"))
    handlers, reason = build_router(TEST_BEHAVIOURS).route(Event("x", "issues", payload))
    assert reason is None
    return {h.name for h in handlers}


def handler_problems(engine: sa.Engine, ids: list[str]) -> dict[str, dict[str, str]]:
    """Deliveries whose handler outcomes are neither none (a first attempt that ended done stores none) nor
    exactly the routed handlers, each `done` (a retry stores them all)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(handler_runs).where(handler_runs.c.delivery_id.in_(ids))).all()
    runs: dict[str, dict[str, str]] = {delivery_id: {} for delivery_id in ids}
    for row in rows:
        runs[row.delivery_id][row.handler] = row.status
    wanted = {name: "done" for name in expected_handlers()}
    return {delivery_id: found for delivery_id, found in runs.items() if found not in ({}, wanted)}


def comment_problems(fake: FakeGitHub, burst: list[Delivery]) -> dict[int, Counter[str]]:
    """Issues without exactly one acknowledgement, one greeting and nothing else."""
    problems = {}
    for delivery in burst:
        kinds_found: Counter[str] = Counter()
        for comment in fake.comments(REPO, delivery.number):
            body = comment["body"]
            if behaviours.MARKER in body:
                kinds_found["ack"] += 1
            elif greeting.marker(greeting.ISSUE, delivery.login) in body:
                kinds_found["greeting"] += 1
            else:
                kinds_found["other"] += 1
        if kinds_found != Counter(ack=1, greeting=1):
            problems[delivery.number] = kinds_found
    return problems


def processed_by(cluster: Cluster, burst: list[Delivery]) -> dict[str, list[str]]:
    """Per delivery, the workers that logged "delivery processed" for it (a retry would log again)."""
    found: dict[str, list[str]] = {d.id: [] for d in burst}
    for worker in cluster.workers:
        for entry in worker.log_entries():
            if entry.get("msg") == "delivery processed" and entry.get("delivery_id") in found:
                found[entry["delivery_id"]].append(worker.name)
    return found


def answer_problems(answers: dict[str, list[int]]) -> dict[str, list[int]]:
    """Deliveries not stored by exactly one web process (202) with every repeat acknowledged (200)."""
    return {i: codes for i, codes in answers.items() if sorted(codes, reverse=True) != [202] + [200] * (len(codes) - 1)}


def ledger_problems(engine: sa.Engine) -> list[str]:
    """Every issue opened is in the ledger once, and the rollups add up to the ledger."""
    with engine.connect() as conn:
        opened = conn.execute(
            sa.select(sa.func.count()).select_from(contributions).where(contributions.c.kind == kinds.ISSUE_OPENED)
        ).scalar_one()
        by_day = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(actor_days.c.issues_opened), 0))).scalar_one()
        by_week = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(weekly.c.issues_opened), 0))).scalar_one()
        new = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(weekly.c.new), 0))).scalar_one()
    return [
        f"{name}: {value}, ledger: {opened}"
        for name, value in (
            ("actor_days.issues_opened", by_day),
            ("weekly.issues_opened", by_week),
            ("weekly.new", new),
        )
        if value != opened
    ]


def check_exactly_once(
    cluster: Cluster, engine: sa.Engine, fake: FakeGitHub, burst: list[Delivery], writes_before: int
) -> None:
    ids = [d.id for d in burst]
    assert Counter(statuses(engine, ids).values()) == {"done": len(burst)}
    assert {i: workers for i, workers in processed_by(cluster, burst).items() if len(workers) != 1} == {}
    assert handler_problems(engine, ids) == {}
    assert comment_problems(fake, burst) == {}
    with engine.connect() as conn:
        in_ledger = conn.execute(
            sa.select(sa.func.count())
            .select_from(contributions)
            .where(contributions.c.kind == kinds.ISSUE_OPENED, contributions.c.number.in_([d.number for d in burst]))
        ).scalar_one()
    assert in_ledger == len(burst)
    assert ledger_problems(engine) == []
    assert len(fake.writes()) == writes_before + 2 * len(burst)  # an ack and a greeting each, nothing more
    fake.assert_no_violations()


def holder(cluster: Cluster, engine: sa.Engine, delivery: Delivery) -> Process:
    """The worker process in the middle of processing `delivery` (waits until one is)."""
    end = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < end:
        if statuses(engine, [delivery.id]).get(delivery.id) == "processing":
            for worker in Worker.all(connection=cluster.redis, serializer=JSONSerializer):
                job = worker.get_current_job()
                if job is not None and delivery.id in json.dumps(job.args):
                    return next(p for p in cluster.live_workers() if p.pid == worker.pid)
        time.sleep(0.01)
    raise AssertionError(f"no worker took {delivery.id}: {stuck(engine, cluster, [delivery.id])}")


# --- the tests


def test_a_burst_across_two_web_processes_and_two_workers_is_processed_exactly_once(
    cluster: Cluster, fake: FakeGitHub, engine: sa.Engine
) -> None:
    burst = newcomer_issues(fake, 1000, BURST)
    writes_before = len(fake.writes())
    started = time.monotonic()
    answers = send_all(plan(cluster, burst, seed=1))
    sent = time.monotonic()
    wait_until_final(engine, cluster, [d.id for d in burst])
    print(f"{BURST} deliveries sent in {sent - started:.1f} s, done {time.monotonic() - started:.1f} s after the first")

    assert sum(len(codes) > 1 for codes in answers.values()) > 0  # some were redelivered
    assert answer_problems(answers) == {}
    check_exactly_once(cluster, engine, fake, burst, writes_before)
    took_part = {worker for workers in processed_by(cluster, burst).values() for worker in workers}
    assert took_part == {"worker1", "worker2"}


def test_a_worker_killed_mid_burst_loses_nothing_and_repeats_nothing(
    cluster: Cluster, fake: FakeGitHub, engine: sa.Engine
) -> None:
    while len(cluster.live_workers()) < 2:
        cluster.start_worker()
    writes_before = len(fake.writes())
    burst = newcomer_issues(fake, 5000, BURST)
    ids = [d.id for d in burst]
    sends = plan(cluster, burst, seed=2)
    # The delivery sent a fifth of the way through waits on GitHub for a while (the greeting's look
    # for an earlier comment, under the client's timeout), so the worker processing it is caught mid-job.
    target = sends[len(sends) // 5][1]
    fake.delay_next("GET", rf"/issues/{target.number}/comments$", seconds=HOLD_SECONDS)
    with ThreadPoolExecutor(1) as background:
        sending = background.submit(send_all, sends)
        holder(cluster, engine, target).kill()
        killed_at = time.monotonic()
        answers = sending.result()
    wait_until_final(engine, cluster, ids)
    print(f"after the kill, the rest took {time.monotonic() - killed_at:.1f} s")

    assert answer_problems(answers) == {}
    check_exactly_once(cluster, engine, fake, burst, writes_before)
