"""The database, the deliveries and the worker: `db`, `replay`, `deliveries`, `sweep`, `worker`."""

from __future__ import annotations

import json
import logging
import sys
import threading
import uuid
from pathlib import Path

import click
from flask.cli import AppGroup

from cli.common import drain, services_of
from logs import scrub
from storage import db as storage_db
from storage.deliveries import DONE, FAILED, IGNORED, PENDING, PROCESSING, RETRYING, STATUSES, DeliveryStore
from storage.retention import FAILED_RETENTION_FACTOR, prune
from webhooks.dispatch import NOT_FAILED, STRANDED, failed_delivery_ids, retry
from webhooks.event import MalformedEvent, parse
from webhooks.intake import accept
from webhooks.jobs import handler_outcomes, process

log = logging.getLogger(__name__)


db_cli = AppGroup("db", help="Database schema.")
deliveries_cli = AppGroup("deliveries", help="Inspect and retry stored webhook deliveries.")


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations (run on release for PostgreSQL)."""
    applied = storage_db.migrate(services_of().store.engine)
    click.echo(f"applied migrations {applied}" if applied else "database schema is up to date")


@db_cli.command("status")
def db_status() -> None:
    pending = storage_db.pending_migrations(services_of().store.engine)
    click.echo(f"pending migrations: {pending}" if pending else "database schema is up to date")
    sys.exit(1 if pending else 0)


@click.command("replay")
@click.argument("payload", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--event", "event_name", required=True, help="The X-GitHub-Event name, e.g. issues.")
@click.option("--delivery-id", default=None, help="Defaults to a new random id.")
def replay(payload: Path, event_name: str, delivery_id: str | None) -> None:
    """Run one payload through the real pipeline (store, route, handlers), like `probot receive`."""
    services = services_of()
    body = payload.read_bytes()
    try:
        event = parse(delivery_id or f"replay-{uuid.uuid4()}", event_name, body)
    except MalformedEvent as exc:
        raise click.ClickException(f"{payload}: {exc}") from exc
    new, status = accept(services, event, body.decode("utf-8"))
    if not new:
        raise click.ClickException(f"delivery {event.delivery_id} was stored before; pass another --delivery-id")
    if status == PENDING:
        status = process(services, event.delivery_id)
    delivery = services.store.get(event.delivery_id)
    click.echo(
        f"{event.delivery_id} {event.key}: {status}"
        + (f" ({delivery.last_error})" if delivery and delivery.last_error else "")
    )
    for handler, (outcome, error) in (handler_outcomes(services, delivery) if delivery else {}).items():
        click.echo(f"  {handler}: {outcome}" + (f" - {error}" if error else ""))
    if status == FAILED:
        sys.exit(1)


ERROR_SHOWN = 300  # characters of an error on a listing's line; `deliveries show ID` has all of it


def one_line(error: str) -> str:
    """An error on one line of a listing, scrubbed, cut at ERROR_SHOWN characters."""
    text = " ".join(scrub(error).split())
    return text if len(text) <= ERROR_SHOWN else text[: ERROR_SHOWN - 1] + "…"


@deliveries_cli.command("list")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Repeatable.")
@click.option("--limit", default=50, show_default=True)
def deliveries_list(statuses: tuple[str, ...], limit: int) -> None:
    """Recent deliveries, newest first; `--status failed` for the ones that need attention, with the error
    (each failed handler's own error on the lines below its delivery)."""
    store = services_of().store
    rows = store.list(statuses, limit)
    handler_errors = store.failed_handlers([d.id for d in rows])
    for d in rows:
        click.echo(
            f"{d.received_at:%Y-%m-%d %H:%M:%S}  {d.id}  {d.name:<32} {d.repository or '-':<30} "
            f"{d.status:<10} attempts={d.attempts}" + (f"  {one_line(d.last_error)}" if d.last_error else "")
        )
        for handler, error in handler_errors.get(d.id, []):
            click.echo(f"    {handler}: {one_line(error or 'failed (no error recorded)')}")
    if not rows:
        click.echo("no deliveries")


@deliveries_cli.command("show")
@click.argument("delivery_id")
def deliveries_show(delivery_id: str) -> None:
    services = services_of()
    d = services.store.get(delivery_id)
    if d is None:
        raise click.ClickException(f"no delivery {delivery_id}")
    click.echo(
        json.dumps(
            {
                "id": d.id,
                "event": d.name,
                "repository": d.repository,
                "status": d.status,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "received_at": str(d.received_at),
                "handlers": handler_outcomes(services, d),
            },
            indent=2,
        )
    )


@deliveries_cli.command("retry")
@click.argument("delivery_ids", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Retry every failed delivery.")
def deliveries_retry(delivery_ids: tuple[str, ...], all_failed: bool) -> None:
    """Put failed deliveries back in the queue; handlers that succeeded before are not run again.

    Without Redis the embedded worker runs them in this process before the command ends, so what it prints
    is how each ended (and it exits 1 when one failed again); with Redis a worker takes them: "requeued".
    """
    services = services_of()
    ids = list(delivery_ids) + (failed_delivery_ids(services.store) if all_failed else [])
    if not ids:
        raise click.UsageError("name delivery ids or pass --all-failed")
    outcomes = retry(services.store, services.dispatcher, ids)
    drain(services)
    failed_again = False
    for delivery_id, outcome in outcomes:
        if outcome == NOT_FAILED:
            click.echo(f"{delivery_id}: not failed, left alone")
        elif outcome == STRANDED:
            click.echo(f"{delivery_id}: requeued (queue down: the sweeper will dispatch it)")
        else:
            line, failed = _after_retry(services.store, delivery_id)
            failed_again = failed_again or failed
            click.echo(line)
    if failed_again:
        sys.exit(1)


def _after_retry(store: DeliveryStore, delivery_id: str) -> tuple[str, bool]:
    """What became of a requeued delivery once this process went idle: (the line to print, failed again)."""
    delivery = store.get(delivery_id)
    status = delivery.status if delivery else None
    if status in (PENDING, PROCESSING, None):
        return f"{delivery_id}: requeued (a worker will run it)", False
    assert delivery is not None
    if status in (DONE, IGNORED):
        return f"{delivery_id}: retried here: {status}", False
    error = one_line(delivery.last_error or "")
    handlers = "".join(
        f"\n    {handler}: {one_line(text or 'failed (no error recorded)')}"
        for handler, text in store.failed_handlers([delivery_id]).get(delivery_id, [])
    )
    if status == RETRYING:
        when = f"after {delivery.next_attempt_at:%H:%M:%S} UTC " if delivery.next_attempt_at else ""
        line = f"{delivery_id}: retried here, hit a transient error; the sweeper tries again {when}({error})"
        return line + handlers, False
    return f"{delivery_id}: retried here and FAILED again: {error}{handlers}", True


@deliveries_cli.command("prune")
@click.option("--days", type=click.IntRange(min=1), default=None, help="Default: PAYLOAD_RETENTION_DAYS.")
def deliveries_prune(days: int | None) -> None:
    """Delete old deliveries now: done and ignored ones after --days, failed ones after 4x as long.

    The ledger keeps every contribution; the sweeper does the same once an hour by itself.
    """
    services = services_of()
    days = days or services.settings.payload_retention_days
    if not days:
        raise click.ClickException("PAYLOAD_RETENTION_DAYS=0 keeps payloads forever; pass --days N to prune once")
    pruned = prune(services.store.engine, days)
    click.echo(
        f"pruned {pruned.finished} done or ignored deliveries older than {days} days "
        f"and {pruned.failed} failed ones older than {days * FAILED_RETENTION_FACTOR} days"
    )


@click.command("sweep")
def sweep_command() -> None:
    """Dispatch stranded pending deliveries and due retries once."""
    services = services_of()
    click.echo(f"dispatched {services.sweep()} deliveries")
    drain(services)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker_command(burst: bool) -> None:
    """An RQ worker on the app's queue, with RQ's scheduler (for retries) and the scheduled tasks (the sweeper)."""
    services = services_of()
    if services.redis is None:
        raise click.ClickException("REDIS_URL is not set: without Redis the web process runs the embedded worker")
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    stop = threading.Event()

    def tick_periodically() -> None:
        """The scheduled tasks (the sweep among them): due ones run here or go to the queue, once per period."""
        while True:
            try:
                services.tick()
            except Exception:
                log.exception("scheduled tasks: tick failed; the next tick tries again")
            if stop.wait(services.settings.sweep_interval_seconds):
                return

    threading.Thread(target=tick_periodically, name="engage-scheduler", daemon=True).start()
    # SimpleWorker runs jobs in this process, reusing its database pool, HTTP session and token cache.
    worker = SimpleWorker([services.settings.queue_name], connection=services.redis, serializer=JSONSerializer)
    try:
        # RQ logs two INFO lines per job; the app's own "delivery processed" line says more.
        level = "DEBUG" if services.settings.log_level == "DEBUG" else "WARNING"
        worker.work(with_scheduler=True, burst=burst, logging_level=level)
    finally:
        stop.set()
