"""The ledger records each contribution once, and its rollups equal a rebuild from the ledger.

What `record` and `advance` keep incrementally (as events arrive, as days pass) must be exactly what
`rebuild` computes from scratch; leaderboards and insights read only the rollups.
"""

from __future__ import annotations

import random
import threading
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain import contributions as kinds
from domain.contributions import Contribution, Repo, Subject
from readmodels import people as people_page
from storage import db, upsert
from storage.ledger import LedgerStore
from storage.people import PeopleStore
from storage.rollups import org_scope, repo_scope

PUBLIC = Repo(1, "llmasos/kernel", private=False, installation_id=7)
OTHER = Repo(2, "llmasos/docs", private=False, installation_id=7)
SECRET = Repo(3, "llmasos/security", private=True, installation_id=7)
ROLLUPS = (db.actor_days, db.window_totals, db.scope_members, db.weekly, db.weekly_actors, db.responses)


def contribution(
    kind: str, repo: Repo, actor: int, at: datetime, number: int = 1, key: str | None = None, author: int = 100
) -> Contribution:
    return Contribution(
        key=key or f"{kind}:{repo.id}:{actor}:{at.isoformat()}:{number}",
        kind=kind,
        repo=repo,
        actor_id=actor,
        actor_login=f"user{actor}",
        occurred_at=at,
        number=number,
        url=f"https://github.com/{repo.full_name}/issues/{number}",
        subject=Subject(number, number % 2 == 0, author, datetime(2024, 1, 1) + timedelta(days=number * 9)),
        positive=2 if kind == kinds.ISSUE_CLOSED else 0,
        negative=1 if kind == kinds.ISSUE_CLOSED else 0,
    )


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            table.name: sorted(tuple(row) for row in conn.execute(sa.select(table)))  # type: ignore[misc]
            for table in ROLLUPS
        }


def random_history(seed: int, today: date, count: int = 400) -> list[Contribution]:
    rng = random.Random(seed)
    activity = [k for k in kinds.KINDS]
    items = []
    for n in range(count):
        at = datetime.combine(today, datetime.min.time()) - timedelta(minutes=rng.randrange(0, 60 * 24 * 800))
        items.append(
            contribution(
                rng.choice(activity), rng.choice([PUBLIC, OTHER, SECRET]), rng.randrange(1, 30), at, number=n % 40 + 1
            )
        )
    return items


def test_a_contribution_is_recorded_once_whatever_the_redeliveries(engine: Engine) -> None:
    store = LedgerStore(engine)
    item = contribution(kinds.COMMENT, PUBLIC, 5, datetime(2026, 11, 20, 10))
    assert store.record([item]) == 1
    assert store.record([item, item], source="backfill") == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.contributions)).scalar_one() == 1
        assert conn.execute(sa.select(db.actor_days.c.comments)).scalar_one() == 1


def test_incremental_rollups_equal_a_rebuild_in_any_order(engine: Engine) -> None:
    """Events arriving in any order (late, backfilled) and days passing give what a rebuild gives."""
    today = date(2026, 11, 29)
    history = random_history(1, today)
    store = LedgerStore(engine)
    store.advance(today - timedelta(days=3))
    random.Random(2).shuffle(history)
    store.record(history[:200], cap=3)
    store.advance(today - timedelta(days=1))
    store.record(history[200:], cap=3)
    store.advance(today)
    incremental = snapshot(engine)
    assert incremental["window_totals"], "windows were kept"
    store.rebuild(today)
    assert snapshot(engine) == incremental


@pytest.mark.parametrize("step", [1, 6, 45, 400])
def test_windows_moved_day_by_day_equal_windows_rebuilt(engine: Engine, step: int) -> None:
    today = date(2026, 11, 29)
    store = LedgerStore(engine)
    store.record(random_history(3, today, 300))
    store.advance(today - timedelta(days=step))
    store.advance(today)
    moved = snapshot(engine)["window_totals"]
    store.rebuild(today)
    assert snapshot(engine)["window_totals"] == moved


