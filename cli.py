"""Operator commands: `flask --app app db upgrade | replay | deliveries | sweep | worker | backfill`."""

from __future__ import annotations

import json
import logging
import sys
import threading
import uuid
from datetime import datetime
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from engagement.backfill import BackfillError, backfill
from services import Services
from storage import db as storage_db
from storage.deliveries import FAILED, PENDING, STATUSES
from webhooks.event import MalformedEvent, parse
from webhooks.intake import accept
from webhooks.jobs import process

log = logging.getLogger(__name__)

db_cli = AppGroup("db", help="Database schema.")
deliveries_cli = AppGroup("deliveries", help="Inspect and retry stored webhook deliveries.")


def _services() -> Services:
    services: Services = current_app.extensions["engage"]
    return services


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations (run on release for PostgreSQL)."""
    applied = storage_db.migrate(_services().store.engine)
    click.echo(f"applied migrations {applied}" if applied else "database schema is up to date")


@db_cli.command("status")
def db_status() -> None:
    pending = storage_db.pending_migrations(_services().store.engine)
    click.echo(f"pending migrations: {pending}" if pending else "database schema is up to date")
    sys.exit(1 if pending else 0)


@click.command("replay")
@click.argument("payload", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--event", "event_name", required=True, help="The X-GitHub-Event name, e.g. issues.")
@click.option("--delivery-id", default=None, help="Defaults to a new random id.")
def replay(payload: Path, event_name: str, delivery_id: str | None) -> None:
    """Run one payload through the real pipeline (store, route, handlers), like `probot receive`."""
    services = _services()
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
    for handler, (outcome, error) in services.store.handler_outcomes(event.delivery_id).items():
        click.echo(f"  {handler}: {outcome}" + (f" - {error}" if error else ""))
    if status == FAILED:
        sys.exit(1)


@deliveries_cli.command("list")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Repeatable.")
@click.option("--limit", default=50, show_default=True)
def deliveries_list(statuses: tuple[str, ...], limit: int) -> None:
    """Recent deliveries, newest first; `--status failed` for the ones that need attention."""
    rows = _services().store.list(statuses, limit)
    for d in rows:
        click.echo(
            f"{d.received_at:%Y-%m-%d %H:%M:%S}  {d.id}  {d.name:<32} {d.repository or '-':<30} "
            f"{d.status:<10} attempts={d.attempts}" + (f"  {d.last_error}" if d.last_error else "")
        )
    if not rows:
        click.echo("no deliveries")


@deliveries_cli.command("show")
@click.argument("delivery_id")
def deliveries_show(delivery_id: str) -> None:
    services = _services()
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
                "handlers": services.store.handler_outcomes(d.id),
            },
            indent=2,
        )
    )


@deliveries_cli.command("retry")
@click.argument("delivery_ids", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Retry every failed delivery.")
def deliveries_retry(delivery_ids: tuple[str, ...], all_failed: bool) -> None:
    """Put failed deliveries back in the queue; handlers that succeeded before are not run again."""
    services = _services()
    ids = list(delivery_ids) + ([d.id for d in services.store.list([FAILED], limit=10_000)] if all_failed else [])
    if not ids:
        raise click.UsageError("name delivery ids or pass --all-failed")
    for delivery_id in ids:
        if not services.store.requeue(delivery_id):
            click.echo(f"{delivery_id}: not failed, left alone")
            continue
        queued = services.dispatcher.dispatch(delivery_id)  # requeue reset attempts to 0
        click.echo(f"{delivery_id}: requeued" + ("" if queued else " (queue down: the sweeper will dispatch it)"))
    _drain(services)


def _drain(services: Services) -> None:
    """Let this process finish what it dispatched (the embedded worker lives in it) before exiting."""
    services.dispatcher.wait_idle(timeout=60)


@click.command("sweep")
def sweep_command() -> None:
    """Dispatch stranded pending deliveries and due retries once."""
    services = _services()
    click.echo(f"dispatched {services.sweep()} deliveries")
    _drain(services)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker_command(burst: bool) -> None:
    """An RQ worker on the app's queue, with RQ's scheduler (for retries) and the sweeper."""
    services = _services()
    if services.redis is None:
        raise click.ClickException("REDIS_URL is not set: without Redis the web process runs the embedded worker")
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    services.sweep()
    stop = threading.Event()

    def sweep_periodically() -> None:
        while not stop.wait(services.settings.sweep_interval_seconds):
            try:
                services.sweep()
            except Exception:
                log.exception("sweep failed")

    threading.Thread(target=sweep_periodically, name="engage-sweeper", daemon=True).start()
    # SimpleWorker runs jobs in this process, reusing its database pool, HTTP session and token cache.
    worker = SimpleWorker([services.settings.queue_name], connection=services.redis, serializer=JSONSerializer)
    try:
        # RQ logs two INFO lines per job; the app's own "delivery processed" line says more.
        level = "DEBUG" if services.settings.log_level == "DEBUG" else "WARNING"
        worker.work(with_scheduler=True, burst=burst, logging_level=level)
    finally:
        stop.set()


class ProgressLine:
    """One line on stderr, rewritten in place (`issues: 300/1200`); a new line per stage and per message."""

    def __init__(self) -> None:
        self.stage: str | None = None
        self.width = 0

    def update(self, stage: str, done: int, total: int | None) -> None:
        if self.stage is not None and stage != self.stage:
            click.echo(err=True)
            self.width = 0
        self.stage = stage
        text = f"{stage}: {done}" + (f"/{total}" if total else "")
        self.width = max(self.width, len(text))  # a shorter text must cover the longer one before it
        click.echo(f"\r{text.ljust(self.width)}", err=True, nl=False)

    def say(self, message: str) -> None:
        self.finish()
        click.echo(message, err=True)

    def finish(self) -> None:
        if self.stage is not None:
            click.echo(err=True)
        self.stage = None


@click.command("backfill")
@click.argument("full_name", metavar="OWNER/REPO")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    metavar="YYYY-MM-DD",
    help="Only what happened from this day (UTC) on; default: the whole history.",
)
@with_appcontext  # as under `flask`, also when invoked from app.test_cli_runner()
def backfill_command(full_name: str, since: datetime | None) -> None:
    """Import a repository's history (issues, pull requests, reviews, comments) into the ledger.

    Safe to run again: what the ledger holds is not counted twice, and an interrupted run continues.
    """
    line = ProgressLine()
    try:
        result = backfill(_services(), full_name, since, line.update, say=line.say)
    except BackfillError as exc:
        line.finish()
        raise click.ClickException(str(exc)) from exc
    line.finish()
    click.echo(result.summary())


def init_app(app: Flask) -> None:
    for command in (db_cli, deliveries_cli, replay, sweep_command, worker_command, backfill_command):
        app.cli.add_command(command)
