"""Greet first-time contributors, and congratulate them on their first merged pull request."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus

import catalogs
from domain import contributions
from engagement.common import config as repo_config
from engagement.common.comments import comment_once
from engagement.common.language import answer_in
from engagement.common.links import CODE_OF_CONDUCT_FILES, CONTRIBUTING_FILES, file_url
from engagement.common.templates import fill
from githubapp.errors import Forbidden, NotFound
from storage.ledger import WHOLE_HISTORY
from webhooks.context import Context
from webhooks.router import Router

NAME = "greeting"
HELP = """Welcomes people the first time they open an issue or a pull request in a repository, and
congratulates them once when their first pull request is merged; optionally (`first_review: true`)
it thanks people for their first review. The welcome links the contributing
guide, the code of conduct, good first issues and the community's forum and chat, in English or
Chinese (`language: auto` follows the language of the issue or pull request). Each person gets each
message at most once per repository."""


@dataclass(frozen=True)
class GreetingMessages:
    """Your own text per kind; empty: the built-in one in the comment's language."""

    issue: str = ""
    pull_request: str = ""
    first_merge: str = ""
    first_review: str = ""


@dataclass(frozen=True)
class GreetingConfig:
    """The `greeting:` section of `.github/engage.yml`."""

    enabled: bool = True
    language: str = "auto"  # auto, or a language the bot speaks (en, zh)
    issues: bool = True
    pull_requests: bool = True
    first_merge: bool = True
    first_review: bool = False
    skip_members: bool = True  # owners, members and collaborators know their way around
    contributing_url: str = ""  # empty: CONTRIBUTING.md if the repository has one
    code_of_conduct_url: str = ""  # empty: CODE_OF_CONDUCT.md if the repository has one
    good_first_issues_url: str = ""  # empty: the repository's issues labelled "good first issue"
    forum_url: str = ""
    chat_url: str = ""
    messages: GreetingMessages = GreetingMessages()


DEFAULTS = repo_config.defaults_of(GreetingConfig)

SETTINGS_HELP = {
    "enabled": "turn the whole behaviour on or off",
    "language": "`auto` (Chinese when the issue or pull request is mostly Chinese), `en` or `zh`",
    "issues": "greet a person's first issue",
    "pull_requests": "greet a person's first pull request",
    "first_merge": "congratulate a person's first merged pull request",
    "first_review": "thank a person for their first review of someone else's pull request",
    "skip_members": "never greet owners, organisation members and collaborators",
    "contributing_url": "link to the contributing guide; empty: CONTRIBUTING.md if the repository has one",
    "code_of_conduct_url": "link to the code of conduct; empty: CODE_OF_CONDUCT.md if the repository has one",
    "good_first_issues_url": "link for newcomers looking for work; empty: issues labelled `good first issue`",
    "forum_url": "the community forum, linked when set",
    "chat_url": "the community chat, linked when set",
    "messages": "your own texts per kind (`issue`, `pull_request`, `first_merge`, `first_review`) with "
    "`{login}`, `{repo}`, `{number}`, `{links}` and the link names; empty: the built-in English or Chinese text",
}

ISSUE, PULL_REQUEST, FIRST_MERGE, FIRST_REVIEW = "issue", "pull_request", "first_merge", "first_review"
KINDS = (ISSUE, PULL_REQUEST, FIRST_MERGE, FIRST_REVIEW)
# Kinds that celebrate something done rather than welcome someone arriving.
MILESTONES = (FIRST_MERGE, FIRST_REVIEW)
MEMBERS = {"OWNER", "MEMBER", "COLLABORATOR"}

# The texts are in the bot's catalogs (translations/<lang>/LC_MESSAGES/bot.po), under these keys.
MESSAGES = {
    ISSUE: "greeting.issue",
    PULL_REQUEST: "greeting.pull_request",
    FIRST_MERGE: "greeting.first_merge",
    FIRST_REVIEW: "greeting.first_review",
}
LINK_INTRO, NEXT_INTRO, SIGNATURE = "greeting.links_intro", "greeting.next_intro", "greeting.signature"
LINK_LINES = {
    "contributing_url": "greeting.link.contributing_url",
    "code_of_conduct_url": "greeting.link.code_of_conduct_url",
    "good_first_issues_url": "greeting.link.good_first_issues_url",
    "forum_url": "greeting.link.forum_url",
    "chat_url": "greeting.link.chat_url",
}
FILES = {"contributing_url": CONTRIBUTING_FILES, "code_of_conduct_url": CODE_OF_CONDUCT_FILES}


def marker(kind: str, login: str) -> str:
    return f"<!-- engage:greeting:{kind}:{login.lower()} -->"


@dataclass(frozen=True)
class Situation:
    """What the event says, reduced to what the decision needs."""

    kind: str
    repo: str
    repo_id: int
    number: int
    login: str
    user_id: int
    opened_at: datetime | None
    association: str
    text: str
    archived: bool