def test_windows_count_what_happened_inside_them(engine: Engine) -> None:
    today = date(2026, 11, 29)
    store = LedgerStore(engine)
    store.advance(today)
    noon = datetime(2026, 11, 29, 12)
    store.record(
        [
            contribution(kinds.PR_MERGED, PUBLIC, 1, noon),  # today: in 7d, 30d, ...
            contribution(kinds.PR_MERGED, PUBLIC, 1, noon - timedelta(days=7)),  # 8 days ago counting today: 7d-prev
            contribution(kinds.PR_MERGED, PUBLIC, 1, noon - timedelta(days=400)),  # only in "all"
            contribution(kinds.PR_MERGED, SECRET, 1, noon),  # private: its repository only
        ]
    )

    def merged(scope: str) -> dict[str, int]:
        with engine.connect() as conn:
            totals = db.window_totals.c
            rows = conn.execute(sa.select(totals.window, totals.prs_merged).where(totals.scope == scope))
            return dict(rows.all())  # type: ignore[arg-type]

    expected = {"7d": 1, "7d-prev": 1, "30d": 2, "90d": 2, "365d": 2, "365d-prev": 1, "all": 3}
    assert merged(repo_scope(PUBLIC.id)) == expected
    assert merged(org_scope("LLMasOS")) == merged(repo_scope(PUBLIC.id)), "the private repository stays out"
    assert merged(repo_scope(SECRET.id))["7d"] == 1
    # A week later the contribution of today has moved to the previous 7 days.
    store.advance(today + timedelta(days=7))
    assert merged(repo_scope(PUBLIC.id))["7d-prev"] == 1
    assert "7d" not in merged(repo_scope(PUBLIC.id))


def test_comments_beyond_the_daily_cap_count_but_earn_nothing(engine: Engine) -> None:
    store = LedgerStore(engine)
    day = datetime(2026, 11, 20, 8)
    store.record([contribution(kinds.COMMENT, PUBLIC, 9, day + timedelta(minutes=m)) for m in range(7)], cap=5)
    store.record([contribution(kinds.COMMENT, PUBLIC, 9, day + timedelta(days=1))], cap=5)
    with engine.connect() as conn:
        days = db.actor_days.c
        rows = conn.execute(sa.select(days.comments, days.comments_credited).order_by(days.day)).all()
    assert [tuple(r) for r in rows] == [(7, 5), (1, 1)]


def test_a_repository_made_private_leaves_the_owner_wide_scope(engine: Engine) -> None:
    today = date(2026, 11, 29)
    store = LedgerStore(engine)
    store.advance(today)
    store.record([contribution(kinds.ISSUE_OPENED, OTHER, 4, datetime(2026, 11, 28))])

    def org_members() -> int:
        with engine.connect() as conn:
            query = sa.select(sa.func.count()).where(db.window_totals.c.scope == "org:llmasos")
            return int(conn.execute(query).scalar_one())

    assert org_members() > 0
    hidden = Repo(OTHER.id, OTHER.full_name, private=True, installation_id=7)
    store.record([contribution(kinds.COMMENT, hidden, 4, datetime(2026, 11, 28, 1))])
    assert org_members() == 0
    with engine.connect() as conn:
        scopes = {row.scope for row in conn.execute(sa.select(db.scope_members.c.scope))}
    assert scopes == {repo_scope(OTHER.id)}


def test_first_human_response_ignores_the_author(engine: Engine) -> None:
    store = LedgerStore(engine)
    opened = datetime(2026, 11, 2, 9)
    subject = Subject(12, False, 100, opened)

    def event(kind: str, actor: int, hours: int, key: str) -> Contribution:
        return Contribution(key, kind, PUBLIC, actor, f"u{actor}", opened + timedelta(hours=hours), 12, "", subject)

    store.record([event(kinds.ISSUE_OPENED, 100, 0, "o"), event(kinds.COMMENT, 100, 1, "a")])
    store.record([event(kinds.COMMENT, 5, 3, "b")])
    store.record([event(kinds.COMMENT, 6, 2, "late")])  # delivered late, answered earlier
    with engine.connect() as conn:
        row = conn.execute(sa.select(db.responses)).one()
    assert row.first_response_at == opened + timedelta(hours=2)


