"""The app's own comments: recognising them, and posting one exactly once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from storage.intents import RESUMED, TAKEN
from webhooks.context import Context


def ours(comment: Mapping[str, Any], marker: str) -> bool:
    """A bot's comment carrying `marker`. People cannot post as a bot, so pasting a marker into a
    comment of one's own cannot stop the app from posting (or make it delete someone's comment)."""
    return marker in (comment.get("body") or "") and (comment.get("user") or {}).get("type") == "Bot"


def comment_once(ctx: Context, repo: str, number: int, intent: str, marker: str, body: str | Callable[[], str]) -> bool:
    """Post `body` (built only when needed) on repo#number once for `intent`; True if it was posted.

    The intent key, written before posting, stops every other delivery; the marker stops a retry of
    this one after a crash between posting and recording, so only a resumed intent lists the comments
    (a new one cannot have been acted on: that saves a GitHub call per comment). Under DRY_RUN nothing
    is recorded.
    """
    github, intents, dry_run = ctx.github, ctx.stores.intents, ctx.dry_run
    state = RESUMED if dry_run else intents.start(intent, ctx.event.delivery_id)
    if state == TAKEN:
        ctx.log.info("skipped: done already (or being done by another delivery)", extra={"reason": intent})
        return False
    if state == RESUMED and any(ours(c, marker) for c in github.list_comments(repo, number)):
        if not dry_run:
            intents.done(intent, "marker found")
        return False
    comment = github.create_comment(repo, number, body() if callable(body) else body)
    if not dry_run:
        intents.done(intent, f"comment {comment.get('id') if isinstance(comment, dict) else ''}")
    return True
