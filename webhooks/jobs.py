"""Processing one stored delivery: claim it, run its handlers in isolation, record the outcome.

Safe to run twice: the claim lets one run through, and handlers already settled are not run again on a
retry. The RQ jobs that call it (`worker.process_delivery`) live beside the composition root.
"""

from __future__ import annotations

import logging
import random
import re
import sys
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

import redis
from sqlalchemy.exc import OperationalError

from githubapp.errors import Forbidden, NotFound, TransientError, WritesThrottled
from ops import metrics
from storage.db import one_connection, utcnow
from storage.deliveries import DONE, FAILED, IGNORED, RETRYING
from webhooks.context import Context, DeliveryLogger, Stores, log_fields
from webhooks.event import Event

if TYPE_CHECKING:
    from githubapp.client import GitHubApp
    from ops.metrics import Recorder
    from settings import Settings
    from storage.deliveries import Delivery, DeliveryStore
    from webhooks.dispatch import Dispatcher
    from webhooks.router import Handler, Router


class Pipeline(Protocol):
    """What processing a delivery uses of the app (Services provides it)."""

    settings: Settings
    store: DeliveryStore
    router: Router
    github: GitHubApp
    dispatcher: Dispatcher
    metrics: Recorder
    stores: Stores

    @property
    def configurable(self) -> list[Any]: ...


log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 3600.0
# Failures of our own infrastructure mid-job are as transient as GitHub's 5xx.
TRANSIENT = (TransientError, redis.ConnectionError, redis.TimeoutError, OperationalError)
# Events about the installation itself are processed whatever its state (they are what changes it).
LIFECYCLE_EVENTS = ("installation", "installation_repositories")
_TOKEN_PATH = re.compile(r"/app/installations/\d+/access_tokens")


class InstallationGone(Exception):
    """GitHub refused the installation a token: uninstalled or suspended. The delivery ends `ignored`."""


def process(services: Pipeline, delivery_id: str) -> str:
    """Run the delivery's handlers once; returns the delivery's new status (or 'skipped').

    Its dozen short transactions (the claim, each handler's reads and writes, the outcome) share one
    database connection instead of taking one from the pool each (`storage.db.one_connection`)."""
    with one_connection(services.store.engine):
        return _process(services, delivery_id)


def _process(services: Pipeline, delivery_id: str) -> str:
    started = time.monotonic()
    delivery = services.store.claim(delivery_id)
    if delivery is None:
        log.debug("skipped: delivery already processed or in progress", extra={"delivery_id": delivery_id})
        return "skipped"
    event = Event(delivery.id, delivery.event, delivery.payload)
    fields = log_fields(event, attempt=delivery.attempts)
    handlers, reason = services.router.route(event)
    reason = reason or _installation_gone(event, delivery.installation_state)
    if reason:
        services.store.finish(delivery_id, IGNORED, reason)
        log.info("ignored: %s", reason, extra={**fields, "outcome": IGNORED})
        _measure(services, event, IGNORED, started)
        return IGNORED
    # Only a retry can find handlers that already ran: a later attempt, or a failed delivery an operator
    # queued again (its attempts start over from 0, its last error stays).
    retried = delivery.attempts > 1 or delivery.last_error is not None
    settled = services.store.handlers_settled(delivery_id) if retried else set()
    outcomes: dict[str, Outcome] = {}
    transient: list[Exception] = []
    shared: dict[str, Any] = {}
    took: dict[str, float] = {}  # each handler run: its milliseconds, for the delivery's one line
    configurable = services.configurable  # the sections as this process checks them, handed to each handler
    for handler in handlers:
        if handler.name not in settled:
            outcome = _run_handler(services, event, handler, fields, shared, configurable, took)
            if isinstance(outcome, Exception):
                transient.append(outcome)
            else:
                outcomes[handler.name] = outcome
    status = _finish(services, delivery_id, delivery.attempts, transient, outcomes, retried)
    _measure(services, event, status, started)
    log.info("delivery processed", extra={**fields, "outcome": status, "handlers": took, **_took(started)})
    return status


def _measure(services: Pipeline, event: Event, status: str, started: float) -> None:
    labels = {"event": metrics.event_label(event.name)}
    services.metrics.inc(metrics.PROCESSED, {**labels, "outcome": status})
    services.metrics.observe(metrics.JOB_DURATION, labels, time.monotonic() - started)


Outcome = tuple[str, "str | None"]  # (done | skipped | failed, error)


