"""The database: one SQLAlchemy Core code path for SQLite (embedded default) and PostgreSQL.

Schema changes are numbered migrations applied in order and recorded in `schema_version`, so an
existing database is upgraded in place; later issues (the contribution ledger) append to MIGRATIONS.
"""

from __future__ import annotations

import contextlib
import logging
import select
import sqlite3
import threading
import weakref
from collections.abc import Callable, Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.DateTime, nullable=False),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    # X-GitHub-Delivery: GitHub keeps the same GUID when a delivery is redelivered.
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("action", sa.String(64)),
    sa.Column("installation_id", sa.BigInteger),
    sa.Column("repository", sa.String(255)),
    sa.Column("sender", sa.String(255)),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("received_at", sa.DateTime, nullable=False),
    # pending -> processing -> done | ignored | retrying (-> processing) | failed
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("next_attempt_at", sa.DateTime),
    sa.Column("claimed_at", sa.DateTime),
    sa.Column("finished_at", sa.DateTime),
    sa.Index("ix_deliveries_status_next", "status", "next_attempt_at"),
    sa.Index("ix_deliveries_received_at", "received_at"),
)

handler_runs = sa.Table(
    "handler_runs",
    metadata,
    sa.Column("delivery_id", sa.String(64), sa.ForeignKey("deliveries.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("handler", sa.String(120), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # done | failed | skipped
    sa.Column("error", sa.Text),
    sa.Column("finished_at", sa.DateTime, nullable=False),
)


intents = sa.Table(
    "intents",
    metadata,
    # One row per side effect that must happen once, e.g. "greeting:<repo id>:<login>:issue",
    # written before the effect: the key's uniqueness is what makes concurrent workers act once.
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("delivery_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("done_at", sa.DateTime),
    sa.Column("result", sa.Text),
)


good_first_issues = sa.Table(
    "good_first_issues",
    metadata,
    # Issues that carry (or carried) a repository's good-first-issue label, kept from webhooks so
    # pages can list the ones still open for a newcomer without asking GitHub.
    sa.Column("repo_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("repository", sa.String(255), nullable=False),  # owner/name, as of the latest event
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("html_url", sa.String(500), nullable=False),
    sa.Column("labelled", sa.Boolean, nullable=False),  # carries the good-first-issue label now
    sa.Column("state", sa.String(16), nullable=False),  # open | closed
    sa.Column("assignees", sa.Text, nullable=False),  # JSON list of logins
    sa.Column("claimant", sa.String(255)),  # who took it with /claim and still holds it
    sa.Column("claimed_at", sa.DateTime),
    # GitHub's time of the claimant's latest sign of life on it (the /claim comment, a comment, a pull
    # request that links it, a push to that pull request): how long a claim has gone quiet.
    sa.Column("claim_active_at", sa.DateTime),
    # An open pull request that says it closes the issue ("Fixes #12"): someone is on it.
    sa.Column("linked_pull", sa.Integer),
    # Bumped when the guidance comment is deleted, so that marking the issue again guides again.
    sa.Column("guide_round", sa.Integer, nullable=False, server_default="0"),
    sa.Column("seen_at", sa.DateTime),  # GitHub's updated_at of the state stored: older events lose
    # The issue's labels (a JSON list of names) and GitHub's created_at, from the same payloads, so the
    # page shows them without asking GitHub; NULL for issues stored before migration 16.
    sa.Column("labels", sa.Text),
    sa.Column("opened_at", sa.DateTime),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Index("ix_good_first_issues_repo_state", "repo_id", "state"),
)


# --- The contribution ledger (issue 4) and the rollups kept from it as events arrive.

repositories = sa.Table(
    "repositories",
    metadata,
    # Every repository the app has seen an event for; pages list the installed, public ones.
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("full_name", sa.String(255), nullable=False),
    sa.Column("owner", sa.String(255), nullable=False),
    sa.Column("private", sa.Boolean, nullable=False),
    sa.Column("html_url", sa.String(500), nullable=False, server_default=""),
    # Installed now: NULL once the repository is removed from the installation or the app uninstalled.
    sa.Column("installation_id", sa.BigInteger),
    # The ledger holds the repository's whole history from this time on (set by a finished backfill).
    sa.Column("ledger_complete_since", sa.DateTime),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    # Set while its installation is suspended (the app may not act there); pages may leave such ones out.
    sa.Column("installation_suspended_at", sa.DateTime),
    # GitHub's time as of which `private` is known (NULL: unknown): deliveries arrive in any order, and
    # an older payload's visibility must not override a newer one (storage.ledger keeps the rule).
    sa.Column("visibility_at", sa.DateTime),
    sa.Index("ix_repositories_full_name", "full_name"),
    sa.Index("ix_repositories_owner", "owner"),
)


def listed_on_pages(readable: Collection[int] = ()) -> sa.ColumnElement[bool]:
    """Repositories the pages list: installed now, not suspended, and public, or (`readable`) private ones
    the viewer signed in with GitHub may read (web.signin)."""
    r = repositories.c
    shown = r.private == sa.false()
    if readable:
        shown = sa.or_(shown, r.id.in_(sorted(readable)))
    return sa.and_(r.installation_id.is_not(None), r.installation_suspended_at.is_(None), shown)


def in_owner_scope() -> sa.ColumnElement[bool]:
    """What an owner-wide scope counts: its listed repositories, and its community's forum and chats
    (places with a negative id, `domain.contributions.is_community_place`), which no page lists."""
    return sa.or_(listed_on_pages(), repositories.c.id < 0)


contributors = sa.Table(
    "contributors",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),  # GitHub user id
    sa.Column("login", sa.String(255), nullable=False),  # as of the latest event
    sa.Column("opted_out", sa.Boolean, nullable=False, server_default=sa.false()),  # `/leaderboard opt-out`
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Index("ix_contributors_login", "login"),
)

contributions = sa.Table(
    "contributions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    # Names what happened (a comment id, an issue number), never the delivery: counted once.
    sa.Column("key", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("repo_id", sa.BigInteger, nullable=False),
    sa.Column("actor_id", sa.BigInteger, nullable=False),
    sa.Column("actor_login", sa.String(255), nullable=False),
    sa.Column("number", sa.Integer),
    sa.Column("url", sa.String(500), nullable=False, server_default=""),
    sa.Column("occurred_at", sa.DateTime, nullable=False),  # on GitHub, UTC
    sa.Column("day", sa.Date, nullable=False),  # UTC day of occurred_at
    sa.Column("week", sa.Date, nullable=False),  # Monday of its ISO week, UTC
    sa.Column("credited", sa.Boolean, nullable=False),  # earns points (False: over the daily comment cap)
    sa.Column("positive", sa.Integer, nullable=False, server_default="0"),  # reactions, on closing events
    sa.Column("negative", sa.Integer, nullable=False, server_default="0"),
    sa.Column("subject_is_pull", sa.Boolean),
    sa.Column("subject_author_id", sa.BigInteger),
    sa.Column("subject_opened_at", sa.DateTime),
    sa.Column("source", sa.String(16), nullable=False),  # webhook | backfill
    sa.Column("recorded_at", sa.DateTime, nullable=False),
    sa.Index("ix_contributions_repo_time", "repo_id", "occurred_at"),
    sa.Index("ix_contributions_repo_actor", "repo_id", "actor_id", "kind"),
)


def unindexed(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """`condition`, in a form no index can serve (inside a CASE), for a time bound beside a person's id.

    SQLite keeps no statistics, and its planner prefers ix_contributions_repo_time (the repository, a time range)
    to ix_contributions_repo_actor (the repository, the person) when both fit: it then walks every contribution
    to the repository before the bound, the whole history for a bound of now, to find one person's: on 30,000
    contributions, 10 ms for each newcomer's greeting, and 6.6 ms for each comment or issue when milestones'
    welcome-back is on (bench/README.md, 7 December, fourth sitting). PostgreSQL picks the person's index anyway."""
    return sa.case((condition, True), else_=False)


def unindexed_order(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """`column` to order by, in a form no index can serve: SQLite otherwise walks ix_contributions_repo_time
    in time order, over the repository's whole history, to spare itself sorting one person's few rows."""
    return sa.case((column.is_not(None), column))


# A person's earlier contributions by login, as the greeting, the response watch and milestones count them for
# every issue or pull request opened and merged: without it, each count read all of the repository's rows.
ix_contributions_repo_login = sa.Index(
    "ix_contributions_repo_login",
    contributions.c.repo_id,
    sa.func.lower(contributions.c.actor_login),
    contributions.c.kind,
)

# Per person, per repository, per UTC day: counts per kind (activity kinds only).
# The community forum's activity per person (domain.contributions.FORUM_KINDS), added by migration 11.
FORUM_COUNTS = ("forum_topics", "forum_replies", "forum_solutions", "forum_likes")
# The community chats' (CHAT_KINDS), added by migration 12; messages and replies have credited counts,
# as comments do, since the daily comment cap applies to them.
CHAT_COUNTS = (
    "chat_messages",
    "chat_replies",
    "chat_members_joined",
    "chat_messages_credited",
    "chat_replies_credited",
)
# Credits given with `/credit` (domain.credits), added by migration 16.
CREDIT_COUNTS = ("credits",)
ROLLUP_COUNTS = (
    "issues_opened",
    "prs_opened",
    "prs_merged",
    "reviews",
    "comments",
    "review_comments",
    "gfi_solved",
    "comments_credited",
    "review_comments_credited",
    *FORUM_COUNTS,
    *CHAT_COUNTS,
    *CREDIT_COUNTS,
)


def _count_columns(names: tuple[str, ...]) -> list[sa.Column[int]]:
    return [sa.Column(name, sa.Integer, nullable=False, server_default="0") for name in names]


actor_days = sa.Table(
    "actor_days",
    metadata,
    sa.Column("repo_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("actor_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("day", sa.Date, primary_key=True),
    *_count_columns(ROLLUP_COUNTS),
    sa.Index("ix_actor_days_day", "day"),
)

# The same counts summed over each leaderboard window ("30d", and "30d-prev" for rank changes, "all")
# as of `ledger_state.windows_as_of`, for a scope: "repo:<id>" or "org:<owner>" (public repos only).
window_totals = sa.Table(
    "window_totals",
    metadata,
    sa.Column("scope", sa.String(300), primary_key=True),
    sa.Column("window", sa.String(16), primary_key=True),
    sa.Column("actor_id", sa.BigInteger, primary_key=True, autoincrement=False),
    *_count_columns(ROLLUP_COUNTS),
)

# First and latest contribution of each person in a scope: newcomers, retention.
scope_members = sa.Table(
    "scope_members",
    metadata,
    sa.Column("scope", sa.String(300), primary_key=True),
    sa.Column("actor_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("first_at", sa.DateTime, nullable=False),
    sa.Column("last_at", sa.DateTime, nullable=False),
    sa.Index("ix_scope_members_first", "scope", "first_at"),
)

WEEKLY_COUNTS = (
    "active",
    "new",
    "issues_opened",
    "issues_closed",
    "prs_opened",
    "prs_merged",
    "prs_closed",
    "reviews",
    "comments",
    "review_comments",
    "gfi_solved",
    "positive",
    "negative",
)

weekly = sa.Table(
    "weekly",
    metadata,
    sa.Column("repo_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("week", sa.Date, primary_key=True),  # Monday of the ISO week, UTC
    *_count_columns(WEEKLY_COUNTS),
)

weekly_actors = sa.Table(
    "weekly_actors",
    metadata,
    sa.Column("repo_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("week", sa.Date, primary_key=True),
    sa.Column("actor_id", sa.BigInteger, primary_key=True, autoincrement=False),
)

# Issues and pull requests with their first response by a person other than the author.
responses = sa.Table(
    "responses",
    metadata,
    sa.Column("repo_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("is_pull", sa.Boolean, nullable=False),
    sa.Column("author_id", sa.BigInteger),
    sa.Column("opened_at", sa.DateTime, nullable=False),
    sa.Column("opened_week", sa.Date, nullable=False),
    sa.Column("first_response_at", sa.DateTime),
    sa.Index("ix_responses_repo_week", "repo_id", "opened_week"),
)

scoring = sa.Table(
    "scoring",
    metadata,
    # The leaderboard section in use for a scope, kept from the latest configuration read.
    sa.Column("scope", sa.String(300), primary_key=True),
    sa.Column("settings", sa.Text, nullable=False),  # JSON
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

ledger_state = sa.Table(
    "ledger_state",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date),
    sa.Column("value", sa.Text),
)

# --- Installations (issue 5): who installed the app, and whether it may still act for them.

installations = sa.Table(
    "installations",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("account_login", sa.String(255), nullable=False),
    sa.Column("account_type", sa.String(32), nullable=False),  # User | Organization | Enterprise
    sa.Column("suspended_at", sa.DateTime),
    # GitHub never reuses an installation id: a deleted installation stays deleted (reinstalling makes a new one).
    sa.Column("deleted_at", sa.DateTime),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

LEDGER_TABLES = [
    repositories,
    contributors,
    contributions,
    actor_days,
    window_totals,
    scope_members,
    weekly,
    weekly_actors,
    responses,
    scoring,
    ledger_state,
]


def _create_ledger_tables(conn: Connection) -> None:
    for table in LEDGER_TABLES:
        table.create(conn)


def _track_installations(conn: Connection) -> None:
    installations.create(conn)
    # Databases whose `repositories` came from migration 4 before this column existed gain it here.
    if "installation_suspended_at" not in {c["name"] for c in sa.inspect(conn).get_columns("repositories")}:
        kind = sa.DateTime().compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE repositories ADD COLUMN installation_suspended_at {kind}"))


def _add_visibility_time(conn: Connection) -> None:
    """Databases made before this column existed gain it (migration 4 creates it in new ones); their
    repositories' visibility time is unknown (NULL), so the next dated claim sets it."""
    if "visibility_at" not in {c["name"] for c in sa.inspect(conn).get_columns("repositories")}:
        kind = sa.DateTime().compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE repositories ADD COLUMN visibility_at {kind}"))


def _add_claim_activity(conn: Connection) -> None:
    """Databases made before this column existed gain it (migration 3 creates it in new ones); their
    claims' activity is unknown (NULL), so they age from the claim itself."""
    if "claim_active_at" not in {c["name"] for c in sa.inspect(conn).get_columns("good_first_issues")}:
        kind = sa.DateTime().compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE good_first_issues ADD COLUMN claim_active_at {kind}"))


def _add_issue_labels_and_age(conn: Connection) -> None:
    """Databases made before these columns existed gain them (migration 3 creates them in new ones); the
    issues stored already show their labels and age from their next event."""
    present = {c["name"] for c in sa.inspect(conn).get_columns("good_first_issues")}
    kinds = {
        "labels": sa.Text().compile(dialect=conn.dialect),
        "opened_at": sa.DateTime().compile(dialect=conn.dialect),
    }
    for name, kind in kinds.items():
        if name not in present:
            conn.execute(sa.text(f"ALTER TABLE good_first_issues ADD COLUMN {name} {kind}"))


def _index_logins(conn: Connection) -> None:
    # IF NOT EXISTS, not checkfirst: new databases have it from the table's creation, and reflecting an
    # expression index makes SQLAlchemy warn.
    conn.execute(sa.schema.CreateIndex(ix_contributions_repo_login, if_not_exists=True))


def _compress_payloads_with_lz4(conn: Connection) -> None:
    """PostgreSQL compresses a delivery's payload (13-24 KB of JSON) as it stores it, and the webhook's answer
    waits for that: lz4 takes about half the server's CPU of its default, pglz (bench/README.md, "The seventh
    sitting"). Rows stored before keep theirs. A server without lz4 (before PostgreSQL 14, or built without it)
    keeps pglz."""
    if conn.dialect.name != "postgresql":
        return
    try:
        with conn.begin_nested():
            conn.execute(sa.text("ALTER TABLE deliveries ALTER COLUMN payload SET COMPRESSION lz4"))
    except sa.exc.DBAPIError as exc:
        log.warning("deliveries' payloads stay compressed with pglz: %s", exc.orig)


def utcnow() -> datetime:
    """Naive UTC: SQLite drops time zones, so every stored time is UTC without one."""
    return datetime.now(UTC).replace(tzinfo=None)


def _create_delivery_tables(conn: Connection) -> None:
    deliveries.create(conn)
    handler_runs.create(conn)


task_runs = sa.Table(
    "task_runs",
    metadata,
    # One row per scheduled task: the latest period claimed. Claiming is a conditional UPDATE that only
    # moves `period` forward, so each period runs once across every worker and restart.
    sa.Column("task", sa.String(120), primary_key=True),
    sa.Column("period", sa.DateTime),  # the scheduled time this run stands for (UTC)
    sa.Column("status", sa.String(16), nullable=False),  # running | done | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),  # tries of this period
    sa.Column("started_at", sa.DateTime),
    sa.Column("lease_until", sa.DateTime),  # a running claim past this belongs to a worker that died
    sa.Column("finished_at", sa.DateTime),
    sa.Column("error", sa.Text),
    sa.Column("runs", sa.Integer, nullable=False, server_default="0"),  # periods run in all
)

watched_items = sa.Table(
    "watched_items",
    metadata,
    # Newcomers' issues and pull requests the response watch keeps an eye on, kept from webhooks so that
    # its pass and the /waiting page need no GitHub call (engagement/response_watch.py).
    sa.Column("repo_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("repository", sa.String(255), nullable=False),  # owner/name, as of the latest event
    sa.Column("installation_id", sa.BigInteger, nullable=False),  # what the pass calls GitHub as
    sa.Column("is_pull", sa.Boolean, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("html_url", sa.String(500), nullable=False),
    sa.Column("author", sa.String(255), nullable=False),
    sa.Column("newcomer", sa.Boolean, nullable=False),  # fewer earlier contributions than newcomer_max
    sa.Column("opened_at", sa.DateTime, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # open | closed
    sa.Column("labels", sa.Text, nullable=False),  # JSON list of names
    sa.Column("on_hold", sa.Boolean, nullable=False),  # carries the repository's waiting-on-author label
    sa.Column("due_at", sa.DateTime),  # the first nudge's deadline under the repository's settings
    sa.Column("escalate_at", sa.DateTime),  # the second one's; NULL: no escalation
    sa.Column("nudged_at", sa.DateTime),
    sa.Column("escalated_at", sa.DateTime),
    sa.Column("seen_at", sa.DateTime),  # GitHub's updated_at of the state stored: older events lose
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Index("ix_watched_items_state_due", "state", "due_at"),
)

# --- People across platforms (issue 12): a forum or chat account linked to a GitHub account.

identity_links = sa.Table(
    "identity_links",
    metadata,
    # A forum or chat person (their negative id, `domain.contributions.Forum.person` / `Chat.person`)
    # who is GitHub user `github_id`: their contributions are recorded under the GitHub id.
    sa.Column("person_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("platform", sa.String(16), nullable=False),  # discourse | telegram | rocketchat
    sa.Column("place_id", sa.BigInteger, nullable=False),  # the forum's or chat's place in the ledger
    sa.Column("username", sa.String(255), nullable=False),  # on that platform, as of the link
    sa.Column("github_id", sa.BigInteger, nullable=False),
    sa.Column("github_login", sa.String(255), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),  # self (both sides proved) | operator (IDENTITY_MAP_FILE)
    sa.Column("linked_at", sa.DateTime, nullable=False),
    # One account per place per GitHub person: a place's rollups then never merge two of its people.
    sa.UniqueConstraint("github_id", "place_id", name="uq_identity_links_github_place"),
)

link_codes = sa.Table(
    "link_codes",
    metadata,
    # One-time codes a forum or chat person asked for (`/link LOGIN`), to post on GitHub as that login.
    sa.Column("code_hash", sa.String(64), primary_key=True),  # SHA-256 of the code: the code is never stored
    sa.Column("person_id", sa.BigInteger, nullable=False),
    sa.Column("platform", sa.String(16), nullable=False),
    sa.Column("place_id", sa.BigInteger, nullable=False),
    sa.Column("username", sa.String(255), nullable=False),
    sa.Column("reply_to", sa.String(255), nullable=False),  # where to confirm: a Telegram chat id, a forum username
    sa.Column("github_login", sa.String(255), nullable=False),  # lower case: only this login may use it
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Column("used_at", sa.DateTime),
    sa.Index("ix_link_codes_person", "person_id"),
)


def _add_identity_tables(conn: Connection) -> None:
    identity_links.create(conn, checkfirst=True)
    link_codes.create(conn, checkfirst=True)


# --- Forum posts and topics deleted on the forum (issue 12): out of the ledger while deleted.

removed_items = sa.Table(
    "removed_items",
    metadata,
    # What the forum deleted (`discourse:<host>:topic:<id>`, `...:post:<id>`, an acceptance withdrawn
    # `...:solution:<post id>`): kept as a tombstone, so that a creation arriving after its deletion
    # is not counted, until a recovery lifts it (`storage.ledger_removal`).
    sa.Column("item", sa.String(300), primary_key=True),
    sa.Column("removed_at", sa.DateTime, nullable=False),
)

removed_contributions = sa.Table(
    "removed_contributions",
    metadata,
    # Contributions set aside while something they stand on is removed: out of `contributions` (so no
    # rollup, rebuild or page counts them), kept to be recorded again when it is recovered.
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("repo_id", sa.BigInteger, nullable=False),
    sa.Column("number", sa.Integer),  # the forum topic's id
    sa.Column("contribution", sa.Text, nullable=False),  # JSON: what recording it again needs
    sa.Column("removed_at", sa.DateTime, nullable=False),
    sa.Index("ix_removed_contributions_place_number", "repo_id", "number"),
)


def _add_removal_tables(conn: Connection) -> None:
    removed_items.create(conn, checkfirst=True)
    removed_contributions.create(conn, checkfirst=True)


# --- People signed in with GitHub (web.signin): server-side sessions, and sign-ins under way.

web_sessions = sa.Table(
    "web_sessions",
    metadata,
    # SHA-256 of the cookie's random value: the cookie alone opens a session, and the database never holds it.
    sa.Column("session_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("login", sa.String(255), nullable=False),
    # The user access token and refresh token, encrypted (storage.web_sessions): they read what the person can.
    sa.Column("access_token", sa.Text, nullable=False),
    sa.Column("access_expires_at", sa.DateTime),
    sa.Column("refresh_token", sa.Text),
    sa.Column("refresh_expires_at", sa.DateTime),
    # What the person may read, as GitHub said at `grants_checked_at` (JSON: repository id -> role).
    sa.Column("grants", sa.Text),
    sa.Column("grants_checked_at", sa.DateTime),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime),
    sa.Index("ix_web_sessions_user", "user_id"),
)

sign_in_requests = sa.Table(
    "sign_in_requests",
    metadata,
    # A sign-in sent to GitHub: its `state` (hashed; the browser's cookie holds it too) and PKCE verifier.
    sa.Column("state_hash", sa.String(64), primary_key=True),
    sa.Column("verifier", sa.String(128), nullable=False),
    sa.Column("return_to", sa.String(2048), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)


def _add_session_tables(conn: Connection) -> None:
    web_sessions.create(conn, checkfirst=True)
    sign_in_requests.create(conn, checkfirst=True)


# --- Credit for work that is not code (`/credit`, engagement/credit.py): what each credit says.

credits = sa.Table(
    "credits",
    metadata,
    # One per person, category and repository, beside its ledger contribution (`domain.credits.credit_key`),
    # written and taken back in the same transaction: the ledger counts it, this row says what it is for.
    sa.Column("repo_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("person_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("category", sa.String(40), primary_key=True),
    sa.Column("login", sa.String(255), nullable=False),  # as of the credit
    sa.Column("note", sa.String(200), nullable=False, server_default=""),
    sa.Column("given_by", sa.String(255), nullable=False),
    sa.Column("comment_id", sa.BigInteger, nullable=False),  # the `/credit` comment
    sa.Column("url", sa.String(500), nullable=False, server_default=""),
    sa.Column("given_at", sa.DateTime, nullable=False),  # GitHub's time of that comment
    sa.Index("ix_credits_person", "person_id"),
)


def _add_credits(conn: Connection) -> None:
    credits.create(conn, checkfirst=True)
    _add_counts(CREDIT_COUNTS)(conn)


# --- Events: talks, hackathons, sprints (engagement/events.py), as the latest config files define them.

events = sa.Table(
    "events",
    metadata,
    # Who defined it: "repo:<id>" (the repository's own file) or "org:<owner>" (the `.github` repository's).
    sa.Column("source", sa.String(300), primary_key=True),
    sa.Column("slug", sa.String(64), primary_key=True),  # its address, /events/<slug>
    sa.Column("owner", sa.String(255), nullable=False),  # the repositories it covers are this owner's
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("starts_at", sa.DateTime, nullable=False),  # UTC; the window is [starts_at, ends_at)
    sa.Column("ends_at", sa.DateTime, nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),  # how its page shows times
    sa.Column("label", sa.String(50)),  # lower case; NULL: every contribution in the window counts
    sa.Column("repositories", sa.Text, nullable=False),  # JSON list of names; empty: the source's own
    sa.Column("created_at", sa.DateTime, nullable=False),  # the oldest definition wins a shared slug
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Index("ix_events_slug", "slug"),
    sa.Index("ix_events_owner", "owner"),
)

event_items = sa.Table(
    "event_items",
    metadata,
    # Issues and pull requests carrying an event's label, as their latest webhook said: which
    # contributions match a labelled event is known without asking GitHub.
    sa.Column("repo_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("label", sa.String(50), primary_key=True),  # lower case (GitHub's labels ignore case)
    sa.Index("ix_event_items_label", "repo_id", "label"),
)


def _add_event_tables(conn: Connection) -> None:
    events.create(conn, checkfirst=True)
    event_items.create(conn, checkfirst=True)


Migration = tuple[int, str, Callable[[Connection], None]]

# The day the leaderboard windows are kept as of. Its row exists from the start, so that recording
# (FOR SHARE) and moving the windows (FOR UPDATE) always have it to lock, even before the first move.
WINDOWS_AS_OF = "windows_as_of"


def _add_windows_row(conn: Connection) -> None:
    if conn.execute(sa.select(ledger_state.c.name).where(ledger_state.c.name == WINDOWS_AS_OF)).first() is None:
        conn.execute(ledger_state.insert().values(name=WINDOWS_AS_OF, day=None))


def _add_counts(names: tuple[str, ...]) -> Callable[[Connection], None]:
    """Databases made before these counts existed gain them (migration 4 creates them in new ones)."""

    def step(conn: Connection) -> None:
        for table in ("actor_days", "window_totals"):
            present = {c["name"] for c in sa.inspect(conn).get_columns(table)}
            for name in names:
                if name not in present:
                    conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {name} INTEGER NOT NULL DEFAULT 0"))

    return step


MIGRATIONS: list[Migration] = [
    (1, "deliveries and handler runs", _create_delivery_tables),
    (2, "intents: side effects done once", lambda conn: intents.create(conn)),
    (3, "good first issues: their state per repository", lambda conn: good_first_issues.create(conn)),
    (4, "contribution ledger and its rollups", _create_ledger_tables),
    (5, "installations, and repositories whose installation is suspended", _track_installations),
    (6, "a row for the leaderboard windows' day, which writers lock", _add_windows_row),
    (7, "scheduled tasks: the period each last ran for", lambda conn: task_runs.create(conn, checkfirst=True)),
    (8, "repositories: the time their visibility is known as of", _add_visibility_time),
    (9, "good first issues: when a claim last showed activity", _add_claim_activity),
    (
        10,
        "watched items: newcomers' issues and pull requests awaiting a first response",
        lambda conn: watched_items.create(conn, checkfirst=True),
    ),
    (11, "the community forum's activity in the ledger's rollups", _add_counts(FORUM_COUNTS)),
    (12, "the community chats' activity in the ledger's rollups", _add_counts(CHAT_COUNTS)),
    (13, "people across platforms: linked accounts and one-time link codes", _add_identity_tables),
    (14, "forum posts and topics deleted: tombstones and the contributions set aside", _add_removal_tables),
    (15, "people signed in with GitHub: sessions and sign-ins under way", _add_session_tables),
    (16, "credit for work that is not code: the credits and their count in the rollups", _add_credits),
    (17, "events: their definitions and the issues and pull requests carrying their labels", _add_event_tables),
    (18, "good first issues: their labels and when they were opened", _add_issue_labels_and_age),
    (19, "the ledger: a person's contributions found by login without reading the repository's", _index_logins),
    (20, "deliveries: payloads compressed with lz4 on PostgreSQL (half pglz's CPU)", _compress_payloads_with_lz4),
]


# Threads besides the delivery workers that may hold a connection at once: web request threads (the web
# server's: 8 in scripts/serve, gunicorn --threads), the sweeper, a command's main thread.
OTHER_THREADS = 32


def make_engine(url: str, worker_threads: int = 1) -> Engine:
    """The engine, with a connection for every thread of the process that may need one at once.

    Both dialects get a QueuePool (SQLAlchemy 2's choice for a SQLite file too), which gives each thread its
    own connection, opens connections only as threads ask, keeps up to pool_size of them, closes the rest when
    they come back, and makes a thread wait up to 30 s once pool_size + max_overflow are out. So: keep one per
    delivery worker thread (`worker_threads`, WORKER_THREADS) and two more, and allow a burst of the others.
    """
    pool = {"pool_size": worker_threads + 2, "max_overflow": OTHER_THREADS}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        in_memory = not path or path == ":memory:"  # one connection per thread is one database per thread
        if not in_memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        connect_args = {"timeout": 15, "check_same_thread": False}
        engine = sa.create_engine(url, connect_args=connect_args, **({} if in_memory else pool))
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        _serialise_sqlite_transactions(engine)
        return engine
    # Not pool_pre_ping: its SELECT 1 was a round trip per transaction (0.3-0.5 ms of CPU per delivery processed).
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3}, **pool)
    sa.event.listen(engine, "checkout", _closed_by_the_server)
    return engine


def _closed_by_the_server(dbapi_connection, _record, _proxy) -> None:  # type: ignore[no-untyped-def]
    """A pooled connection PostgreSQL has closed (a restart, a failover, an idle timeout) has its farewell to
    read while it waits in the pool: a poll of its socket, microseconds, finds it, and SQLAlchemy replaces it.
    What the poll cannot see (the server went away between checkout and statement) fails one statement,
    after which SQLAlchemy replaces every pooled connection and the pipeline's transactions try once more
    (`once_more_if_dropped`)."""
    if dbapi_connection.closed or select.select([dbapi_connection.fileno()], [], [], 0)[0]:
        raise sa.exc.DisconnectionError("the database closed this connection")


T = TypeVar("T")


def once_more_if_dropped(transaction: Callable[[], T]) -> T:
    """Run `transaction` (one whole transaction); if the database had dropped the connection it got (a
    restart, a failover), run it once more on a new one. The failed try was rolled back with its connection."""
    try:
        return transaction()
    except sa.exc.DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        return transaction()


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin (see _sqlite_begin_immediate).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets the web process read while the worker writes; NORMAL sync is durable across app crashes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


_SQLITE_TURNS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_on_their_own: weakref.WeakSet[Connection] = weakref.WeakSet()  # see `_statements_on_their_own`


def sqlite_turn(engine: Engine) -> threading.RLock:
    """The lock each of the process's transactions on this SQLite engine holds from BEGIN to COMMIT."""
    return _SQLITE_TURNS[engine]


def _serialise_sqlite_transactions(engine: Engine) -> None:
    """One transaction at a time per process, each holding SQLite's write lock from its start.

    BEGIN IMMEDIATE: a deferred transaction that reads and then writes fails at once with "database
    is locked" instead of waiting, and migrations by two processes would race. The process lock:
    threads queue in Python instead of in SQLite's busy handler, which sleeps for milliseconds. A `connect`
    block's reads take neither: WAL gives each statement a snapshot without them.
    """
    lock = _SQLITE_TURNS[engine] = threading.RLock()
    holding: weakref.WeakSet[Connection] = weakref.WeakSet()

    def begin(conn: Connection) -> None:
        if conn in _on_their_own:
            return  # a read block's: each statement on its own, the sqlite3 module in autocommit
        lock.acquire()
        try:
            conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
        except BaseException:
            lock.release()
            raise
        holding.add(conn)

    def end(conn: Connection, finish: Callable[[sqlite3.Connection], None]) -> None:
        """SQLAlchemy's commit and rollback events come before its DBAPI call: the transaction ends here,
        under the lock, and SQLAlchemy's own COMMIT or ROLLBACK then finds none open. Released first, the
        next thread's BEGIN IMMEDIATE met SQLite's lock still held and slept in the busy handler, holding
        the process lock meanwhile: under a burst of webhooks, a transaction held it three times as long.
        A failure here is left to SQLAlchemy's own call, which tries again and reports it as its error."""
        if conn not in holding:
            return  # a read block's: no transaction was begun, nor the turn taken
        holding.discard(conn)
        try:
            if not conn.invalidated:
                with contextlib.suppress(Exception):
                    finish(conn.connection.dbapi_connection)  # type: ignore[arg-type]
        finally:
            lock.release()

    sa.event.listen(engine, "begin", begin)
    sa.event.listen(engine, "commit", lambda conn: end(conn, sqlite3.Connection.commit))
    sa.event.listen(engine, "rollback", lambda conn: end(conn, sqlite3.Connection.rollback))


def current_version(conn: Connection) -> int:
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(schema_version.c.version), 0))).scalar_one())


def migrate(engine: Engine) -> list[int]:
    """Apply pending migrations; safe when several processes start at once."""
    applied: list[int] = []
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Serialise concurrent upgrades (several gunicorn workers booting together).
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(73101)"))
        if not sa.inspect(conn).has_table("schema_version"):
            schema_version.create(conn)
        version = current_version(conn)
        for number, description, step in MIGRATIONS:
            if number <= version:
                continue
            log.info("applying migration", extra={"migration": number, "description": description})
            step(conn)
            conn.execute(schema_version.insert().values(version=number, description=description, applied_at=utcnow()))
            applied.append(number)
    return applied


def pending_migrations(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        version = current_version(conn)
    return [number for number, _, _ in MIGRATIONS if number > version]


class _ThreadsConnections(threading.local):
    """The connection each thread keeps, by engine, while inside `one_connection`."""

    def __init__(self) -> None:
        self.kept: dict[Engine, Connection] = {}


_threads = _ThreadsConnections()


@contextlib.contextmanager
def one_connection(engine: Engine) -> Iterator[None]:
    """Inside, this thread's `begin(engine)` and `connect(engine)` use one connection, not one from the
    pool each: processing one delivery makes a dozen short transactions, and a checkout and its reset cost
    about 40 µs each. Each transaction still commits on its own, as it would on the pool's connections."""
    if engine in _threads.kept:
        yield
        return
    _threads.kept[engine] = engine.connect()
    try:
        yield
    finally:
        _threads.kept.pop(engine).close()  # the one kept now: a dropped one was replaced meanwhile


def _kept(engine: Engine) -> Connection | None:
    """The thread's kept connection when it can start a transaction now: not outside `one_connection`, not
    while a transaction, a `connect` or a `one_statement` block of the caller's is still open on it (a nested
    one gets a connection of its own, as before), not once the database dropped it (its replacement comes from
    the pool; so does that of one closed when a replacement could not be had)."""
    connection = _threads.kept.get(engine)
    if connection is None or connection.in_transaction() or connection in _on_their_own:
        return None
    if connection.invalidated or connection.closed:
        connection.close()
        _threads.kept[engine] = connection = engine.connect()
    return connection


@contextlib.contextmanager
def begin(engine: Engine) -> Iterator[Connection]:
    """`engine.begin()`, on the thread's kept connection when there is one (see `one_connection`)."""
    connection = _kept(engine)
    if connection is None:
        with engine.begin() as connection:
            yield connection
        return
    with connection.begin():
        yield connection


@contextlib.contextmanager
def one_statement(engine: Engine) -> Iterator[Connection]:
    """`begin`, for a write of one statement (a delivery's claim and finish, an intent's start and end): on
    PostgreSQL, on the kept connection, the statement is a transaction of its own, in autocommit, sparing its
    BEGIN and COMMIT a round trip each. On SQLite a write begins as any other: SQLite would not wait for another
    process's writer if the statement's read and its write were two steps (see `_serialise_sqlite_transactions`)."""
    connection = _kept(engine)
    if connection is None or engine.dialect.name != "postgresql":
        with begin(engine) as connection:
            yield connection
        return
    with _statements_on_their_own(connection, kept=True):
        yield connection


def statements_on_their_own(connection: Connection) -> contextlib.AbstractContextManager[None]:
    """`one_statement` on a connection its caller keeps for itself (the intake's): on PostgreSQL each of the
    block's statements commits as it runs, with no BEGIN or COMMIT of its own."""
    return _statements_on_their_own(connection, kept=True)


@contextlib.contextmanager
def connect(engine: Engine) -> Iterator[Connection]:
    """`engine.connect()`, on the thread's kept connection when there is one. For reads only: they run without a
    transaction (see `_statements_on_their_own`), and a `begin` inside the block gets a connection of its own."""
    connection = _kept(engine)
    if connection is None:
        with engine.connect() as connection, _statements_on_their_own(connection, kept=False):
            yield connection
        return
    with _statements_on_their_own(connection, kept=True):
        yield connection


@contextlib.contextmanager
def _statements_on_their_own(connection: Connection, kept: bool) -> Iterator[None]:
    """Each of the block's statements is a transaction of its own: a `connect` block's reads, and on PostgreSQL a
    `one_statement` write. On SQLite a read's transaction would take the process's turn and SQLite's write lock
    (BEGIN IMMEDIATE, see `_serialise_sqlite_transactions`): every read waited for the writes of the process's
    other threads (the intake's, under a burst) and of other processes (RQ workers, a rebuild), and held theirs
    up. On PostgreSQL, see `_without_transaction` (the kept connection only: the pool's reset costs a round trip
    anyway). A `begin` inside the block gets a connection of its own (`_kept`). What the block leaves
    uncommitted is rolled back at its end, as closing a connection does."""
    _on_their_own.add(connection)
    try:
        if kept and connection.dialect.name == "postgresql":
            with _without_transaction(connection):
                yield
        else:
            yield
    finally:
        if connection.in_transaction():
            connection.rollback()
        _on_their_own.discard(connection)


@contextlib.contextmanager
def _without_transaction(connection: Connection) -> Iterator[None]:
    """The DBAPI connection in autocommit while the block runs. Under READ COMMITTED a transaction gives a
    read nothing (each statement sees its own snapshot), and psycopg would spend a round trip on its BEGIN and
    another on its ROLLBACK: about a third of a greeting's round trips (bench/README.md, 7 December, fourth
    sitting). SQLAlchemy still tracks its own transaction, whose end sends nothing while psycopg is idle."""
    dbapi_connection = connection.connection.dbapi_connection
    dbapi_connection.autocommit = True  # type: ignore[union-attr]
    try:
        yield
    finally:
        if not connection.invalidated and not connection.closed:
            if connection.in_transaction():
                connection.rollback()
            dbapi_connection.autocommit = False  # type: ignore[union-attr]
