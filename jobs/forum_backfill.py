"""Backfill the forum: its public posts from Discourse's API into the ledger, as the webhooks record them.

Why: the forum's webhooks tell the ledger what happens once they are set up; the community's history
is older. Each post goes through the webhook path's builders (`domain.contributions.forum_post`,
`forum_solution`) and its recording (`storage.ledger_removal`), so it has the same key whichever path
sees it first, and a post the forum deleted (a tombstone) is not brought back.

`GET /posts.json` (listPosts) lists the forum's public posts newest first, a page at a time, each page
`before` the lowest id of the one before; the position is saved after each page (the ledger's state
table), so a run that stopped continues where it was. Private messages are not in that list, and
whispers, hidden posts, Discourse's own accounts and categories outside DISCOURSE_PUBLIC_CATEGORIES
are left out by the builders. A post carrying discourse-solved's `accepted_answer` is the topic's
accepted solution. A 429 waits as long as Discourse asks (Retry-After); a 5xx or no answer is retried
twice; anything else stops the run with what to fix, its progress kept.

Not backfilled: likes (Discourse's API gives no time for a like; they count from the webhook on),
and Telegram, whose Bot API gives a bot no history.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from domain import contributions as build
from domain.contributions import Contribution, Forum, github_time
from services import Services
from storage.ledger import LedgerStore
from storage.ledger_removal import LedgerRemovals

SOURCE = "backfill"
TRANSIENT_RETRIES = 2
TRANSIENT_PAUSE_SECONDS = 2.0
TIMEOUT_SECONDS = 30

SUMMARY = "recorded {new} new forum contributions ({existing} already in the ledger) from {posts} posts"
RESUMED = " (counted over the whole import, which this run resumed)"
LIKES_NOT_BACKFILLED = (
    "likes are not backfilled: Discourse's API gives no time for a like, so they count from the webhook on"
)
TELEGRAM_NOT_BACKFILLED = (
    "Telegram cannot be backfilled: the Bot API gives a bot no history, only the updates after its webhook is set"
)
NOT_CONFIGURED = "the forum backfill needs {missing}"
REFUSED = (
    "Discourse refused {path} ({status}): check DISCOURSE_API_KEY and DISCOURSE_API_USERNAME "
    "(an admin's API key, or one that may read the forum's posts)"
)
STOPPED = "stopped before posts {before}: {error}. Progress is kept; run the same command again to continue"
RATE_LIMITED = "Discourse rate limit reached: waiting {seconds:.0f}s (until {until:%H:%M:%S} UTC)"
RESUMING = "resuming the interrupted forum backfill of {host} before post {before}"
RESTARTING = "an interrupted forum backfill of {host} had another --since ({before}); starting over"

Progress = Callable[[str, int, int | None], None]


class ForumBackfillError(Exception):
    """The backfill cannot start, or had to stop; the message says why and what to do."""


class _Transient(Exception):
    """A 5xx or no answer: worth trying again."""


@dataclass
class ForumBackfillResult:
    forum: str
    new: int = 0
    existing: int = 0
    posts: int = 0
    resumed: bool = False

    def summary(self) -> str:
        return "\n".join([SUMMARY.format(**asdict(self)) + (RESUMED if self.resumed else ""), LIKES_NOT_BACKFILLED])


def state_key(forum: Forum) -> str:
    return f"forum_backfill:{forum.host}"


class Discourse:
    """Discourse's API as the backfill reads it: GET with the API key's headers, waiting out 429s."""

    def __init__(self, url: str, key: str, username: str, say: Callable[[str], None], sleep: Callable[[float], None]):
        self.url, self.say, self.sleep = url, say, sleep
        self.session = requests.Session()
        self.session.headers.update({"Api-Key": key, "Api-Username": username, "Accept": "application/json"})

    def get(self, path: str, params: Mapping[str, Any]) -> Any:
        failures = 0
        while True:
            try:
                return self._get(path, params)
            except _Transient:
                failures += 1
                if failures > TRANSIENT_RETRIES:
                    raise
                self.sleep(TRANSIENT_PAUSE_SECONDS * failures)

    def _get(self, path: str, params: Mapping[str, Any]) -> Any:
        while True:
            try:
                answer = self.session.get(self.url + path, params=dict(params), timeout=TIMEOUT_SECONDS)
            except requests.RequestException as exc:
                raise _Transient(f"no answer from {self.url}: {type(exc).__name__}") from exc
            if answer.status_code == 429:
                seconds = _wait_seconds(answer)
                until = datetime.now(UTC) + timedelta(seconds=seconds)
                self.say(RATE_LIMITED.format(seconds=seconds, until=until))
                self.sleep(seconds)
                continue
            if answer.status_code >= 500:
                raise _Transient(f"Discourse answered {answer.status_code}")
            if answer.status_code in (401, 403):
                raise ForumBackfillError(REFUSED.format(path=path, status=answer.status_code))
            if answer.status_code != 200:
                raise ForumBackfillError(f"Discourse answered {answer.status_code} to {path}")
            return answer.json()


def _wait_seconds(answer: requests.Response) -> float:
    """Retry-After, else the body's `extras.wait_seconds` (Discourse sends both), at least a second."""
    header = answer.headers.get("Retry-After", "")
    if header.strip().isdigit():
        return max(1.0, float(header))
    try:
        extras = answer.json().get("extras") or {}
        return max(1.0, float(extras.get("wait_seconds") or 1))
    except (ValueError, AttributeError, TypeError):
        return 1.0


