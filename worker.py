"""RQ entry points, beside the composition root: module-level functions that take plain values.

RQ imports them by name in the worker process, which builds its Services from the environment once.
"""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from rq import get_current_job

import services as services_module
from webhooks.dispatch import RQDispatcher
from webhooks.jobs import process

log = logging.getLogger(__name__)


def run_task(name: str, period: str) -> str:
    """Run a scheduled task for its period, if no other worker has (see scheduling.runner)."""
    outcome = services_module.current().tasks.run(name, datetime.fromisoformat(period))
    return outcome.result


def process_delivery(delivery_id: str) -> str:
    """One delivery (a retry, or one the sweeper dispatched)."""
    services = services_module.current()
    try:
        return process(services, delivery_id)
    finally:
        services.metrics.flush()  # now: a forking RQ worker's job process exits before the background flush


def process_deliveries(delivery_ids: list[str], lanes: list[str | None] | None = None) -> list[str]:
    """A batch of new deliveries, up to WORKER_THREADS at once (each mostly waits for GitHub), each processed
    on its own: one crashing leaves the others be. Deliveries in the same lane (`lanes`, as the intake saw
    them: `Event.lane`; a batch queued by an older version holds items, `owner/repo#number`, or none) run one
    after the other, in the batch's order. The outcomes are in the batch's order."""
    services = services_module.current()
    in_order: dict[str, list[int]] = {}  # lane (or the delivery's own place) -> its deliveries' places
    for place, lane in enumerate(lanes or [None] * len(delivery_ids)):
        in_order.setdefault(lane if lane is not None else f"#{place}", []).append(place)
    outcomes = [""] * len(delivery_ids)

    def run(places: list[int]) -> None:
        for place in places:
            outcomes[place] = _process_one(services, delivery_ids[place])

    threads = min(services.settings.worker_threads, len(in_order))
    job, dispatcher = get_current_job(), services.dispatcher
    held = dispatcher.holding(job.id) if job and isinstance(dispatcher, RQDispatcher) else contextlib.nullcontext()
    # The batch's heartbeat: a worker killed mid-batch leaves the deliveries it had not begun to the sweeper.
    try:
        with held:
            if threads <= 1:
                for places in in_order.values():
                    run(places)
            else:
                with ThreadPoolExecutor(threads, thread_name_prefix="engage-batch") as pool:
                    list(pool.map(run, in_order.values()))
    finally:
        services.metrics.flush()
    return outcomes


def _process_one(services: services_module.Services, delivery_id: str) -> str:
    try:
        with services.turn.taken():  # one delivery computes at a time; one waiting for GitHub gives way
            return process(services, delivery_id)
    except Exception:
        # Left pending or processing: the sweeper dispatches it again.
        log.exception("delivery processing crashed", extra={"delivery_id": delivery_id})
        return "crashed"