@dataclass(frozen=True)
class Facts:
    """What the ledger or GitHub says. `earlier` is None when the lookup failed; `seen_here`: the ledger
    holds other activity of theirs in this repository (a comment, a review, another item)."""

    earlier: int | None
    seen_here: bool = False


@dataclass(frozen=True)
class Plan:
    kind: str
    repo: str
    number: int
    login: str
    language: str
    intent: str


def decide(situation: Situation, config: GreetingConfig, facts: Facts | None) -> Plan | str:
    """A greeting to post, or the reason not to. `facts` None: not looked up yet (nothing else stops it)."""
    setting, wanted = {
        ISSUE: ("issues", config.issues),
        PULL_REQUEST: ("pull_requests", config.pull_requests),
        FIRST_MERGE: ("first_merge", config.first_merge),
        FIRST_REVIEW: ("first_review", config.first_review),
    }[situation.kind]
    if not config.enabled or not wanted:
        return f"{setting} greetings are turned off"
    if situation.archived:
        return "repository is archived"
    if config.skip_members and situation.association in MEMBERS:
        return f"author is {situation.association.lower()}"
    if situation.kind not in MILESTONES and situation.association == "CONTRIBUTOR":
        return "author has contributed before"
    if facts is None:
        return Plan(situation.kind, situation.repo, situation.number, situation.login, "", "")
    if facts.seen_here and situation.kind in (ISSUE, PULL_REQUEST):
        return "author has taken part in this repository before"
    if facts.earlier is None:
        return "could not tell whether this is a first contribution"
    if facts.earlier:
        what = {FIRST_MERGE: "merged pull request", FIRST_REVIEW: "reviewed pull request"}.get(
            situation.kind, "issue or pull request"
        )
        return f"author has an earlier {what}"
    language = answer_in(config.language, situation.text)
    intent = f"greeting:{situation.repo_id}:{situation.login.lower()}:{situation.kind}"
    return Plan(situation.kind, situation.repo, situation.number, situation.login, language, intent)


def render(plan: Plan, config: GreetingConfig, links: Mapping[str, str]) -> str:
    """The comment: marker, message (the repository's own or ours), links, signature."""
    say = functools.partial(catalogs.text, plan.language)
    lines = [say(LINK_LINES[name], url=url) for name, url in links.items() if url]
    intro = say(NEXT_INTRO if plan.kind in MILESTONES else LINK_INTRO)
    link_text = f"\n\n{intro}\n" + "\n".join(f"- {line}" for line in lines) if lines else ""
    fields = {"login": plan.login, "repo": plan.repo, "number": str(plan.number), "links": link_text, **links}
    messages = config.messages
    custom = {
        ISSUE: messages.issue,
        PULL_REQUEST: messages.pull_request,
        FIRST_MERGE: messages.first_merge,
        FIRST_REVIEW: messages.first_review,
    }[plan.kind]
    text = fill(custom if custom.strip() else say(MESSAGES[plan.kind]), fields)
    return f"{marker(plan.kind, plan.login)}\n{text}\n\n{fill(say(SIGNATURE), fields)}"


# --- gathering facts (reads only)

LEDGER_KINDS = {
    ISSUE: (contributions.ISSUE_OPENED, contributions.PR_OPENED),
    PULL_REQUEST: (contributions.ISSUE_OPENED, contributions.PR_OPENED),
    FIRST_MERGE: (contributions.PR_MERGED,),
    FIRST_REVIEW: tuple(contributions.REVIEW_KINDS.values()),
}


def from_ledger(ctx: Context, situation: Situation) -> Facts | None:
    """What the ledger knows, so that GitHub is asked only about people it has never seen here: their
    earlier items of this kind, or (for a first issue or pull request) any other activity of theirs in
    the repository. None: ask GitHub (the ledger does not hold the repository's whole history, which
    `flask backfill` fills in, and has nothing of theirs)."""
    store = ctx.stores.ledger
    earlier = situation.kind in (ISSUE, PULL_REQUEST)
    # One earlier item settles it: the count stops there, however long the person's history.
    kinds = LEDGER_KINDS[situation.kind]
    count = store.count(situation.repo_id, situation.login, kinds, situation.number, earlier, at_most=1)
    if count:
        return Facts(count)
    if (
        earlier
        and situation.opened_at is not None
        and store.active_in(situation.repo_id, situation.user_id, situation.number, before=situation.opened_at)
    ):
        return Facts(0, seen_here=True)
    return Facts(0) if store.covers(situation.repo_id, WHOLE_HISTORY) else None


def count_earlier_items(ctx: Context, repo: str, login: str, number: int) -> int | None:
    """issues/list-for-repo (issues and pull requests) by this author, opened before this one."""
    try:
        items = ctx.github.issues_by(repo, login)
    except (NotFound, Forbidden) as exc:
        ctx.log.info("skipped: cannot list the author's issues", extra={"error": str(exc)})
        return None
    return sum(1 for item in items if item["number"] < number)


