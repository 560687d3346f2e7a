"""Good first issues, acting: the GitHub reads a decision needs and the writes a plan makes, each safe
to run twice (intents for commands, markers for comments, "already there" counts as done)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from domain.contributions import github_time
from engagement.common.comments import comment_once, ours
from engagement.common.links import CONTRIBUTING_FILES, file_url
from engagement.good_first_issues.decide import (
    ACKNOWLEDGE,
    ASSIGN,
    HELD,
    LABEL,
    NOT_ASSIGNED,
    REPLY,
    ROLE,
    UNASSIGN,
    UNLABEL,
    AddLabel,
    Facts,
    Issue,
    Lookup,
    Plan,
    canonical,
    decide,
    issue_from,
    role_from,
    snapshot,
)
from engagement.good_first_issues.defaults import GoodFirstIssuesConfig
from engagement.good_first_issues.messages import GUIDE_MARKER, list_url, render_guide, render_reply, reply_marker
from githubapp.errors import Forbidden
from storage.good_first_issues import GoodFirstIssueStore, has_label
from webhooks.context import Context

# Labels GitHub creates in new repositories, with GitHub's colours and descriptions.
KNOWN_LABELS = {
    "good first issue": ("7057ff", "Good for newcomers"),
    "help wanted": ("008672", "Extra attention is needed"),
}


def colour(value: Any) -> str:
    """Six hex digits without '#', as GitHub wants them; the default for anything else."""
    text = str(value or "").strip().lstrip("#")
    return text.lower() if re.fullmatch(r"[0-9a-fA-F]{6}", text) else GoodFirstIssuesConfig.label_colour


def label_specs(config: GoodFirstIssuesConfig) -> list[tuple[str, str, str]]:
    """(name, colour, description) of each configured label, for creating missing ones."""
    specs = []
    wanted = canonical(config)
    for name in (n.strip() for n in config.labels):
        if not name:
            continue
        if name == wanted:
            specs.append((name, colour(config.label_colour), config.label_description[:100]))
        else:
            known = KNOWN_LABELS.get(name.lower(), (colour(config.label_colour), ""))
            specs.append((name, known[0], known[1]))
    return specs


# --- reading GitHub (no writes)


def role_of(ctx: Context, repo: str, login: str) -> str:
    """The person's role on the repository, or "" when GitHub would not say."""
    try:
        return role_from(ctx.github.collaborator_permission(repo, login))
    except Forbidden as exc:
        ctx.log.warning("cannot check a commenter's permission", extra={"error": str(exc)})
        return ""


def look_up(ctx: Context, fact: str, issue: Issue, actor: str, store: GoodFirstIssueStore, facts: Facts) -> Facts:
    if fact == ROLE:
        return replace(facts, role=role_of(ctx, issue.repo, actor))
    return replace(facts, open_claims=store.open_claims(issue.repo_id, actor, excluding=issue.number))


def contributing_link(ctx: Context, repository: Mapping[str, Any], config: GoodFirstIssuesConfig) -> str:
    return config.contributing_url or file_url(ctx.github, repository, CONTRIBUTING_FILES)


# --- acting (idempotent)


def ensure_labels(ctx: Context, repo: str, specs: list[tuple[str, str, str]]) -> None:
    """Create the labels the repository lacks, with their colour and description."""
    for name, hex_colour, description in specs:
        if ctx.github.get_label(repo, name) is None and ctx.github.create_label(repo, name, hex_colour, description):
            ctx.log.info("created label", extra={"reason": name})


def add_label(
    ctx: Context, issue: Issue, plan: AddLabel, config: GoodFirstIssuesConfig, store: GoodFirstIssueStore
) -> None:
    """The canonical label, for a synonym or a keyword."""
    spec = next(s for s in label_specs(config) if s[0] == plan.label)
    ensure_labels(ctx, issue.repo, [spec])
    ctx.github.add_labels(issue.repo, issue.number, [plan.label])
    if not ctx.dry_run:
        store.observe(snapshot(replace(issue, labels=(*issue.labels, plan.label)), ours=True), plan.label)
    ctx.log.info("labelled a good first issue", extra={"reason": plan.reason})


def post_guide(
    ctx: Context, issue: Issue, config: GoodFirstIssuesConfig, language: str, store: GoodFirstIssueStore
) -> None:
    """One guide per issue: once per round (a removal starts a new one), and never beside another."""
    intent = f"good-first-issues:guide:{issue.repo_id}:{issue.number}:{store.guide_round(issue.repo_id, issue.number)}"

    def guide() -> str:
        link = contributing_link(ctx, ctx.payload["repository"], config)
        return render_guide(issue, config, language, link)

    comment_once(ctx, issue.repo, issue.number, intent, GUIDE_MARKER, guide)


def remove_guide(ctx: Context, issue: Issue, store: GoodFirstIssueStore) -> None:
    for comment in ctx.github.list_comments(issue.repo, issue.number):
        if ours(comment, GUIDE_MARKER):
            ctx.github.delete_comment(issue.repo, int(comment["id"]))
    if not ctx.dry_run:
        store.next_guide_round(issue.repo_id, issue.number)


