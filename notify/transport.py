"""The one HTTP seam of the adapters: a POST or GET whose failures name the destination, never the URL.

Chat platforms put credentials in the URL (Telegram's bot token in the path, an incoming webhook's
token in its address), and `requests` exceptions quote the URL; so they are caught here and replaced
by a `NotifyError` that carries only the destination's name and the error's class or status.
"""

from __future__ import annotations

from typing import Any

import requests

from notify.notifier import DestinationUnavailable

TIMEOUT = (5.0, 10.0)  # connect, read
USER_AGENT = "llmasos-engage"


def call(
    session: requests.Session,
    destination: str,
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, requests.structures.CaseInsensitiveDict[str]]:
    """(status, decoded JSON or text, headers); raises DestinationUnavailable when nothing answered.
    `headers` may carry credentials (Discourse's Api-Key): they are never logged either."""
    try:
        sent = {"User-Agent": USER_AGENT, **(headers or {})}
        answer = session.request(method, url, json=body, timeout=TIMEOUT, headers=sent)
    except requests.RequestException as exc:
        # `from None`: the original exception (and any traceback logged later) would show the URL.
        raise DestinationUnavailable(destination, 0, f"no answer ({type(exc).__name__})") from None
    try:
        data: Any = answer.json()
    except ValueError:
        data = answer.text[:200]
    return answer.status_code, data, answer.headers


def retry_after(headers: Any) -> float | None:
    """The Retry-After header in seconds, when it is a number (Slack and Rocket.Chat send it on 429)."""
    value = (headers.get("Retry-After") or "").strip()
    return float(value) if value.replace(".", "", 1).isdigit() else None
