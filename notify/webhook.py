"""Incoming webhooks: Rocket.Chat's (`POST /hooks/<id>/<token>`) and Slack-compatible ones.

Both take `{"text": ...}` at an address that is itself the credential, so the address is never logged.
Slack-compatible covers Slack, Mattermost and Zulip's Slack endpoint; Discord takes the same body at
its webhook URL with `/slack` appended (Discord's "Slack-compatible" webhooks), which is cheaper than
a third body format.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import requests

from notify.notifier import Message, error_for
from notify.transport import call, retry_after
from settings.destinations import SLACK

INTERVAL_SECONDS = 1.0  # Slack: "1 message per second" per incoming webhook; Rocket.Chat has no stated limit


@dataclass
class IncomingWebhook:
    name: str
    kind: str
    url: str = field(repr=False)
    interval_seconds: float = INTERVAL_SECONDS
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def post(self, message: Message) -> None:
        status, data, headers = call(self.session, self.name, "POST", self.url, {"text": self._text(message)})
        # Rocket.Chat answers {"success": true}; Slack answers the text "ok"; both with 200.
        if status == 200 and not (isinstance(data, dict) and data.get("success") is False):
            return
        detail = str(data.get("error") or "") if isinstance(data, dict) else str(data)
        raise error_for(self.name, status, detail[:200], retry_after(headers))

    def check(self) -> None:
        """An incoming webhook cannot be checked without posting (`flask notify test NAME` posts)."""
        return None

    def _text(self, message: Message) -> str:
        if message.markdown is not None:
            return message.markdown
        if self.kind == SLACK:
            # Slack's "Formatting text": &, < and > are control characters in mrkdwn and must be escaped.
            return message.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return message.text
