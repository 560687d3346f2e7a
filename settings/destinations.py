"""Chat destinations, defined only by the operator in the environment: names → credentials.

    DESTINATION_<NAME>_KIND=telegram | rocketchat | slack | discourse
    DESTINATION_<NAME>_CHAT_ID, DESTINATION_<NAME>_THREAD_ID   (telegram; the token is TELEGRAM_BOT_TOKEN)
    DESTINATION_<NAME>_WEBHOOK_URL                             (rocketchat, slack)
    DESTINATION_<NAME>_TOPIC_ID or DESTINATION_<NAME>_CATEGORY_ID
                     (discourse: a reply in that topic, or a new topic there; DISCOURSE_URL, DISCOURSE_API_KEY
                      and DISCOURSE_API_USERNAME are the forum and its credentials)
    DESTINATION_<NAME>_INTERVAL                                (optional: seconds between two posts)

A repository's config may only pick names, so it can never make the app post to an address of its
choosing or read a credential. Errors name the variable and never echo a value that may hold a secret.
Plain data: `notify.config` builds the adapters from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from settings.errors import ConfigError

TELEGRAM, ROCKETCHAT, SLACK, DISCOURSE = "telegram", "rocketchat", "slack", "discourse"
KINDS = (TELEGRAM, ROCKETCHAT, SLACK, DISCOURSE)
TELEGRAM_API_URL = "https://api.telegram.org"
_KIND_VARIABLE = re.compile(r"DESTINATION_([A-Z0-9_]+)_KIND")
_SUFFIXES = ("_CHAT_ID", "_THREAD_ID", "_WEBHOOK_URL", "_INTERVAL", "_TOPIC_ID", "_CATEGORY_ID")
_BOT_TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]+")
# `github` is the destination that needs no credentials (a repository's own issues).
RESERVED = ("github",)


@dataclass(frozen=True)
class DestinationConfig:
    name: str
    kind: str
    chat_id: str = ""
    thread_id: int | None = None
    webhook_url: str = field(default="", repr=False)
    bot_token: str = field(default="", repr=False)
    api_url: str = TELEGRAM_API_URL  # the platform's address: the Bot API's, or the Discourse forum's
    interval_seconds: float | None = None  # None: the platform's default
    topic_id: int | None = None  # discourse: reply in this topic
    category_id: int | None = None  # discourse: a new topic per message in this category
    api_key: str = field(default="", repr=False)  # discourse
    api_username: str = ""  # discourse


def destinations(env: Mapping[str, str]) -> tuple[DestinationConfig, ...]:
    """Every destination the environment defines, checked; a ConfigError names the variable to fix."""
    names = sorted(m.group(1) for key in env if (m := _KIND_VARIABLE.fullmatch(key)) and env[key].strip())
    expected = {f"DESTINATION_{name}{suffix}" for name in names for suffix in _SUFFIXES}
    for key in env:
        if key.startswith("DESTINATION_") and key.endswith(_SUFFIXES) and env[key].strip() and key not in expected:
            raise ConfigError(f"{key} is set but no DESTINATION_<NAME>_KIND names its destination")
    return tuple(_destination(env, name) for name in names)


def _destination(env: Mapping[str, str], upper: str) -> DestinationConfig:
    prefix = f"DESTINATION_{upper}"
    name = upper.lower()
    kind = env[f"{prefix}_KIND"].strip().lower()
    if name in RESERVED:
        raise ConfigError(f"{prefix}_KIND: {name!r} is reserved (it needs no credentials); pick another name")
    if kind not in KINDS:
        raise ConfigError(f"{prefix}_KIND must be one of {', '.join(KINDS)}, got {kind!r}")
    interval = _interval(env, f"{prefix}_INTERVAL")
    if kind == TELEGRAM:
        return _telegram(env, prefix, name, interval)
    if kind == DISCOURSE:
        return _discourse(env, prefix, name, interval)
    url = (env.get(f"{prefix}_WEBHOOK_URL") or "").strip()
    if not re.match(r"https?://[^/\s]+/\S*$", url):
        # The value is not quoted: the URL is the webhook's credential.
        raise ConfigError(f"{prefix}_WEBHOOK_URL must be the incoming webhook's http(s) address ({kind})")
    return DestinationConfig(name, kind, webhook_url=url, interval_seconds=interval)


def _telegram(env: Mapping[str, str], prefix: str, name: str, interval: float | None) -> DestinationConfig:
    token = (env.get("TELEGRAM_BOT_TOKEN") or "").strip()
    if not _BOT_TOKEN.fullmatch(token):
        raise ConfigError(
            f"{prefix}_KIND is telegram, so TELEGRAM_BOT_TOKEN must be the token @BotFather gave (123456:ABC...)"
        )
    chat_id = (env.get(f"{prefix}_CHAT_ID") or "").strip()
    if not re.fullmatch(r"-?\d+|@\w{5,}", chat_id):
        raise ConfigError(f"{prefix}_CHAT_ID must be the chat's numeric id (e.g. -1001234567890) or @channelname")
    thread = (env.get(f"{prefix}_THREAD_ID") or "").strip()
    if thread and not thread.isdigit():
        raise ConfigError(f"{prefix}_THREAD_ID must be the forum topic's number (message_thread_id), got {thread!r}")
    api_url = (env.get("TELEGRAM_API_URL") or TELEGRAM_API_URL).strip().rstrip("/")
    return DestinationConfig(
        name,
        TELEGRAM,
        chat_id=chat_id,
        thread_id=int(thread) if thread else None,
        bot_token=token,
        api_url=api_url,
        interval_seconds=interval,
    )


def _discourse(env: Mapping[str, str], prefix: str, name: str, interval: float | None) -> DestinationConfig:
    url = (env.get("DISCOURSE_URL") or "").strip().rstrip("/")
    if not re.fullmatch(r"https?://[^/\s]+(/\S*)?", url):
        raise ConfigError(f"{prefix}_KIND is discourse, so DISCOURSE_URL must be the forum's address (https://...)")
    key = (env.get("DISCOURSE_API_KEY") or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9]{16,}", key):
        # The value is not quoted: it is the credential.
        raise ConfigError(f"{prefix}_KIND is discourse, so DISCOURSE_API_KEY must be an API key from the forum's admin")
    username = (env.get("DISCOURSE_API_USERNAME") or "").strip()
    if not re.fullmatch(r"[\w.-]+", username):
        raise ConfigError(f"{prefix}_KIND is discourse, so DISCOURSE_API_USERNAME must be the user it posts as")
    topic, category = (_number(env, f"{prefix}{suffix}") for suffix in ("_TOPIC_ID", "_CATEGORY_ID"))
    if (topic is None) == (category is None):
        raise ConfigError(
            f"{prefix}: set one of {prefix}_TOPIC_ID (a reply in that topic) or {prefix}_CATEGORY_ID (a new topic)"
        )
    return DestinationConfig(
        name,
        DISCOURSE,
        api_url=url,
        api_key=key,
        api_username=username,
        topic_id=topic,
        category_id=category,
        interval_seconds=interval,
    )


def _number(env: Mapping[str, str], variable: str) -> int | None:
    raw = (env.get(variable) or "").strip()
    if raw and not raw.isdigit():
        raise ConfigError(f"{variable} must be a number (the id in the forum's address), got {raw!r}")
    return int(raw) if raw else None


def _interval(env: Mapping[str, str], variable: str) -> float | None:
    raw = (env.get(variable) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigError(f"{variable} must be a number of seconds between two posts (0: no pacing), got {raw!r}")
    return value
