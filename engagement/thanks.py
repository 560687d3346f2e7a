"""Thank the people who reviewed a pull request, once, when it is merged."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import catalogs
from engagement.common import config as repo_config
from engagement.common.comments import comment_once
from engagement.common.language import answer_in
from engagement.common.templates import fill
from webhooks.context import Context
from webhooks.router import Router

NAME = "thanks"
HELP = """Thanks reviewers. When a pull request is merged, one comment thanks every person who
reviewed it (not its author, not bots), by mention, however many reviews each left; nothing is
posted when nobody reviewed. With `mode: reaction` the app instead reacts with a heart to the pull
request each time a person submits a review; `mode: off` turns it off."""


@dataclass(frozen=True)
class ThanksConfig:
    """The `thanks:` section of `.github/engage.yml`."""

    enabled: bool = True
    mode: str = "on_merge"  # on_merge | reaction | off
    language: str = "auto"  # auto, or a language the bot speaks (en, zh)
    message: str = ""  # your own text; {reviewers}, {repo}, {number}, {author}


DEFAULTS = repo_config.defaults_of(ThanksConfig)

SETTINGS_HELP = {
    "enabled": "turn the whole behaviour on or off",
    "mode": "`on_merge` (one comment when merged), `reaction` (a heart per review) or `off`",
    "language": "`auto` (follows the pull request's text), `en` or `zh`",
    "message": "your own text with `{reviewers}`, `{repo}`, `{number}`, `{author}`; empty: the built-in text",
}

MODES = ("on_merge", "reaction", "off")
MARKER = "<!-- engage:thanks -->"
MESSAGE, SEPARATOR = "thanks.merged", "thanks.separator"  # keys in the bot's catalogs (bot.po)
COUNTED_STATES = {"APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED"}


@dataclass(frozen=True)
class Plan:
    repo: str
    number: int
    reviewers: tuple[str, ...]
    language: str
    intent: str


def reviewers_of(reviews: Iterable[Mapping[str, Any]], author: str) -> tuple[str, ...]:
    """Distinct human reviewers in the order they first reviewed; not the author, not bots."""
    seen: list[str] = []
    for review in reviews:
        user = review.get("user") or {}
        login = str(user.get("login") or "")
        if (
            not login
            or user.get("type") == "Bot"
            or login.endswith("[bot]")
            or login.lower() == author.lower()
            or str(review.get("state") or "").upper() not in COUNTED_STATES
            or login.lower() in (s.lower() for s in seen)
        ):
            continue
        seen.append(login)
    return tuple(seen)


def decide(
    pull: Mapping[str, Any], repository: Mapping[str, Any], config: ThanksConfig, reviewers: tuple[str, ...] | None
) -> Plan | str:
    """A thank-you to post on merge, or why not. `reviewers` None: not looked up yet."""
    if not config.enabled or config.mode != "on_merge":
        return f"thanks on merge are off (mode: {config.mode if config.enabled else 'disabled'})"
    if repository.get("archived"):
        return "repository is archived"
    if not pull.get("merged"):
        return "closed without merging"
    if reviewers is None:
        return Plan(repository["full_name"], int(pull["number"]), (), "", "")
    if not reviewers:
        return "nobody reviewed it"
    language = answer_in(config.language, f"{pull.get('title') or ''}\n{pull.get('body') or ''}")
    intent = f"thanks:{repository['id']}:{pull['number']}"
    return Plan(repository["full_name"], int(pull["number"]), reviewers, language, intent)


def render(plan: Plan, config: ThanksConfig, author: str) -> str:
    mentions = catalogs.text(plan.language, SEPARATOR).join(f"@{login}" for login in plan.reviewers)
    fields = {"reviewers": mentions, "repo": plan.repo, "number": str(plan.number), "author": author}
    template = config.message if config.message.strip() else catalogs.text(plan.language, MESSAGE)
    return f"{MARKER}\n{fill(template, fields)}"


router = Router()


@router.on("pull_request.closed", name="thanks.on_merge")
def merged(ctx: Context) -> None:
    pull, repository = ctx.payload["pull_request"], ctx.payload["repository"]
    config = repo_config.for_event(ctx).typed(ThanksConfig, NAME)
    early = decide(pull, repository, config, None)
    if isinstance(early, str):
        ctx.log.debug("skipped: %s", early)
        return
    repo, number, author = repository["full_name"], int(pull["number"]), str(pull["user"]["login"])
    reviews = ctx.github.list_reviews(repo, number)
    plan = decide(pull, repository, config, reviewers_of(reviews, author))
    if isinstance(plan, str):
        ctx.log.info("no thanks: %s", plan)
        return
    if comment_once(ctx, repo, number, plan.intent, MARKER, render(plan, config, author)):
        ctx.log.info("thanked reviewers", extra={"reason": ",".join(plan.reviewers)})


@router.on("pull_request_review.submitted", name="thanks.reaction")
def reviewed(ctx: Context) -> None:
    """mode: reaction — a heart on the pull request for each person's review (GitHub keeps one per app)."""
    config = repo_config.for_event(ctx).typed(ThanksConfig, NAME)
    review, pull, repository = ctx.payload["review"], ctx.payload["pull_request"], ctx.payload["repository"]
    if not config.enabled or config.mode != "reaction" or repository.get("archived"):
        ctx.log.debug("skipped: reactions for reviews are off")
        return
    if not reviewers_of([review], str(pull["user"]["login"])):
        ctx.log.debug("skipped: review by the author or a bot")
        return
    ctx.github.react_to_issue(repository["full_name"], int(pull["number"]), "heart")
