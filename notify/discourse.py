"""Discourse: a reply in a topic, or a new topic in a category, through `POST /posts.json`
(createTopicPostPM in Discourse's OpenAPI description, https://docs.discourse.org).

The API key travels in the `Api-Key` header, never in the URL, and is never logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests

from notify.notifier import Message, NotifyError, error_for
from notify.transport import call, retry_after
from settings.destinations import DISCOURSE

KIND = DISCOURSE
# Discourse's default rate limits (`rate_limit_create_post`: 5 s between posts of one user) are per user.
INTERVAL_SECONDS = 5.0
TITLE_LIMIT = 255  # Discourse's `max_topic_title_length` default


@dataclass
class Discourse:
    name: str
    url: str  # the forum's address
    api_key: str = field(repr=False)
    api_username: str = "system"
    topic_id: int | None = None  # a reply in this topic
    category_id: int | None = None  # else a new topic per message in this category
    interval_seconds: float = INTERVAL_SECONDS
    session: requests.Session = field(default_factory=requests.Session, repr=False)
    kind: str = KIND
    recipient: str | None = None  # a private message to this user instead (a new one per message)

    def post(self, message: Message) -> None:
        # Discourse renders Markdown; the forum variant (headings, tables) reads best, plain text still does.
        body: dict[str, Any] = {"raw": message.forum_markdown or message.text}
        if self.recipient is not None:
            body |= {"archetype": "private_message", "target_recipients": self.recipient}
            body["title"] = (message.title or message.text.strip().splitlines()[0])[:TITLE_LIMIT]
        elif self.topic_id is not None:
            body["topic_id"] = self.topic_id
        else:
            body["title"] = (message.title or message.text.strip().splitlines()[0])[:TITLE_LIMIT]
            body["category"] = self.category_id
        headers = {"Api-Key": self.api_key, "Api-Username": self.api_username}
        status, data, answer_headers = call(self.session, self.name, "POST", f"{self.url}/posts.json", body, headers)
        if status == 200:
            return
        raise _error(self.name, status, data, answer_headers)

    def check(self) -> None:
        """Discourse cannot tell whether the key may post there without posting (`flask notify test NAME` posts)."""
        return None


def _error(name: str, status: int, data: Any, headers: Any) -> NotifyError:
    """Discourse answers `{"errors": [...], "error_type": ...}`; a 429 says how long to wait both in
    `Retry-After` and in `extras.wait_seconds`. 403 (key revoked, no permission) and 404 (topic gone) are gone."""
    if not isinstance(data, dict):
        return error_for(name, status, str(data)[:200], retry_after(headers))
    errors = data.get("errors")
    detail = "; ".join(str(e) for e in errors) if isinstance(errors, list) else str(data.get("error_type") or "")
    wait = (data.get("extras") or {}).get("wait_seconds")
    seconds = retry_after(headers) or (float(wait) if isinstance(wait, int | float) else None)
    return error_for(name, status, detail[:200], seconds)
