"""The leaderboard: points per person from the ledger's window rollups, with a formula a page can show.

Points are weighted counts, computed when the board is read, so the formula shown is always the one
behind the numbers. Anti-gaming is built in: pull requests earn code credit only once merged (opening
one earns nothing), and comments earn points only up to a daily cap per person and repository
(applied when they are recorded). People leave the board with `/leaderboard opt-out` in any comment
(and come back with `/leaderboard opt-in`), or by a repository's `exclude` list; their contributions
still count in the anonymous totals of the insights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import catalogs
from engagement.common import commands
from engagement.common import config as repo_config
from engagement.common.comments import comment_once
from engagement.common.language import detect
from webhooks.context import Context
from webhooks.router import Router

NAME = "leaderboard"
HELP = """Ranks contributors by points on the `/leaderboard` page (and its JSON and CSV), per
repository and for all the owner's installed public repositories together, over the last 7, 30, 90
or 365 days or all time. Points are `points` per kind of contribution: a merged pull request, a review, an
issue opened, a comment, a review comment, a good first issue solved. Opening a pull request earns
nothing until it is merged, and only the first `daily_comment_cap` comments (and chat messages) a day count. Anyone can
leave the board with `/leaderboard opt-out` in a comment (`/leaderboard opt-in` to return); logins in
`exclude` are never shown. Their contributions still count in the community totals."""


@dataclass(frozen=True)
class Points:
    """Points per kind of contribution; opening a pull request earns nothing until it is merged."""

    merged_pull_request: int = 10
    review: int = 3
    issue: int = 2
    comment: int = 1
    review_comment: int = 1
    good_first_issue: int = 5  # solved: a merged pull request that closes one
    # The community forum (COMMUNITY_ORG's board): off unless the owner's `.github` config gives them points.
    forum_topic: int = 0
    forum_reply: int = 0
    forum_solution: int = 0
    forum_like: int = 0  # received
    # The community chats (Telegram, Rocket.Chat), likewise; messages and replies under the daily cap.
    chat_message: int = 0
    chat_reply: int = 0
    chat_member_joined: int = 0
    # Credit for work that is not code (`/credit @login CATEGORY`, engagement/credit.py), per credit:
    # off unless a repository's config gives it points, so that turning the command on moves no ranks.
    credit: int = 0

    def by_kind(self) -> dict[str, int]:
        """Each kind's points, for code that goes over every kind (the formula, the ranking query)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LeaderboardConfig:
    """The `leaderboard:` section of `.github/engage.yml`, also kept per scope for the pages."""

    enabled: bool = True
    points: Points = Points()
    daily_comment_cap: int = 5  # comments a day that earn points, per person and repository; 0: no cap
    exclude: tuple[str, ...] = ()  # logins never shown on the board


DEFAULTS = repo_config.defaults_of(LeaderboardConfig)

SETTINGS_HELP = {
    "enabled": "show this repository's leaderboard (the ledger records contributions either way)",
    "points": "points per `merged_pull_request`, `review`, `issue`, `comment`, `review_comment`, "
    "`good_first_issue` (solved), and on the community forum `forum_topic`, `forum_reply`, `forum_solution` "
    "(a reply accepted as the solution) and `forum_like` (received), and in the community chat `chat_message`, "
    "`chat_reply` and `chat_member_joined`, 0 unless set, and `credit` (each credit given with `/credit`, any "
    "category), 0 unless set; opening a pull request earns nothing until it is merged",
    "daily_comment_cap": "comments (issue, pull request and review comments) a day that earn points, "
    "per person and repository, and chat messages and replies a day per person and chat; 0: no cap",
    "exclude": "logins never shown on the leaderboard",
}

# The answers to `/leaderboard opt-out` and `opt-in`: keys in the bot's catalogs (bot.po).
OPT_OUT_REPLY, OPT_IN_REPLY = "leaderboard.opted_out", "leaderboard.opted_in"


def settings_of(stored: Mapping[str, Any] | None) -> LeaderboardConfig:
    """The settings kept for a scope (a mapping in the database, perhaps written by an older version),
    typed, with defaults for anything missing."""
    return repo_config.build(LeaderboardConfig, stored or {})


# A parsed file's sections are built once and shared by every delivery of the same text, so their stored
# form is kept beside them (id -> (the settings, held so the id is not reused, their stored form)).
_stored_forms: dict[int, tuple[LeaderboardConfig, dict[str, Any]]] = {}


def for_storage(settings: LeaderboardConfig) -> dict[str, Any]:
    """The settings as the database keeps them (JSON: lists, mappings); the caller must not change it."""
    kept = _stored_forms.get(id(settings))
    if kept is not None and kept[0] is settings:
        return kept[1]
    stored = repo_config.plain(dataclasses.asdict(settings))
    if len(_stored_forms) >= 256:
        _stored_forms.clear()
    _stored_forms[id(settings)] = (settings, stored)
    return stored


router = Router()


@router.on("issue_comment.created", name="leaderboard.opt_out", needs_installation=False)
def opt_out(ctx: Context) -> None:
    """`/leaderboard opt-out` or `/leaderboard opt-in`, by the person commenting, for themselves."""
    comment = ctx.payload["comment"]
    wanted = None
    for command in commands.parse(comment.get("body")):
        choice = command.args[0].lower() if command.args else ""
        if command.name == "leaderboard" and choice in ("opt-out", "opt-in"):
            wanted = choice == "opt-out"
    user = comment.get("user") or {}
    if wanted is None or not isinstance(user.get("id"), int):
        return
    login = str(user["login"])
    changed = ctx.stores.ledger.set_opted_out(int(user["id"]), login, wanted)
    ctx.log.info("leaderboard opt-%s", "out" if wanted else "in", extra={"login": login, "changed": changed})
    if not changed or ctx.event.installation_id is None:
        return
    language = detect(str(comment.get("body") or ""))
    repo, number = str(ctx.payload["repository"]["full_name"]), int(ctx.payload["issue"]["number"])
    body = render(wanted, login, language, int(comment["id"]))
    comment_once(ctx, repo, number, f"leaderboard:{comment['id']}", marker(int(comment["id"])), body)


def marker(comment_id: int) -> str:
    return f"<!-- engage:leaderboard:{comment_id} -->"


def render(opted_out: bool, login: str, language: str, comment_id: int) -> str:
    """The answer to `/leaderboard opt-out` (or `opt-in`, `opted_out` False) in comment `comment_id`."""
    text = catalogs.text(language, OPT_OUT_REPLY if opted_out else OPT_IN_REPLY, login=login)
    return f"{marker(comment_id)}\n{text}"