def test_recording_while_the_windows_move_loses_nothing(engine: Engine) -> None:
    """Workers record while a sweeper moves the windows (from never built, then day by day): the
    windows' row lock makes every contribution land in the windows exactly once."""
    today = date(2026, 11, 29)
    history = random_history(4, today, 240)
    store = LedgerStore(engine)
    errors: list[BaseException] = []

    def run(step: Any) -> None:
        try:
            step()
        except BaseException as exc:  # reported below
            errors.append(exc)

    def mover() -> None:
        for back in range(12, -1, -1):
            store.advance(today - timedelta(days=back))

    threads = [
        threading.Thread(target=run, args=(lambda part=part: store.record(part, cap=3),))
        for part in (history[0::3], history[1::3], history[2::3])
    ]
    threads.append(threading.Thread(target=run, args=(mover,)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store.advance(today)
    moved = snapshot(engine)
    store.rebuild(today)
    assert snapshot(engine) == moved


def test_recording_a_comment_takes_a_dozen_statements_at_most(engine: Engine) -> None:
    """Recording is most of a comment's processing (issue 14): each statement is a round trip, so a
    contribution touches each rollup table once (its windows in one execution) however many it adds to."""
    store = LedgerStore(engine)
    store.advance(date(2026, 11, 29))
    store.record([contribution(kinds.COMMENT, PUBLIC, 5, datetime(2026, 11, 27, 9))], cap=5)
    statements: list[str] = []

    def sent(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", sent)
    try:
        store.record([contribution(kinds.COMMENT, PUBLIC, 5, datetime(2026, 11, 28, 9))], cap=5)
    finally:
        sa.event.remove(engine, "before_cursor_execute", sent)
    assert len(statements) <= 12, statements


def _statements_during(engine: Engine, action: Any) -> list[str]:
    statements: list[str] = []

    def sent(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", sent)
    try:
        action()
    finally:
        sa.event.remove(engine, "before_cursor_execute", sent)
    return statements


def test_scoring_settings_are_written_when_they_change_not_on_every_contribution(engine: Engine) -> None:
    """The ledger handler hands over the repository's `leaderboard` settings with every contribution
    (issue 14: a write per comment); the same settings again are not written, others are at once."""
    scope, settings = repo_scope(PUBLIC.id), {"daily_comment_cap": 5, "points": {"comment": 1}}
    store = LedgerStore(engine)
    store.set_scoring([scope], settings)
    assert _statements_during(engine, lambda: store.set_scoring([scope], settings)) == []
    changed = {"daily_comment_cap": 5, "points": {"comment": 2}}
    store.set_scoring([scope], changed)
    assert store.scoring_for(scope) == changed
    # Another process that read another copy of the file stores its settings; this process writes its
    # own again once it no longer trusts what it stored (at once here), as every process did before.
    LedgerStore(engine).set_scoring([scope], settings)
    assert store.scoring_for(scope) == settings
    rechecking = LedgerStore(engine, scoring_recheck_seconds=0)
    rechecking.set_scoring([scope], changed)
    LedgerStore(engine).set_scoring([scope], settings)
    rechecking.set_scoring([scope], changed)
    assert rechecking.scoring_for(scope) == changed


def sqlite_steps(engine: Engine, action: Any) -> int:
    """SQLite's virtual machine steps while `action` runs: the work its statements do, with no clock in it."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    def watch(dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.set_progress_handler(count, 1)

    sa.event.listen(engine, "checkout", watch)
    try:
        action()
    finally:
        sa.event.remove(engine, "checkout", watch)
        engine.dispose()  # the pool's connections, counted no further
    return steps[0]


def history_by_others(store: LedgerStore, now: datetime, count: int, people: int = 50, repo: Repo = PUBLIC) -> None:
    """`count` comments, an hour apart before `now`, by `people` others than the tests' person."""
    others = [
        contribution(kinds.COMMENT, repo, 5 + n % people, now - timedelta(hours=n), n) for n in range(6, 6 + count)
    ]
    store.record(others)


def test_looking_a_person_up_costs_the_same_however_long_the_repositorys_history(engine: Engine) -> None:
    """Whether a newcomer was active here before, and when a person last was, read that person's rows: on SQLite
    (no statistics) the time bound led the planner through ix_contributions_repo_time, over every earlier
    contribution to the repository, twice per newcomer's greeting. Counted in SQLite's VM steps, not time."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's planner, without statistics; PostgreSQL's picks the person's index itself")
    store, people, now = LedgerStore(engine), PeopleStore(engine), datetime(2026, 12, 7, 12)

    def look_up_a_newcomer() -> None:
        assert not store.active_in(PUBLIC.id, 999, 1, before=now)
        assert people.latest_before(PUBLIC.id, 999, now) is None

    store.record([contribution(kinds.COMMENT, PUBLIC, 5, now - timedelta(hours=n), n) for n in range(1, 6)])
    short = sqlite_steps(engine, look_up_a_newcomer)
    history_by_others(store, now, 1500)
    assert sqlite_steps(engine, look_up_a_newcomer) <= short * 1.5, "the lookups walked the repository's history"


def test_a_persons_page_costs_the_same_however_long_the_repositorys_history(engine: Engine) -> None:
    """The page of someone with a few contributions reads their rows: the good first issues they solved, newest
    first, were found on SQLite by walking the repository's every contribution in time order."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's planner, without statistics; PostgreSQL's picks the person's index itself")
    store, now = LedgerStore(engine), datetime(2026, 12, 7, 12)
    store.record([contribution(kinds.ISSUE_OPENED, PUBLIC, 999, now - timedelta(days=n), 9000 + n) for n in (1, 2)])

    def read_the_page() -> None:
        shown = people_page.page(engine, "user999", readable=[PUBLIC.id], today=now.date())
        assert shown["totals"] == {"issues": 2}

    read_the_page()  # today's leaderboard windows, moved on a first read, are not the page's own cost
    short = sqlite_steps(engine, read_the_page)
    history_by_others(store, now, 1500, people=2)  # its ranks count the people ahead: two
    read_the_page()
    assert sqlite_steps(engine, read_the_page) <= short * 1.5, "the page walked the repository's history"


def test_counts_added_in_one_statement_land_on_their_own_rows_however_many(engine: Engine) -> None:
    """A contribution's window rows go as one multi-row INSERT (issue 14); a longer list is split into several
    statements. Every row still gets its own sum, rows naming one key are added together first (one INSERT may
    not update a row twice), and counts already stored are added to, not replaced."""
    rows = [
        {"scope": f"repo:{n % 11}", "window": "7d", "actor_id": n % 3, "comments": 1, "reviews": 1 + n % 2}
        for n in range(3 * upsert.MAX_ROWS + 5)
    ]
    expected: dict[tuple[str, str, int], tuple[int, int]] = {}
    for _ in range(2):
        for row in rows:
            key = (row["scope"], row["window"], row["actor_id"])
            comments, reviews = expected.get(key, (0, 0))
            expected[key] = (comments + row["comments"], reviews + row["reviews"])
        with engine.begin() as conn:
            upsert.add_counts(conn, db.window_totals, rows)
    table = db.window_totals
    with engine.connect() as conn:
        stored = {
            (row.scope, row.window, row.actor_id): (row.comments, row.reviews)
            for row in conn.execute(
                sa.select(table.c.scope, table.c.window, table.c.actor_id, table.c.comments, table.c.reviews)
            )
        }
    assert upsert.MAX_ROWS < len(expected) < len(rows)
    assert stored == expected
