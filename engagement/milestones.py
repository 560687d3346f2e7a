"""Celebrate a contributor's milestones in a repository, decided from the ledger."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import catalogs
from domain import contributions
from engagement.common import config as repo_config
from engagement.common.comments import comment_once
from engagement.common.language import answer_in
from webhooks.context import Context
from webhooks.router import Router

NAME = "milestones"
HELP = """Congratulates a contributor once on reaching each count of merged pull requests in a repository in
`merged_prs` (5, 10, 25, 50 and 100 by default) and on their first solved good first issue (a merged
pull request that closes one); optionally (`welcome_back_after_days`) it welcomes back someone who opens
an issue or a pull request, or comments, after that many days without contributing there. Counted from
the ledger, in English or Chinese like the greetings. Bots and people who opted out of the leaderboard
(`/leaderboard opt-out`) get none."""


@dataclass(frozen=True)
class MilestonesConfig:
    """The `milestones:` section of `.github/engage.yml`."""

    enabled: bool = True
    merged_prs: tuple[int, ...] = (5, 10, 25, 50, 100)  # a list in the file
    first_good_first_issue: bool = True
    welcome_back_after_days: int = 0  # 0: off
    language: str = "auto"  # auto, or a language the bot speaks (en, zh)


DEFAULTS = repo_config.defaults_of(MilestonesConfig)

SETTINGS_HELP = {
    "enabled": "turn the whole behaviour on or off",
    "merged_prs": "the counts of a person's merged pull requests in the repository to congratulate; empty: none",
    "first_good_first_issue": "congratulate a person's first solved good first issue",
    "welcome_back_after_days": "welcome back someone contributing after more than this many days away; 0: never",
    "language": "`auto` (Chinese when the pull request, issue or comment is mostly Chinese), `en` or `zh`",
}

# What happened (the event), and the milestones it can mark.
MERGED, ARRIVED = "merged", "arrived"
MERGED_PRS, GOOD_FIRST_ISSUE, WELCOME_BACK = "merged_prs", "good_first_issue", "welcome_back"

# The texts are in the bot's catalogs (translations/<lang>/LC_MESSAGES/bot.po), under these keys.
MESSAGES = {
    MERGED_PRS: "milestones.merged_prs",
    GOOD_FIRST_ISSUE: "milestones.good_first_issue",
    WELCOME_BACK: "milestones.welcome_back",
}
SIGNATURE = "milestones.signature"


def marker(kind: str, n: int, login: str) -> str:
    return f"<!-- engage:milestones:{kind}:{n}:{login.lower()} -->"


@dataclass(frozen=True)
class Situation:
    """What the event says, reduced to what the decision needs; `at` is GitHub's time, naive UTC."""

    event: str  # MERGED or ARRIVED
    repo: str
    repo_id: int
    number: int
    login: str
    user_id: int
    at: datetime | None
    bot: bool
    archived: bool
    text: str


@dataclass(frozen=True)
class Facts:
    """What the ledger says of the person in the repository, this contribution excepted."""

    opted_out: bool = False
    merged_before: int = 0  # merged pull requests other than this one
    solved_here: bool = False  # this merged pull request solved a good first issue
    solved_before: int = 0  # good first issues solved by other pull requests
    previous_at: datetime | None = None  # their latest contribution before this one


@dataclass(frozen=True)
class Milestone:
    kind: str
    n: int  # the count reached; for a welcome back, the day (YYYYMMDD) of the contribution before the absence
    repo: str
    number: int
    login: str
    language: str
    intent: str
    days: int = 0  # days away, for a welcome back


def reason_to_skip(situation: Situation, config: MilestonesConfig) -> str | None:
    """Why nothing can be celebrated whatever the ledger says (checked before reading it)."""
    if not config.enabled:
        return "milestones are turned off"
    if situation.bot:
        return "author is a bot"
    if situation.archived:
        return "repository is archived"
    if situation.event == MERGED and not config.merged_prs and not config.first_good_first_issue:
        return "merge milestones are turned off"
    if situation.event == ARRIVED and config.welcome_back_after_days <= 0:
        return "welcome back is turned off"
    if situation.event == ARRIVED and situation.at is None:
        return "no time on the contribution"
    return None


