"""Good first issues: maintainers mark them with a command, newcomers get a guide and claim one.

Commands in issue comments (see `engagement.common.commands` for what counts as a command):
`/good-first-issue` and `/remove-good-first-issue` for people with triage access or more, `/claim` and
`/unclaim` for anyone. Labels that mean "good first issue" bring the canonical label along, and keyword
rules (off by default) label new issues. Every event about a tracked issue updates its state in
`storage.good_first_issues`, which lists the good first issues really open for a newcomer.

This module is the behaviour's face (what it is, its settings, its handlers); the rest lives beside it:
`decide` (pure decisions on plain values), `messages` (the guide and the replies), `actions` (GitHub
reads and idempotent writes), `linked_pulls` (issues a pull request closes), `claims` (quiet claims
reminded, then released, by the hourly `claims` task), `defaults` (its section: `GoodFirstIssuesConfig`).
"""

from __future__ import annotations

from engagement.common import commands
from engagement.common import config as repo_config
from engagement.good_first_issues.actions import add_label, apply, plan_for
from engagement.good_first_issues.claims import note_activity, schedule
from engagement.good_first_issues.decide import (
    COMMANDS,
    canonical,
    decide_keywords,
    decide_synonym,
    issue_from,
    off_reason,
    snapshot,
)
from engagement.good_first_issues.defaults import DEFAULTS, NAME, GoodFirstIssuesConfig
from engagement.good_first_issues.linked_pulls import closing_references
from storage.good_first_issues import has_label
from webhooks.context import Context
from webhooks.router import Router

__all__ = ["DEFAULTS", "HELP", "NAME", "SETTINGS_HELP", "GoodFirstIssuesConfig", "router", "schedule"]
HELP = """Runs good first issues. A maintainer (triage access or more) comments `/good-first-issue` on
an issue to add the good-first-issue labels, created with a colour and description if the repository
lacks them, and one guide for newcomers: how to claim the issue, where to ask, how to submit a pull
request, in English or Chinese (`language: auto` follows the language of the issue).
`/remove-good-first-issue` takes the labels and the guide away. Anyone may comment `/claim` on a good
first issue to have it assigned to them while nobody holds it, up to `claim_cap` open claims each in a
repository, and `/unclaim` to give it back. Labels that mean the same (`synonyms`, such as `easy` or
`beginner`) bring the canonical label (the first of `labels`) along, and `keywords` (empty: off)
label new issues whose title or text mention one. Commands inside code, quotes or HTML comments are
ignored, and an edited comment only runs the commands the edit added. A claim whose claimant shows no
activity on it (a comment there, a pull request of theirs that links it, a push to that pull request)
gets one friendly reminder after `claims.remind_after_days` and is released after
`claims.release_after_days` (unassigned, with a kind comment, and listed for newcomers again);
the hourly `claims` task looks, and `flask --app app tasks run claims` looks at once."""

SETTINGS_HELP = {
    "enabled": "turn the whole behaviour on or off",
    "language": "`auto` (follows the issue's text), `en` or `zh` for the guide and replies",
    "labels": "labels `/good-first-issue` adds; the first one marks a good first issue",
    "label_colour": "colour (six hex digits) of labels the app creates",
    "label_description": "description of labels the app creates",
    "synonyms": "labels that mean the same; the first of `labels` is added next to them",
    "keywords": "words in a new issue's title or text that make it a good first issue; empty: off",
    "claim_cap": "open claims per person in a repository; 0: no limit",
    "contributing_url": "linked from the guide; empty: CONTRIBUTING.md if the repository has one",
    "forum_url": "where to ask, linked from the guide when set",
    "chat_url": "the community chat, linked from the guide when set",
    "claims": "`remind_after_days`: days a claim may go without activity by its claimant before one "
    "reminder; `release_after_days`: days before it is released (unassigned, listed again); 0: that step is off",
}

router = Router()


