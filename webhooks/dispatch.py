"""Hand stored deliveries to workers: RQ on Redis when configured, an in-process thread otherwise.

Dispatching never loses a delivery: the database row is written first, and whatever the queue
misses (Redis down, a crash between storing and enqueueing) the sweeper finds and dispatches later.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import hashlib
import logging
import os
import queue
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import redis
from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from storage.deliveries import FAILED, PENDING, DeliveryStore

log = logging.getLogger(__name__)

JOB_FUNCTION = "worker.process_delivery"
BATCH_FUNCTION = "worker.process_deliveries"
# New deliveries go to RQ in batches of up to this many: one job's bookkeeping serves them all under load,
# while a lone delivery leaves after at most BATCH_LINGER_SECONDS. A job costs a worker 3.6-4.2 ms of CPU
# besides its deliveries (bench/rq_job.py); at 5 ms a web process serving 150 deliveries a second sent
# batches of one or two. A longer batch gathers more of one person's deliveries, which its lanes keep in order
# (`worker.process_deliveries`). Figures in bench/README.md ("The batch linger, again").
MAX_BATCH = 25
BATCH_LINGER_SECONDS = 0.025
# How long RQ keeps a batch's job once it ran, and then lets Redis expire it. Not 0: RQ deletes a job with
# result_ttl 0 at once, reading its status from Redis four or five times to find its registries, one round
# trip each; left to expire, it costs three EXPIREs in the pipeline RQ sends anyway (a no-op job: 3.6-4.2
# against 4.6-5.4 ms of a SimpleWorker's CPU, bench/README.md). Its ids are new uuids, never queued again.
FINISHED_BATCH_TTL_SECONDS = 60
_SAFE_JOB_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
# After a failed enqueue, skip Redis for a moment so webhook answers stay fast while it is down.
BREAKER_SECONDS = 5.0
# RQ keeps a job that crashed (not a delivery that failed: those stay in the database) this long.
FAILED_JOB_TTL_SECONDS = 7 * 24 * 3600
# RQ's scheduler moves a due retry to the queue within a second or so. One this late has lost its scheduler:
# a Redis restart kills the worker's scheduler process, and RQ starts a new one only in its 10-minute upkeep.
SCHEDULER_LATE_SECONDS = 10.0
# A worker holding a batch says so in Redis every BATCH_HEARTBEAT_SECONDS (`RQDispatcher.holding`); a batch
# started longer ago than BATCH_LAPSE_SECONDS without a word as fresh lost its worker (killed, its machine gone),
# and the sweeper dispatches the deliveries it had not begun. RQ's own sign that a SimpleWorker's job was lost
# comes a minute after the job's whole timeout (JOB_TIMEOUT_SECONDS for each delivery of the batch), and the
# batch's markers held its deliveries until they expired (QUEUED_STALE_SECONDS, 15 minutes).
BATCH_HEARTBEAT_SECONDS = 5.0
BATCH_LAPSE_SECONDS = 20.0

# What dispatching did: a job was put in the queue (or scheduled, for a delayed retry), or a job for this
# attempt was waiting or running already. None: the queue cannot take it now.
ENQUEUED, ALREADY_QUEUED = "enqueued", "already queued"


class Dispatcher(Protocol):
    def dispatch(self, delivery_id: str, delay: float = 0, attempt: int = 0) -> str | None:
        """Queue the delivery's next attempt (`attempt` = attempts made so far): ENQUEUED or ALREADY_QUEUED;
        None when the queue cannot take it now (logged: the sweeper dispatches it later)."""

    def submit(self, delivery_id: str, lane: str | None = None) -> None:
        """Hand over a just-stored delivery without waiting (the webhook request path). Deliveries in the same
        `lane` (those about one author's issues and pull requests: `Event.lane`) are processed one after the
        other, in this order."""

    def queued(self, delivery_ids: list[str]) -> set[str]:
        """The subset known to be waiting in the queue already."""

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until this process has handed on (or processed) all it was given; for the CLI and tests."""

    def health(self) -> tuple[bool, str]: ...

    def close(self) -> None: ...


WILL_RUN = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED)


def _marker(delivery_id: str) -> str:
    return f"engage:queued:{delivery_id}"


def _alive(batch: str) -> str:
    return f"engage:batch-alive:{batch}"


