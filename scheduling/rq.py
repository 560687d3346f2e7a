"""Scheduled tasks on RQ: a due period becomes one job, named by task and period so RQ refuses a second."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

import redis
from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

log = logging.getLogger(__name__)

TASK_FUNCTION = "worker.run_task"
WILL_RUN = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED)
FAILED_JOB_TTL_SECONDS = 7 * 24 * 3600


def task_job_id(name: str, period: datetime) -> str:
    """RQ allows letters, digits, '_' and '-' in job ids; task names have dots."""
    digest = hashlib.sha256(f"{name}@{period.isoformat()}".encode()).hexdigest()[:32]
    return f"task-{digest}"


def enqueue_task(queue: Queue, name: str, period: datetime, job_timeout: int) -> bool:
    """Queue `name` for `period` unless a job for it is waiting or running; False when nothing was queued."""
    job_id = task_job_id(name, period)
    try:
        for _ in range(2):
            try:
                queue.enqueue(
                    TASK_FUNCTION,
                    name,
                    period.isoformat(),
                    job_id=job_id,
                    unique=True,
                    job_timeout=job_timeout,
                    result_ttl=0,
                    failure_ttl=FAILED_JOB_TTL_SECONDS,
                    description=f"scheduled task {name} for {period.isoformat()}",
                )
                return True
            except DuplicateJobError:
                try:
                    job = Job.fetch(job_id, connection=queue.connection, serializer=queue.serializer)
                except NoSuchJobError:
                    continue
                if job.get_status(refresh=False) in WILL_RUN:
                    return False
                job.delete()  # a crashed try of this period: the claim in the database says whether to run again
    except redis.RedisError as exc:
        log.warning("queue unavailable; the next tick queues the task", extra={"task": name, "error": str(exc)})
    return False
