"""Events (talks, hackathons, sprints): their definitions from `.github/engage.yml`, kept for the pages.

Pure parsing and checking (`parse_section`, which `engagement.common.config` calls for the `events:`
section, with lines and keys in its problems); the handlers keep each file's events (`storage.events`)
when a delivery has read the file anyway, and note which issues and pull requests carry an event's label.
The pages and the digest read them from there (`readmodels/events.py`), never from GitHub.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engagement import ledger
from engagement.common import config as repo_config
from engagement.common.config import Problem
from engagement.repository_files import changed_paths
from storage.events import EventDefinition, EventStore
from storage.rollups import org_scope, repo_scope
from webhooks.context import Context
from webhooks.event import Event
from webhooks.router import Router

NAME = "events"
HELP = """Defines events (talks, hackathons, sprints), each under its own address `/events/<slug>`: a
`name`, a `start` and an `end` (local times in `timezone`, e.g. `2027-03-01 09:00`; a date alone is the
whole day), the `repositories` it covers (names of this owner's repositories; none: this repository, or
in the organisation's `.github` repository every one of the owner's) and an optional `label`: then only
contributions about issues and pull requests carrying that label count. Each event gets a page with its
own leaderboard (the repository's formula, over the event's window only), its participants and
newcomers, and a line in the weekly digest while it runs. At most 20 events, 90 days each."""

MAX_EVENTS = 20
MAX_NAME = 100
MAX_DAYS = 90
MAX_REPOSITORIES = 20
MAX_LABEL = 50  # GitHub's own cap on a label's name
SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,48}[a-z0-9]|[a-z0-9]")
REPOSITORY = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9_-]{0,38}/)?[A-Za-z0-9._-]{1,100}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
KEYS = ("name", "start", "end", "timezone", "repositories", "label")
EARLIEST, LATEST = 2000, 2100  # years an event may fall in (and no time zone arithmetic overflows)
REQUIRED = ("name", "start", "end")
DEFAULT_TIMEZONE = "UTC"
EXAMPLE = "hackathon-2027:\n  name: Spring hackathon\n  start: 2027-03-01 09:00\n  end: 2027-03-03 18:00"


@dataclass(frozen=True)
class EventsConfig:
    """The `events:` section holds events by slug, not settings with defaults: `parse_section` reads it."""


DEFAULTS = repo_config.defaults_of(EventsConfig)
SETTINGS_HELP: dict[str, str] = {}


# --- parsing (pure)


def parse_section(value: Any, path: str, lines: Mapping[str, int]) -> tuple[dict[str, Any], list[Problem]]:
    """The section's events as plain values by slug (times as UTC ISO text), and what is wrong. A broken
    event is left out, the others stand; the rest of the file is not affected."""
    if not isinstance(value, Mapping):
        return {}, [Problem(path, f"must be a mapping of events by slug, e.g.\n{EXAMPLE}", lines.get(path))]
    found: dict[str, Any] = {}
    problems: list[Problem] = []
    for number, (slug, spec) in enumerate(value.items()):
        where = f"{path}.{slug}"
        if number >= MAX_EVENTS:
            problems.append(Problem(path, f"at most {MAX_EVENTS} events; the others are left out", lines.get(where)))
            break
        if not isinstance(slug, str) or not SLUG.fullmatch(slug):
            message = "an event's slug is 1-50 lower-case letters, digits and hyphens, e.g. hackathon-2027"
            problems.append(Problem(where[:80], message, lines.get(where)))
            continue
        event, wrong = parse_event(slug, spec)
        if event is None:
            for key, message in wrong:
                line = lines.get(f"{where}.{key}") or lines.get(where)
                problems.append(Problem(f"{where}.{key}" if key else where, message, line))
            continue
        found[slug] = event
    return found, problems


def parse_event(slug: str, spec: Any) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """One event as plain values, or None and (key, what is wrong) for each problem."""
    if not isinstance(spec, Mapping):
        return None, [("", "must be a mapping with name, start, end (and timezone, repositories, label)")]
    wrong: list[tuple[str, str]] = []
    for key in spec:
        if key not in KEYS:
            wrong.append((str(key)[:60], f"unknown setting (known: {', '.join(KEYS)})"))
    wrong += [(key, "is required") for key in REQUIRED if spec.get(key) in (None, "")]
    name = spec.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME):
        wrong.append(("name", f"must be text of 1 to {MAX_NAME} characters"))
    zone_name = spec.get("timezone", DEFAULT_TIMEZONE)
    zone = _zone(zone_name)
    if zone is None:
        wrong.append(("timezone", "must be a time zone name, e.g. Asia/Shanghai or Europe/Berlin"))
    label = spec.get("label")
    if label is not None and (not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL):
        wrong.append(("label", f"must be a label's name, 1 to {MAX_LABEL} characters"))
    repositories = spec.get("repositories", [])
    if isinstance(repositories, str):
        repositories = [repositories]
    if not isinstance(repositories, list) or not all(
        isinstance(r, str) and REPOSITORY.fullmatch(r) for r in repositories
    ):
        wrong.append(("repositories", "must be a list of repository names, e.g. [engage, docs]"))
    elif len(repositories) > MAX_REPOSITORIES:
        wrong.append(("repositories", f"must have at most {MAX_REPOSITORIES} entries, not {len(repositories)}"))
    start = end = None
    if zone is not None:
        start, problem = _time(spec.get("start"), zone, end_of_day=False)
        if problem and spec.get("start") not in (None, ""):
            wrong.append(("start", problem))
        end, problem = _time(spec.get("end"), zone, end_of_day=True)
        if problem and spec.get("end") not in (None, ""):
            wrong.append(("end", problem))
    if start is not None and end is not None:
        if end <= start:
            wrong.append(("end", "must be after start"))
        elif end - start > timedelta(days=MAX_DAYS):
            wrong.append(("end", f"an event lasts at most {MAX_DAYS} days"))
    if wrong or start is None or end is None:
        return None, wrong
    return {
        "name": str(name).strip(),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "timezone": str(zone_name),
        "label": str(label).strip().lower() if label is not None else None,
        "repositories": list(dict.fromkeys(repositories)),
    }, []


def _zone(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _time(value: Any, zone: ZoneInfo, end_of_day: bool) -> tuple[datetime | None, str | None]:
    """A start or end as naive UTC: a local time in `zone` (YAML may have read it as a datetime already),
    a time with its own offset, or a date alone (its start, or for an end the end of that day)."""
    problem = "must be a date and time, e.g. 2027-03-01 09:00 (in the event's timezone), or a date"
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if _DATE.fullmatch(text) else datetime.fromisoformat(text)
        except ValueError:
            return None, problem
    if isinstance(value, date) and not isinstance(value, datetime):
        if not EARLIEST <= value.year <= LATEST:
            return None, f"must fall between {EARLIEST} and {LATEST}"
        value = datetime.combine(value + timedelta(days=1) if end_of_day else value, datetime.min.time())
    if not isinstance(value, datetime):
        return None, problem
    if not EARLIEST <= value.year <= LATEST:
        return None, f"must fall between {EARLIEST} and {LATEST}"
    local = value if value.tzinfo is not None else value.replace(tzinfo=zone)
    return local.astimezone(UTC).replace(tzinfo=None), None


def definitions(section: Mapping[str, Any]) -> list[EventDefinition]:
    """The parsed section's events, as the store keeps them."""
    return [
        EventDefinition(
            slug=slug,
            name=spec["name"],
            starts_at=datetime.fromisoformat(spec["start"]),
            ends_at=datetime.fromisoformat(spec["end"]),
            timezone=spec["timezone"],
            label=spec["label"],
            repositories=tuple(spec["repositories"]),
        )
        for slug, spec in section.items()
    ]


