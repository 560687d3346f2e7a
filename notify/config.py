"""The adapters for the destinations the operator defined (settings.destinations holds their data)."""

from __future__ import annotations

import requests

from notify import discourse, telegram, webhook
from notify.notifier import Destination
from settings.destinations import DISCOURSE, TELEGRAM, DestinationConfig


def build(config: DestinationConfig, session: requests.Session) -> Destination:
    """The destination that posts to what `config` names, over `session`."""
    if config.kind == TELEGRAM:
        return telegram.Telegram(
            config.name,
            config.chat_id,
            config.bot_token,
            config.thread_id,
            config.api_url,
            telegram.INTERVAL_SECONDS if config.interval_seconds is None else config.interval_seconds,
            session,
        )
    if config.kind == DISCOURSE:
        return discourse.Discourse(
            config.name,
            config.api_url,
            config.api_key,
            config.api_username,
            config.topic_id,
            config.category_id,
            discourse.INTERVAL_SECONDS if config.interval_seconds is None else config.interval_seconds,
            session,
        )
    interval = webhook.INTERVAL_SECONDS if config.interval_seconds is None else config.interval_seconds
    return webhook.IncomingWebhook(config.name, config.kind, config.webhook_url, interval, session)
