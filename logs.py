"""Structured logs, secrets scrubbed: text lines on a terminal, one JSON object per line otherwise (a log
collector, a file, a pipe), or as LOG_FORMAT says (`text`, `json`, `auto`)."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

FIELDS = (
    "delivery_id",
    "event",
    "action",
    "repo",
    "behaviour",
    "handler",
    "installation_id",
    "outcome",
    "duration_ms",
    "handlers",
    "reason",
    "method",
    "path",
    "status",
    "attempt",
    "error",
    "body",
    "migration",
    "description",
    "count",
    "retry_in",
    "destination",
)
# Belt and braces: tokens and JWTs must never reach a log line, whatever a caller passes. Also chat
# credentials: Telegram bot tokens (`123456:AA...`, in its URLs' paths) and the secret part of incoming
# webhook addresses (Rocket.Chat and Mattermost `/hooks/...`, Slack `/services/...`, Discord `/webhooks/...`).
_SECRET = re.compile(
    r"(gh[pousr]_[A-Za-z0-9]{8,}|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"
    r"|(?i:bearer|token)\s+[A-Za-z0-9_.-]{12,}"
    r"|\d{5,}:[A-Za-z0-9_-]{30,}|(?<=/hooks/)[A-Za-z0-9_/-]{16,}|(?<=/services/)[A-Za-z0-9_/-]{16,}"
    r"|(?<=/webhooks/)\d+/[A-Za-z0-9_-]{16,})"
)

# What every match of _SECRET contains (its lookbehinds' words included). Looking for these is about 30
# times cheaper than _SECRET, whose alternatives and lookbehinds are tried at every position, and most
# lines hold none of them: they skip the substitution (about 30 µs a line, several lines per delivery).
_SECRET_WORDS = ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "eyJ", "/hooks/", "/services/", "/webhooks/")
_SECRET_WORDS_ANY_CASE = ("bearer", "token")
_AFTER_COLON = re.compile(r":[A-Za-z0-9_-]{30}")  # a Telegram bot token's second part


def _may_hold_secret(text: str) -> bool:
    lowered = text.lower()
    return (
        any(word in text for word in _SECRET_WORDS)
        or any(word in lowered for word in _SECRET_WORDS_ANY_CASE)
        or _AFTER_COLON.search(text) is not None
    )


def scrub(text: str) -> str:
    return _SECRET.sub("[redacted]", text) if _may_hold_secret(text) else text


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in FIELDS:
            if name in record.__dict__:
                entry[name] = record.__dict__[name]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return scrub(json.dumps(entry, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{name}={record.__dict__[name]}" for name in FIELDS if name in record.__dict__)
        line = f"{record.levelname:<7} {record.name}: {record.getMessage()}" + (f" [{extras}]" if extras else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return scrub(line)


AUTO, TEXT, JSON = "auto", "text", "json"


def chosen_format(fmt: str, stream: object) -> str:
    """`auto`: text for a person at a terminal (a command typed by hand), JSON where a program reads the log."""
    if fmt != AUTO:
        return fmt
    isatty = getattr(stream, "isatty", None)
    return TEXT if callable(isatty) and isatty() else JSON


def configure(level: str = "INFO", fmt: str = AUTO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TextFormatter() if chosen_format(fmt, sys.stderr) == TEXT else JSONFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_engage", False):
            root.removeHandler(existing)
    handler._engage = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # RQ and urllib3 are chatty at INFO; their warnings still show.
    for noisy in ("urllib3", "rq.worker"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
