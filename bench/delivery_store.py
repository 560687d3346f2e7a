"""The delivery store's hot statements alone: insert (every webhook), claim and finish (every delivery processed).

    .venv/bin/python bench/delivery_store.py                       # SQLite in a temporary folder
    .venv/bin/python bench/delivery_store.py postgresql+psycopg://postgres@127.0.0.1:5432/bench   # emptied

Prints process_time() per call, the best of three rounds of `N` (1000) deliveries each: a comment's payload,
five handler outcomes per finish.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from storage import db  # noqa: E402
from storage.deliveries import DONE, DeliveryStore  # noqa: E402

PAYLOAD = (ROOT / "tests/contract/github/webhook-examples/issue_comment.created.1.json").read_text()


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{tempfile.mkdtemp(prefix='engage-store-')}/s.sqlite3"
    engine = db.make_engine(url)
    db.metadata.drop_all(engine)
    db.migrate(engine)
    store = DeliveryStore(engine)
    n = int(os.environ.get("N", "1000"))
    outcomes = {f"handler-{i}": (DONE, None) for i in range(5)}
    best: dict[str, float] = {}
    for _ in range(3):
        ids = [str(uuid.uuid4()) for _ in range(n)]
        start = time.process_time()
        for delivery_id in ids:
            store.insert(
                id=delivery_id,
                event="issue_comment",
                action="created",
                installation_id=1,
                repository="octo/hello",
                sender="mona",
                payload_text=PAYLOAD,
            )
        inserted = time.process_time()
        for delivery_id in ids:
            assert store.claim(delivery_id) is not None
        claimed = time.process_time()
        for delivery_id in ids:
            store.finish(delivery_id, DONE, outcomes=outcomes)
        finished = time.process_time()
        spent = {"insert": inserted - start, "claim": claimed - inserted, "finish": finished - claimed}
        for name, seconds in spent.items():
            best[name] = min(best.get(name, float("inf")), seconds * 1000 / n)
    engine.dispose()
    print(url.split(":", 1)[0], ", ".join(f"{name} {ms:.3f} ms" for name, ms in best.items()), "(best of 3)")


if __name__ == "__main__":
    main()
