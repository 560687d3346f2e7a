"""What one RQ job costs a SimpleWorker besides its function: a no-op job kept 0 s (RQ deletes it at once)
against one kept FINISHED_BATCH_TTL_SECONDS (left to expire), as the intake's batches are.

The rq layout runs every new delivery in a batch job (`worker.process_deliveries`), so this cost is paid once
per batch. Prints wall time and this process's CPU per job, best of `--rounds`:

    .venv/bin/python bench/rq_job.py
    .venv/bin/python bench/rq_job.py --redis-url redis://127.0.0.1:6379/6 --jobs 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from webhooks.dispatch import FINISHED_BATCH_TTL_SECONDS


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def one_round(connection: redis.Redis, result_ttl: int, jobs: int) -> tuple[float, float]:
    """(wall ms, CPU ms) per job for a worker running `jobs` no-op jobs in a burst."""
    connection.flushdb()
    queue = Queue("bench-rq-job", connection=connection, serializer=JSONSerializer)
    for _ in range(jobs):
        queue.enqueue("bench.noop.noop", "x", job_id=f"noop-{uuid.uuid4().hex}", result_ttl=result_ttl)
    worker = SimpleWorker([queue], connection=connection, serializer=JSONSerializer)
    started, cpu = time.perf_counter(), cpu_seconds()
    worker.work(burst=True, logging_level="WARNING")
    return (time.perf_counter() - started) * 1000 / jobs, (cpu_seconds() - cpu) * 1000 / jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/6", help="a database this flushes")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    connection = redis.Redis.from_url(args.redis_url)
    print("result_ttl   wall ms/job   CPU ms/job")
    for ttl in (0, FINISHED_BATCH_TTL_SECONDS):
        rounds = [one_round(connection, ttl, args.jobs) for _ in range(args.rounds)]
        print(f"{ttl:10d}   {min(r[0] for r in rounds):11.3f}   {min(r[1] for r in rounds):10.3f}")
    connection.flushdb()


if __name__ == "__main__":
    main()
