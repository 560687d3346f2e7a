"""Operator commands: `flask --app app db upgrade | replay | deliveries | sweep | worker | backfill | doctor | tasks |
notify | digest`."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import click
import redis
import requests
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from engagement import digest as digest_posting
from githubapp.errors import GitHubError, TransientError, Unauthorized
from jobs.backfill import BackfillError, backfill
from logs import scrub
from notify.notifier import DestinationGone, Message, NotifyError
from notify.telegram import DEFAULT_API_URL as TELEGRAM_API_URL
from notify.telegram import Telegram
from notify.transport import call
from readmodels import digest
from readmodels.leaderboard import NotVisible
from services import Services
from settings import load_private_key
from storage import db as storage_db
from storage.db import deliveries, repositories, utcnow
from storage.deliveries import FAILED, PENDING, STATUSES
from storage.retention import FAILED_RETENTION_FACTOR, prune
from webhooks.dispatch import NOT_FAILED, STRANDED, failed_delivery_ids, retry
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
    ids = list(delivery_ids) + (failed_delivery_ids(services.store) if all_failed else [])
    if not ids:
        raise click.UsageError("name delivery ids or pass --all-failed")
    for delivery_id, outcome in retry(services.store, services.dispatcher, ids):
        if outcome == NOT_FAILED:
            click.echo(f"{delivery_id}: not failed, left alone")
        elif outcome == STRANDED:
            click.echo(f"{delivery_id}: requeued (queue down: the sweeper will dispatch it)")
        else:
            click.echo(f"{delivery_id}: requeued")
    _drain(services)


@deliveries_cli.command("prune")
@click.option("--days", type=click.IntRange(min=1), default=None, help="Default: PAYLOAD_RETENTION_DAYS.")
def deliveries_prune(days: int | None) -> None:
    """Delete old deliveries now: done and ignored ones after --days, failed ones after 4x as long.

    The ledger keeps every contribution; the sweeper does the same once an hour by itself.
    """
    services = _services()
    days = days or services.settings.payload_retention_days
    if not days:
        raise click.ClickException("PAYLOAD_RETENTION_DAYS=0 keeps payloads forever; pass --days N to prune once")
    pruned = prune(services.store.engine, days)
    click.echo(
        f"pruned {pruned.finished} done or ignored deliveries older than {days} days "
        f"and {pruned.failed} failed ones older than {days * FAILED_RETENTION_FACTOR} days"
    )


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
    """An RQ worker on the app's queue, with RQ's scheduler (for retries) and the scheduled tasks (the sweeper)."""
    services = _services()
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


# --- doctor: the configuration checked end to end, each finding saying what to fix.

OK, PROBLEM, NOTE = "ok", "problem", "note"
# Values people leave in a .env from an example; GitHub accepts them, but they protect nothing.
PLACEHOLDER_SECRETS = {"development", "changeme", "change-me", "secret", "webhook-secret", "your-webhook-secret"}
MIN_SECRET_LENGTH = 16
BUDGET_UNKNOWN = (
    "no installation's figures known yet: they come with GitHub's answers (shared through Redis with REDIS_URL; "
    "without it each process knows only its own)"
)
NEW_SECRET = "python -c 'import secrets; print(secrets.token_hex(32))'"


@dataclass(frozen=True)
class Finding:
    status: str  # ok | problem | note (notes never fail the doctor)
    topic: str
    text: str


def key_fingerprint(pem: str) -> str:
    """The SHA256 fingerprint GitHub shows next to each private key on the app's settings page."""
    public = load_private_key(pem).public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def redact_url(url: str) -> str:
    """The URL without its password, fit to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def check_app(services: Services) -> list[Finding]:
    """APP_ID and the private key are set, and GitHub takes the key's JWT for that app (`GET /app`)."""
    settings = services.settings
    if settings.app_id is None:
        return [Finding(PROBLEM, "APP_ID", "not set: set it to the App ID on the GitHub App's settings page")]
    if not settings.private_key:
        return [
            Finding(OK, "APP_ID", str(settings.app_id)),
            Finding(
                PROBLEM,
                "private key",
                "neither PRIVATE_KEY nor PRIVATE_KEY_PATH is set: generate a private key on the app's settings "
                "page and set PRIVATE_KEY_PATH to the .pem file",
            ),
        ]
    fingerprint = key_fingerprint(settings.private_key)
    found = [Finding(OK, "APP_ID", str(settings.app_id)), Finding(OK, "private key", f"readable, {fingerprint}")]
    path = os.environ.get("PRIVATE_KEY_PATH")
    if path and not os.environ.get("PRIVATE_KEY") and Path(path).expanduser().stat().st_mode & 0o077:
        found.append(Finding(NOTE, "private key", f"{path} can be read by other users: chmod 600 {path}"))
    try:
        app = services.github.as_app("GET", "/app").data
    except Unauthorized as exc:
        text = (
            f"GitHub refused the app's JWT ({exc.message}): the key does not belong to app {settings.app_id}. "
            f"The key in use is {fingerprint}: compare it with the keys listed on the app's settings page, "
            "then fix APP_ID or PRIVATE_KEY / PRIVATE_KEY_PATH (or generate a new key there)"
        )
        if "claim" in exc.message:
            text = f"GitHub refused the app's JWT ({exc.message}): set this machine's clock right (use NTP)"
        return [*found, Finding(PROBLEM, "GitHub", text)]
    except (GitHubError, TransientError) as exc:
        where = settings.github_api_url
        return [*found, Finding(PROBLEM, "GitHub", f"GET {where}/app failed ({exc}): check GITHUB_API_URL or GHE_HOST")]
    found.append(Finding(OK, "GitHub", f"the key belongs to app {app.get('id')} ({app.get('slug')})"))
    accounts = [i["account"]["login"] for i in services.github.as_app("GET", "/app/installations").data]
    if not accounts:
        text = f"none yet: install the app from {app.get('html_url')}/installations/new"
        return [*found, Finding(NOTE, "installations", text)]
    return [*found, Finding(OK, "installations", ", ".join(accounts))]


