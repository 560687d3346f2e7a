"""What "is this person new here?" costs as their history in a repository grows.

The greeting and the response watch ask the ledger how many earlier contributions someone has before they
act on an issue or pull request. A regular's history runs to thousands of rows; the answer only needs to
reach the setting it is compared with (1 for the greeting, `newcomer_max` for the response watch), so the
count stops there (`LedgerStore.count(at_most=...)`). Prints ms per count, uncapped and capped, for one
person with 10 to 10,000 contributions of every kind:

    .venv/bin/python bench/person_history.py
    .venv/bin/python bench/person_history.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from domain import contributions as kinds  # noqa: E402
from storage import db  # noqa: E402
from storage.ledger import LedgerStore  # noqa: E402

REPO_ID, ACTOR_ID, LOGIN = 1, 7, "Prolific"


def history(engine: Engine, size: int) -> None:
    """The person's `size` contributions, every kind in turn, about items 1..5000."""
    every = sorted(kinds.KINDS)
    day = date(2026, 1, 5)
    rows = [
        dict(key=f"bench-{n}", kind=every[n % len(every)], repo_id=REPO_ID, actor_id=ACTOR_ID, actor_login=LOGIN,
             number=n % 5000 + 1, url="https://example.invalid", occurred_at=datetime(2026, 1, 5), day=day, week=day,
             credited=True, positive=0, negative=0, source="webhook", recorded_at=datetime(2026, 1, 5))
        for n in range(size)
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(db.contributions.delete())
        conn.execute(db.contributions.insert(), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder; emptied and migrated")
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--counts", type=int, default=200, help="counts timed per size and way")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='engage-history-')}/h.sqlite3"
    engine = db.make_engine(url)
    db.metadata.drop_all(engine)
    db.migrate(engine)
    store = LedgerStore(engine)
    print(f"{engine.dialect.name}: ms per count of one person's earlier contributions (all kinds), {args.counts} each")
    print(f"{'history':>8} {'uncapped':>9} {'at_most=3':>10}")
    for size in (int(part) for part in args.sizes.split(",")):
        history(engine, size)
        timings = []
        for at_most in (None, 3):
            started = time.perf_counter()
            for _ in range(args.counts):
                store.count(REPO_ID, LOGIN, kinds.KINDS, 9999, earlier=True, at_most=at_most)
            timings.append((time.perf_counter() - started) * 1000 / args.counts)
        print(f"{size:>8} {timings[0]:>9.3f} {timings[1]:>10.3f}")
    engine.dispose()


if __name__ == "__main__":
    main()
