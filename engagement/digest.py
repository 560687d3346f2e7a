"""Post the weekly digest (readmodels/digest.py) on each repository's own schedule, once per period and destination."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from croniter import croniter
from sqlalchemy.engine import Engine

import catalogs
from engagement.common import config as repo_config
from githubapp.client import GitHubApp
from notify.notifier import DestinationUnavailable, Message, Notifier, NotifyError
from readmodels import digest as content
from scheduling.runner import TaskRunner
from scheduling.tasks import Schedule, Task
from storage.db import intents, listed_on_pages, repositories
from storage.intents import NEW, TAKEN
from webhooks.context import Stores
from webhooks.router import Router

log = logging.getLogger(__name__)

NAME = "digest"
HELP = """Posts the weekly community digest (newcomers, first merged pull requests, top contributors, health
figures against the 12 weeks before, good first issues) on the repository's own schedule, once per period
and destination: `github` opens an issue in the repository; any other name is a chat destination the
operator defined (`DESTINATION_<NAME>_KIND`), never an address or a secret from the file. Off unless
turned on: a weekly issue nobody asked for would surprise maintainers. A repository's own file turns on
its digest; the organisation's `.github` repository's file turns on the organisation's digest, posted there.
The first period after it is turned on is the first one posted (a digest does not go out mid-week)."""

SENT = "sent"
GITHUB = "github"  # the destination that needs no credentials: an issue in the repository
ORG_REPOSITORY = ".github"  # its engage.yml speaks for the organisation


@dataclass(frozen=True)
class DigestConfig:
    """The `digest:` section of `.github/engage.yml`."""

    enabled: bool = False
    schedule: str = "0 9 * * MON"  # cron, in `timezone`
    timezone: str = "Asia/Shanghai"
    languages: str = "both"  # en, zh or both
    destinations: tuple[str, ...] = (GITHUB,)  # a list in the file


DEFAULTS = repo_config.defaults_of(DigestConfig)
SETTINGS_HELP = {
    "enabled": "post the digest (off by default: a weekly issue nobody asked for would surprise maintainers)",
    "schedule": "when, as a cron expression in `timezone` (default: Mondays at 09:00)",
    "timezone": "the time zone of `schedule` (an IANA name)",
    "languages": "en, zh or both (English, then Chinese)",
    "destinations": "`github` (an issue in this repository) and names of chat destinations the operator defined",
}

router = Router()
schedule = Schedule()


# --- checks of the file's values beyond their type (engagement.common.config runs them, with line and key)


def _check_schedule(value: str) -> str | None:
    return None if croniter.is_valid(value) else "must be a cron expression, e.g. `0 9 * * MON`"


def _check_timezone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return "must be a time zone name, e.g. Asia/Shanghai or Europe/Berlin"
    return None


def _check_languages(value: str) -> str | None:
    known = catalogs.languages(catalogs.BOT)
    return None if value == "both" or value in known else f"must be both or one of {', '.join(known)}"


CHECKS: dict[str, Callable[[Any], str | None]] = {
    "schedule": _check_schedule,
    "timezone": _check_timezone,
    "languages": _check_languages,
}


@dataclass(frozen=True)
class Section:
    """The digest's section as this process checks it: destination names are `github` or the operator's."""

    operator_destinations: frozenset[str]
    NAME: ClassVar[str] = NAME
    DEFAULTS: ClassVar[dict[str, Any]] = DEFAULTS

    @property
    def CHECKS(self) -> dict[str, Callable[[Any], str | None]]:  # the name config looks for
        return {**CHECKS, "destinations": self.check_destinations}

    def check_destinations(self, names: list[str]) -> str | None:
        unknown = [name for name in names if name != GITHUB and name not in self.operator_destinations]
        if not unknown:
            return None
        known = ", ".join([GITHUB, *sorted(self.operator_destinations)])
        return f"unknown destination {', '.join(unknown)} (known here: {known}; the app's operator defines the others)"


def configured(settings: Any) -> Section:
    """This behaviour as `services.configurable` lists it: checked against the operator's destinations."""
    return Section(frozenset(destination.name for destination in settings.destinations))


# --- deciding (pure)


def due_period(config: DigestConfig, now: datetime) -> datetime:
    """The start (UTC) of the latest period of the configured schedule at or before `now`."""
    return Task(NAME, lambda _: None, cron=config.schedule, timezone=config.timezone).due_period(now)


def period_for_week(config: DigestConfig, week: date) -> datetime:
    """The period in which `week`'s digest is due: the first scheduled start after that week ended."""
    ended = datetime.combine(week + timedelta(weeks=1), datetime.min.time(), UTC)
    task = Task(NAME, lambda _: None, cron=config.schedule, timezone=config.timezone)
    return ended if task.due_period(ended) == ended else task.next_run(ended)


