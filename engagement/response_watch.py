"""Nobody waits unanswered: nudge the triagers about a newcomer's issue or pull request nobody answered."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import catalogs
from domain import contributions
from engagement.common import config as repo_config
from engagement.common.comments import comment_once
from engagement.common.language import answer_in
from githubapp.errors import Forbidden, NotFound
from notify.notifier import Message
from scheduling.tasks import Schedule
from storage.watched_items import Snapshot, WatchedItem, WatchedItemStore
from webhooks.context import Context, DeliveryLogger
from webhooks.event import Event
from webhooks.router import Router

NAME = "response_watch"
HELP = """Makes sure nobody waits unanswered. An issue or pull request opened by a newcomer (fewer than
`newcomer_max` earlier contributions to the repository in the ledger) that has had no human response
(a comment or review by someone other than its author and not a bot, as the insights' first response
counts it) after `after_hours` gets one comment mentioning the `triagers`, or, with `chat` set, one
message to that chat destination of the operator's instead; `escalate_after_hours` adds a second
nudge. Nothing once someone responds, the item is closed, or it carries the `waiting_label`. With
`business_hours: true` only working hours count (Monday to Friday, 09:00 to 18:00 in `timezone`).
Checked every 15 minutes (the `response_watch` task); maintainers see the queue on the `/waiting` page.
Before each nudge the pass reads the item from GitHub once (issues/get), so an item closed or labelled
meanwhile is not nudged even when the webhook saying so was lost or was processed before the item's opening
(several worker processes can take one item's deliveries out of order)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResponseWatchConfig:
    """The `response_watch:` section of `.github/engage.yml`."""

    enabled: bool = True
    after_hours: int = 48
    escalate_after_hours: int = 0  # 0: no second nudge
    triagers: tuple[str, ...] = ()  # logins or @org/team, in a list in the file
    waiting_label: str = "waiting on author"
    newcomer_max: int = 1
    business_hours: bool = False
    timezone: str = "UTC"
    chat: str = ""  # a destination the operator defined (DESTINATION_<NAME>_*); empty: a comment
    language: str = "auto"


DEFAULTS = repo_config.defaults_of(ResponseWatchConfig)
SETTINGS_HELP = {
    "enabled": "turn the whole behaviour on or off",
    "after_hours": "hours without a human response before the nudge",
    "escalate_after_hours": "hours before a second nudge; 0: none",
    "triagers": "logins or `@org/team` names the nudge mentions",
    "waiting_label": "a label meaning the item waits on its author: such items are not nudged",
    "newcomer_max": "people with fewer earlier contributions to the repository than this count as newcomers",
    "business_hours": "count only working hours (Monday to Friday, 09:00 to 18:00 in `timezone`)",
    "timezone": "the time zone of the working hours, e.g. `Asia/Shanghai`",
    "chat": "a chat destination the operator defined, to message instead of commenting; empty: a comment",
    "language": "`auto` (follows the item's title), `en` or `zh`",
}


def _check_timezone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return "must be a time zone name, e.g. Asia/Shanghai or Europe/Berlin"
    return None


@dataclass(frozen=True)
class Section:
    """The section as this process checks it (`services.configurable`): `chat` names one of the
    operator's destinations, so a repository can never make the app post anywhere else."""

    operator_destinations: frozenset[str]
    NAME: ClassVar[str] = NAME
    DEFAULTS: ClassVar[dict[str, Any]] = DEFAULTS

    @property
    def CHECKS(self) -> dict[str, Callable[[Any], str | None]]:  # the name config looks for
        return {"timezone": _check_timezone, "chat": self.check_chat}

    def check_chat(self, name: str) -> str | None:
        if not name or name in self.operator_destinations:
            return None
        known = ", ".join(sorted(self.operator_destinations)) or "none"
        return f"unknown destination {name} (known here: {known}; the app's operator defines them)"


def configured(settings: Any) -> Section:
    return Section(frozenset(destination.name for destination in settings.destinations))


NUDGE, ESCALATE = "nudge", "escalate"
MEMBERS = ("OWNER", "MEMBER", "COLLABORATOR")
WORKDAY_START, WORKDAY_END = time(9), time(18)
# Keys in the bot's catalogs (bot.po).
TEXTS = {NUDGE: "response_watch.nudge", ESCALATE: "response_watch.escalate"}
CHAT_TEXTS = {NUDGE: "response_watch.chat_nudge", ESCALATE: "response_watch.chat_escalate"}
KINDS = {False: "response_watch.issue", True: "response_watch.pull_request"}
MAINTAINERS = "response_watch.maintainers"

router = Router()
schedule = Schedule()


def marker(stage: str) -> str:
    return f"<!-- engage:response-watch:{stage} -->"


# --- deciding (pure)


def zone(name: str) -> ZoneInfo:
    """The configured time zone; UTC for a name the time-zone database lacks (the pass logs it)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def deadline(opened_at: datetime, hours: float, business_hours: bool = False, timezone: str = "UTC") -> datetime:
    """When `hours` have passed since `opened_at` (aware), in wall time or in working hours (Monday to
    Friday, 09:00 to 18:00 in `timezone`); in UTC."""
    if not business_hours:
        return (opened_at + timedelta(hours=hours)).astimezone(UTC)
    local_zone = zone(timezone)
    cursor = opened_at.astimezone(local_zone).replace(tzinfo=None)  # local wall time
    left = timedelta(hours=hours)
    while True:
        day_start, day_end = (
            datetime.combine(cursor.date(), WORKDAY_START),
            datetime.combine(cursor.date(), WORKDAY_END),
        )
        if cursor.weekday() >= 5 or cursor >= day_end:
            cursor = datetime.combine(cursor.date() + timedelta(days=1), WORKDAY_START)
            continue
        cursor = max(cursor, day_start)
        if cursor + left <= day_end:
            return (cursor + left).replace(tzinfo=local_zone).astimezone(UTC)
        left -= day_end - cursor
        cursor = day_end


def deadlines(opened_at: datetime, config: ResponseWatchConfig) -> tuple[datetime, datetime | None]:
    """(the nudge's, the escalation's or None), naive UTC as stored, from a naive UTC `opened_at`."""
    at = opened_at.replace(tzinfo=UTC)
    due = deadline(at, config.after_hours, config.business_hours, config.timezone)
    escalate = None
    if config.escalate_after_hours:
        escalate = deadline(at, config.escalate_after_hours, config.business_hours, config.timezone)
    return due.replace(tzinfo=None), escalate.replace(tzinfo=None) if escalate else None


@dataclass(frozen=True)
class Plan:
    stage: str  # nudge | escalate
    intent: str


def decide(item: WatchedItem, config: ResponseWatchConfig, now: datetime) -> Plan | str:
    """The nudge due for `item` at `now` (naive UTC), or why none is."""
    if not config.enabled:
        return "response_watch is off in this repository"
    if not item.newcomer:
        return "not a newcomer's"
    if item.state != "open":
        return "closed"
    if item.responded_at is not None:
        return "someone responded"
    if config.waiting_label and config.waiting_label.lower() in (label.lower() for label in item.labels):
        return "waiting on its author"
    due, escalate_at = deadlines(item.opened_at, config)
    if item.nudged_at is None:
        return Plan(NUDGE, intent(item, NUDGE)) if now >= due else "not due yet"
    if escalate_at is not None and item.escalated_at is None and now >= escalate_at:
        return Plan(ESCALATE, intent(item, ESCALATE))
    return "nudged already"


def intent(item: WatchedItem, stage: str) -> str:
    return f"response_watch:{item.repo_id}:{item.number}:{stage}"


def slo_state(item: WatchedItem, now: datetime) -> str:
    """What the /waiting page says of an item nobody answered yet: ok, overdue, nudged or escalated."""
    if item.escalated_at is not None:
        return "escalated"
    if item.nudged_at is not None:
        return "nudged"
    return "overdue" if item.due_at is not None and now >= item.due_at else "ok"


def mentions(triagers: tuple[str, ...]) -> str:
    """`@login` and `@org/team` mentions (a name given with or without its @)."""
    return " ".join("@" + name.strip().lstrip("@") for name in triagers if name.strip().lstrip("@"))


def render(plan: Plan, item: WatchedItem, config: ResponseWatchConfig, now: datetime) -> str:
    language = answer_in(config.language, item.title)
    say = catalogs.text
    who = mentions(config.triagers) or say(language, MAINTAINERS)
    hours = int((now - item.opened_at).total_seconds() // 3600)
    kind = say(language, KINDS[item.is_pull])
    body = say(language, TEXTS[plan.stage]).format(triagers=who, kind=kind, author=item.author, hours=hours)
    return f"{marker(plan.stage)}\n{body}"


def chat_text(plan: Plan, item: WatchedItem, config: ResponseWatchConfig, now: datetime) -> str:
    hours = int((now - item.opened_at).total_seconds() // 3600)
    template = catalogs.text(answer_in(config.language, item.title), CHAT_TEXTS[plan.stage])
    return template.format(
        item=f"{item.repository}#{item.number}", title=item.title, author=item.author, hours=hours, url=item.html_url
    )


# --- keeping the watched items from webhooks


def snapshot(ctx: Context, config: ResponseWatchConfig) -> Snapshot:
    payload = ctx.payload
    is_pull = "pull_request" in payload
    item, repository = payload["pull_request" if is_pull else "issue"], payload["repository"]
    return snapshot_of(item, int(repository["id"]), str(repository["full_name"]), ctx, is_pull, config)


def snapshot_of(
    item: Mapping[str, Any], repo_id: int, repository: str, ctx: Context, is_pull: bool, config: ResponseWatchConfig
) -> Snapshot:
    """An issue or pull request as an event, or GitHub's issues/get, shows it."""
    labels = tuple(str(label.get("name") or "") for label in item.get("labels") or ())
    waiting = config.waiting_label.lower()
    return Snapshot(
        repo_id=repo_id,
        number=int(item["number"]),
        repository=repository,
        installation_id=int(ctx.event.installation_id or 0),
        is_pull=is_pull,
        title=str(item.get("title") or ""),
        html_url=str(item.get("html_url") or ""),
        author=str(item["user"]["login"]),
        opened_at=_naive(contributions.github_time(item.get("created_at"))) or datetime.now(UTC).replace(tzinfo=None),
        state=str(item.get("state") or "open"),
        labels=labels,
        on_hold=bool(waiting) and waiting in (label.lower() for label in labels),
        updated_at=_naive(contributions.github_time(item.get("updated_at"))),
    )


def _naive(at: datetime | None) -> datetime | None:
    return at.astimezone(UTC).replace(tzinfo=None) if at is not None and at.tzinfo else at


def store_of(ctx: Context) -> WatchedItemStore:
    # The context's stores share one engine; this store is the response watch's alone.
    return WatchedItemStore(ctx.stores.intents.engine)


def is_newcomer(ctx: Context, item: Snapshot, association: str, config: ResponseWatchConfig) -> bool:
    """Fewer than `newcomer_max` earlier contributions to the repository in the ledger; members never are."""
    return association not in MEMBERS and few_earlier_contributions(ctx, item, config)


def few_earlier_contributions(ctx: Context, item: Snapshot | WatchedItem, config: ResponseWatchConfig) -> bool:
    """Fewer than `newcomer_max` contributions of the author's to the repository about items numbered before it."""
    threshold = max(config.newcomer_max, 1)
    ledger = ctx.stores.ledger
    earlier = ledger.count(item.repo_id, item.author, contributions.KINDS, item.number, earlier=True, at_most=threshold)
    return earlier < threshold


@router.on(
    "issues.opened", "issues.reopened", "pull_request.opened", "pull_request.reopened", name="response_watch.opened"
)
def opened(ctx: Context) -> None:
    payload = ctx.payload
    item: Mapping[str, Any] = payload.get("pull_request") or payload["issue"]
    if (item.get("user") or {}).get("type") == "Bot" or payload["repository"].get("archived"):
        ctx.log.debug("skipped: a bot's item, or an archived repository")
        return
    store = store_of(ctx)
    config = repo_config.for_event(ctx).typed(ResponseWatchConfig, NAME)
    found = snapshot(ctx, config)
    # An item just opened is watched only if this delivery ran before, and `add` brings that one up to date:
    # the read is for a reopened one.
    if payload.get("action") != "opened" and store.is_watched(found.repo_id, found.number):
        store.observe(found)
        return
    if not config.enabled:
        ctx.log.debug("skipped: response_watch is off")
        return
    if not is_newcomer(ctx, found, str(item.get("author_association") or "NONE"), config):
        ctx.log.debug("skipped: not a newcomer's")
        return
    store.add(found, True, *deadlines(found.opened_at, config))
    ctx.log.info("watching for a first response", extra={"reason": f"{found.repository}#{found.number}"})


@router.on(
    "issues.closed",
    "issues.labeled",
    "issues.unlabeled",
    "pull_request.closed",
    "pull_request.labeled",
    "pull_request.unlabeled",
    name="response_watch.changed",
)
def changed(ctx: Context) -> None:
    """Keep a watched item's state and labels (the pass and the page read them)."""
    payload = ctx.payload
    item: Mapping[str, Any] = payload.get("pull_request") or payload["issue"]
    store = store_of(ctx)
    if not store.is_watched(int(payload["repository"]["id"]), int(item["number"])):
        ctx.log.debug("skipped: not a watched item")
        return
    store.observe(snapshot(ctx, repo_config.for_event(ctx).typed(ResponseWatchConfig, NAME)))


# --- the pass


@schedule.every(
    timedelta(minutes=15), name="response_watch", description="nudge about newcomers' items nobody answered"
)
def watch(services: Any) -> None:
    """The scheduled pass (receives Services); its clock is the task runner's."""
    run_pass(services, services.tasks.clock())


def run_pass(services: Any, now: datetime) -> list[tuple[str, int, str]]:
    """Nudge about every watched open item past its deadline at `now`; (repo, number, stage) of each nudge."""
    store = WatchedItemStore(services.store.engine)
    # One owner per period: a retry of this pass finishes its own nudges, another pass stands back.
    period = services.tasks.schedule.get(NAME).due_period(now)
    owner = f"{NAME}:{period.isoformat()}"
    naive_now = now.astimezone(UTC).replace(tzinfo=None)
    shared: dict[str, dict[str, Any]] = {}  # per repository: its configuration, read once per pass
    done = []
    for item in store.open_items():
        if item.responded_at is not None:
            continue
        ctx = item_context(services, item, owner, shared.setdefault(item.repository, {}))
        try:
            config = repo_config.for_event(ctx).typed(ResponseWatchConfig, NAME)
            if (item.due_at, item.escalate_at) != (due := deadlines(item.opened_at, config)):
                store.set_deadlines(item.repo_id, item.number, *due)
            plan = decide(item, config, naive_now)
            if isinstance(plan, str):
                ctx.log.debug("skipped: %s", plan)
                continue
            # Counted again, now the ledger holds what it did not yet when the item was opened: the author's
            # earlier items recorded later (redelivered, or processed by another worker at the same time).
            if not few_earlier_contributions(ctx, item, config):
                store.unmark_newcomer(item.repo_id, item.number)
                ctx.log.info("skipped: not a newcomer's, as the ledger counts now", extra={"reason": f"#{item.number}"})
                continue
            item = as_on_github(ctx, store, item, config)
            plan = decide(item, config, naive_now)
            if isinstance(plan, str):
                ctx.log.info("skipped: %s, as GitHub shows it now", plan, extra={"reason": f"#{item.number}"})
                continue
            if nudge(services, ctx, item, config, plan, naive_now) and not ctx.dry_run:
                store.mark(item.repo_id, item.number, plan.stage, naive_now)
                done.append((item.repository, item.number, plan.stage))
        except (NotFound, Forbidden) as exc:
            ctx.log.info("skipped: GitHub refused", extra={"error": str(exc)})
    return done


def as_on_github(ctx: Context, store: WatchedItemStore, item: WatchedItem, config: ResponseWatchConfig) -> WatchedItem:
    """The item's state and labels as GitHub shows them, read once before a nudge (kept for the page too).

    Webhooks say when an item closes or is labelled, but deliveries about one item can be processed out of
    order when several worker processes share the queue, or lost: a close processed before the opening it
    follows was ignored (nothing was watched yet), and the nudge would go to a closed issue. Nudges are
    few (two per item at most), so one read each is cheap insurance."""
    current = ctx.github.get_issue(item.repository, item.number)
    found = snapshot_of(current, item.repo_id, item.repository, ctx, item.is_pull, config)
    store.observe(found)
    return replace(item, state=found.state, labels=found.labels, on_hold=found.on_hold)


def item_context(services: Any, item: WatchedItem, owner: str, shared: dict[str, Any]) -> Context:
    """What a handler would see for this item: its repository and installation, as a delivery carries them."""
    payload = {
        "repository": {"id": item.repo_id, "full_name": item.repository},
        "installation": {"id": item.installation_id},
    }
    event = Event(owner, NAME, payload)
    fields = {"behaviour": NAME, "repo": item.repository, "installation_id": item.installation_id, "task": NAME}
    return Context(
        event,
        DeliveryLogger(log, fields),
        services.stores,
        services.github.installation,
        services.github.files,
        services.configurable,
        services.github.dry_run,
        shared,
    )


def nudge(
    services: Any, ctx: Context, item: WatchedItem, config: ResponseWatchConfig, plan: Plan, now: datetime
) -> bool:
    """Post the nudge once (a comment, or a message to the chat destination); True if it went out now
    or had gone out before this pass. A private repository's items are never sent to a chat."""
    destinations = services.notifier.destinations
    if config.chat and config.chat not in destinations:
        ctx.log.warning(
            "config problem: response_watch.chat names no destination the operator defined; commenting instead",
            extra={"reason": config.chat},
        )
    if config.chat in destinations and not item.private:
        message = Message(key=plan.intent, text=chat_text(plan, item, config, now))
        services.notifier.send(config.chat, message, ctx.event.delivery_id)
        return True
    comment_once(ctx, item.repository, item.number, plan.intent, marker(plan.stage), render(plan, item, config, now))
    return True