def guessable(secret: str) -> bool:
    return secret.strip().lower() in PLACEHOLDER_SECRETS or len(secret) < MIN_SECRET_LENGTH


def check_webhook_secret(services: Services) -> list[Finding]:
    secret = services.settings.webhook_secret
    if not secret:
        text = "not set: set it to the webhook secret on the GitHub App's settings page"
        return [Finding(PROBLEM, "WEBHOOK_SECRET", text)]
    if guessable(secret):
        text = f"set, but guessable: set a long random one (`{NEW_SECRET}`) here and in the app's webhook settings"
        return [Finding(PROBLEM, "WEBHOOK_SECRET", text)]
    return [Finding(OK, "WEBHOOK_SECRET", "set")]


def check_database(services: Services) -> list[Finding]:
    """Reachable and migrated; then what it says about recent failures and the ledger's coverage."""
    engine = services.store.engine
    where = engine.url.render_as_string(hide_password=True)
    try:
        services.store.ping()
    except sa.exc.SQLAlchemyError as exc:
        text = f"{where} unreachable ({type(exc).__name__}): check DATABASE_URL and that the server runs"
        return [Finding(PROBLEM, "database", text)]
    found = [Finding(OK, "database", f"{where} reachable")]
    pending = storage_db.pending_migrations(engine)
    if pending:
        return [*found, Finding(PROBLEM, "migrations", f"{pending} pending: run `flask --app app db upgrade`")]
    found.append(Finding(OK, "migrations", "the schema is up to date"))
    return found + _recent_failures(engine) + _ledger_coverage(engine)


def _recent_failures(engine: sa.Engine) -> list[Finding]:
    since = utcnow() - timedelta(hours=24)
    recent = sa.and_(deliveries.c.status == FAILED, deliveries.c.finished_at >= since)
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(deliveries).where(recent)).scalar_one()
        newest = conn.execute(
            sa.select(deliveries.c.id, deliveries.c.event, deliveries.c.last_error)
            .where(recent)
            .order_by(deliveries.c.finished_at.desc())
            .limit(1)
        ).first()
    if newest is None:
        return [Finding(OK, "deliveries", "none failed in the last 24 h")]
    text = (
        f"{count} failed in the last 24 h; the newest, {newest.id} ({newest.event}): "
        f"{scrub(str(newest.last_error or ''))[:300]}. Fix the cause, then "
        "`flask --app app deliveries retry --all-failed` (`deliveries list --status failed` shows them all)"
    )
    return [Finding(PROBLEM, "deliveries", text)]


