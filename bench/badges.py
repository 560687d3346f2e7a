"""README badges at community scale: generate a ledger (bench/ledger.py's), time `/badges/...svg`.

    .venv/bin/python bench/badges.py                                   # SQLite in a temp folder
    .venv/bin/python bench/badges.py --events 1000000 --people 20000   # bench/ledger.py's default dataset
    .venv/bin/python bench/badges.py --reuse sqlite:////tmp/engage-bench-XXXX/engage.sqlite3

Default dataset: 200,000 contributions over 3 years by 5,000 people in 50 repositories, long-tailed as
in bench/ledger.py. Each badge is asked `--requests` times through the app's whole request path
(Flask's test client, no socket) for the busiest person, random people and an unknown login, and once
more with the ETag it answered (a 304: the figure is still computed, the bytes are not sent).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger import generate, line  # bench/ledger.py, beside this file

from storage import db
from storage.ledger import LedgerStore


def timed(client: object, paths: list[str], status: int = 200, etag: bool = False) -> list[float]:
    times = []
    for path in paths:
        headers = {}
        if etag:
            headers["If-None-Match"] = client.get(path).headers["ETag"]  # type: ignore[attr-defined]
        began = time.perf_counter()
        answer = client.get(path, headers=headers)  # type: ignore[attr-defined]
        times.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == (304 if etag else status), (path, answer.status_code)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--people", type=int, default=5_000)
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--requests", type=int, default=40, help="requests per badge and person")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse", metavar="DATABASE_URL", help="time an existing dataset")
    args = parser.parse_args()
    url = args.reuse or f"sqlite:///{tempfile.mkdtemp(prefix='engage-bench-')}/engage.sqlite3"
    engine = db.make_engine(url)
    db.migrate(engine)
    today = datetime.now(UTC).date()
    if not args.reuse:
        generate(engine, args.events, args.people, args.repos, args.years, today, args.seed)
        LedgerStore(engine).rebuild(today)
    with engine.connect() as conn:
        contributions = conn.execute(sa.select(sa.func.count()).select_from(db.contributions)).scalar_one()
    engine.dispose()
    print(f"dataset {url}: {contributions:,} contributions, {args.people:,} people, {args.repos} repositories")

    from app import create_app

    app = create_app({"database_url": url, "redis_url": None, "webhook_secret": "bench", "log_level": "WARNING"})
    client = app.test_client()
    rng = random.Random(args.seed)
    busiest, repo, n = "person-0", "llmasos/repo-0", args.requests
    randoms = [f"person-{rng.randrange(args.people)}" for _ in range(n)]
    cases = {
        "rank, repository, 30d, busiest person": [f"/badges/{repo}/contributors/{busiest}/rank.svg"] * n,
        "rank, repository, 30d, random people": [f"/badges/{repo}/contributors/{p}/rank.svg" for p in randoms],
        "rank, owner-wide, all time, random people": [
            f"/badges/orgs/llmasos/contributors/{p}/rank.svg?window=all" for p in randoms
        ],
        "merged, repository, all time, random people": [f"/badges/{repo}/contributors/{p}/merged.svg" for p in randoms],
        "merged, unknown login": [f"/badges/{repo}/contributors/nobody-{i}/merged.svg" for i in range(n)],
        "active contributors, 30 days": [f"/badges/{repo}/health/active.svg"] * n,
        "first response, 30 days": [f"/badges/{repo}/health/first-response.svg"] * n,
    }
    print(f"\nbadges (/badges/...svg), {n} requests each")
    for label, paths in cases.items():
        print(line(f"  {label}", timed(client, paths)))
    print(
        line("  not found (a private repository)", timed(client, ["/badges/llmasos/repo-9/health/active.svg"] * n, 404))
    )
    print(line("  rank, revalidated (If-None-Match: 304)", timed(client, cases[next(iter(cases))][:n], etag=True)))


if __name__ == "__main__":
    main()
