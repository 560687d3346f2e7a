"""Leaderboard and insights JSON at community scale: generate a ledger, rebuild its rollups, time the API.

    .venv/bin/python bench/ledger.py                          # SQLite in a temp folder
    .venv/bin/python bench/ledger.py --database postgres      # the local PostgreSQL, database "bench"
    .venv/bin/python bench/ledger.py --database postgres --postgres-name bench_h20 --digest-only   # another name

Default dataset: 1,000,000 contributions over 3 years by 20,000 people in 50 repositories (people and
repositories drawn with a long tail, as in real communities). The app answers `/api/leaderboard` and
`/api/insights` in-process (Flask's test client: the app's whole request path, without a socket);
each window and scope is asked `--requests` times and p50 / p95 / max are printed. It also prints how
long recording one live contribution takes with the rollups, on the full dataset.

    .venv/bin/python bench/ledger.py --per-call 2000                   # SQLite: the cost of one `record`
    .venv/bin/python bench/ledger.py --per-call 2000 --reuse postgresql+psycopg://postgres@127.0.0.1:5432/test_h1

`--per-call N`: no dataset; records N comments (and an issue opened per 10) one `record` call each, as
the ledger handler does per delivery, on an empty ledger with the windows as of today, and prints the
CPU ms per call and the SQL statements per call (counted at SQLAlchemy's `before_cursor_execute`). With
`--reuse` the database's ledger tables are emptied first.

    .venv/bin/python bench/ledger.py --digest-only --reuse sqlite:////tmp/engage-bench-XXXX/engage.sqlite3

The weekly digest (`readmodels.digest.build` + `render`, en and zh) of the last complete week, for the
owner's 45 public repositories together and for the busiest one, is timed `--digest-runs` times each
after the API (`--digest-only`: instead of it).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from domain import contributions as kinds
from domain.contributions import Contribution, Repo, Subject
from storage import db
from storage.ledger import LedgerStore
from storage.rollups import week_of
from storage.windows import WINDOWS

# Share of each kind among contributions (roughly what busy open-source repositories show).
KIND_WEIGHTS = {
    kinds.COMMENT: 40,
    kinds.REVIEW_COMMENTED: 6,
    kinds.REVIEW_APPROVED: 8,
    kinds.REVIEW_CHANGES_REQUESTED: 3,
    kinds.REVIEW_COMMENT: 8,
    kinds.ISSUE_OPENED: 10,
    kinds.ISSUE_CLOSED: 7,
    kinds.PR_OPENED: 9,
    kinds.PR_MERGED: 7,
    kinds.PR_CLOSED: 1,
    kinds.GFI_SOLVED: 1,
}
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def zipf_picker(rng: random.Random, count: int, exponent: float = 1.1) -> list[int]:
    """A pool to draw from with a long tail: index 0 much more often than index count-1."""
    weights = [1 / (rank + 1) ** exponent for rank in range(count)]
    return rng.choices(range(count), weights=weights, k=200_000)


def generate(engine: sa.Engine, events: int, people: int, repos: int, years: int, today: date, seed: int) -> None:
    rng = random.Random(seed)
    repo_pool, person_pool = zipf_picker(rng, repos, 0.8), zipf_picker(rng, people, 1.05)
    kind_names, kind_weights = list(KIND_WEIGHTS), list(KIND_WEIGHTS.values())
    start = datetime.combine(today, datetime.min.time()) - timedelta(days=365 * years)
    span = (datetime.combine(today, datetime.min.time()) - start).total_seconds()
    with engine.begin() as conn:
        conn.execute(
            db.repositories.insert(),
            [
                dict(
                    id=1000 + r,
                    full_name=f"llmasos/repo-{r}",
                    owner="llmasos",
                    private=r % 10 == 9,  # every tenth repository is private
                    html_url=f"https://github.com/llmasos/repo-{r}",
                    installation_id=1,
                    updated_at=db.utcnow(),
                )
                for r in range(repos)
            ],
        )
        conn.execute(
            db.contributors.insert(),
            [dict(id=10_000 + p, login=f"person-{p}", updated_at=db.utcnow()) for p in range(people)],
        )
    batch: list[dict[str, object]] = []
    numbers = [0] * repos
    recorded_at = db.utcnow()
    for n in range(events):
        repo = rng.choice(repo_pool)
        actor = rng.choice(person_pool)
        kind = rng.choices(kind_names, kind_weights)[0]
        # Growth: more activity in recent years (the square root skews times towards today).
        at = start + timedelta(seconds=span * rng.random() ** 0.7)
        if kind in (kinds.ISSUE_OPENED, kinds.PR_OPENED):
            numbers[repo] += 1
        number = rng.randint(1, max(1, numbers[repo]))
        opened = at - timedelta(hours=rng.expovariate(1 / 30))
        batch.append(
            dict(
                key=f"bench:{n}",
                kind=kind,
                repo_id=1000 + repo,
                actor_id=10_000 + actor,
                actor_login=f"person-{actor}",
                number=number,
                url="",
                occurred_at=at,
                day=at.date(),
                week=week_of(at.date()),
                credited=rng.random() < 0.95,
                positive=rng.randint(0, 3) if kind == kinds.ISSUE_CLOSED else 0,
                negative=int(rng.random() < 0.2) if kind == kinds.ISSUE_CLOSED else 0,
                subject_is_pull=kind.startswith(("pr_", "review")),
                subject_author_id=10_000 + rng.choice(person_pool),
                subject_opened_at=opened,
                source="backfill",
                recorded_at=recorded_at,
            )
        )
        if len(batch) == 20_000:
            with engine.begin() as conn:
                conn.execute(db.contributions.insert(), batch)
            batch = []
            print(f"\r  generated {n + 1:,} contributions", end="", file=sys.stderr, flush=True)
    if batch:
        with engine.begin() as conn:
            conn.execute(db.contributions.insert(), batch)
    print(file=sys.stderr)


def timed(client: object, url: str, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        answer = client.get(url)  # type: ignore[attr-defined]
        times.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == 200, (url, answer.status_code, answer.get_data(as_text=True)[:200])
    return times


def digest_times(engine: sa.Engine, runs: int, repo: str | None, org: str | None) -> tuple[list[float], list[float]]:
    """Wall ms of `build` and of `render` (en and zh) of the last complete week's digest, `runs` times."""
    from readmodels import digest

    built, rendered = [], []
    for _ in range(runs):
        began = time.perf_counter()
        weekly = digest.build(engine, repo, org)
        done = time.perf_counter()
        text = digest.render(weekly, "both")
        built.append((done - began) * 1000)
        rendered.append((time.perf_counter() - done) * 1000)
        assert weekly.figures[0].value, (repo, org, text[:200])  # a busy week: somebody was active
    return built, rendered