def decide(situation: Situation, config: MilestonesConfig, facts: Facts) -> list[Milestone] | str:
    """The milestones to celebrate, or the reason there are none."""
    if skip := reason_to_skip(situation, config):
        return skip
    if facts.opted_out:
        return "author opted out of the leaderboard"
    found: list[tuple[str, int, int]] = []  # kind, n, days
    if situation.event == MERGED:
        merged = facts.merged_before + 1
        if merged in config.merged_prs:
            found.append((MERGED_PRS, merged, 0))
        if config.first_good_first_issue and facts.solved_here and not facts.solved_before:
            found.append((GOOD_FIRST_ISSUE, 1, 0))
        if not found:
            return f"merged pull request number {merged} marks no milestone"
    else:
        if facts.previous_at is None or situation.at is None:
            return "no earlier contribution in the repository"
        away = situation.at - facts.previous_at
        if away <= timedelta(days=config.welcome_back_after_days):
            return f"last contribution {away.days} day(s) ago"
        day = int(facts.previous_at.strftime("%Y%m%d"))
        found.append((WELCOME_BACK, day, away.days))
    language = answer_in(config.language, situation.text)
    return [
        Milestone(
            kind,
            n,
            situation.repo,
            situation.number,
            situation.login,
            language,
            f"milestones:{situation.repo_id}:{situation.user_id}:{kind}:{n}",
            days,
        )
        for kind, n, days in found
    ]


def render(milestone: Milestone) -> str:
    fields = {"login": milestone.login, "repo": milestone.repo, "count": str(milestone.n), "days": str(milestone.days)}
    text = catalogs.text(milestone.language, MESSAGES[milestone.kind], **fields)
    signature = catalogs.text(milestone.language, SIGNATURE, **fields)
    return f"{marker(milestone.kind, milestone.n, milestone.login)}\n{text}\n\n{signature}"


# --- gathering facts (reads only; the ledger recorded this delivery's contribution before this runs)


def gather(ctx: Context, situation: Situation) -> Facts:
    people, opted_out = ctx.stores.people, ctx.stores.people.opted_out(situation.user_id)
    if situation.event == ARRIVED:
        at = situation.at or datetime(1970, 1, 1)  # reason_to_skip stops a contribution without a time
        return Facts(opted_out, previous_at=people.latest_before(situation.repo_id, situation.user_id, at))
    ledger, repo_id, login, number = ctx.stores.ledger, situation.repo_id, situation.login, situation.number
    return Facts(
        opted_out,
        merged_before=ledger.count(repo_id, login, (contributions.PR_MERGED,), number),
        solved_here=people.made(repo_id, situation.user_id, contributions.GFI_SOLVED, number),
        solved_before=ledger.count(repo_id, login, (contributions.GFI_SOLVED,), number),
    )


# --- acting (idempotent)


def celebrate(ctx: Context, event: str, item: Mapping[str, Any], author: Mapping[str, Any], at: Any, text: str) -> None:
    repository = ctx.payload["repository"]
    situation = Situation(
        event=event,
        repo=str(repository["full_name"]),
        repo_id=int(repository["id"]),
        number=int(item["number"]),
        login=str(author.get("login") or ""),
        user_id=int(author.get("id") or 0),
        at=contributions.github_time(at),
        bot=contributions.is_bot(author),
        archived=bool(repository.get("archived")),
        text=text,
    )
    config = repo_config.for_event(ctx).typed(MilestonesConfig, NAME)
    if skip := reason_to_skip(situation, config):
        ctx.log.debug("skipped: %s", skip)
        return
    plan = decide(situation, config, gather(ctx, situation))
    if isinstance(plan, str):
        ctx.log.debug("skipped: %s", plan)
        return
    for milestone in plan:
        body = render(milestone)
        mark = marker(milestone.kind, milestone.n, milestone.login)
        if comment_once(ctx, milestone.repo, milestone.number, milestone.intent, mark, body):
            ctx.log.info("celebrated", extra={"reason": f"{milestone.kind}:{milestone.n}"})


# --- wiring

router = Router()


def _prose(item: Mapping[str, Any]) -> str:
    return f"{item.get('title') or ''}\n{item.get('body') or ''}"


@router.on("pull_request.closed", name="milestones.merged")
def merged_pull_request(ctx: Context) -> None:
    pull = ctx.payload["pull_request"]
    if not pull.get("merged"):
        ctx.log.debug("skipped: closed without merging")
        return
    celebrate(ctx, MERGED, pull, pull.get("user") or {}, pull.get("merged_at"), _prose(pull))


@router.on("issues.opened", name="milestones.issue")
def opened_issue(ctx: Context) -> None:
    issue = ctx.payload["issue"]
    celebrate(ctx, ARRIVED, issue, issue.get("user") or {}, issue.get("created_at"), _prose(issue))


@router.on("pull_request.opened", name="milestones.pull_request")
def opened_pull_request(ctx: Context) -> None:
    pull = ctx.payload["pull_request"]
    celebrate(ctx, ARRIVED, pull, pull.get("user") or {}, pull.get("created_at"), _prose(pull))


@router.on("issue_comment.created", name="milestones.comment")
def created_comment(ctx: Context) -> None:
    comment = ctx.payload["comment"]
    body = str(comment.get("body") or "")
    celebrate(ctx, ARRIVED, ctx.payload["issue"], comment.get("user") or {}, comment.get("created_at"), body)