def _ledger_coverage(engine: sa.Engine) -> list[Finding]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(repositories.c.full_name, repositories.c.ledger_complete_since)
            .where(repositories.c.installation_id.is_not(None))
            .order_by(repositories.c.full_name)
        ).all()
    missing = [row.full_name for row in rows if row.ledger_complete_since is None]
    if not rows:
        return [Finding(NOTE, "ledger", "no installed repository known yet (installing the app lists them)")]
    if not missing:
        return [Finding(OK, "ledger", f"the history of all {len(rows)} installed repositories is backfilled")]
    names = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    text = (
        f"{len(missing)} of {len(rows)} installed repositories have no finished backfill, so their leaderboards "
        f"and insights start at installation: `flask --app app backfill OWNER/REPO` for {names}"
    )
    return [Finding(NOTE, "ledger", text)]


def check_queue(services: Services) -> list[Finding]:
    """Redis answers when REDIS_URL is set, and at least one RQ worker listens on the queue."""
    settings, connection = services.settings, services.redis
    if connection is None or not settings.redis_url:
        text = "REDIS_URL is not set: the embedded worker in each web process handles deliveries (one machine)"
        return [Finding(NOTE, "worker", text)]
    where = redact_url(settings.redis_url)
    try:
        connection.ping()
    except redis.RedisError as exc:
        return [
            Finding(PROBLEM, "Redis", f"{where} unreachable ({exc}): start Redis or fix REDIS_URL"),
            Finding(NOTE, "workers", "not checked: Redis is unreachable"),
        ]
    from rq import Queue, Worker

    queued = Queue(settings.queue_name, connection=connection).count
    found = [Finding(OK, "Redis", f"{where} reachable, {queued} jobs queued")]
    workers = [w for w in Worker.all(connection=connection) if settings.queue_name in w.queue_names()]
    if not workers:
        text = f"no RQ worker listens on queue {settings.queue_name!r}: start `flask --app app worker`"
        return [*found, Finding(PROBLEM, "workers", text)]
    return [*found, Finding(OK, "workers", f"{len(workers)} RQ worker(s) on queue {settings.queue_name!r}")]


def check_destinations(services: Services) -> list[Finding]:
    """Each chat destination's credentials, where the platform can tell without posting (Telegram's getMe)."""
    found = []
    for name, destination in sorted(services.notifier.destinations.items()):
        topic = f"destination {name}"
        try:
            checked = destination.check()
        except DestinationGone as exc:
            found.append(Finding(PROBLEM, topic, f"{destination.kind} refused the credentials ({exc}): fix them"))
            continue
        except NotifyError as exc:
            found.append(Finding(PROBLEM, topic, f"{destination.kind} did not answer as expected ({exc})"))
            continue
        if checked is None:
            text = f"{destination.kind}: cannot be checked without posting; `flask --app app notify test {name}` posts"
            found.append(Finding(NOTE, topic, text))
        else:
            found.append(Finding(OK, topic, f"{destination.kind}: {checked}"))
    return found


# --- the community's forum and chats (issue 12): read-only calls, nothing set or posted.

DAY_SECONDS = 24 * 3600


def _intake_secret(topic: str, name: str, value: str | None, path: str, where: str) -> Finding:
    """Whether a platform's webhook secret lets its activity in, and is not one anybody could guess."""
    if not value:
        text = f"{name} is not set: nothing is recorded ({path} answers 404); set it, and the same value in {where}"
        return Finding(NOTE, topic, text)
    if guessable(value):
        text = f"{name} is set, but guessable: set a long random one (`{NEW_SECRET}`) here and in {where}"
        return Finding(PROBLEM, topic, text)
    return Finding(OK, topic, f"{name} set: recorded through {path}")


def check_discourse(services: Services) -> list[Finding]:
    """With DISCOURSE_URL: the API key works (getUser of DISCOURSE_API_USERNAME, a read) and intake's secret."""
    settings = services.settings
    if not settings.discourse_url:
        return []
    secret = _intake_secret(
        "Discourse webhook",
        "DISCOURSE_WEBHOOK_SECRET",
        settings.discourse_webhook_secret,
        "/api/discourse/webhooks",
        "the forum's webhook (Admin › API › Webhooks)",
    )
    key, username = (os.environ.get(name, "").strip() for name in ("DISCOURSE_API_KEY", "DISCOURSE_API_USERNAME"))
    if not key or not username:
        text = "DISCOURSE_API_KEY and DISCOURSE_API_USERNAME are not both set: not checked (destinations need them)"
        return [Finding(NOTE, "Discourse API", text), secret]
    return [_discourse_api(settings.discourse_url, key, username), secret]


