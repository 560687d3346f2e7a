"""Telegram: a group or forum topic through the Bot API's `sendMessage` (https://core.telegram.org/bots/api).

The bot token is part of every URL (`/bot<token>/<method>`), so no URL is ever logged or raised.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import requests

from notify.notifier import Message, NotifyError, error_for
from notify.transport import call, retry_after
from settings.destinations import TELEGRAM, TELEGRAM_API_URL

KIND = TELEGRAM
DEFAULT_API_URL = TELEGRAM_API_URL
# Telegram's FAQ: "no more than 20 messages per minute in the same group".
INTERVAL_SECONDS = 3.0


@dataclass
class Telegram:
    name: str
    chat_id: str
    bot_token: str = field(repr=False)
    thread_id: int | None = None
    api_url: str = DEFAULT_API_URL
    interval_seconds: float = INTERVAL_SECONDS
    session: requests.Session = field(default_factory=requests.Session, repr=False)
    kind: str = KIND

    def post(self, message: Message) -> None:
        body: dict[str, Any] = {
            "chat_id": int(self.chat_id) if self.chat_id.lstrip("-").isdigit() else self.chat_id,
            # Formatting options: in HTML mode <, > and & outside tags must be escaped.
            "text": message.html if message.html is not None else html.escape(message.text, quote=False),
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        if self.thread_id is not None:
            body["message_thread_id"] = self.thread_id  # a forum topic
        self._call("sendMessage", body)

    def check(self) -> str:
        """getMe: the token is valid (it does not tell whether the bot is still in the chat)."""
        bot = self.me()
        return f"bot @{bot.get('username')} answers (token accepted; chat {self.chat_id} is checked only by posting)"

    def me(self) -> dict[str, Any]:
        """getMe: the bot's own User; Telegram answers it only to a valid token."""
        bot: dict[str, Any] = self._call("getMe")
        return bot

    def webhook_info(self) -> dict[str, Any]:
        """getWebhookInfo: where Telegram delivers the bot's updates, how many wait, and its last delivery error."""
        info: dict[str, Any] = self._call("getWebhookInfo")
        return info

    def _call(self, method: str, body: dict[str, Any] | None = None) -> Any:
        url = f"{self.api_url}/bot{self.bot_token}/{method}"
        status, data, headers = call(self.session, self.name, "POST" if body is not None else "GET", url, body)
        if status == 200 and isinstance(data, dict) and data.get("ok"):
            return data.get("result") or {}
        raise _error(self.name, status, data, headers)


def _error(name: str, status: int, data: Any, headers: Any) -> NotifyError:
    """Telegram says how long to wait as `parameters.retry_after` in the body (ResponseParameters)."""
    if not isinstance(data, dict):
        return error_for(name, status, str(data)[:200], retry_after(headers))
    detail = str(data.get("description") or "")[:200]
    parameters = data.get("parameters") or {}
    if parameters.get("migrate_to_chat_id"):
        detail += f" (the group became a supergroup: set its CHAT_ID to {parameters['migrate_to_chat_id']})"
    wait = parameters.get("retry_after")
    return error_for(name, status, detail, float(wait) if isinstance(wait, int | float) else retry_after(headers))