def time_digest(url: str, runs: int, busiest: str) -> None:
    if runs < 1:
        return
    engine = db.make_engine(url)
    print(f"\nweekly digest of the last complete week (build + render en and zh), {runs} runs each")
    for label, repo, org in (("owner-wide", None, "llmasos"), ("busiest repo", busiest, None)):
        built, rendered = digest_times(engine, runs, repo, org)
        total = [b + r for b, r in zip(built, rendered, strict=True)]
        print(
            f"  {label:<14} build p50 {statistics.median(built):7.1f} ms  max {max(built):7.1f} ms"
            f"   render p50 {statistics.median(rendered):5.1f} ms"
            f"   both p50 {statistics.median(total):7.1f} ms  max {max(total):7.1f} ms"
        )
    engine.dispose()


def line(label: str, times: list[float]) -> str:
    return (
        f"{label:<44} p50 {statistics.median(times):7.1f} ms   p95 {percentile(times, 0.95):7.1f} ms"
        f"   max {max(times):7.1f} ms"
    )


LEDGER_TABLES = (
    db.contributions,
    db.contributors,
    db.actor_days,
    db.window_totals,
    db.scope_members,
    db.weekly,
    db.weekly_actors,
    db.responses,
    db.repositories,
    db.ledger_state,
)