def to_post(period: datetime, last: datetime | None) -> bool:
    """Post when a period started after the last one posted. A scope seen for the first time only notes
    its current period: its first digest is the next period's (not Wednesday's, because it was turned on then)."""
    return last is not None and period > last


def intent_key(scope: str, period: datetime, destination: str) -> str:
    return f"digest:{scope}:{period.isoformat()}:{destination}"


def issue_title(digest: content.Digest, languages: str) -> str:
    """'Community digest, 2026-W48 / 社区周报，2026-W48' for both languages."""
    chosen = content.LANGUAGES if languages == "both" else (languages,)
    return " / ".join(catalogs.text(lang, "digest.issue_title").format(week=digest.iso_week) for lang in chosen)


# --- acting


class Runtime(Protocol):
    """What the task needs of the app's Services (the scheduler passes them)."""

    stores: Stores
    github: GitHubApp
    notifier: Notifier
    tasks: TaskRunner  # its clock is the scheduler's (tests move it)

    @property
    def configurable(self) -> list[Any]: ...


@dataclass(frozen=True)
class Target:
    """A digest's scope and where it is posted: the repository, or the organisation's `.github` repository."""

    scope: str  # repo:<id> | org:<owner>
    repo: str | None  # owner/name for a repository's digest
    org: str | None  # owner for an organisation's
    post_to: str  # the repository its issue goes to
    installation_id: int


@dataclass(frozen=True)
class Posted:
    destination: str
    outcome: str  # sent | already | gone: ... | refused: ...


@schedule.every(timedelta(minutes=15), name=NAME, description="post each weekly digest whose period has started")
def post_due(services: Runtime) -> None:
    """Every repository and organisation whose digest is on and whose period started since its last one."""
    now = services.tasks.clock()
    pending: list[Exception] = []
    for target in targets(services.stores.ledger.engine):
        try:
            config = config_of(services, target)
            if config is None:
                continue
            period = due_period(config, now)
            state_key = f"digest:{target.scope}"
            last = services.stores.ledger.get_state(state_key)
            if not to_post(period, datetime.fromisoformat(last) if last else None):
                if last is None:
                    services.stores.ledger.set_state(state_key, period.isoformat())
                continue
            post(services, target, config, period)
            services.stores.ledger.set_state(state_key, period.isoformat())
        except DestinationUnavailable as exc:
            pending.append(exc)  # the other scopes still get theirs; this one is tried again next run
    if pending:
        raise pending[0]


def targets(engine: Engine) -> list[Target]:
    """Each listed repository, and each owner whose `.github` repository is installed (for the org digest)."""
    r = repositories.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(r.id, r.full_name, r.owner, r.installation_id).where(listed_on_pages()).order_by(r.full_name)
        ).all()
    found = []
    for row in rows:
        if row.full_name.split("/", 1)[1].lower() == ORG_REPOSITORY:
            found.append(Target(f"org:{row.owner.lower()}", None, row.owner, row.full_name, int(row.installation_id)))
        else:
            found.append(Target(f"repo:{row.id}", row.full_name, None, row.full_name, int(row.installation_id)))
    return found


def config_of(services: Runtime, target: Target) -> DigestConfig | None:
    """The digest section when it is on, read from the target's own file (a repository inheriting the
    organisation's file does not post a digest of its own: the organisation's covers it)."""
    client = services.github.installation(target.installation_id)
    config = repo_config.load(client, {"full_name": target.post_to}, services.configurable)
    if config.source != f"{target.post_to}/{repo_config.CONFIG_PATH}":
        return None
    section = config.typed(DigestConfig, NAME)
    return section if section.enabled else None


def post(services: Runtime, target: Target, config: DigestConfig, period: datetime) -> list[Posted]:
    """The period's digest to each destination once; a destination that is gone or refuses it is recorded
    (the operator page and doctor show it) and not tried again this period. Raises DestinationUnavailable
    when one should be tried again later, after trying the others."""
    engine = services.stores.ledger.engine
    digest = content.build(engine, repo=target.repo, org=target.org, today=period.date(), at=period)
    posted, pending = [], None
    message_key = f"digest:{target.scope}:{period.isoformat()}"
    for destination in config.destinations:
        key = intent_key(target.scope, period, destination)
        # The key is also the owner: whichever later run finds it unfinished (a crash, a 5xx) finishes it.
        state = services.stores.intents.start(key, key[:64])
        if state == TAKEN:
            posted.append(Posted(destination, "already"))
            continue
        try:
            outcome = _send(services, target, config, digest, destination, message_key, resumed=state != NEW)
        except DestinationUnavailable as exc:
            pending = pending or exc
            continue
        except NotifyError as exc:
            outcome = f"{'gone' if exc.status in (401, 403, 404, 410) else 'refused'}: {exc}"
            log.warning("digest not delivered", extra={"destination": destination, "error": str(exc)})
        services.stores.intents.done(key, outcome)
        posted.append(Posted(destination, outcome))
    if pending is not None:
        raise pending
    return posted