def _count_other_pulls(ctx: Context, query: str, number: int) -> int | None:
    """search/issues-and-pull-requests: how many pull requests other than this one match `query`."""
    try:
        found = ctx.github.search_issues(query)
    except (NotFound, Forbidden) as exc:
        ctx.log.info("skipped: cannot search pull requests", extra={"error": str(exc)})
        return None
    return sum(1 for item in found if item.get("number") != number)


def count_earlier_merges(ctx: Context, repo: str, login: str, number: int) -> int | None:
    return _count_other_pulls(ctx, f"repo:{repo} author:{login} is:pr is:merged", number)


def count_earlier_reviews(ctx: Context, repo: str, login: str, number: int) -> int | None:
    return _count_other_pulls(ctx, f"repo:{repo} reviewed-by:{login} is:pr", number)


def links_for(ctx: Context, repository: Mapping[str, Any], config: GreetingConfig) -> dict[str, str]:
    """Configured links, else the repository's own files (optional: not looked up while the installation's
    GitHub budget is low) and its good-first-issue list."""
    links = {
        "contributing_url": config.contributing_url,
        "code_of_conduct_url": config.code_of_conduct_url,
        "good_first_issues_url": config.good_first_issues_url,
        "forum_url": config.forum_url,
        "chat_url": config.chat_url,
    }
    missing = [name for name in FILES if not links[name]]
    if missing and not ctx.github.can_spare("file_links"):
        ctx.log.info("skipped the file links lookup: the installation's GitHub budget is low")
        missing = []
    for name in missing:
        links[name] = file_url(ctx.github, repository, FILES[name])
    if not links["good_first_issues_url"]:
        html = str(repository.get("html_url") or f"https://github.com/{repository['full_name']}")
        links["good_first_issues_url"] = f"{html}/issues?q=" + quote_plus('is:issue is:open label:"good first issue"')
    return links


# --- acting (idempotent)


def apply(ctx: Context, plan: Plan, body: str) -> None:
    if comment_once(ctx, plan.repo, plan.number, plan.intent, marker(plan.kind, plan.login), body):
        ctx.log.info("greeted", extra={"reason": plan.kind})


# --- wiring

router = Router()


def situation_from(ctx: Context, kind: str, item: Mapping[str, Any]) -> Situation:
    repository = ctx.payload["repository"]
    return Situation(
        kind=kind,
        repo=repository["full_name"],
        repo_id=int(repository["id"]),
        number=int(item["number"]),
        login=str(item["user"]["login"]),
        user_id=int(item["user"].get("id") or 0),
        opened_at=contributions.github_time(item.get("created_at")),
        association=str(item.get("author_association") or "NONE"),
        text=f"{item.get('title') or ''}\n{item.get('body') or ''}",
        archived=bool(repository.get("archived")),
    )


def greet(ctx: Context, kind: str, item: Mapping[str, Any]) -> None:
    if (item.get("user") or {}).get("type") == "Bot":
        ctx.log.debug("skipped: author is a bot")
        return
    situation = situation_from(ctx, kind, item)
    config = repo_config.for_event(ctx).typed(GreetingConfig, NAME)
    early = decide(situation, config, None)
    if isinstance(early, str):
        ctx.log.debug("skipped: %s", early)
        return
    facts = from_ledger(ctx, situation)
    if facts is None:
        counter = {FIRST_MERGE: count_earlier_merges, FIRST_REVIEW: count_earlier_reviews}.get(
            kind, count_earlier_items
        )
        facts = Facts(counter(ctx, situation.repo, situation.login, situation.number))
    plan = decide(situation, config, facts)
    if isinstance(plan, str):
        ctx.log.info("not greeting: %s", plan)
        return
    apply(ctx, plan, render(plan, config, links_for(ctx, ctx.payload["repository"], config)))


@router.on("issues.opened", "issues.reopened", name="greeting.issue")
def opened_issue(ctx: Context) -> None:
    greet(ctx, ISSUE, ctx.payload["issue"])


@router.on("pull_request.opened", "pull_request.reopened", name="greeting.pull_request")
def opened_pull_request(ctx: Context) -> None:
    greet(ctx, PULL_REQUEST, ctx.payload["pull_request"])


@router.on("pull_request.closed", name="greeting.first_merge")
def merged_pull_request(ctx: Context) -> None:
    if ctx.payload["pull_request"].get("merged"):
        greet(ctx, FIRST_MERGE, ctx.payload["pull_request"])


@router.on("pull_request_review.submitted", name="greeting.first_review")
def submitted_review(ctx: Context) -> None:
    review, pull = ctx.payload["review"], ctx.payload["pull_request"]
    if (review.get("user") or {}).get("login", "").lower() == str(pull["user"]["login"]).lower():
        ctx.log.debug("skipped: the author reviewing their own pull request")
        return
    text = f"{review.get('body') or ''}\n{pull.get('title') or ''}"
    greet(ctx, FIRST_REVIEW, {**review, "number": pull["number"], "title": "", "body": text})