# --- keeping them (deliveries that read the file anyway)

router = Router()
# Deliveries whose handlers read the config already (the ledger's), and pushes that may change it.
KEPT_ON = ledger.RECORDED
LABELS_ON = (*KEPT_ON, "issues.labeled", "issues.unlabeled", "pull_request.labeled", "pull_request.unlabeled")
_stores: dict[int, EventStore] = {}


def store_for(ctx: Context) -> EventStore:
    """One store per engine and process: it remembers what it last wrote."""
    engine = ctx.stores.ledger.engine
    return _stores.setdefault(id(engine), EventStore(engine))


def may_change_the_events(event: Event) -> bool:
    """Every recorded event; a push only when it changes the default branch's config file, or may have."""
    if event.name != "push":
        return True
    payload = event.payload
    repository = payload.get("repository")
    default = repository.get("default_branch") if isinstance(repository, Mapping) else None
    changed = changed_paths(payload)
    return str(payload.get("ref")) == f"refs/heads/{default}" and (
        changed is None or repo_config.CONFIG_PATH in changed
    )


@router.on(*KEPT_ON, "push", name="events.keep", wants=may_change_the_events)
def keep(ctx: Context) -> None:
    """Keep the events of the file this delivery's repository reads (its own, or the organisation's)."""
    repository = ctx.payload["repository"]
    full_name = str(repository["full_name"])
    owner = full_name.split("/", 1)[0]
    config = repo_config.for_event(ctx)
    from_org = config.source.startswith(f"{owner}/.github/")
    own_scope = repo_scope(int(repository["id"]))
    store = store_for(ctx)
    found = definitions(config.sections.get(NAME) or {})
    if from_org:
        store.replace(own_scope, owner, [])  # no file of its own (any more): it defines no event
        changed = store.replace(org_scope(owner), owner, found)
    else:
        changed = store.replace(own_scope, owner, found)
    if changed:
        ctx.log.info("kept %d event(s) from %s", len(found), config.source)


@router.on(*LABELS_ON, name="events.labels", needs_installation=False)
def labels(ctx: Context) -> None:
    """Note which event labels the issue or pull request carries now."""
    item = ctx.payload.get("pull_request") or ctx.payload.get("issue")
    if not isinstance(item, Mapping) or not isinstance(item.get("number"), int):
        return
    names = [str(label.get("name")) for label in item.get("labels") or [] if isinstance(label, Mapping)]
    repository = ctx.payload["repository"]
    owner = str(repository["full_name"]).split("/", 1)[0]
    store_for(ctx).note_labels(int(repository["id"]), owner, int(item["number"]), names)
