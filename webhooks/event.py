"""The `Event` value: what a handler needs to know about one delivery, built from headers and body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from domain import json_text
from storage.db import deliveries


def _column_length(name: str) -> int:
    kind = deliveries.c[name].type
    assert isinstance(kind, sa.String) and kind.length
    return kind.length


# The intake stores these fields in columns of these sizes (PostgreSQL enforces them: a value that does
# not fit would fail the INSERT and pass for a database outage), and the installation id in a BIGINT.
MAX_LENGTH = {name: _column_length(name) for name in ("id", "event", "action", "repository", "sender")}
BIGINT = range(-(2**63), 2**63)


class MalformedEvent(ValueError):
    """The body or headers are not a GitHub webhook delivery."""


@dataclass(frozen=True)
class Event:
    delivery_id: str
    name: str
    payload: Mapping[str, Any] = field(repr=False)
    # Read from the payload once, when the event is made: the intake and the handlers ask for them again
    # and again. A field of the wrong type reads as None (the intake refuses such a delivery: `parse`).
    action: str | None = field(init=False, repr=False, compare=False)
    installation_id: int | None = field(init=False, repr=False, compare=False)
    repository: str | None = field(init=False, repr=False, compare=False)
    sender_login: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        payload, known = self.payload, object.__setattr__  # frozen: set once, here
        action, installation = payload.get("action"), payload.get("installation")
        repository, sender = payload.get("repository"), payload.get("sender")
        known(self, "action", action if isinstance(action, str) else None)
        number = installation.get("id") if isinstance(installation, dict) else None
        known(self, "installation_id", number if isinstance(number, int) and not isinstance(number, bool) else None)
        full_name = repository.get("full_name") if isinstance(repository, dict) else None
        known(self, "repository", full_name if isinstance(full_name, str) else None)
        login = sender.get("login") if isinstance(sender, dict) else None
        known(self, "sender_login", login if isinstance(login, str) else None)

    @property
    def key(self) -> str:
        """`event.action` as Probot and our router spell it, or the bare event name."""
        return f"{self.name}.{self.action}" if self.action else self.name

    @property
    def lane(self) -> str | None:
        """The deliveries processed one after the other, in the order they arrived: those about the issues and
        pull requests of one author in a repository, `owner/repo@login` (`owner/repo#number` when the item
        names no author). None for anything else (pushes, check runs), which goes to any free thread.

        Every delivery about one item is in its author's lane: a reply handled before the issue's opening would
        find nothing to answer. And what is decided from a person's earlier contributions in the ledger (a
        greeting, a newcomer's item watched, a milestone of merged pull requests) must not be decided while
        their earlier items are still being recorded beside it: two merges counted at once would both count
        the other as not yet merged, and the fifth merge's congratulations would never be sent."""
        thing = self.payload.get("issue") or self.payload.get("pull_request")
        if self.repository is None or not isinstance(thing, dict):
            return None
        author = thing.get("user")
        login = author.get("login") if isinstance(author, dict) else None
        if isinstance(login, str) and login:
            return f"{self.repository}@{login.lower()}"
        number = thing.get("number")
        if isinstance(number, bool) or not isinstance(number, int):
            return None
        return f"{self.repository}#{number}"

    def bot_reason(self) -> str | None:
        """Why this event must not trigger behaviour (bots, this app included, would loop), or None."""
        sender = self.payload.get("sender")
        if isinstance(sender, dict) and sender.get("type") == "Bot":
            return f"sender {sender.get('login')} is a bot"
        for key in ("comment", "issue", "pull_request", "review"):
            item = self.payload.get(key)
            if isinstance(item, dict) and item.get("performed_via_github_app"):
                return f"{key} was made by a GitHub App"
        return None


def parse(delivery_id: str | None, event_name: str | None, body: bytes) -> Event:
    """Build an Event from the raw delivery, or raise MalformedEvent saying what is wrong."""
    if not delivery_id:
        raise MalformedEvent("missing X-GitHub-Delivery header")
    if not event_name:
        raise MalformedEvent("missing X-GitHub-Event header")
    _check_text("X-GitHub-Delivery header", delivery_id, MAX_LENGTH["id"])
    _check_text("X-GitHub-Event header", event_name, MAX_LENGTH["event"])
    if not body:
        raise MalformedEvent("empty body")
    try:
        # GitHub sends UTF-8, the only encoding RFC 8259 allows; json.loads(bytes) would also take UTF-16/32.
        payload = json_text.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise MalformedEvent(f"body is not valid JSON: it must be UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except RecursionError as exc:
        raise MalformedEvent("body is nested too deeply to read") from exc
    except ValueError as exc:  # JSONDecodeError, and integers past Python's int-string limit
        raise MalformedEvent(f"body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise MalformedEvent("body must be a JSON object")
    _check_stored_fields(payload)
    return Event(delivery_id=delivery_id, name=event_name, payload=payload)


def _check_stored_fields(payload: Mapping[str, Any]) -> None:
    """The fields the intake stores beside the payload must have GitHub's types and fit their columns."""
    installation, repository, sender = payload.get("installation"), payload.get("repository"), payload.get("sender")
    if (action := payload.get("action")) is not None:
        _check_text("action", action, MAX_LENGTH["action"])
    if isinstance(repository, dict) and (full_name := repository.get("full_name")) is not None:
        _check_text("repository.full_name", full_name, MAX_LENGTH["repository"])
    if isinstance(sender, dict) and (login := sender.get("login")) is not None:
        _check_text("sender.login", login, MAX_LENGTH["sender"])
    if isinstance(installation, dict) and installation.get("id") is not None:
        number = installation["id"]
        if isinstance(number, bool) or not isinstance(number, int) or number not in BIGINT:
            raise MalformedEvent("installation.id must be an integer that fits in 64 bits")


def _check_text(name: str, value: object, limit: int | None) -> None:
    if not isinstance(value, str):
        raise MalformedEvent(f"{name} must be a string")
    if limit is not None and len(value) > limit:
        raise MalformedEvent(f"{name} is too long (over {limit} characters)")
    # PostgreSQL text cannot hold NUL, and a lone surrogate (a JSON escape such as \ud800) is not UTF-8.
    if "\x00" in value or not (value.isascii() or _utf8(value)):
        raise MalformedEvent(f"{name} holds a NUL character or an unpaired surrogate")


def _utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