def _discourse_api(url: str, key: str, username: str) -> Finding:
    where = f"GET {url}/u/{username}.json"
    headers = {"Api-Key": key, "Api-Username": username}
    try:
        status, data, _ = call(requests.Session(), "Discourse", "GET", f"{url}/u/{quote(username)}.json", None, headers)
    except NotifyError as exc:
        return Finding(PROBLEM, "Discourse API", f"{where} failed ({exc}): check DISCOURSE_URL")
    if status == 200 and isinstance(data, dict):
        return Finding(OK, "Discourse API", f"{url}: the key works, as @{(data.get('user') or {}).get('username')}")
    if status in (401, 403):
        text = (
            f"{url} refused the key ({where}: {status}): set DISCOURSE_API_KEY to a key from Admin › API keys "
            f"(not revoked) that may act as DISCOURSE_API_USERNAME ({username})"
        )
    elif status == 404:
        text = f"{url} has no user {username}: set DISCOURSE_API_USERNAME to the user the key acts as"
    else:
        text = f"{where} answered {status}: check DISCOURSE_URL"
    return Finding(PROBLEM, "Discourse API", text)


def check_telegram(services: Services) -> list[Finding]:
    """With TELEGRAM_BOT_TOKEN: getMe (the token) and, when the group is recorded, getWebhookInfo: Telegram
    delivers to this app's /api/telegram/webhook, with no recent delivery error."""
    settings = services.settings
    if not settings.telegram_bot_token:
        return []
    api_url = (os.environ.get("TELEGRAM_API_URL") or TELEGRAM_API_URL).strip().rstrip("/")
    bot = Telegram("Telegram", chat_id="", bot_token=settings.telegram_bot_token, api_url=api_url)
    try:
        me = bot.me()
    except DestinationGone as exc:
        text = f"the Bot API refused TELEGRAM_BOT_TOKEN ({exc}): set it to the token @BotFather gave"
        return [Finding(PROBLEM, "Telegram bot", text)]
    except NotifyError as exc:
        return [Finding(PROBLEM, "Telegram bot", f"getMe failed ({exc}): check TELEGRAM_API_URL")]
    found = [Finding(OK, "Telegram bot", f"@{me.get('username')} answers (token accepted)")]
    secret = _intake_secret(
        "Telegram webhook",
        "TELEGRAM_WEBHOOK_SECRET",
        settings.telegram_webhook_secret,
        "/api/telegram/webhook",
        "setWebhook's secret_token",
    )
    if secret.status != OK:
        return [*found, secret]
    return [*found, _telegram_webhook(bot.webhook_info(), settings.base_url)]


