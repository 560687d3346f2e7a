"""Processing one stored delivery: claim it, run its handlers in isolation, record the outcome.

`process_delivery` is the RQ job: a module-level function taking only the delivery id, safe to run
twice (the claim lets one run through; handlers already settled are not run again on a retry).
"""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import redis
from sqlalchemy.exc import OperationalError

from githubapp.errors import TransientError, WritesThrottled
from storage.db import utcnow
from storage.deliveries import DONE, FAILED, IGNORED, RETRYING
from webhooks.context import Context, DeliveryLogger, log_fields
from webhooks.event import Event

if TYPE_CHECKING:
    from services import Services
    from webhooks.router import Handler

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 3600.0
# Failures of our own infrastructure mid-job are as transient as GitHub's 5xx.
TRANSIENT = (TransientError, redis.ConnectionError, redis.TimeoutError, OperationalError)


def process_delivery(delivery_id: str) -> str:
    """RQ entry point."""
    from services import current

    return process(current(), delivery_id)


def process_deliveries(delivery_ids: list[str]) -> list[str]:
    """RQ entry point for a batch of new deliveries; each is processed on its own, as above."""
    from services import current

    services = current()
    outcomes = []
    for delivery_id in delivery_ids:
        try:
            outcomes.append(process(services, delivery_id))
        except Exception:
            # Left pending or processing: the sweeper dispatches it again. The others go on.
            log.exception("delivery processing crashed", extra={"delivery_id": delivery_id})
            outcomes.append("crashed")
    return outcomes


def process(services: Services, delivery_id: str) -> str:
    """Run the delivery's handlers once; returns the delivery's new status (or 'skipped')."""
    started = time.monotonic()
    delivery = services.store.claim(delivery_id)
    if delivery is None:
        log.debug("skipped: delivery already processed or in progress", extra={"delivery_id": delivery_id})
        return "skipped"
    event = Event(delivery.id, delivery.event, delivery.payload)
    fields = log_fields(event, attempt=delivery.attempts)
    handlers, reason = services.router.route(event)
    if reason:
        services.store.finish(delivery_id, IGNORED, reason)
        log.debug("ignored: %s", reason, extra=fields)
        return IGNORED
    # Only a retry can find handlers that already ran (the first claim makes attempts 1).
    settled = services.store.handlers_settled(delivery_id) if delivery.attempts > 1 else set()
    outcomes: dict[str, Outcome] = {}
    transient: list[Exception] = []
    shared: dict[str, Any] = {}
    for handler in handlers:
        if handler.name not in settled:
            outcome = _run_handler(services, event, handler, fields, shared)
            if isinstance(outcome, Exception):
                transient.append(outcome)
            else:
                outcomes[handler.name] = outcome
    status = _finish(services, delivery_id, delivery.attempts, transient, outcomes)
    log.info(
        "delivery processed",
        extra={**fields, "outcome": status, "duration_ms": round((time.monotonic() - started) * 1000, 1)},
    )
    return status


Outcome = tuple[str, "str | None"]  # (done | skipped | failed, error)


def _run_handler(
    services: Services, event: Event, handler: Handler, fields: dict[str, Any], shared: dict[str, Any]
) -> Outcome | Exception:
    """Run one handler, isolated: its failure is returned, never raised, so the others still run."""
    hlog = DeliveryLogger(log, {**fields, "handler": handler.name})
    if handler.needs_installation and event.installation_id is None:
        hlog.info("skipped: delivery has no installation, so GitHub cannot be called")
        return ("skipped", "no installation in payload")
    try:
        handler.fn(Context(event, services, hlog, shared))
    except TRANSIENT as exc:
        hlog.warning("handler hit a transient failure; will retry", extra={"error": str(exc)})
        return exc
    except Exception as exc:
        hlog.exception("handler failed", extra={"error": repr(exc)})
        return (FAILED, repr(exc)[:2000])
    return (DONE, None)


def backoff_seconds(attempt: int, base: float, retry_after: float | None) -> float:
    """Exponential backoff with jitter, never sooner than GitHub's own Retry-After."""
    delay = min(MAX_BACKOFF_SECONDS, base * 2.0 ** max(0, attempt - 1)) * random.uniform(0.8, 1.2)
    return max(delay, retry_after or 0.0)


def _finish(
    services: Services, delivery_id: str, attempts: int, transient: list[Exception], outcomes: dict[str, Outcome]
) -> str:
    """Record the delivery's status and its handlers' outcomes in one transaction."""
    store, config = services.store, services.settings
    failed = [name for name, (status, _) in outcomes.items() if status == FAILED]
    # Our own write pacing only postpones work: it must never use up a delivery's tries.
    paced_only = bool(transient) and all(isinstance(exc, WritesThrottled) for exc in transient)
    if transient and (attempts < config.max_attempts or paced_only):
        hint = max((getattr(exc, "retry_after", None) or 0.0) for exc in transient)
        # A paced delivery comes back when its write slot is near; failures back off exponentially.
        delay = (
            hint * random.uniform(1.0, 1.1)
            if paced_only
            else backoff_seconds(attempts, config.retry_base_seconds, hint)
        )
        store.finish(delivery_id, RETRYING, _describe(transient), utcnow() + timedelta(seconds=delay), outcomes)
        log.info("delivery will be retried", extra={"delivery_id": delivery_id, "retry_in": round(delay, 1)})
        services.dispatcher.dispatch(delivery_id, delay=delay, attempt=attempts)
        return RETRYING
    if transient or failed:
        errors = _describe(transient) + (f"; failed handlers: {', '.join(failed)}" if failed else "")
        store.finish(delivery_id, FAILED, errors.strip("; "), outcomes=outcomes)
        log.error("delivery failed", extra={"delivery_id": delivery_id, "error": errors})
        return FAILED
    store.finish(delivery_id, DONE, outcomes=outcomes)
    return DONE


def _describe(errors: list[Exception]) -> str:
    return "; ".join(f"{type(exc).__name__}: {exc}" for exc in errors)[:4000]
