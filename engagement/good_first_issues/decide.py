"""Good first issues, deciding: what a command, a label or a new issue calls for, from plain values.

Pure apart from `snapshot`'s clock: no GitHub, no store. `decide` asks for the facts it needs
(`Lookup`) and `actions.plan_for` looks them up; the messages live in `messages`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.contributions import github_time
from engagement.common.language import answer_in
from engagement.good_first_issues.defaults import GoodFirstIssuesConfig
from storage.db import utcnow
from storage.good_first_issues import GoodFirstIssue, Snapshot, has_label

MARK, UNMARK, CLAIM, UNCLAIM = "good-first-issue", "remove-good-first-issue", "claim", "unclaim"
COMMANDS = (MARK, UNMARK, CLAIM, UNCLAIM)
# Roles from repos/get-collaborator-permission-level. Its `permission` field only says admin, write,
# read or none (maintain shows as write, triage as read); `role_name` has the real role.
TRIAGE_OR_MORE = frozenset({"admin", "maintain", "write", "triage"})
ROLES = TRIAGE_OR_MORE | {"read", "none"}

# What a plan does about a command.
LABEL, UNLABEL, ASSIGN, UNASSIGN, ACKNOWLEDGE, REPLY = "label", "unlabel", "assign", "unassign", "acknowledge", "reply"
# The replies, each posted at most once per comment.
NOT_ALLOWED, NOT_GOOD_FIRST, CLOSED, HELD, CAP_REACHED, NOT_YOURS, NOT_ASSIGNED = (
    "not-allowed",
    "not-good-first",
    "closed",
    "held",
    "cap-reached",
    "not-yours",
    "not-assigned",
)
ROLE, OPEN_CLAIMS = "role", "open_claims"  # facts a decision can ask for
# What a claim that has gone quiet calls for.
REMIND, RELEASE = "remind", "release"


@dataclass(frozen=True)
class Issue:
    """The issue an event is about, as its payload shows it."""

    repo: str
    repo_id: int
    number: int
    title: str
    body: str
    html_url: str
    labels: tuple[str, ...]
    assignees: tuple[str, ...]
    state: str
    pull_request: bool
    archived: bool
    updated_at: datetime | None = None
    created_at: datetime | None = None

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.body}"


@dataclass(frozen=True)
class Facts:
    """What a decision asked to look up; None: not looked up. `role` "" means the lookup failed."""

    role: str | None = None
    open_claims: int | None = None


@dataclass(frozen=True)
class Lookup:
    """The decision needs this fact (ROLE or OPEN_CLAIMS) first."""

    fact: str


@dataclass(frozen=True)
class Plan:
    command: str
    action: str  # LABEL | UNLABEL | ASSIGN | UNASSIGN | ACKNOWLEDGE | REPLY
    language: str
    reply: str = ""  # for REPLY: which one
    holder: str = ""  # for HELD
    count: int = 0  # for CAP_REACHED


@dataclass(frozen=True)
class AddLabel:
    label: str
    reason: str


def canonical(config: GoodFirstIssuesConfig) -> str:
    """The label that makes an issue a good first issue: the first of `labels`."""
    return next((str(name).strip() for name in config.labels if name.strip()), "")


def language_for(issue: Issue, config: GoodFirstIssuesConfig) -> str:
    return answer_in(config.language, issue.text)


def off_reason(issue: Issue, config: GoodFirstIssuesConfig) -> str | None:
    if not config.enabled:
        return "good first issues are turned off"
    if issue.archived:
        return "repository is archived"
    if not canonical(config):
        return "no labels are configured"
    return None


def decide(command: str, issue: Issue, actor: str, config: GoodFirstIssuesConfig, facts: Facts) -> Plan | Lookup | str:
    """What to do about `/command` by `actor`: a plan, a fact to look up first, or why nothing."""
    reason = off_reason(issue, config)
    if reason:
        return reason
    if issue.pull_request:
        return "commands work on issues, not pull requests"
    language = language_for(issue, config)
    if command in (MARK, UNMARK):
        if facts.role is None:
            return Lookup(ROLE)
        if not facts.role:
            return "could not check the commenter's permission"
        if facts.role not in TRIAGE_OR_MORE:
            return Plan(command, REPLY, language, NOT_ALLOWED)
        return Plan(command, LABEL if command == MARK else UNLABEL, language)
    mine = actor.lower() in {a.lower() for a in issue.assignees}
    if command == UNCLAIM:
        return Plan(command, UNASSIGN, language) if mine else Plan(command, REPLY, language, NOT_YOURS)
    if command != CLAIM:
        return f"/{command} is not a good-first-issue command"
    if issue.state != "open":
        return Plan(command, REPLY, language, CLOSED)
    if not has_label(issue.labels, canonical(config)):
        return Plan(command, REPLY, language, NOT_GOOD_FIRST)
    if mine:
        return Plan(command, ACKNOWLEDGE, language)  # already theirs
    if issue.assignees:
        return Plan(command, REPLY, language, HELD, holder=issue.assignees[0])
    cap = config.claim_cap
    if cap > 0:
        if facts.open_claims is None:
            return Lookup(OPEN_CLAIMS)
        if facts.open_claims >= cap:
            return Plan(command, REPLY, language, CAP_REACHED, count=facts.open_claims)
    return Plan(command, ASSIGN, language)


def decide_synonym(issue: Issue, label: str, config: GoodFirstIssuesConfig) -> AddLabel | str:
    """Labelled with `label`: add the canonical label too when `label` is one of its synonyms."""
    reason = off_reason(issue, config)
    if reason:
        return reason
    wanted = canonical(config)
    if label.lower() == wanted.lower():
        return "it is the canonical label"
    if label.lower() not in {s.lower() for s in config.synonyms}:
        return f"{label!r} is not a synonym"
    if has_label(issue.labels, wanted):
        return "already labelled"
    return AddLabel(wanted, f"synonym {label!r}")


def matching_keyword(text: str, keywords: Sequence[str]) -> str | None:
    """The first keyword in `text`, ignoring case; words in Latin script must stand as whole words."""
    for keyword in (k.strip() for k in keywords):
        if not keyword:
            continue
        pattern = rf"(?<![\w-]){re.escape(keyword)}(?![\w-])" if keyword.isascii() else re.escape(keyword)
        if re.search(pattern, text, re.IGNORECASE):
            return keyword
    return None


def decide_keywords(issue: Issue, config: GoodFirstIssuesConfig) -> AddLabel | str:
    """A new issue: label it when its title or text mentions a configured keyword."""
    reason = off_reason(issue, config)
    if reason:
        return reason
    if not any(k.strip() for k in config.keywords):
        return "keyword rules are off"
    wanted = canonical(config)
    if has_label(issue.labels, wanted):
        return "already labelled"
    found = matching_keyword(issue.text, config.keywords)
    return AddLabel(wanted, f"keyword {found!r}") if found else "no keyword matches"


@dataclass(frozen=True)
class ClaimStep:
    """Remind the claimant of a quiet claim, or release it; `quiet_days`: whole days without activity."""

    step: str  # REMIND | RELEASE
    quiet_days: int
    language: str


def decide_claim(claim: GoodFirstIssue, config: GoodFirstIssuesConfig, now: datetime) -> ClaimStep | str:
    """What a claim calls for at `now` (naive UTC, as GitHub's times are stored), or why nothing. Its
    age runs from the claimant's latest activity on it (their /claim comment at first); a step set to
    0 is off, and a reminder due no sooner than the release is skipped."""
    if not config.enabled:
        return "good first issues are turned off"
    if claim.state != "open" or not claim.claimant or not claim.labelled:
        return "not an open claim on a good first issue"
    if claim.quiet_since is None:
        return "the claim's time is unknown"
    quiet = now - claim.quiet_since
    remind, release = config.claims.remind_after_days, config.claims.release_after_days
    language = answer_in(config.language, claim.title)
    if release > 0 and quiet >= timedelta(days=release):
        return ClaimStep(RELEASE, quiet.days, language)
    if remind > 0 and quiet >= timedelta(days=remind) and not 0 < release <= remind:
        return ClaimStep(REMIND, quiet.days, language)
    return f"quiet for {quiet.days} day(s) only"


def role_from(answer: Mapping[str, Any] | None) -> str:
    """The role in a collaborator-permission answer: `role_name` when it is a built-in role (a custom
    role falls back to the `permission` it is based on); "none" for an unknown user."""
    if not answer:
        return "none"
    role = str(answer.get("role_name") or "").lower()
    return role if role in ROLES else str(answer.get("permission") or "none").lower()


# --- reading an event


def issue_from(repository: Mapping[str, Any], item: Mapping[str, Any]) -> Issue:
    return Issue(
        repo=str(repository["full_name"]),
        repo_id=int(repository["id"]),
        number=int(item["number"]),
        title=str(item.get("title") or ""),
        body=str(item.get("body") or ""),
        html_url=str(item.get("html_url") or ""),
        labels=tuple(str(label["name"]) for label in item.get("labels") or [] if isinstance(label, Mapping)),
        assignees=tuple(str(a["login"]) for a in item.get("assignees") or [] if isinstance(a, Mapping)),
        state=str(item.get("state") or "open"),
        pull_request=bool(item.get("pull_request")),
        archived=bool(repository.get("archived")),
        updated_at=github_time(item.get("updated_at")),
        created_at=github_time(item.get("created_at")),
    )


def snapshot(issue: Issue, ours: bool = False) -> Snapshot:
    """The issue for the store. After our own write (`ours`) the issue is as we left it now, so it is
    stamped with the present: events older than the write, delivered late or again, cannot undo it."""
    return Snapshot(
        repo_id=issue.repo_id,
        repository=issue.repo,
        number=issue.number,
        title=issue.title,
        html_url=issue.html_url,
        state=issue.state,
        labels=issue.labels,
        assignees=issue.assignees,
        updated_at=utcnow() if ours else issue.updated_at,
        created_at=issue.created_at,
    )