def _send(
    services: Runtime,
    target: Target,
    config: DigestConfig,
    digest: content.Digest,
    destination: str,
    key: str,
    *,
    resumed: bool,
) -> str:
    """The outcome to record: `sent <issue url>` for GitHub, the notifier's outcome for the others."""
    if destination == GITHUB:
        marker = f"<!-- engage:{key} -->"
        client = services.github.installation(target.installation_id)
        # Only a resumed intent can have been acted on (a run that died after GitHub created the issue
        # but before the intent was marked done): a new one creates at once, without the extra calls.
        issue = _issue_with_marker(services, target, marker) if resumed else None
        if issue is None:
            body = f"{marker}\n" + content.render(digest, config.languages)
            issue = client.create_issue(target.post_to, issue_title(digest, config.languages), body)
        return f"{SENT} {issue.get('html_url', '')}".rstrip() if isinstance(issue, dict) else SENT
    text = content.render(digest, config.languages, content.PLAIN)
    # A forum (Discourse) renders Markdown like GitHub's and opens a topic with the issue's title.
    markdown, title = content.render(digest, config.languages), issue_title(digest, config.languages)
    return services.notifier.send(destination, Message(key, text, forum_markdown=markdown, title=title), key[:64])


def _issue_with_marker(services: Runtime, target: Target, marker: str) -> dict[str, Any] | None:
    """The app's own issue carrying `marker` among its latest ones (issues/list-for-repo by the app's bot
    login, newest first); only issues the app opened count, since anyone can paste a marker into theirs."""
    slug = services.github.as_app("GET", "/app").data["slug"]  # apps/get-authenticated
    client = services.github.installation(target.installation_id)
    query = {"creator": f"{slug}[bot]", "state": "all", "sort": "created", "direction": "desc", "per_page": 30}
    latest = client.get(f"/repos/{target.post_to}/issues", query)
    return next((issue for issue in latest if marker in (issue.get("body") or "")), None)


@dataclass(frozen=True)
class Undelivered:
    """A destination whose latest digest did not reach it and will not be retried for that period."""

    destination: str
    scope: str
    period: str
    reason: str
    at: datetime


def undelivered(engine: Engine) -> list[Undelivered]:
    """One line per destination whose latest digest was refused or found it gone (for the operator)."""
    i = intents.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(i.key, i.result, i.done_at)
            .where(i.key.like("digest:%"), i.done_at.is_not(None))
            .order_by(i.done_at)
        ).all()
    latest: dict[str, Undelivered] = {}
    for row in rows:
        rest, _, destination = row.key.rpartition(":")
        scope_and_period = rest.removeprefix("digest:")
        kind, name, period = scope_and_period.split(":", 2)
        latest[destination] = Undelivered(destination, f"{kind}:{name}", period, str(row.result or ""), row.done_at)
    return [u for u in latest.values() if not u.reason.startswith(("sent", "duplicate", "dry_run"))]


def history(engine: Engine, scope: str) -> list[dict[str, Any]]:
    """The periods whose digest went out for `scope` (repo:<id> | org:<owner>), newest first: the week it
    covers and each destination it reached, with the issue's address for GitHub (the `/digests` page)."""
    i = intents.c
    prefix = f"digest:{scope}:"
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(i.key, i.result, i.done_at)
            .where(i.key.startswith(prefix, autoescape=True), i.done_at.is_not(None))
            .order_by(i.key)
        ).all()
    periods: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        outcome, _, url = str(row.result or "").partition(" ")
        if outcome not in (SENT, "duplicate"):
            continue  # gone or refused: the operator page and doctor show those
        period, _, destination = row.key.removeprefix(prefix).rpartition(":")
        periods.setdefault(period, []).append({"name": destination, "url": url or None})
    return [
        {"period": period, "week": _week_of(datetime.fromisoformat(period)), "destinations": sent}
        for period, sent in sorted(periods.items(), reverse=True)
    ]


def _week_of(period: datetime) -> str:
    """The ISO week a period's digest covers: the last one that ended before the period started."""
    year, week, _ = content.digest_week(None, period.date()).isocalendar()
    return f"{year}-W{week:02d}"


def target_for(engine: Engine, name: str) -> Target | None:
    """The target `owner/name` (a repository) or `owner` (its organisation's digest) names, when listed."""
    wanted = name.lower() if "/" in name else f"{name.lower()}/{ORG_REPOSITORY}"
    return next((t for t in targets(engine) if t.post_to.lower() == wanted), None)


def post_now(
    services: Runtime, target: Target, week: date | None, now: datetime
) -> tuple[datetime, list[Posted]] | None:
    """Post `week`'s digest (default: the current period's) through the same once-only path as the task;
    None when the target's own file does not turn the digest on."""
    config = config_of(services, target)
    if config is None:
        return None
    period = period_for_week(config, week) if week else due_period(config, now)
    return period, post(services, target, config, period)
