"""What each contribution adds to the rollups, and the keys they are kept by: scopes (a repository, or
an owner's listed repositories together) and ISO weeks. `storage.ledger` adds one contribution at a
time, `storage.ledger_rebuild` recomputes them all; both read these tables."""

from __future__ import annotations

from datetime import date, timedelta

from domain import contributions as kinds

ROLLUP_COLUMNS: dict[str, tuple[str, ...]] = {
    kinds.ISSUE_OPENED: ("issues_opened",),
    kinds.PR_OPENED: ("prs_opened",),
    kinds.PR_MERGED: ("prs_merged",),
    kinds.REVIEW_APPROVED: ("reviews",),
    kinds.REVIEW_CHANGES_REQUESTED: ("reviews",),
    kinds.REVIEW_COMMENTED: ("reviews",),
    kinds.COMMENT: ("comments",),
    kinds.REVIEW_COMMENT: ("review_comments",),
    kinds.GFI_SOLVED: ("gfi_solved",),
    kinds.FORUM_TOPIC: ("forum_topics",),
    kinds.FORUM_REPLY: ("forum_replies",),
    kinds.FORUM_SOLUTION: ("forum_solutions",),
    kinds.FORUM_LIKE: ("forum_likes",),
    kinds.CHAT_MESSAGE: ("chat_messages",),
    kinds.CHAT_REPLY: ("chat_replies",),
    kinds.CHAT_MEMBER_JOINED: ("chat_members_joined",),
    kinds.CREDIT: ("credits",),
}
# Kinds under the daily comment cap: those beyond it are counted but earn no points (credited columns).
CREDIT_COLUMNS = {
    kinds.COMMENT: "comments_credited",
    kinds.REVIEW_COMMENT: "review_comments_credited",
    kinds.CHAT_MESSAGE: "chat_messages_credited",
    kinds.CHAT_REPLY: "chat_replies_credited",
}
WEEKLY_COLUMNS: dict[str, str] = {
    kinds.ISSUE_OPENED: "issues_opened",
    kinds.ISSUE_CLOSED: "issues_closed",
    kinds.PR_OPENED: "prs_opened",
    kinds.PR_MERGED: "prs_merged",
    kinds.PR_CLOSED: "prs_closed",
    kinds.REVIEW_APPROVED: "reviews",
    kinds.REVIEW_CHANGES_REQUESTED: "reviews",
    kinds.REVIEW_COMMENTED: "reviews",
    kinds.COMMENT: "comments",
    kinds.REVIEW_COMMENT: "review_comments",
    kinds.GFI_SOLVED: "gfi_solved",
}


def repo_scope(repo_id: int) -> str:
    return f"repo:{repo_id}"


def org_scope(owner: str) -> str:
    """All listed repositories (`listed_on_pages`: installed, public) of one owner together."""
    return f"org:{owner.lower()}"


def week_of(day: date) -> date:
    """Monday of the ISO week (UTC)."""
    return day - timedelta(days=day.weekday())