def job_id(delivery_id: str, attempt: int) -> str:
    """One RQ job per attempt, so a retry queued from inside the running job never collides with it.

    RQ job ids allow only letters, digits, '_' and '-'; GitHub's GUIDs fit, anything else is hashed.
    """
    if not _SAFE_JOB_ID.fullmatch(delivery_id):
        delivery_id = "h" + hashlib.sha256(delivery_id.encode()).hexdigest()[:40]
    return f"delivery-{delivery_id}-{attempt}"


class RQDispatcher:
    def __init__(self, connection: redis.Redis, queue_name: str, job_timeout: int, marker_ttl: float = 900):
        self.queue = Queue(queue_name, connection=connection, serializer=JSONSerializer)
        # "In the queue" markers live in Redis beside the jobs: if Redis loses its data, both go together
        # and the sweeper dispatches the deliveries again. After marker_ttl it does so anyway.
        self.marker_ttl = int(marker_ttl)
        self.connection = connection
        self.job_timeout = job_timeout
        self._open_until = 0.0
        self._outbox: queue.Queue[tuple[str, str | None]] = queue.Queue()
        self._flusher: threading.Thread | None = None
        self._flusher_pid = 0
        self._lock = threading.Lock()
        self._held: set[str] = set()  # the batches this worker process is running (see `holding`)
        self._heart: threading.Thread | None = None
        self._heart_pid = 0

    def submit(self, delivery_id: str, lane: str | None = None) -> None:
        """Queue a new delivery from the webhook request: a background thread enqueues it (in a batch
        with whatever else arrived meanwhile), so the request answers without waiting for Redis."""
        self._outbox.put((delivery_id, lane))
        if self._flusher is None or self._flusher_pid != os.getpid() or not self._flusher.is_alive():
            with self._lock:  # (re)start after a fork: gunicorn --preload forks after create_app
                if self._flusher is None or self._flusher_pid != os.getpid() or not self._flusher.is_alive():
                    self._flusher_pid = os.getpid()
                    self._flusher = threading.Thread(target=self._flush_forever, name="engage-enqueue", daemon=True)
                    self._flusher.start()
                    atexit.register(self.flush)

    def _flush_forever(self) -> None:
        while True:
            batch = [self._outbox.get()]
            # Under load, linger a moment so one RQ job carries many deliveries; alone, a delivery
            # waits at most BATCH_LINGER_SECONDS.
            deadline = time.monotonic() + BATCH_LINGER_SECONDS
            while len(batch) < MAX_BATCH and (left := deadline - time.monotonic()) > 0:
                try:
                    batch.append(self._outbox.get(timeout=left))
                except queue.Empty:
                    break
            self._send_batch(batch)

    def flush(self, timeout: float = 5.0) -> None:
        """At exit: let the flusher hand over what is waiting (anything missed, the sweeper finds)."""
        if not self.wait_idle(timeout):
            log.warning("exiting with deliveries not yet queued; the sweeper will dispatch them")

    def _send_batch(self, batch: list[tuple[str, str | None]]) -> None:
        try:
            self._enqueue_batch([delivery_id for delivery_id, _ in batch], [lane for _, lane in batch])
        finally:
            for _ in batch:
                self._outbox.task_done()

    def _enqueue_batch(self, ids: list[str], lanes: list[str | None]) -> None:
        if time.monotonic() < self._open_until:
            return  # stored as pending: the sweeper dispatches them when Redis is back
        batch = f"batch-{uuid.uuid4().hex}"
        try:
            with self.connection.pipeline() as pipe:
                # A fresh job id per batch: these deliveries were stored a moment ago and never queued.
                self.queue.enqueue(
                    BATCH_FUNCTION,
                    ids,
                    lanes,
                    job_id=batch,
                    pipeline=pipe,
                    job_timeout=self.job_timeout * len(ids),
                    result_ttl=FINISHED_BATCH_TTL_SECONDS,
                    failure_ttl=FAILED_JOB_TTL_SECONDS,
                    description=f"{len(ids)} new deliveries",
                )
                for delivery_id in ids:
                    pipe.set(_marker(delivery_id), batch, ex=self.marker_ttl)
                pipe.execute()
        except Exception as exc:
            self._failed(exc, count=len(ids))

    def queued(self, delivery_ids: list[str]) -> set[str]:
        """Which of these deliveries sit in a batch that will still run (so the sweeper need not dispatch
        them). A batch whose worker died holds them no longer once its heartbeat lapses (BATCH_LAPSE_SECONDS)."""
        if not delivery_ids:
            return set()
        found = self.connection.mget([_marker(d) for d in delivery_ids])
        batches = {value.decode() if isinstance(value, bytes) else str(value) for value in found if value is not None}
        abandoned = set(StartedJobRegistry(queue=self.queue).get_expired_job_ids()) if batches else set()
        running = {batch for batch in batches if batch not in abandoned and self._batch_coming(batch)}
        return {
            d
            for d, value in zip(delivery_ids, found, strict=True)
            if value is not None and (value.decode() if isinstance(value, bytes) else str(value)) in running
        }

    def _batch_coming(self, batch: str) -> bool:
        try:
            job = Job.fetch(batch, connection=self.connection, serializer=JSONSerializer)
        except NoSuchJobError:
            return False
        status = job.get_status(refresh=False)
        if status != JobStatus.STARTED:
            return status in WILL_RUN
        started = job.started_at
        if started is not None and started.tzinfo is None:
            started = started.replace(tzinfo=UTC)  # RQ writes UTC
        if started is not None and datetime.now(UTC) - started < timedelta(seconds=BATCH_LAPSE_SECONDS):
            return True  # its first heartbeat may be on its way
        return bool(self.connection.exists(_alive(batch)))

    @contextlib.contextmanager
    def holding(self, batch: str) -> Iterator[None]:
        """While a worker runs `batch`: its heartbeat, which tells the sweeper the batch has not lost its worker.

        One thread per process beats for all the batches it holds, from BATCH_HEARTBEAT_SECONDS on: a batch done
        sooner (any batch but a stalled one) costs Redis nothing, its start time vouching for it meanwhile."""
        with self._lock:
            self._held.add(batch)
            if self._heart is None or self._heart_pid != os.getpid() or not self._heart.is_alive():
                self._heart_pid = os.getpid()
                self._heart = threading.Thread(target=self._beat_forever, name="engage-heartbeat", daemon=True)
                self._heart.start()
        try:
            yield
        finally:
            with self._lock:
                self._held.discard(batch)

    def _beat_forever(self) -> None:
        while True:
            time.sleep(BATCH_HEARTBEAT_SECONDS)
            with self._lock:
                held = list(self._held)
            if not held:
                continue
            try:
                with self.connection.pipeline(transaction=False) as pipe:
                    for batch in held:
                        pipe.set(_alive(batch), 1, px=int(BATCH_LAPSE_SECONDS * 1000))
                    pipe.execute()
            except redis.RedisError as exc:
                # Without Redis no sweeper can read it either; the next beat tries again.
                log.warning("batch heartbeat not sent", extra={"error": str(exc)})

    def dispatch(self, delivery_id: str, delay: float = 0, attempt: int = 0) -> str | None:
        if time.monotonic() < self._open_until:
            return None
        try:
            return self._enqueue(delivery_id, delay, job_id(delivery_id, attempt))
        except Exception as exc:
            self._failed(exc, delivery_id=delivery_id)
            return None

    def _failed(self, exc: Exception, **fields: Any) -> None:
        """The deliveries are stored: whatever went wrong here, the sweeper dispatches them later."""
        if isinstance(exc, redis.RedisError):
            self._open_until = time.monotonic() + BREAKER_SECONDS
            log.warning("queue unavailable; the sweeper will dispatch later", extra={**fields, "error": str(exc)})
        else:
            log.exception("enqueue failed; the sweeper will dispatch later", extra=fields)

    def _enqueue(self, delivery_id: str, delay: float, job: str) -> str:
        options = dict(
            job_id=job,
            unique=True,
            job_timeout=self.job_timeout,
            result_ttl=0,
            failure_ttl=FAILED_JOB_TTL_SECONDS,
            description=f"delivery {delivery_id}",
        )
        for _ in range(2):
            try:
                if delay > 0:
                    self.queue.enqueue_in(timedelta(seconds=delay), JOB_FUNCTION, delivery_id, **options)
                else:
                    self.queue.enqueue(JOB_FUNCTION, delivery_id, **options)
                return ENQUEUED
            except DuplicateJobError:
                if outcome := self._existing_job(job):
                    return outcome
        raise redis.RedisError(f"job {job} could not be replaced")

    def _existing_job(self, job_id: str) -> str | None:
        """ALREADY_QUEUED if the existing job will still run; ENQUEUED if it was a retry its scheduler
        missed, now moved to the queue; None if it never will (it is removed, so a new one can be queued)."""
        try:
            job = Job.fetch(job_id, connection=self.connection, serializer=JSONSerializer)
        except NoSuchJobError:
            return None
        status = job.get_status(refresh=False)
        if status == JobStatus.SCHEDULED:
            return self._queue_if_overdue(job)
        if status in WILL_RUN:
            return ALREADY_QUEUED
        job.delete()
        return None

    def _queue_if_overdue(self, job: Job) -> str:
        """Move a scheduled retry to the queue when its scheduler is gone (see SCHEDULER_LATE_SECONDS)."""
        registry = self.queue.scheduled_job_registry
        due_at = self.connection.zscore(registry.key, job.id)
        if due_at is not None and due_at > time.time() - SCHEDULER_LATE_SECONDS:
            return ALREADY_QUEUED  # its scheduler has time yet
        # Whoever takes the job off the schedule queues it. RQ's scheduler does both in one transaction, so a
        # job it queued meanwhile is not queued twice. (A job marked scheduled but on no schedule is queued.)
        if due_at is not None and not registry.remove(job):
            return ALREADY_QUEUED
        self.queue.enqueue_job(job)
        log.warning(
            "queued a retry %s after it was due: its RQ scheduler is gone",
            "on no schedule" if due_at is None else f"{time.time() - due_at:.0f} s",
            extra={"delivery_id": job.args[0] if job.args else None},
        )
        return ENQUEUED

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every submitted delivery was handed to Redis (for the CLI and tests)."""
        return _drained([self._outbox], timeout)

    def health(self) -> tuple[bool, str]:
        try:
            self.connection.ping()
            return True, f"redis ok, {self.queue.count} queued"
        except redis.RedisError as exc:
            return False, f"redis unreachable: {exc}"

    def close(self) -> None:
        self.connection.close()


class InlineDispatcher:
    """The embedded worker: `threads` daemon threads in this process, plus the periodic sweeper.

    Several threads, so a delivery waiting for GitHub (a greeting's two calls) does not hold up the
    deliveries behind it; the claim in `DeliveryStore` keeps any one delivery to one thread. Deliveries in one
    lane (about one author's issues and pull requests, `Event.lane`) are processed one after the other, in the
    order they came: a thread that takes one while another thread is busy with that lane leaves it to that
    thread, which processes it next; every other delivery goes to whichever thread is free.
    """

    def __init__(self, process: Callable[[str], object], sweep: Callable[[], int], sweep_interval: float, threads: int):
        self._process = process
        self._sweep = sweep
        self._sweep_interval = sweep_interval
        self._queue: queue.Queue[tuple[str, str | None] | None] = queue.Queue()
        self._waiting: set[str] = set()  # submitted, not yet being processed
        self._busy: dict[str, collections.deque[str]] = {}  # lane -> what waits for its thread, in order
        self._stop = threading.Event()
        self._workers = [
            threading.Thread(target=self._run, name=f"engage-worker-{n}", daemon=True) for n in range(1, threads + 1)
        ]
        self._sweeper = threading.Thread(target=self._sweep_loop, name="engage-sweeper", daemon=True)
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._started:
            return
        with self._lock:
            if not self._started:
                self._started = True
                for thread in self._workers:
                    thread.start()
                self._sweeper.start()

    def submit(self, delivery_id: str, lane: str | None = None) -> None:
        self.start()
        self._put(delivery_id, lane)

    def _put(self, delivery_id: str, lane: str | None = None) -> None:
        with self._lock:
            self._waiting.add(delivery_id)
        self._queue.put((delivery_id, lane))

    def queued(self, delivery_ids: list[str]) -> set[str]:
        """Those waiting here: the sweeper leaves them (dispatched again, one could overtake the deliveries
        ahead of it in its lane). The queue dies with the process, and so does this answer: after a
        restart the sweeper dispatches them all."""
        with self._lock:
            return self._waiting.intersection(delivery_ids)

    def dispatch(self, delivery_id: str, delay: float = 0, attempt: int = 0) -> str | None:
        self.start()
        if delay > 0:
            timer = threading.Timer(delay, self._put, args=(delivery_id,))
            timer.daemon = True
            timer.start()
        else:
            self._put(delivery_id)
        return ENQUEUED

    def _run(self) -> None:
        while not self._stop.is_set():
            entry = self._queue.get()
            if entry is None:
                self._queue.task_done()
                break
            delivery_id, lane = entry
            with self._lock:
                if lane is not None and lane in self._busy:
                    self._busy[lane].append(delivery_id)  # its thread processes it next; its task stays open
                    continue
                if lane is not None:
                    self._busy[lane] = collections.deque()
            current: str | None = delivery_id
            while current is not None:
                self._process_one(current)
                current = self._next_of(lane)

    def _next_of(self, lane: str | None) -> str | None:
        """The lane's next delivery, left here by other threads meanwhile; None frees the lane."""
        if lane is None:
            return None
        with self._lock:
            if self._busy[lane]:
                return self._busy[lane].popleft()
            del self._busy[lane]
            return None

    def _process_one(self, delivery_id: str) -> None:
        with self._lock:
            self._waiting.discard(delivery_id)
        try:
            self._process(delivery_id)
        except Exception:
            log.exception("delivery processing crashed; the sweeper will retry it", extra={"delivery_id": delivery_id})
        finally:
            self._queue.task_done()

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self._sweep_interval):
            try:
                self._sweep()
            except Exception:
                log.exception("sweep failed")

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued delivery was processed (for the CLI and tests)."""
        return _drained([self._queue], timeout)

    def health(self) -> tuple[bool, str]:
        if not self._started:
            return True, "embedded worker ok"
        alive = sum(thread.is_alive() for thread in self._workers)
        if alive == len(self._workers):
            return True, f"embedded worker ok, {alive} threads"
        return False, f"embedded worker: {len(self._workers) - alive} of {len(self._workers)} threads died"

    def close(self, timeout: float = 10.0) -> None:
        """Stop all threads, letting the deliveries and the sweep in progress finish first (their database
        work must end before the pool is closed). Deliveries still waiting in the queue stay pending in the
        database: the next start's sweeper dispatches them."""
        self._stop.set()
        if self._started:
            for _ in self._workers:
                self._queue.put(None)
            deadline = time.monotonic() + timeout
            for thread in (self._sweeper, *self._workers):
                if thread is not threading.current_thread():
                    thread.join(max(0.0, deadline - time.monotonic()))


def _drained(queues: Iterable[queue.Queue[Any]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(work.unfinished_tasks == 0 for work in queues):
            return True
        time.sleep(0.01)
    return False


def sweep(store: DeliveryStore, dispatcher: Dispatcher, grace_seconds: float) -> int:
    """Dispatch every delivery that should be moving and is not; returns how many were put in the queue.

    Due deliveries found waiting or running in the queue already are not counted: nothing was done for them.
    """
    due = store.due(grace_seconds)
    try:
        # Only deliveries nobody claimed can still be waiting in a batch; a claimed one whose lease
        # expired was held by a worker that died, whatever its batch's marker says.
        in_batches = dispatcher.queued([delivery_id for delivery_id, _, status in due if status == PENDING])
    except redis.RedisError:
        return 0  # the queue is down; the next sweep tries again
    outcomes: Counter[str] = Counter()
    for delivery_id, attempts, _ in due:
        outcome = ALREADY_QUEUED if delivery_id in in_batches else dispatcher.dispatch(delivery_id, attempt=attempts)
        if outcome is None:
            break
        outcomes[outcome] += 1
    enqueued, waiting = outcomes[ENQUEUED], outcomes[ALREADY_QUEUED]
    left = len(due) - enqueued - waiting
    if enqueued or left:
        log.info(
            "sweeper queued %d due deliveries (%d were queued or running already, %d left for the next sweep)",
            enqueued,
            waiting,
            left,
            extra={"count": enqueued},
        )
    elif waiting:
        log.debug("sweeper found all %d due deliveries queued or running already", waiting)
    return enqueued


# What `retry` did with each delivery.
REQUEUED, STRANDED, NOT_FAILED = "requeued", "stranded", "not failed"


def failed_delivery_ids(store: DeliveryStore, limit: int = 10_000) -> list[str]:
    """The failed deliveries, newest first: what "retry all failed" retries."""
    return [delivery.id for delivery in store.list([FAILED], limit=limit)]


def retry(store: DeliveryStore, dispatcher: Dispatcher, delivery_ids: Iterable[str]) -> list[tuple[str, str]]:
    """Put failed deliveries back in the queue (`deliveries retry` and the operator page's buttons).

    Each id's outcome: `requeued`; `stranded` when the queue cannot take it now (it waits as pending and the
    sweeper dispatches it); `not failed` when it was not failed, and is left alone. Handlers that succeeded
    before are not run again.
    """
    outcomes = []
    for delivery_id in delivery_ids:
        if not store.requeue(delivery_id):
            outcomes.append((delivery_id, NOT_FAILED))
            continue
        queued = dispatcher.dispatch(delivery_id)  # requeue reset attempts to 0
        outcomes.append((delivery_id, REQUEUED if queued else STRANDED))
    return outcomes