def backfill_forum(
    services: Services,
    since: datetime | None,
    progress: Progress,
    *,
    say: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> ForumBackfillResult:
    """Import the forum's public posts (since `since`, naive UTC; None: all) into the ledger."""
    settings = services.settings
    needed = {
        "DISCOURSE_URL": settings.discourse_url,
        "DISCOURSE_API_KEY": settings.discourse_api_key,
        "DISCOURSE_API_USERNAME": settings.discourse_api_username,
        "COMMUNITY_ORG": settings.community_org,
    }
    missing = [name for name, value in needed.items() if not value]
    if missing:
        raise ForumBackfillError(NOT_CONFIGURED.format(missing=", ".join(missing)))
    forum = Forum(str(settings.discourse_url), str(settings.community_org), settings.discourse_public_categories)
    api = Discourse(forum.url, str(settings.discourse_api_key), str(settings.discourse_api_username), say, sleep)

    def items_of(kind: str, key: str, topic: int | None) -> tuple[str, ...]:
        return build.forum_items_of(forum, kind, key, topic)

    ledger = LedgerRemovals(LedgerStore(services.store.engine), forum.place, items_of)
    return _Run(forum, api, ledger, since, progress, say).go()


class _Run:
    def __init__(
        self,
        forum: Forum,
        api: Discourse,
        ledger: LedgerRemovals,
        since: datetime | None,
        progress: Progress,
        say: Callable[[str], None],
    ):
        self.forum, self.api, self.ledger, self.since = forum, api, ledger, since
        self.progress, self.say = progress, say
        self.result = ForumBackfillResult(forum.host)
        self.key = state_key(forum)

    def go(self) -> ForumBackfillResult:
        before = self._load()
        while True:
            params = {"before": before} if before is not None else {}
            try:
                page = self.api.get("/posts.json", params).get("latest_posts") or []
            except _Transient as exc:
                raise ForumBackfillError(STOPPED.format(before=before or "the newest", error=exc)) from exc
            if not page:
                break
            older = self._record(page)
            self.progress("forum posts", self.result.posts, None)
            before = min(int(post["id"]) for post in page)
            self._save(before)
            if older:
                break  # newest first: the rest are older than --since
        self.ledger.ledger.set_state(self.key, None)
        return self.result

    def _record(self, page: list[Mapping[str, Any]]) -> bool:
        """Record a page's posts; True when it reached posts older than --since."""
        built: list[Contribution | None] = []
        older = False
        for post in page:
            created = github_time(post.get("created_at"))
            if self.since is not None and (created is None or created < self.since):
                older = True
                continue
            self.result.posts += 1
            built.append(build.forum_post(self.forum, post))
            if post.get("accepted_answer") is True:
                built.append(build.forum_solution(self.forum, post))
        wanted = [item for item in built if item is not None]
        new = self.ledger.record(wanted, source=SOURCE)
        self.result.new += new
        self.result.existing += len(wanted) - new
        return older

    def _since_text(self) -> str | None:
        return self.since.strftime("%Y-%m-%dT%H:%M:%SZ") if self.since else None

    def _load(self) -> int | None:
        stored = self.ledger.ledger.get_state(self.key)
        if not stored:
            return None
        try:
            position = json.loads(stored)
            before = int(position["before"])
        except (ValueError, TypeError, KeyError):
            return None
        if position.get("since") != self._since_text():
            self.say(RESTARTING.format(host=self.forum.host, before=position.get("since") or "none"))
            return None
        self.say(RESUMING.format(host=self.forum.host, before=before))
        for name in ("new", "existing", "posts"):
            setattr(self.result, name, int(position.get(name) or 0))
        self.result.resumed = True
        return before

    def _save(self, before: int) -> None:
        position = {"before": before, "since": self._since_text(), **asdict(self.result)}
        self.ledger.ledger.set_state(self.key, json.dumps(position))