def per_call(url: str, calls: int) -> None:
    """The cost of one `record` call: wall and CPU ms, and statements sent to the database."""
    engine = db.make_engine(url)
    db.migrate(engine)
    with engine.begin() as conn:
        for table in LEDGER_TABLES:
            conn.execute(table.delete())
    store = LedgerStore(engine)
    today = datetime.now(UTC).date()
    store.advance(today)
    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    sa.event.listen(engine, "before_cursor_execute", count)
    repo = Repo(1000, "llmasos/repo-0", private=False, installation_id=1)
    now = datetime.now(UTC).replace(tzinfo=None)
    by_kind: dict[str, list[tuple[float, float, int]]] = {}
    for n in range(calls):
        at = now - timedelta(minutes=calls - n)
        actor = 10_000 + n % 50
        if n % 10 == 0:
            subject = Subject(n, False, actor, at)
            item = Contribution(f"issue:{n}", kinds.ISSUE_OPENED, repo, actor, f"person-{actor}", at, n, "", subject)
        else:
            subject = Subject(n - n % 10, False, 10_000 + (n - n % 10) % 50, at - timedelta(minutes=n % 10))
            item = Contribution(
                f"comment:{n}", kinds.COMMENT, repo, actor, f"person-{actor}", at, subject.number, "", subject
            )
        before, cpu, wall = statements, time.process_time(), time.perf_counter()
        store.record([item], cap=5)
        spent = ((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000, statements - before)
        by_kind.setdefault(item.kind, []).append(spent)
    print(f"{engine.dialect.name}: {calls} record calls, one contribution each")
    for kind, costs in by_kind.items():
        wall_ms, cpu_ms, per = (sum(cost[i] for cost in costs) / len(costs) for i in range(3))
        print(
            f"  {kind:<14} {len(costs):>5} calls  {wall_ms:.2f} ms/call ({cpu_ms:.2f} ms CPU)"
            f"  {per:.1f} statements/call"
        )
    engine.dispose()


def time_counts(url: str) -> None:
    """`LedgerStore.count` in the busiest repository for 100 of its people, as the greeting and the response
    watch run it for every issue or pull request opened (and milestones for every merge)."""
    engine = db.make_engine(url)
    store = LedgerStore(engine)
    c = db.contributions.c
    with engine.connect() as conn:
        repo, rows = conn.execute(
            sa.select(c.repo_id, sa.func.count()).group_by(c.repo_id).order_by(sa.func.count().desc()).limit(1)
        ).one()
        people = list(conn.execute(sa.select(c.actor_login).where(c.repo_id == repo).distinct().limit(100)).scalars())
    took = []
    for login in people:
        began = time.perf_counter()
        store.count(repo, login, (kinds.ISSUE_OPENED, kinds.PR_OPENED), 10**9, earlier=True)
        took.append((time.perf_counter() - began) * 1000)
    print(
        f"a person's earlier issues and pull requests in the busiest repository ({rows:,} contributions), "
        f"{len(took)} people: p50 {statistics.median(took):.2f} ms, max {max(took):.2f} ms"
    )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-name", default="bench", help="the PostgreSQL database, dropped and made again")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--requests", type=int, default=40, help="requests per window and scope")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse", metavar="DATABASE_URL", help="time an existing dataset (printed by an earlier run)")
    parser.add_argument("--per-call", type=int, metavar="N", help="time N single-contribution `record` calls")
    parser.add_argument("--digest-runs", type=int, default=5, help="weekly digests built per scope")
    parser.add_argument("--digest-only", action="store_true", help="time the weekly digest, not the API")
    parser.add_argument("--counts-only", action="store_true", help="time a person's counts, not the API")
    args = parser.parse_args()
    if args.per_call:
        per_call(args.reuse or f"sqlite:///{tempfile.mkdtemp(prefix='engage-bench-')}/engage.sqlite3", args.per_call)
        return

    if args.reuse:
        url = args.reuse
    elif args.database == "postgres":
        url = POSTGRES_URL + args.postgres_name
        admin = sa.create_engine(POSTGRES_URL + "postgres", isolation_level="AUTOCOMMIT")
        name = admin.dialect.identifier_preparer.quote(args.postgres_name)
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        admin.dispose()
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='engage-bench-')}/engage.sqlite3"
    engine = db.make_engine(url)
    db.migrate(engine)
    today = datetime.now(UTC).date()

    generated = rebuilt = 0.0
    if not args.reuse:
        began = time.perf_counter()
        generate(engine, args.events, args.people, args.repos, args.years, today, args.seed)
        generated = time.perf_counter() - began
        began = time.perf_counter()
        LedgerStore(engine).rebuild(today)
        rebuilt = time.perf_counter() - began
    with engine.connect() as conn:
        count = lambda table: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()  # noqa: E731
        sizes = {t.name: count(t) for t in (db.contributions, db.actor_days, db.window_totals, db.weekly)}
    print(f"dataset {url}: " + ", ".join(f"{name} {n:,} rows" for name, n in sizes.items()))
    print(f"generated in {generated:.1f} s; rollups rebuilt from the ledger in {rebuilt:.1f} s")
    engine.dispose()
    public = [f"llmasos/repo-{r}" for r in range(args.repos) if r % 10 != 9]
    busiest = public[0]
    if args.digest_only:
        time_digest(url, args.digest_runs, busiest)
        return
    if args.counts_only:
        time_counts(url)
        return

    from app import create_app

    app = create_app({"database_url": url, "redis_url": None, "webhook_secret": "bench", "log_level": "WARNING"})
    client = app.test_client()
    rng = random.Random(args.seed)
    quiet = public[-1]
    every: dict[str, list[float]] = {"leaderboard": [], "insights": []}
    print(f"\nleaderboard JSON (/api/leaderboard, 100 entries), {args.requests} requests each")
    for window in WINDOWS:
        scopes = (("owner-wide", "org=llmasos"), ("busiest repo", f"repo={busiest}"), ("quiet repo", f"repo={quiet}"))
        for label, query in scopes:
            times = timed(client, f"/api/leaderboard?{query}&window={window}", args.requests)
            every["leaderboard"] += times
            print(line(f"  {window:>4}  {label}", times))
    print(f"\ninsights JSON (/api/insights), {args.requests} requests each")
    for weeks in (12, 52, 156):
        for label, repo in (("busiest repo", busiest), ("random repos", None)):
            times = []
            for _ in range(args.requests):
                target = repo or rng.choice(public)
                times += timed(client, f"/api/insights?repo={target}&weeks={weeks}", 1)
            every["insights"] += times
            print(line(f"  {weeks:>3} weeks  {label}", times))
    print()
    for name, times in every.items():
        print(line(f"all {name} requests ({len(times)})", times))

    store = LedgerStore(app.extensions["engage"].store.engine)
    repo = Repo(1000, "llmasos/repo-0", private=False, installation_id=1)
    costs = []
    for n in range(200):
        at = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=n)
        subject = Subject(5, False, 10_002, at)
        item = Contribution(f"live:{n}", kinds.COMMENT, repo, 10_001, "person-1", at, 5, "", subject)
        began = time.perf_counter()
        store.record([item], cap=5)
        costs.append((time.perf_counter() - began) * 1000)
    print(line("record one live contribution with its rollups", costs))
    time_digest(url, args.digest_runs, busiest)


if __name__ == "__main__":
    main()