def _run_handler(
    services: Pipeline,
    event: Event,
    handler: Handler,
    fields: dict[str, Any],
    shared: dict[str, Any],
    configurable: list[Any],
    took: dict[str, float],
) -> Outcome | Exception:
    """Run one handler, isolated: its failure is returned, never raised, so the others still run.

    Each handler run adds its time to `took`, which the delivery's "delivery processed" line carries: one line
    per delivery at INFO, not one per handler (a comment's nine made eleven lines, and a third of its
    processing). A handler that fails, stops or is skipped still logs its own line; DEBUG logs every one."""
    hlog = DeliveryLogger(log, {**fields, "handler": handler.name, "behaviour": _behaviour(handler)})
    if handler.needs_installation and event.installation_id is None:
        hlog.info("skipped: delivery has no installation, so GitHub cannot be called", extra={"outcome": "skipped"})
        return ("skipped", "no installation in payload")
    started = time.monotonic()
    try:
        handler.fn(
            Context(
                event,
                hlog,
                services.stores,
                services.github.installation,
                services.github.files,
                configurable,
                services.github.dry_run,
                shared,
            )
        )
    except TRANSIENT as exc:
        hlog.warning("handler hit a transient failure; will retry", extra={"error": str(exc), **_took(started)})
        return exc
    except Exception as exc:
        if gone := _token_refused(exc):
            hlog.info("handler stopped: %s", gone, extra={"outcome": IGNORED, **_took(started)})
            return InstallationGone(gone)
        hlog.exception("handler failed", extra={"error": repr(exc), "outcome": FAILED, **_took(started)})
        return (FAILED, repr(exc)[:2000])
    finally:
        services.metrics.observe(metrics.HANDLER_DURATION, {"handler": handler.name}, time.monotonic() - started)
        took[handler.name] = _ms(started)
    hlog.debug("handler done", extra={"outcome": DONE, "duration_ms": took[handler.name]})
    return (DONE, None)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def _took(started: float) -> dict[str, float]:
    return {"duration_ms": _ms(started)}


def _behaviour(handler: Handler) -> str:
    """The behaviour module's NAME (`thanks`) for log lines; handler names start with it by convention."""
    return str(getattr(sys.modules.get(handler.fn.__module__), "NAME", handler.name.split(".", 1)[0]))


def _installation_gone(event: Event, state: str | None) -> str | None:
    """Work still queued for an installation that was deleted or suspended meanwhile is dropped (its
    state is read by the claim)."""
    if state is None or event.name in LIFECYCLE_EVENTS:
        return None
    return f"installation {state}"


def _token_refused(exc: Exception) -> str | None:
    """Why GitHub refused the installation a token, when that means it was deleted or suspended (the
    event saying so may not have been processed yet); None for any other failure."""
    if not isinstance(exc, NotFound | Forbidden) or not _TOKEN_PATH.fullmatch(exc.path):
        return None
    if isinstance(exc, NotFound):
        return f"installation removed (GitHub: {exc})"
    return f"installation suspended (GitHub: {exc})" if "suspend" in exc.message.lower() else None


def backoff_seconds(attempt: int, base: float, retry_after: float | None) -> float:
    """Exponential backoff with jitter, never sooner than GitHub's own Retry-After."""
    delay = min(MAX_BACKOFF_SECONDS, base * 2.0 ** max(0, attempt - 1)) * random.uniform(0.8, 1.2)
    return max(delay, retry_after or 0.0)


def _finish(
    services: Pipeline,
    delivery_id: str,
    attempts: int,
    transient: list[Exception],
    outcomes: dict[str, Outcome],
    retried: bool,
) -> str:
    """Record the delivery's status and its handlers' outcomes in one transaction."""
    store, config = services.store, services.settings
    gone = next((exc for exc in transient if isinstance(exc, InstallationGone)), None)
    if gone is not None:
        store.finish(delivery_id, IGNORED, str(gone), outcomes=outcomes)
        return IGNORED
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
    # A first attempt that ends done stores only the outcomes that say something (a skip and its reason): a
    # done delivery is never run again, so nothing needs to know which handlers ran, and `handler_outcomes`
    # lists the routed ones as done. A comment's nine rows were half of its finish's cost (130 µs,
    # bench/README.md). A retry stores them all: they replace what its earlier attempts stored.
    store.finish(delivery_id, DONE, outcomes=outcomes if retried else _notable(outcomes))
    return DONE


def _notable(outcomes: dict[str, Outcome]) -> dict[str, Outcome]:
    return {name: outcome for name, outcome in outcomes.items() if outcome != (DONE, None)}


def handler_outcomes(services: Pipeline, delivery: Delivery) -> dict[str, Outcome]:
    """Each routed handler's outcome, for operators (`deliveries show`, `replay`): as stored, and for a done
    delivery the handlers that simply ran (its first attempt stores none of them: `_finish`)."""
    stored = services.store.handler_outcomes(delivery.id)
    if delivery.status != DONE:
        return stored
    handlers, _ = services.router.route(Event(delivery.id, delivery.event, delivery.payload))
    return {handler.name: stored.get(handler.name, (DONE, None)) for handler in handlers} | stored


def _describe(errors: list[Exception]) -> str:
    return "; ".join(f"{type(exc).__name__}: {exc}" for exc in errors)[:4000]