def reply(ctx: Context, plan: Plan, issue: Issue, actor: str, comment_id: int, config: GoodFirstIssuesConfig) -> None:
    """Answer a command once per comment and kind of answer."""
    marker = reply_marker(plan.reply, comment_id)
    if any(ours(c, marker) for c in ctx.github.list_comments(issue.repo, issue.number)):
        ctx.log.info("skipped: answered this comment already", extra={"reason": plan.reply})
        return
    url = list_url(ctx.payload["repository"], canonical(config))
    ctx.github.create_comment(issue.repo, issue.number, render_reply(plan, issue, actor, comment_id, config, url))


def apply(
    ctx: Context,
    plan: Plan,
    issue: Issue,
    actor: str,
    comment: Mapping[str, Any],
    config: GoodFirstIssuesConfig,
    store: GoodFirstIssueStore,
) -> Issue:
    """Carry out one command, once per version of the comment; returns the issue as it is now."""
    github, dry_run, comment_id = ctx.github, ctx.dry_run, int(comment["id"])
    intent = f"good-first-issues:{issue.repo_id}:{comment_id}:{comment.get('updated_at') or ''}:{plan.command}"
    if not dry_run and not ctx.stores.intents.claim(intent, ctx.event.delivery_id):
        ctx.log.info("skipped: command handled already", extra={"reason": intent})
        return issue
    outcome = plan.reply or plan.action
    if plan.action == REPLY:
        reply(ctx, plan, issue, actor, comment_id, config)
    elif plan.action == LABEL:
        specs = [spec for spec in label_specs(config) if not has_label(issue.labels, spec[0])]
        ensure_labels(ctx, issue.repo, specs)
        missing = [name for name, _, _ in specs]
        if missing:
            github.add_labels(issue.repo, issue.number, missing)
        issue = replace(issue, labels=(*issue.labels, *missing))
        if not dry_run:
            store.observe(snapshot(issue, ours=True), canonical(config))
        post_guide(ctx, issue, config, plan.language, store)
        github.react_to_comment(issue.repo, comment_id, "+1")
    elif plan.action == UNLABEL:
        names = [name for name, _, _ in label_specs(config)]
        for name in names:
            github.remove_label(issue.repo, issue.number, name)
        issue = replace(issue, labels=tuple(n for n in issue.labels if not has_label(names, n)))
        if not dry_run:
            store.observe(snapshot(issue, ours=True), canonical(config))
        remove_guide(ctx, issue, store)
        github.react_to_comment(issue.repo, comment_id, "+1")
    elif plan.action in (ASSIGN, ACKNOWLEDGE):
        issue, outcome = claim(ctx, plan, issue, actor, comment_id, config, store)
    elif plan.action == UNASSIGN:
        answer = github.remove_assignees(issue.repo, issue.number, [actor])
        if not dry_run:
            store.release(issue.repo_id, issue.number, actor)
            if isinstance(answer, Mapping):
                issue = issue_from(ctx.payload["repository"], answer)
                store.observe(snapshot(issue, ours=True), canonical(config))
        github.react_to_comment(issue.repo, comment_id, "+1")
    if not dry_run:
        ctx.stores.intents.done(intent, outcome)
    ctx.log.info("ran /%s: %s", plan.command, outcome)
    return issue


def claim(
    ctx: Context,
    plan: Plan,
    issue: Issue,
    actor: str,
    comment_id: int,
    config: GoodFirstIssuesConfig,
    store: GoodFirstIssueStore,
) -> tuple[Issue, str]:
    """Reserve the issue for `actor` in the store (so two claims at once cannot both win), then assign.
    The claim's quiet time runs from the /claim comment's time on GitHub."""
    github, dry_run = ctx.github, ctx.dry_run
    claimed_at = github_time(ctx.payload["comment"].get("created_at"))
    if not dry_run and plan.action == ACKNOWLEDGE:
        store.claim(issue.repo_id, issue.number, actor, claimed_at)  # GitHub says it is theirs: it counts
    elif not dry_run:
        holder = store.reserve(issue.repo_id, issue.number, actor)
        if holder:
            reply(ctx, replace(plan, action=REPLY, reply=HELD, holder=holder), issue, actor, comment_id, config)
            return issue, HELD
    if plan.action == ASSIGN:
        answer = github.add_assignees(issue.repo, issue.number, [actor])
        if not dry_run:
            now = issue_from(ctx.payload["repository"], answer) if isinstance(answer, Mapping) else issue
            if actor.lower() not in {a.lower() for a in now.assignees}:
                store.release(issue.repo_id, issue.number, actor)
                reply(ctx, replace(plan, action=REPLY, reply=NOT_ASSIGNED), issue, actor, comment_id, config)
                return issue, NOT_ASSIGNED
            issue = now
            store.observe(snapshot(issue, ours=True), canonical(config))
            store.claim(issue.repo_id, issue.number, actor, claimed_at)  # also if the issue was not tracked yet
    github.react_to_comment(issue.repo, comment_id, "+1")
    return issue, plan.action


def plan_for(
    ctx: Context, command: str, issue: Issue, actor: str, config: GoodFirstIssuesConfig, store: GoodFirstIssueStore
) -> Plan | str:
    facts = Facts()
    for _ in range(3):  # each fact is looked up at most once
        result = decide(command, issue, actor, config, facts)
        if not isinstance(result, Lookup):
            return result
        facts = look_up(ctx, result.fact, issue, actor, store, facts)
    return "the decision kept asking for facts"
