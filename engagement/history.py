"""Import every installed repository's history into the ledger in the background, a slice at a time.

Why: until the ledger holds a repository's history, its leaderboard and health pages start on the day
the app was installed, and every first-time question ("is this their first issue here?") costs GitHub
lookups at the moment of greeting. `flask backfill` answered both when an operator thought of running
it; this runs the same import (`jobs.backfill`) for every installed repository, resumably, on a share
of each installation's request budget the operator sets, behind everything the app does live.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.contributions import Repo
from githubapp.budget import Budget
from jobs.backfill import BackfillError, Paused, backfill, state_key
from scheduling.tasks import Schedule
from storage.ledger import LedgerStore
from webhooks.router import Router

log = logging.getLogger(__name__)

NAME = "history"
HELP = """Imports the history of every repository the app is installed on (issues, pull requests, reviews
and comments from the start) into the ledger, in the background, so that its leaderboard and health pages
show the repository's past and not only what happened since installing, and so that the greeting knows who
is new from the ledger instead of asking GitHub at the moment it greets. It works as `flask backfill` does
and counts nothing twice, a slice every 5 minutes: each slice spends at most a twelfth of
`BACKFILL_CALLS_PER_HOUR` (default 1,000) of each installation's GitHub requests and runs at most a minute,
leaves an installation alone while it has less than half of its hourly requests left or is rate limited,
and continues where it stopped. A repository that cannot be read is tried again 6 hours later; one an
operator's `flask backfill` is importing (it saved its place in the last 15 minutes) is left to it.
`BACKFILL_CALLS_PER_HOUR=0` turns it off; `flask backfill OWNER/REPO` still imports at once."""

INTERVAL = timedelta(minutes=5)
# A slice holds a worker thread (or the embedded worker's tick): it stops at the first page after this.
SLICE_SECONDS = 60.0
# History is the least urgent use of an installation's requests: no slice while fewer than this share remain.
RESERVE_FRACTION = 0.5
RETRY_AFTER_FAILURE = timedelta(hours=6)
# An operator's `flask backfill` that saved its place this recently is taken to be running: two imports of
# one repository would undo each other's place (and a different --since restarts it). After that, this
# import continues what it left (or starts over, when it imported since a date).
OPERATOR_QUIET = timedelta(minutes=15)

router = Router()  # no event: the task below does the work
schedule = Schedule()


def failure_key(repo_id: int) -> str:
    return f"history-failed:{repo_id}"


@schedule.every(INTERVAL, name=NAME, description="import installed repositories' history, a slice at a time")
def import_history(services: Any) -> None:
    """One slice: repositories in the order they were first seen, until each installation's share of
    requests (GitHub counts each installation's apart) or the slice's minute is spent."""
    settings = services.settings
    per_hour = settings.backfill_calls_per_hour
    if per_hour <= 0 or settings.app_id is None or not settings.private_key:
        return  # off, or the app has no GitHub credentials yet (before `/setup`)
    share = math.ceil(per_hour * INTERVAL.total_seconds() / 3600)
    left: dict[int, int] = {}  # installation id -> requests left of its share in this slice
    deadline = time.monotonic() + SLICE_SECONDS
    ledger: LedgerStore = services.stores.ledger
    now = datetime.now(UTC).replace(tzinfo=None)
    for repo in ledger.unimported_repositories():
        if time.monotonic() >= deadline:
            break
        installation = int(repo.installation_id or 0)
        allowance = left.setdefault(installation, share)
        if allowance <= 0 or failure(ledger, repo.id, now) is not None:
            continue
        if _by_operator(_position(ledger, repo.id), now):
            log.info("history import leaves the repository to an operator's backfill", extra={"repo": repo.full_name})
            continue
        budget: Budget = services.github.budget
        if short_of_requests(budget, repo):
            log.info("history import waits: the installation's GitHub budget is low", extra={"repo": repo.full_name})
            continue
        left[installation] = allowance - import_slice(services, repo, allowance, deadline)


def short_of_requests(budget: Budget, repo: Repo) -> bool:
    reading = budget.reading(int(repo.installation_id or 0))
    return reading is not None and (reading.remaining < RESERVE_FRACTION * reading.limit or reading.low(budget.clock()))


def failure(ledger: LedgerStore, repo_id: int, now: datetime) -> str | None:
    """Why the repository's import failed, while it is set aside (RETRY_AFTER_FAILURE); None otherwise."""
    stored = ledger.get_state(failure_key(repo_id))
    if stored is None:
        return None
    try:
        found = json.loads(stored)
        at, error = datetime.fromisoformat(found["at"]), str(found["error"])
    except (ValueError, KeyError, TypeError):
        return None
    return error if now - at < RETRY_AFTER_FAILURE else None


def _by_operator(position: dict[str, Any] | None, now: datetime) -> bool:
    """True while an operator's `flask backfill` holding this position is under way (saved its place lately)."""
    if not position or position.get("scheduled") or not position.get("saved_at"):
        return False
    try:
        return now - datetime.fromisoformat(str(position["saved_at"])) < OPERATOR_QUIET
    except (ValueError, TypeError):
        return False


def _position(ledger: LedgerStore, repo_id: int) -> dict[str, Any] | None:
    """The backfill's saved place (jobs.backfill.Position, as stored), None when absent or unreadable."""
    stored = ledger.get_state(state_key(repo_id))
    try:
        position = json.loads(stored) if stored else None
    except ValueError:
        return None
    return position if isinstance(position, dict) else None


@dataclass(frozen=True)
class Pending:
    """An installed repository whose history is still to import, and where that stands (the operator page)."""

    full_name: str
    where: str | None  # "at page 3 of pulls"; None before it started
    failed: str | None  # why it is set aside, while it is
    operator: bool  # an operator's `flask backfill` is importing it


def pending(ledger: LedgerStore, now: datetime, names: set[str] | None, limit: int) -> tuple[list[Pending], int]:
    """The first `limit` repositories still to import (of `names`, when given: what the viewer may see),
    and how many there are in all."""
    repos = [r for r in ledger.unimported_repositories() if names is None or r.full_name in names]
    shown = []
    for repo in repos[:limit]:
        position = _position(ledger, repo.id)
        failed = failure(ledger, repo.id, now)
        shown.append(Pending(repo.full_name, _where(position), failed, _by_operator(position, now)))
    return shown, len(repos)


def progress(ledger: LedgerStore, repo_id: int) -> str | None:
    """Where an unfinished import stands, for operators ("at page 3 of pulls"); None before it started."""
    return _where(_position(ledger, repo_id))


def _where(position: dict[str, Any] | None) -> str | None:
    try:
        return f"at page {int(position['page'])} of {position['stage']}" if position else None
    except (ValueError, KeyError, TypeError):
        return None


def import_slice(services: Any, repo: Repo, allowance: int, deadline: float) -> int:
    """Import `repo` until `allowance` requests or the deadline are spent; the requests it made."""
    budget: Budget = services.github.budget

    pages = 0

    def keep_going(calls: int) -> bool:
        """Asked before each page. The first always goes, so that reading the repository and its config
        cannot eat a small share whole; after it, until the share, the minute or the spare budget ends."""
        nonlocal pages
        pages += 1
        return pages == 1 or (calls < allowance and time.monotonic() < deadline and not short_of_requests(budget, repo))

    ledger: LedgerStore = services.stores.ledger
    extra = {"repo": repo.full_name}
    try:
        result = backfill(
            services,
            repo.full_name,
            None,
            lambda *_: None,
            say=lambda line: log.info(line, extra=extra),
            installation_id=repo.installation_id,
            keep_going=keep_going,
        )
    except Paused as paused:
        log.info("history import paused: %s", paused, extra=extra)
        return paused.calls
    except BackfillError as exc:
        log.warning("history import failed; trying again in 6 hours: %s", exc, extra=extra)
        at = datetime.now(UTC).replace(tzinfo=None).isoformat()
        ledger.set_state(failure_key(repo.id), json.dumps({"at": at, "error": str(exc)}))
        return exc.calls
    ledger.set_state(failure_key(repo.id), None)
    log.info("history imported: %s", result.summary(), extra=extra)
    return result.calls
