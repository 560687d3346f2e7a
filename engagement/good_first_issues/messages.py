"""Good first issues, the words: the guide for newcomers and the replies to commands, in every language
with a bot catalog, with the hidden markers the bot finds its own comments by."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus

import catalogs
from engagement.good_first_issues.decide import (
    CAP_REACHED,
    CLOSED,
    HELD,
    NOT_ALLOWED,
    NOT_ASSIGNED,
    NOT_GOOD_FIRST,
    NOT_YOURS,
    RELEASE,
    REMIND,
    ClaimStep,
    Issue,
    Plan,
    canonical,
)
from engagement.good_first_issues.defaults import GoodFirstIssuesConfig

GUIDE_MARKER = "<!-- engage:good-first-issues:guide -->"
# The texts are in the bot's catalogs (translations/<lang>/LC_MESSAGES/bot.po), under these keys.
GUIDE, GUIDE_CAP = "good_first_issues.guide", "good_first_issues.guide.cap"
GUIDE_ASK = {"forum_url": "good_first_issues.guide.ask.forum_url", "chat_url": "good_first_issues.guide.ask.chat_url"}
GUIDE_ASK_INTRO, GUIDE_ASK_JOIN = "good_first_issues.guide.ask_intro", "good_first_issues.guide.ask_join"
GUIDE_CONTRIBUTING, SIGNATURE = "good_first_issues.guide.contributing", "good_first_issues.signature"
REPLIES = {
    NOT_ALLOWED: "good_first_issues.reply.not_allowed",
    NOT_GOOD_FIRST: "good_first_issues.reply.not_good_first",
    CLOSED: "good_first_issues.reply.closed",
    HELD: "good_first_issues.reply.held",
    CAP_REACHED: "good_first_issues.reply.cap_reached",
    NOT_YOURS: "good_first_issues.reply.not_yours",
    NOT_ASSIGNED: "good_first_issues.reply.not_assigned",
}
CLAIM_STEPS = {REMIND: "good_first_issues.claim.remind", RELEASE: "good_first_issues.claim.release"}
CLAIM_RELEASE_NOTE = "good_first_issues.claim.remind.release_note"


def reply_marker(kind: str, comment_id: int) -> str:
    return f"<!-- engage:good-first-issues:{kind}:{comment_id} -->"


def list_url(repository: Mapping[str, Any], label: str) -> str:
    """The repository's open good first issues that nobody holds, on GitHub."""
    html = str(repository.get("html_url") or f"https://github.com/{repository['full_name']}")
    return f"{html}/issues?q=" + quote_plus(f'is:issue is:open label:"{label}" no:assignee')


def render_guide(issue: Issue, config: GoodFirstIssuesConfig, language: str, contributing_url: str) -> str:
    say = functools.partial(catalogs.text, language)
    urls = {"forum_url": config.forum_url, "chat_url": config.chat_url}
    places = [say(GUIDE_ASK[key], url=url) for key, url in urls.items() if url]
    ask = say(GUIDE_ASK_INTRO, places=say(GUIDE_ASK_JOIN).join(places)) if places else ""
    cap = config.claim_cap
    text = say(
        GUIDE,
        repo=issue.repo,
        number=str(issue.number),
        cap_note=say(GUIDE_CAP, cap=str(cap)) if cap > 0 else "",
        ask_links=ask,
        contributing=say(GUIDE_CONTRIBUTING, url=contributing_url) if contributing_url else "",
    )
    return f"{GUIDE_MARKER}\n{text}\n\n{say(SIGNATURE, repo=issue.repo)}"


def render_reply(plan: Plan, issue: Issue, actor: str, comment_id: int, config: GoodFirstIssuesConfig, url: str) -> str:
    text = catalogs.text(
        plan.language,
        REPLIES[plan.reply],
        login=actor,
        repo=issue.repo,
        command=plan.command,
        label=canonical(config),
        list_url=url,
        holder=plan.holder,
        count=str(plan.count),
        cap=str(config.claim_cap),
    )
    return f"{reply_marker(plan.reply, comment_id)}\n{text}"


def claim_marker(step: str, login: str, claimed: str) -> str:
    """One reminder and one release per claim: `claimed` names the claim (its time)."""
    return f"<!-- engage:good-first-issues:claim-{step}:{login.lower()}:{claimed} -->"


def render_claim_step(
    plan: ClaimStep, repo: str, login: str, marker: str, config: GoodFirstIssuesConfig, url: str
) -> str:
    say = functools.partial(catalogs.text, plan.language)
    release = config.claims.release_after_days
    note = say(CLAIM_RELEASE_NOTE, days=str(release - plan.quiet_days)) if release > plan.quiet_days else ""
    text = say(CLAIM_STEPS[plan.step], login=login, days=str(plan.quiet_days), release_note=note, list_url=url)
    return f"{marker}\n{text}\n\n{say(SIGNATURE, repo=repo)}"