@router.on(
    "issue_comment.created",
    "issue_comment.edited",
    name="good_first_issues.commands",
    wants=commands.edit_adding(COMMANDS),
)
def commented(ctx: Context) -> None:
    comment = ctx.payload["comment"]
    if (comment.get("user") or {}).get("type") == "Bot":
        ctx.log.debug("skipped: comment by a bot")
        return
    found = commands.of_comment(ctx.payload, ctx.event.action)
    wanted = list(dict.fromkeys(c.name for c in found if c.name in COMMANDS))
    if not wanted:
        return
    repository = ctx.payload["repository"]
    if repository.get("archived"):
        ctx.log.debug("skipped: repository is archived")
        return
    config = repo_config.for_event(ctx).typed(GoodFirstIssuesConfig, NAME)
    issue = issue_from(repository, ctx.payload["issue"])
    store = ctx.stores.good_first_issues
    if off_reason(issue, config) is None and not issue.pull_request:
        store.observe(snapshot(issue), canonical(config))
    actor = str(ctx.payload["sender"]["login"])
    for command in wanted:
        plan = plan_for(ctx, command, issue, actor, config, store)
        if isinstance(plan, str):
            ctx.log.info("not running /%s: %s", command, plan)
            continue
        issue = apply(ctx, plan, issue, actor, comment, config, store)


@router.on(
    "issues.opened",
    "issues.edited",
    "issues.labeled",
    "issues.unlabeled",
    "issues.assigned",
    "issues.unassigned",
    "issues.closed",
    "issues.reopened",
    name="good_first_issues.track",
)
def track(ctx: Context) -> None:
    """Keep the state of good first issues: every event about one says how it is now."""
    issue = issue_from(ctx.payload["repository"], ctx.payload["issue"])
    if issue.archived:
        return
    config = repo_config.for_event(ctx).typed(GoodFirstIssuesConfig, NAME)
    if ctx.event.action == "opened" and not has_label(issue.labels, canonical(config)):
        return  # most issues: not tracked, and any later event about it is newer (a write transaction saved)
    if off_reason(issue, config) is None:
        unassigned = (ctx.payload.get("assignee") or {}).get("login") if ctx.event.action == "unassigned" else None
        ctx.stores.good_first_issues.observe(snapshot(issue), canonical(config), unassigned=unassigned)


@router.on("issues.labeled", name="good_first_issues.synonyms")
def labelled(ctx: Context) -> None:
    issue = issue_from(ctx.payload["repository"], ctx.payload["issue"])
    if issue.archived:
        return
    label = str((ctx.payload.get("label") or {}).get("name") or "")
    config = repo_config.for_event(ctx).typed(GoodFirstIssuesConfig, NAME)
    plan = decide_synonym(issue, label, config)
    if isinstance(plan, str):
        ctx.log.debug("no canonical label: %s", plan)
        return
    add_label(ctx, issue, plan, config, ctx.stores.good_first_issues)


@router.on("issues.opened", name="good_first_issues.keywords")
def opened(ctx: Context) -> None:
    issue = issue_from(ctx.payload["repository"], ctx.payload["issue"])
    if issue.archived:
        return
    config = repo_config.for_event(ctx).typed(GoodFirstIssuesConfig, NAME)
    plan = decide_keywords(issue, config)
    if isinstance(plan, str):
        ctx.log.debug("no keyword label: %s", plan)
        return
    add_label(ctx, issue, plan, config, ctx.stores.good_first_issues)


@router.on(
    "pull_request.opened",
    "pull_request.edited",
    "pull_request.reopened",
    "pull_request.closed",
    name="good_first_issues.linked_pull",
)
def linked_pull_request(ctx: Context) -> None:
    """Keep which good first issues have a pull request open for them (off the newcomers' list)."""
    pull, repository = ctx.payload["pull_request"], ctx.payload["repository"]
    if repository.get("archived") or not repo_config.for_event(ctx).typed(GoodFirstIssuesConfig, NAME).enabled:
        return
    linked = set() if pull.get("state") == "closed" else closing_references(pull.get("body") or "")
    ctx.stores.good_first_issues.link_pull(int(repository["id"]), sorted(linked), int(pull["number"]))


@router.on(
    "issue_comment.created",
    "pull_request.opened",
    "pull_request.edited",
    "pull_request.reopened",
    "pull_request.synchronize",
    name="good_first_issues.claim_activity",
)
def claimant_active(ctx: Context) -> None:
    """A claimant commenting on their issue, or opening, editing or pushing to a pull request that links
    it: their claim is alive (see `claims`)."""
    note_activity(ctx)


@router.on("issues.deleted", "issues.transferred", name="good_first_issues.forget")
def gone(ctx: Context) -> None:
    """Forget a deleted or transferred issue. This only removes the app's record of something that no
    longer exists, so it runs even where the behaviour is turned off (no stale entries in the lists)."""
    repository, item = ctx.payload["repository"], ctx.payload["issue"]
    if not repository.get("archived"):
        ctx.stores.good_first_issues.forget(int(repository["id"]), int(item["number"]))