def _telegram_webhook(info: dict[str, Any], base_url: str | None) -> Finding:
    url, pending = redact_url(str(info.get("url") or "")), info.get("pending_update_count", 0)
    expected = f"{base_url}/api/telegram/webhook" if base_url else None
    fix = (
        f"call setWebhook with url={expected or 'https://<this app>/api/telegram/webhook'} "
        "and secret_token set to TELEGRAM_WEBHOOK_SECRET"
    )
    if not url:
        return Finding(
            PROBLEM, "Telegram webhook", f"none set, so no update reaches this app ({pending} pending): {fix}"
        )
    if expected is None:
        text = f"Telegram delivers to {url} ({pending} pending): set BASE_URL so that doctor can compare it with ours"
        return Finding(NOTE, "Telegram webhook", text)
    if url != expected:
        text = f"Telegram delivers to {url}, not to this app's {expected} ({pending} pending): {fix}"
        return Finding(PROBLEM, "Telegram webhook", text)
    failed_at, error = info.get("last_error_date"), info.get("last_error_message")
    if error and isinstance(failed_at, int) and utcnow().timestamp() - failed_at < DAY_SECONDS:
        when = datetime.fromtimestamp(failed_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        text = (
            f"Telegram's last delivery to {url} failed at {when}: {scrub(str(error))[:200]} ({pending} pending): "
            "check that this address answers from the internet with a valid certificate"
        )
        return Finding(PROBLEM, "Telegram webhook", text)
    return Finding(OK, "Telegram webhook", f"Telegram delivers to {url}, {pending} pending, no error in the last 24 h")


def check_rocketchat(services: Services) -> list[Finding]:
    """With ROCKETCHAT_URL: the outgoing webhook's token is set, and which channels are recorded. Rocket.Chat
    has no read-only call that would prove an outgoing webhook's token, so nothing goes over the network."""
    settings = services.settings
    if not settings.rocketchat_url:
        return []
    secret = _intake_secret(
        "Rocket.Chat webhook",
        "ROCKETCHAT_WEBHOOK_TOKEN",
        settings.rocketchat_webhook_token,
        "/api/rocketchat/webhook",
        "the outgoing webhook (Administration › Integrations)",
    )
    if secret.status != OK:
        return [secret]
    channels = ", ".join(f"#{name}" for name in settings.rocketchat_channels) or "every one the webhook sends"
    text = (
        f"{secret.text}; channels: {channels}; not checked over the network (Rocket.Chat has no read-only call "
        "for an outgoing webhook's token: its Integrations page shows the deliveries)"
    )
    return [Finding(OK, "Rocket.Chat webhook", text)]


def check_community_org(services: Services) -> list[Finding]:
    """The owner the forum's and chats' activity counts for, when any of them is configured."""
    settings = services.settings
    if not (settings.discourse_url or settings.telegram_bot_token or settings.rocketchat_url):
        return []
    if settings.community_org:
        return [Finding(OK, "COMMUNITY_ORG", f"{settings.community_org}: the forum's and chats' activity counts there")]
    text = "not set: nothing from the forum or chats is recorded; set it to the GitHub organisation they belong to"
    return [Finding(NOTE, "COMMUNITY_ORG", text)]


def check_budget(services: Services) -> list[Finding]:
    """Each installation's GitHub request budget this hour, from GitHub's latest answer; a problem when low."""
    budget = services.github.budget
    now = budget.clock()
    found = []
    for r in budget.readings():
        low = r.low(now)
        text = f"installation {r.installation_id}: used {r.used} of {r.limit} this hour (resets {r.resets_at}), "
        text += f"projected {r.projected(now)}" + ("; low: optional lookups skipped" if low else "")
        found.append(Finding(PROBLEM if low else OK, "GitHub budget", text))
    return found or [Finding(NOTE, "GitHub budget", BUDGET_UNKNOWN)]


def check_digests(services: Services) -> list[Finding]:
    """Destinations whose latest digest found them gone or was refused: not retried for that period."""
    found = []
    for u in digest_posting.undelivered(services.store.engine):
        text = f"the {u.scope} digest of {u.period} was not delivered ({scrub(u.reason)[:200]}): fix the destination"
        found.append(Finding(PROBLEM, f"digest to {u.destination}", text))
    return found


CHECKS: list[Callable[[Services], list[Finding]]] = [
    check_app,
    check_webhook_secret,
    check_database,
    check_queue,
    check_destinations,
    check_discourse,
    check_telegram,
    check_rocketchat,
    check_community_org,
    check_digests,
    check_budget,
]


def diagnose(services: Services) -> list[Finding]:
    """Every check's findings; a check that crashes is a problem too, and the others still run."""
    found: list[Finding] = []
    for check in CHECKS:
        try:
            found.extend(check(services))
        except Exception as exc:
            topic = check.__name__.removeprefix("check_")
            found.append(Finding(PROBLEM, topic, f"the check crashed: {type(exc).__name__}: {scrub(str(exc))}"))
    return found


@click.command("doctor")
@with_appcontext
def doctor_command() -> None:
    """Check the configuration end to end and say what to fix; exit 1 when something must be fixed.

    Secrets are never printed: only whether they are set, and the private key's fingerprint.
    """
    findings = diagnose(_services())
    for finding in findings:
        click.echo(f"{finding.status:<8} {finding.topic}: {finding.text}")
    problems = sum(finding.status == PROBLEM for finding in findings)
    click.echo(f"{problems} problem(s) to fix" if problems else "everything checked is fine")
    sys.exit(1 if problems else 0)


tasks_cli = AppGroup("tasks", help="Scheduled tasks: what runs when, and running one now.")


@tasks_cli.command("list")
def tasks_list() -> None:
    """Each task's schedule, its last run (period, outcome, error) and its next run, in UTC."""
    services = _services()
    click.echo(f"{'task':<24} {'schedule':<32} {'last run':<21} {'outcome':<8} next run")
    for status in services.tasks.status():
        state = status.state
        last = _when(state.period) if state and state.period else "never"
        outcome = state.status if state and state.period else "-"
        click.echo(
            f"{status.task.name:<24} {status.task.schedule:<32} {last:<21} {outcome:<8} {_when(status.next_run)}"
        )
        if state and state.error and state.status == "failed":
            click.echo(f"  error: {state.error}")


@tasks_cli.command("run")
@click.argument("name")
def tasks_run(name: str) -> None:
    """Run one task now, once: this counts as its current period's run (another worker will not repeat it)."""
    services = _services()
    if services.tasks.schedule.get(name) is None:
        known = ", ".join(task.name for task in services.tasks.schedule.tasks)
        raise click.ClickException(f"no task named {name!r} (known: {known})")
    outcome = services.tasks.run_now(name)
    click.echo(f"{name}: {outcome.result}" + (f" ({outcome.error})" if outcome.error else ""))
    _drain(services)
    if outcome.result == "failed":
        sys.exit(1)


notify_cli = AppGroup("notify", help="Chat destinations (DESTINATION_<NAME>_*): send a test message.")
TEST_MESSAGE = "A test message from LLMasOS Engage: the destination {name} works."


@notify_cli.command("test")
@click.argument("name")
def notify_test(name: str) -> None:
    """Post one short test message to destination NAME through the real path (pacing, retries, DRY_RUN)."""
    services = _services()
    if name not in services.notifier.destinations:
        known = ", ".join(sorted(services.notifier.destinations)) or "none: set DESTINATION_<NAME>_KIND"
        raise click.ClickException(f"no destination named {name!r} (known: {known})")
    run = f"notify-test-{uuid.uuid4()}"
    try:
        outcome = services.notifier.send(name, Message(run, TEST_MESSAGE.format(name=name)), run)
    except NotifyError as exc:
        raise click.ClickException(f"not sent: {exc}") from None
    click.echo(f"{name}: {outcome}" + (" (DRY_RUN is on: nothing was posted)" if outcome == "dry_run" else ""))


@click.command("digest")
@click.argument("target", metavar="OWNER[/REPO]")
@click.option("--preview", is_flag=True, help="Print the digest as it would be posted.")
@click.option("--post", "post", is_flag=True, help="Post it now to its destinations, once (as the schedule would).")
@click.option("--lang", type=click.Choice(["en", "zh", "both"]), default="en", show_default=True)
@click.option(
    "--week", default=None, metavar="YYYY-Www", help="An ISO week (UTC) that has ended; default: the last one."
)
@with_appcontext
def digest_command(target: str, preview: bool, post: bool, lang: str, week: str | None) -> None:
    """The weekly digest of a public repository, or of an owner's public repositories together: newcomers,
    first merged pull requests, top contributors, health figures against the 12 weeks before, good first issues."""
    if preview == post:
        raise click.ClickException("pass --preview to print the digest or --post to post it")
    repo, org = (target, None) if "/" in target else (None, target)
    services = _services()
    try:
        monday = digest.parse_week(week) if week else None
        if post:
            _post_digest(services, target, monday)
            return
        value = digest.build(services.store.engine, repo=repo, org=org, week=monday)
    except (NotVisible, digest.BadWeek) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(digest.render(value, lang), nl=False)


def _post_digest(services: Services, target: str, week: date | None) -> None:
    """Through the task's own once-only path: a destination that already has this period's digest is skipped."""
    found = digest_posting.target_for(services.store.engine, target)
    if found is None:
        raise click.ClickException(
            f"{target} is not a listed repository (an owner's digest needs its .github repository)"
        )
    try:
        done = digest_posting.post_now(services, found, week, services.tasks.clock())
    except TransientError as exc:
        raise click.ClickException(f"not posted everywhere yet: {exc}; run it again later") from None
    if done is None:
        raise click.ClickException(
            f"the digest is not turned on in {found.post_to}'s .github/engage.yml (digest: enabled)"
        )
    period, posted = done
    for one in posted:
        click.echo(f"{one.destination}: {one.outcome} (period {_when(period)})")


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def init_app(app: Flask) -> None:
    for command in (
        db_cli,
        deliveries_cli,
        replay,
        sweep_command,
        worker_command,
        backfill_command,
        doctor_command,
        tasks_cli,
        notify_cli,
        digest_command,
    ):
        app.cli.add_command(command)
