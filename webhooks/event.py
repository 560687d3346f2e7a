"""The `Event` value: what a handler needs to know about one delivery, built from headers and body."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class MalformedEvent(ValueError):
    """The body or headers are not a GitHub webhook delivery."""


@dataclass(frozen=True)
class Event:
    delivery_id: str
    name: str
    payload: Mapping[str, Any] = field(repr=False)

    @property
    def action(self) -> str | None:
        action = self.payload.get("action")
        return action if isinstance(action, str) else None

    @property
    def key(self) -> str:
        """`event.action` as Probot and our router spell it, or the bare event name."""
        return f"{self.name}.{self.action}" if self.action else self.name

    @property
    def installation_id(self) -> int | None:
        installation = self.payload.get("installation")
        if isinstance(installation, Mapping) and isinstance(installation.get("id"), int):
            return int(installation["id"])
        return None

    @property
    def repository(self) -> str | None:
        repository = self.payload.get("repository")
        if isinstance(repository, Mapping) and isinstance(repository.get("full_name"), str):
            return str(repository["full_name"])
        return None

    @property
    def sender_login(self) -> str | None:
        sender = self.payload.get("sender")
        return sender.get("login") if isinstance(sender, Mapping) else None

    def bot_reason(self) -> str | None:
        """Why this event must not trigger behaviour (bots, this app included, would loop), or None."""
        sender = self.payload.get("sender")
        if isinstance(sender, Mapping) and sender.get("type") == "Bot":
            return f"sender {sender.get('login')} is a bot"
        for key in ("comment", "issue", "pull_request", "review"):
            item = self.payload.get(key)
            if isinstance(item, Mapping) and item.get("performed_via_github_app"):
                return f"{key} was made by a GitHub App"
        return None


def parse(delivery_id: str | None, event_name: str | None, body: bytes) -> Event:
    """Build an Event from the raw delivery, or raise MalformedEvent saying what is wrong."""
    if not delivery_id:
        raise MalformedEvent("missing X-GitHub-Delivery header")
    if len(delivery_id) > 64:
        raise MalformedEvent("X-GitHub-Delivery header is too long")
    if not event_name:
        raise MalformedEvent("missing X-GitHub-Event header")
    if not body:
        raise MalformedEvent("empty body")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEvent(f"body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise MalformedEvent("body must be a JSON object")
    return Event(delivery_id=delivery_id, name=event_name, payload=payload)
