"""Messages to one person on the community's chat or forum: the bot's answers to `/link`, `/unlink`
and the other commands people send it privately. Each is sent once per key, through the Notifier
(intents, retries, DRY_RUN, metrics), to an address the app derives from who wrote to it, never from
a repository's configuration: Telegram's private chat with the bot, a new private message on the forum.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import requests

from notify.discourse import Discourse
from notify.notifier import Message, Notifier
from notify.telegram import Telegram

TELEGRAM_NAME, DISCOURSE_NAME = "telegram-private", "discourse-private"


@dataclass
class DirectMessages:
    notifier: Notifier
    telegram_bot_token: str | None = field(default=None, repr=False)
    telegram_api_url: str = ""
    discourse_url: str | None = None
    discourse_api_key: str | None = field(default=None, repr=False)
    discourse_api_username: str | None = None
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    @property
    def can_telegram(self) -> bool:
        return bool(self.telegram_bot_token)

    @property
    def can_discourse(self) -> bool:
        return bool(self.discourse_url and self.discourse_api_key and self.discourse_api_username)

    def telegram(self, chat_id: int, message: Message, owner_id: str) -> str:
        """To the private chat `chat_id` (the person's own id: they wrote to the bot first)."""
        token, url = self.telegram_bot_token or "", self.telegram_api_url
        destination = Telegram(TELEGRAM_NAME, str(chat_id), token, api_url=url, session=self.session)
        return self.notifier.send_to(destination, message, owner_id)

    def discourse(self, username: str, message: Message, owner_id: str) -> str:
        """A new private message from the app's forum user to `username`."""
        destination = Discourse(
            DISCOURSE_NAME,
            self.discourse_url or "",
            self.discourse_api_key or "",
            self.discourse_api_username or "",
            session=self.session,
            recipient=username,
        )
        return self.notifier.send_to(destination, message, owner_id)
