"""Where one delivery's CPU goes, in one process: the webhook's answer and its processing, each alone.

Builds the app as `delivery_mix.py` does (the fake GitHub, the app's own behaviours, write pacing off),
but in this process: `--deliveries` of one `--kind` are posted as WSGI calls of the app, as gunicorn makes them (the
signature, parse, INSERT, log line and counters: what a web worker runs per request, minus the HTTP
server), then processed one by one with `webhooks.jobs.process` (claim, handlers, finish). Prints
`process_time()` per delivery of each side, and the processing thread's own `thread_time()` (the fake GitHub
answers in this process too); `--profile intake|process` prints cProfile's top functions.

    .venv/bin/python bench/profile_delivery.py --kind comment --deliveries 300
    .venv/bin/python bench/profile_delivery.py --kind comment --profile process
    .venv/bin/python bench/profile_delivery.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("ENV_FILE", "/nonexistent/.env")
os.environ.setdefault("FLASK_SKIP_DOTENV", "1")

import sqlalchemy as sa  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from bench.delivery_mix import (  # noqa: E402
    APP_ID,
    INSTALLATION,
    KNOWN,
    MIX,
    REPO,
    REPOSITORY_FILES,
    SECRET,
    Delivery,
    Payloads,
    dumps,
    fresh_database,
    windows_to_today,
)

NEWCOMER = "newcomer"
from jobs.backfill import backfill  # noqa: E402
from storage.db import window_totals  # noqa: E402
from tests.support.fake_github import FakeGitHub  # noqa: E402
from webhooks.jobs import process  # noqa: E402
from webhooks.signature import sign  # noqa: E402


class Collect:
    """Stands in for the dispatcher while the intake is measured: the ids are processed afterwards."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def submit(self, delivery_id: str, lane: str | None = None) -> None:
        self.ids.append(delivery_id)

    def dispatch(self, delivery_id: str, delay: float = 0, attempt: int = 0) -> str:
        self.ids.append(delivery_id)
        return "enqueued"

    def close(self) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=[*MIX, NEWCOMER], default="comment")
    parser.add_argument("--deliveries", type=int, default=300)
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder (emptied and migrated)")
    parser.add_argument(
        "--redis-url",
        help="REDIS_URL as the rq layout sets it (its caches, pacing, budget and metrics in Redis); the deliveries "
        "are still processed here, one by one",
    )
    parser.add_argument("--profile", choices=("intake", "process"), help="print cProfile's top functions")
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--dump", type=Path, help="with --profile: also write cProfile's stats here, for pstats")
    parser.add_argument("--backfilled", action="store_true", help="as delivery_mix.py --backfilled")
    parser.add_argument("--live", action="store_true", help="as delivery_mix.py --live")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="the app's LOG_LEVEL (its default is INFO); the lines go to stderr, so send that to /dev/null or a file",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="measure the intake this many times (--deliveries each): best and median"
    )
    args = parser.parse_args()

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    fake = FakeGitHub(APP_ID, public).start()
    repo_id = int(Payloads().templates["issues.opened.1"]["repository"]["id"])
    fake.add_repo(REPO, default_branch="master", repo_id=repo_id)  # the id the deliveries carry
    fake.add_installation(INSTALLATION, "Codertocat", [REPO])
    for path, text in REPOSITORY_FILES.items():
        fake.set_file(REPO, path, text)
    for number, login in enumerate(KNOWN, start=1):
        fake.add_issue(REPO, number, login, title="An earlier issue")
    workdir = Path(tempfile.mkdtemp(prefix="engage-profile-"))
    database_url = fresh_database(args.database_url or f"sqlite:///{workdir / 'engage.sqlite3'}")
    from app import create_app

    app = create_app(
        dict(
            webhook_secret=SECRET,
            database_url=database_url,
            redis_url=args.redis_url,
            app_id=APP_ID,
            private_key=key_pem,
            github_api_url=fake.url,
            write_interval_seconds=0.0,
            backfill_calls_per_hour=0,
            log_level=args.log_level,
        )
    )
    services = app.extensions["engage"]
    collect = Collect()
    services.dispatcher = collect
    rng, payloads = random.Random(14), Payloads(live=args.live)

    def prepare(kind: str) -> tuple[bytes, dict[str, object]]:
        if kind == NEWCOMER:  # someone's first issue: greeted (a first-time lookup and the comment)
            login, number = f"newcomer-{uuid.uuid4().hex[:12]}", payloads.next_number()
            fake.add_issue(REPO, number, login, title="My first issue")
            delivery = Delivery(kind, "issues", dumps(payloads.issue_opened(login, number)))
        else:
            delivery = payloads.make(kind, rng)
        environ: dict[str, object] = {
            "REQUEST_METHOD": "POST",
            "SCRIPT_NAME": "",
            "PATH_INFO": services.settings.webhook_path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(delivery.body)),
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_USER_AGENT": "GitHub-Hookshot/bench",
            "HTTP_X_GITHUB_EVENT": delivery.event,
            "HTTP_X_GITHUB_DELIVERY": str(uuid.uuid4()),
            "HTTP_X_HUB_SIGNATURE_256": sign(SECRET, delivery.body),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        return delivery.body, environ

    def post(body: bytes, environ: dict[str, object]) -> None:
        """The request as gunicorn hands it to the app: a WSGI call, no HTTP server, no test client."""
        statuses: list[str] = []
        call = dict(environ, **{"wsgi.input": io.BytesIO(body)})
        answer = b"".join(app(call, lambda status, headers, error=None: statuses.append(status)))
        assert statuses[0].startswith("202"), answer

    try:
        for kind in MIX:  # warm-up: the token, the caches, each kind's first run
            for _ in range(3):
                post(*prepare(kind))
        for delivery_id in collect.ids:
            process(services, delivery_id)
        collect.ids.clear()
        if args.backfilled:
            backfill(services, REPO, None, lambda *_: None)  # as `flask backfill OWNER/REPO` and `history` do
        if args.live:
            windows_to_today(database_url)

        # The thread's CPU time, not the wall clock: waiting for the fake GitHub (a thread here) is not our cost.
        profiler = cProfile.Profile(time.thread_time)
        rounds: list[float] = []  # one round is a figure the machine's other work moves by a fifth: take the best
        for _ in range(max(args.rounds, 1)):
            requests = [prepare(args.kind) for _ in range(args.deliveries)]
            start = time.process_time()
            if args.profile == "intake":
                profiler.enable()
            for body, headers in requests:
                post(body, headers)
            profiler.disable()
            rounds.append(time.process_time() - start)
        intake = min(rounds)
        start, own_start = time.process_time(), time.thread_time()
        if args.profile == "process":
            profiler.enable()
        for delivery_id in collect.ids:
            process(services, delivery_id)
        profiler.disable()
        processing, own = time.process_time() - start, time.thread_time() - own_start
        n, processed = args.deliveries, max(len(collect.ids), 1)
        engine = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
        times = ", live times and windows" if args.live else ""
        print(f"{args.kind}, {n} deliveries, {engine}{times}, process_time per delivery:")
        print(f"  leaderboard window rows: {window_rows(services.store.engine)}")
        print(f"  intake (the app's WSGI call, as a web worker makes it): {intake * 1000 / n:.3f} ms")
        if len(rounds) > 1:
            print(f"    best of {len(rounds)} rounds; median {statistics.median(rounds) * 1000 / n:.3f} ms")
        print(f"  processing (webhooks.jobs.process):                      {processing * 1000 / processed:.3f} ms")
        print(f"    of which this thread's, without the fake GitHub's:     {own * 1000 / processed:.3f} ms")
        if args.profile:
            pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
            if args.dump:
                profiler.dump_stats(args.dump)
    finally:
        services.close()
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def window_rows(engine: sa.Engine) -> int:
    """What the ledger keeps per person and leaderboard window: none unless contributions fall in them."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(window_totals)).scalar_one())


if __name__ == "__main__":
    main()
