"""`doctor`: check the configuration end to end and say what to fix; secrets are never printed."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import click
import redis
import requests
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from flask.cli import with_appcontext

from cli.common import services_of
from engagement import digest as digest_posting
from engagement import history
from githubapp.errors import GitHubError, TransientError, Unauthorized
from logs import scrub
from notify.notifier import DestinationGone, NotifyError
from notify.telegram import DEFAULT_API_URL as TELEGRAM_API_URL
from notify.telegram import Telegram
from notify.transport import call
from ops.webhook_proxy import channel_host
from services import Services
from settings import load_private_key
from storage import db as storage_db
from storage.db import deliveries, repositories, utcnow
from storage.deliveries import FAILED
from storage.ledger import WHOLE_HISTORY

log = logging.getLogger(__name__)

OK, PROBLEM, NOTE = "ok", "problem", "note"
# Values people leave in a .env from an example; GitHub accepts them, but they protect nothing.
PLACEHOLDER_SECRETS = {"development", "changeme", "change-me", "secret", "webhook-secret", "your-webhook-secret"}
MIN_SECRET_LENGTH = 16
BUDGET_UNKNOWN = (
    "no installation's figures known yet: they come with GitHub's answers (shared through Redis with REDIS_URL; "
    "without it each process knows only its own)"
)
NEW_SECRET = "python -c 'import secrets; print(secrets.token_hex(32))'"
SIGNIN_CALLBACK = "/auth/callback"  # web.signin's callback, under BASE_URL


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
    return found + _recent_failures(engine) + _ledger_coverage(services)


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


def _ledger_coverage(services: Services) -> list[Finding]:
    """Installed repositories whose history the ledger lacks: imported in the background (engagement.history)
    unless the operator turned that off; those it could not read are named with the reason."""
    with services.store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(repositories.c.id, repositories.c.full_name, repositories.c.ledger_complete_since)
            .where(repositories.c.installation_id.is_not(None))
            .order_by(repositories.c.full_name)
        ).all()
    if not rows:
        return [Finding(NOTE, "ledger", "no installed repository known yet (installing the app lists them)")]
    ledger, per_hour = services.stores.ledger, services.settings.backfill_calls_per_hour
    # A backfill `--since` a date is complete from then on; the background import still brings the rest.
    missing = [row for row in rows if not _whole_history(row.ledger_complete_since, per_hour > 0)]
    if not missing:
        return [Finding(OK, "ledger", f"the history of all {len(rows)} installed repositories is backfilled")]
    failed = {row.full_name: history.failure(ledger, row.id, utcnow()) for row in missing}
    found = [
        Finding(NOTE, "ledger", f"{name}: the history import failed ({scrub(error)[:200]}); it is tried again later")
        for name, error in failed.items()
        if error is not None
    ]
    named = []
    for row in missing[:5]:
        where = history.progress(ledger, row.id)
        named.append(f"{row.full_name} ({where})" if where else row.full_name)
    names = ", ".join(named) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    if per_hour > 0:
        text = (
            f"{len(missing)} of {len(rows)} installed repositories are having their history imported in the "
            f"background (at most {per_hour} GitHub requests an hour of each installation): {names}"
        )
        return [Finding(OK, "ledger", text), *found]
    text = (
        f"{len(missing)} of {len(rows)} installed repositories have no finished backfill, so their leaderboards "
        f"and insights start at installation (BACKFILL_CALLS_PER_HOUR=0 turned the background import off): "
        f"`flask --app app backfill OWNER/REPO` for {names}"
    )
    return [Finding(NOTE, "ledger", text), *found]


def _whole_history(complete_since: datetime | None, importing: bool) -> bool:
    return complete_since is not None and (not importing or complete_since <= WHOLE_HISTORY)


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


def check_signin(services: Services) -> list[Finding]:
    """Signing in with GitHub: the client ID is this App's, and the callback address its settings must list.
    The client ID is public (every sign-in link carries it); the secret is never printed."""
    settings = services.settings
    client_id = settings.github_client_id
    if not settings.signs_in or not client_id:  # the settings refuse one of the two without the other
        text = "off (GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET not set): private repositories' pages show to nobody"
        return [Finding(NOTE, "sign-in", text)]
    try:
        app_client_id = services.github.as_app("GET", "/app").data.get("client_id")
    except (GitHubError, TransientError):
        app_client_id = None  # the GitHub check says why
    if app_client_id and app_client_id != client_id:
        text = f"GITHUB_CLIENT_ID is {client_id}, not this App's ({app_client_id}): copy it from the App's settings"
        found = [Finding(PROBLEM, "sign-in", text)]
    else:
        found = [Finding(OK, "sign-in", f"on, client ID {client_id}" + (" (this App's)" if app_client_id else ""))]
    if settings.base_url:
        text = f"the App's settings must list {settings.base_url}{SIGNIN_CALLBACK} as a callback URL"
    else:
        text = (
            "BASE_URL is not set, so the callback address comes from each request's host: set BASE_URL to the "
            f"public address and list BASE_URL{SIGNIN_CALLBACK} as a callback URL in the App's settings"
        )
    return [*found, Finding(NOTE, "sign-in callback", text)]


def check_webhook_proxy(services: Services) -> list[Finding]:
    """WEBHOOK_PROXY_URL (local development): the channel answers with an event stream. Its path is the
    channel, readable by anyone who knows it, so it is never printed."""
    url = services.settings.webhook_proxy_url
    if not url:
        return []
    shown = channel_host(url)
    headers = {"Accept": "text/event-stream", "Accept-Encoding": "identity"}
    try:
        with requests.get(url, headers=headers, stream=True, timeout=(5, 5)) as answer:
            status, kind = answer.status_code, answer.headers.get("Content-Type", "")
    except requests.RequestException as exc:
        text = f"cannot reach the channel at {shown} ({type(exc).__name__}): check the address, or make a new channel"
        return [Finding(PROBLEM, "WEBHOOK_PROXY_URL", text)]
    if status != 200 or not kind.startswith("text/event-stream"):
        text = f"the channel at {shown} answered {status} {kind or '(no type)'}, not an event stream: make a new one"
        return [Finding(PROBLEM, "WEBHOOK_PROXY_URL", text)]
    text = (
        f"a channel at {shown}: `scripts/run` forwards its deliveries to this server (local development; a "
        "deployment receives GitHub's deliveries directly)"
    )
    return [Finding(OK, "WEBHOOK_PROXY_URL", text)]


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
    check_signin,
    check_webhook_proxy,
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
    findings = diagnose(services_of())
    for finding in findings:
        click.echo(f"{finding.status:<8} {finding.topic}: {finding.text}")
    problems = sum(finding.status == PROBLEM for finding in findings)
    click.echo(f"{problems} problem(s) to fix" if problems else "everything checked is fine")
    sys.exit(1 if problems else 0)
