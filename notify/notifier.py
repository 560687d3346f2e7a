"""Outgoing messages that are not GitHub calls, with the guarantees GitHub writes have.

A message goes to a destination the operator named in the environment (see `notify.config`). The
`Notifier` posts it at most once per (destination, key), across workers and redeliveries: the key is
claimed in the intents table before posting and marked done after. Transient failures (429, 5xx, no
answer) are retried with exponential backoff, never sooner than the receiver's Retry-After, a few
times within a bounded wait; after that the error reaches the job layer, which retries later. Posts
are paced per destination (through Redis when there is one), DRY_RUN posts nothing, every outcome is
counted, and no credential is ever logged: adapters report the destination's name and the status only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import redis

from githubapp.errors import TransientError
from githubapp.pacing import WritePacer
from ops import metrics as metrics_module
from storage.intents import IntentStore

log = logging.getLogger(__name__)

SENT, DUPLICATE, DRY_RUN, RETRYING, RETRY_LATER, GONE, REJECTED = (
    "sent",
    "duplicate",
    "dry_run",
    "retrying",
    "retry_later",
    "gone",
    "rejected",
)


@dataclass(frozen=True)
class Message:
    """What to post; `key` names it for idempotency (e.g. `digest:octo-org:2026-W48`).

    `text` is plain text; `html` (Telegram's HTML subset) and `markdown` (Slack mrkdwn, Rocket.Chat
    Markdown) are optional richer variants, already escaped by whoever wrote them; `forum_markdown`
    (GitHub-flavoured: headings, tables) and `title` are for a forum's new topic (Discourse).
    """

    key: str
    text: str
    html: str | None = None
    markdown: str | None = None
    forum_markdown: str | None = None
    title: str | None = None


class Destination(Protocol):
    name: str
    kind: str
    # Seconds to leave between two posts (the platform's own limit per chat).
    interval_seconds: float

    def post(self, message: Message) -> None:
        """Post once; raise a `NotifyError` on failure (naming no credential)."""

    def check(self) -> str | None:
        """Check the credentials without posting; what was checked, or None where the platform cannot tell."""


class NotifyError(Exception):
    """A destination refused or failed a message; the text names the destination, never its URL or token."""

    def __init__(self, destination: str, status: int, detail: str):
        super().__init__(f"{destination}: " + (f"{status} " if status else "") + detail)
        self.destination = destination
        self.status = status
        self.detail = detail


class DestinationUnavailable(NotifyError, TransientError):
    """Worth retrying: rate limited (429), a server error (5xx), a timeout or no connection."""

    def __init__(self, destination: str, status: int, detail: str, retry_after: float | None = None):
        super().__init__(destination, status, detail)
        self.retry_after = retry_after


class DestinationGone(NotifyError):
    """The destination no longer takes our messages (bot kicked, hook deleted, token revoked): not retried."""


class MessageRejected(NotifyError):
    """The destination refused this message (a 4xx that is not about access): not retried."""


class UnknownDestination(NotifyError):
    """No destination of that name is configured (the operator defines them: DESTINATION_<NAME>_KIND)."""

    def __init__(self, destination: str):
        super().__init__(destination, 0, "no such destination: the operator defines them as DESTINATION_<NAME>_KIND")


def error_for(destination: str, status: int, detail: str, retry_after: float | None = None) -> NotifyError:
    """The typed error for a failed answer; pure, shared by the adapters."""
    if status == 429 or status >= 500:
        return DestinationUnavailable(destination, status, detail, retry_after)
    if status in (401, 403, 404, 410):
        return DestinationGone(destination, status, detail)
    return MessageRejected(destination, status, detail)


class Notifier:
    def __init__(
        self,
        destinations: Mapping[str, Destination],
        intents: IntentStore,
        metrics: metrics_module.Recorder,
        *,
        dry_run: bool = False,
        connection: redis.Redis | None = None,
        attempts: int = 3,
        base_seconds: float = 1.0,
        max_wait_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.destinations = dict(destinations)
        self.intents = intents
        self.metrics = metrics
        self.dry_run = dry_run
        self.attempts = attempts
        self.base_seconds = base_seconds
        self.max_wait_seconds = max_wait_seconds
        self.sleep = sleep  # every wait goes through here (tests record them instead of waiting)
        self._pacers = {
            name: WritePacer(d.interval_seconds, max_wait_seconds, connection, lambda s: self.sleep(s))
            for name, d in destinations.items()
        }

    def send(self, destination_name: str, message: Message, owner_id: str) -> str:
        """Post `message` once; `owner_id` (a delivery id, a task run) may finish it on its own retry.

        Returns sent, duplicate (posted or being posted by another owner) or dry_run; raises
        DestinationUnavailable (retry the job later), DestinationGone or MessageRejected.
        """
        destination = self.destinations.get(destination_name)
        if destination is None:
            raise UnknownDestination(destination_name)
        return self.send_to(destination, message, owner_id)

    def send_to(self, destination: Destination, message: Message, owner_id: str) -> str:
        """`send` to a destination the app made itself (a person's private chat with the bot, a private
        message on the forum), with the same once-per-key guarantee; unpaced unless it has a pacer."""
        destination_name = destination.name
        fields = {"destination": destination_name}
        if self.dry_run:
            log.info("dry run: would notify", extra={**fields, "count": len(message.text)})
            return self._count(destination_name, DRY_RUN)
        key = f"notify:{destination_name}:{message.key}"
        if not self.intents.claim(key, owner_id):
            log.debug("skipped: message already sent or being sent", extra={**fields, "reason": key})
            return self._count(destination_name, DUPLICATE)
        self._post(destination, message, fields)
        self.intents.done(key, SENT)
        log.info("notified", extra={**fields, "outcome": SENT, "count": len(message.text)})
        return self._count(destination_name, SENT)

    def _post(self, destination: Destination, message: Message, fields: dict[str, str]) -> None:
        waited = 0.0
        for attempt in range(1, self.attempts + 1):
            pacer = self._pacers.get(destination.name)
            if pacer is not None:
                pacer.wait_for_slot(f"notify:{destination.name}")
            try:
                destination.post(message)
                return
            except DestinationUnavailable as exc:
                delay = max(exc.retry_after or 0.0, self.base_seconds * 2.0 ** (attempt - 1))
                if attempt == self.attempts or waited + delay > self.max_wait_seconds:
                    log.warning("notification will be retried later", extra={**fields, "error": str(exc)})
                    self._count(destination.name, RETRY_LATER)
                    raise
                log.info("notification retrying", extra={**fields, "error": str(exc), "retry_in": delay})
                self._count(destination.name, RETRYING)
                self.sleep(delay)
                waited += delay
            except DestinationGone as exc:
                log.warning("notification destination gone", extra={**fields, "error": str(exc)})
                self._count(destination.name, GONE)
                raise
            except MessageRejected as exc:
                log.warning("notification rejected", extra={**fields, "error": str(exc)})
                self._count(destination.name, REJECTED)
                raise

    def _count(self, destination_name: str, outcome: str) -> str:
        self.metrics.inc(metrics_module.NOTIFICATIONS, {"destination": destination_name, "outcome": outcome})
        return outcome
