"""Delivery-mix benchmark: what each kind of delivery costs in GitHub calls and CPU, acks/s and greetings/s.

The app runs as in production, against the test suite's fake GitHub (which validates every request
against GitHub's OpenAPI description and records it, so the calls are counted where they arrive):

    --mode rq        gunicorn, 3 processes x 8 threads (the Procfile's), + 2 RQ workers
                     (`flask --app app worker`) on Redis
    --mode embedded  one granian process (8 threads, as scripts/serve), in-process worker

with the app's own behaviours only and write pacing off (`GITHUB_WRITE_INTERVAL=0`). Payloads are the
recorded examples of tests/contract/github/webhook-examples, edited as the tests edit them: an
installation added, and the author either one of eight known people (each has an earlier issue in
the repository, and `author_association` NONE, as for someone who opened issues but never had a
commit merged) or a newcomer with nothing earlier. GitHub records no check_run, check_suite or
status example there, so those are the push example's repository and sender with the event's few
fields; the app handles none of them, so each should cost 0 calls.

The busy-repository mix, per 100 deliveries: 30 check_run, 10 check_suite, 10 status, 20 push,
15 issue comments, 10 reviews, 5 issues opened, all by known people. Why: in an active repository
with CI every push to a branch or pull request starts a check suite per CI app and a check run per
job (several per push), legacy CI integrations add commit statuses, and the human conversation
(comments, then reviews) outnumbers new issues by far. Newcomers are measured on their own.

Phases, one app start per run: a warm-up (the installation token and caches, as in a running app);
each delivery kind alone (`--deliveries` / 10 each, 5 at least), sent at 16 connections and
waited for until processed; the mix (`--deliveries`) at 16 connections, which gives acks/s and the
p50/p99 of the webhook's answer; then `--deliveries` / 4 distinct newcomers opening an issue each,
timed from the first POST to the last greeting posted. CPU is utime+stime from /proc of every
process of the web and worker sessions (not the fake GitHub, not this client), read once every
delivery of the phase is processed; the servers' CPU is the same for every `postgres` process (with
PostgreSQL) and `redis-server` (in the rq layout) on the machine, the rest of a delivery's cost. The
client is a plain socket per request (16 threads), cheap but in the same 2 cores.

    .venv/bin/python bench/delivery_mix.py --mode embedded
    .venv/bin/python bench/delivery_mix.py --mode rq --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

`--backfilled`: after the warm-up, `flask backfill OWNER/REPO` imports the repository's history (as the `history`
behaviour does by itself in the background), so a newcomer is known to be new from the ledger and greeted with
one call (the comment), not two.

The fake answers at once unless `--github-latency-ms` says otherwise (real GitHub takes 100-300 ms a call,
which is what several WORKER_THREADS, `--worker-threads`, overlap).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from bench.load import count_status, start_web, start_workers, stop  # noqa: E402
from storage import db  # noqa: E402
from storage.ledger import LedgerStore  # noqa: E402
from tests.support.fake_github import FakeGitHub, RecordedRequest  # noqa: E402
from webhooks.signature import sign  # noqa: E402

EXAMPLES = ROOT / "tests" / "contract" / "github" / "webhook-examples"
SECRET = "bench-secret"
APP_ID, INSTALLATION = 777, 4242
REPO = "Codertocat/Hello-World"
KNOWN = [f"regular-{i}" for i in range(8)]
CONNECTIONS = 16
UNHANDLED = ("check_run", "check_suite", "status")
MIX = {
    "check_run": 30,
    "check_suite": 10,
    "status": 10,
    "push": 20,
    "comment": 15,
    "review": 10,
    "issue opened, returning author": 5,
}
# A community repository as the app expects it: its config, a contributing guide, a code of conduct.
REPOSITORY_FILES = {
    ".github/engage.yml": "greeting:\n  forum_url: https://forum.example.org\n",
    "CONTRIBUTING.md": "# Contributing\n",
    "CODE_OF_CONDUCT.md": "# Code of conduct\n",
}
COLUMNS = (
    "delivery kind",
    "deliveries",
    "GitHub calls/delivery",
    "of which not 304",
    "CPU ms/delivery",
    "servers' CPU ms/delivery",
    "calls by operation and answer, per delivery",
)


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    data["installation"] = {"id": INSTALLATION, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="}
    return data


def person(login: str) -> dict[str, Any]:
    """A user object like the examples' sender, for another login."""
    user = copy.deepcopy(example("issues.opened.1")["sender"])
    user.update(login=login, id=abs(hash(login)) % 10**8, type="User")
    return user


@dataclass(frozen=True)
class Delivery:
    kind: str
    event: str
    body: bytes


class Payloads:
    """Edited copies of the recorded examples; numbers count up so every delivery is a distinct item.

    `live`: issues, comments and reviews dated now, as a running app receives them, not in May 2019 as
    recorded. Then each contribution also falls in the leaderboard's rolling windows (7, 30, 90 and 365
    days, and all time), which the ledger keeps per person for the repository and for its owner: ten
    window rows written a contribution, once the windows are as of today (`windows_to_today`)."""

    def __init__(self, live: bool = False) -> None:
        self.live = live
        self.number = 1000
        self.templates = {
            name: example(name)
            for name in ("issues.opened.1", "issue_comment.created.1", "pull_request_review.submitted.1", "push.none.5")
        }

    def _copy(self, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.templates[name])

    def next_number(self) -> int:
        self.number += 1
        return self.number

    def issue_opened(self, login: str, number: int) -> dict[str, Any]:
        data = self._copy("issues.opened.1")
        data["issue"].update(number=number, user=person(login), author_association="NONE")
        data["sender"] = person(login)
        return self._dated(data)

    def _dated(self, data: dict[str, Any]) -> dict[str, Any]:
        """With `live`, the times a contribution is recorded at set to now."""
        if self.live:
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            for key in ("issue", "comment"):
                if key in data:
                    data[key].update(created_at=now, updated_at=now)
            if "review" in data:
                data["review"]["submitted_at"] = now
        return data

    def make(self, kind: str, rng: random.Random) -> Delivery:
        login = rng.choice(KNOWN)
        if kind == "issue opened, returning author":
            return Delivery(kind, "issues", dumps(self.issue_opened(login, self.next_number())))
        if kind == "comment":
            data = self._copy("issue_comment.created.1")
            data["issue"]["number"] = rng.randint(1, len(KNOWN))
            data["comment"].update(id=self.next_number(), user=person(login), author_association="NONE")
            data["sender"] = person(login)
            return Delivery(kind, "issue_comment", dumps(self._dated(data)))
        if kind == "review":
            data = self._copy("pull_request_review.submitted.1")
            author = KNOWN[(KNOWN.index(login) + 1) % len(KNOWN)]
            data["pull_request"].update(number=self.next_number(), user=person(author), author_association="NONE")
            data["review"].update(id=self.next_number(), user=person(login), author_association="NONE")
            data["sender"] = person(login)
            return Delivery(kind, "pull_request_review", dumps(self._dated(data)))
        data = self._copy("push.none.5")
        data["pusher"] = {"name": login, "email": f"{login}@example.org"}
        data["sender"] = person(login)
        data["after"] = uuid.uuid4().hex + uuid.uuid4().hex[:8]
        data["commits"][0].update(id=data["after"], added=[], modified=["src/engine.py"])
        if kind == "push":
            return Delivery(kind, "push", dumps(data))
        base = {"repository": data["repository"], "sender": data["sender"], "installation": data["installation"]}
        sha = data["after"]
        if kind == "check_run":
            run = {"id": self.next_number(), "head_sha": sha, "status": "completed", "conclusion": "success"}
            return Delivery(kind, kind, dumps({"action": "completed", "check_run": run, **base}))
        if kind == "check_suite":
            suite = {"id": self.next_number(), "head_sha": sha, "status": "completed", "conclusion": "success"}
            return Delivery(kind, kind, dumps({"action": "completed", "check_suite": suite, **base}))
        status = {"id": self.next_number(), "sha": sha, "state": "success", "context": "ci/build", **base}
        return Delivery(kind, "status", dumps(status))


def dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


def post(port: int, path: str, delivery: Delivery) -> tuple[int, float]:
    """One signed delivery on its own connection, as GitHub sends them: (status, seconds)."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"User-Agent: GitHub-Hookshot/bench\r\nX-GitHub-Event: {delivery.event}\r\n"
        f"X-GitHub-Delivery: {uuid.uuid4()}\r\nX-Hub-Signature-256: {sign(SECRET, delivery.body)}\r\n"
        f"Content-Length: {len(delivery.body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(head + delivery.body)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return int(answer[9:12] or 0), time.perf_counter() - start


def send_all(port: int, path: str, deliveries: list[Delivery]) -> tuple[float, list[float], Counter[int]]:
    """Every delivery at CONNECTIONS concurrent connections: (seconds, latencies, statuses)."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def run(share: list[Delivery]) -> None:
        for delivery in share:
            status, seconds = post(port, path, delivery)
            with lock:
                latencies.append(seconds)
                statuses[status] += 1

    threads = [threading.Thread(target=run, args=(deliveries[i::CONNECTIONS],)) for i in range(CONNECTIONS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start, latencies, statuses


def cpu_seconds(sessions: set[int]) -> float:
    """utime+stime of every live process in these sessions (the web and worker process trees)."""
    return _ticks(lambda session, name: session in sessions)


def server_cpu_seconds(names: frozenset[str]) -> float:
    """utime+stime of every live process of these programs (`postgres`, `redis-server`): the servers' share of
    a delivery's cost, which the app's own processes do not show. The whole machine's, so run nothing else."""
    return _ticks(lambda session, name: name in names)


def _ticks(counted: Callable[[int, str], bool]) -> float:
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rfind(")")]
        fields = stat[stat.rfind(")") + 2 :].split()
        if counted(int(fields[3]), name):
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_processed(database_url: str, total: int, timeout: float = 120) -> dict[str, int]:
    """The statuses once `total` deliveries are stored and none is pending, processing or retrying."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = count_status(database_url)
        if sum(counts.values()) >= total and sum(counts.get(s, 0) for s in ("done", "ignored", "failed")) >= total:
            return counts
        time.sleep(0.05)
    raise SystemExit(f"not processed after {timeout}s: {count_status(database_url)}")


@dataclass
class Row:
    kind: str
    deliveries: int
    calls: Counter[str]
    cpu: float
    server_cpu: float | None  # PostgreSQL's and Redis's, when the app uses them

    def cells(self) -> list[str]:
        n = self.deliveries
        ops = ", ".join(f"{op} {count / n:.2f}" for op, count in self.calls.most_common()) or "-"
        charged = sum(count for op, count in self.calls.items() if not op.endswith(" 304"))
        total = sum(self.calls.values())
        servers = "-" if self.server_cpu is None else f"{self.server_cpu * 1000 / n:.2f}"
        return [self.kind, str(n), f"{total / n:.2f}", f"{charged / n:.2f}", f"{self.cpu * 1000 / n:.2f}", servers, ops]


def table(headers: tuple[str, ...] | list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |" for line in lines)


class Run:
    """The app started once, the fake GitHub, and the running count of deliveries sent."""

    def __init__(self, args: argparse.Namespace, fake: FakeGitHub, key_pem: str, database_url: str) -> None:
        self.fake, self.database_url, self.sent = fake, database_url, 0
        dropped = ("DATABASE_URL", "REDIS_URL", "ENGAGE_BEHAVIOURS")
        self.env = env = {k: v for k, v in os.environ.items() if k not in dropped}
        env.update(
            WEBHOOK_SECRET=SECRET,
            APP_ID=str(APP_ID),
            PRIVATE_KEY=key_pem.replace("\n", "\\n"),
            GITHUB_API_URL=fake.url,
            DATABASE_URL=database_url,
            LOG_LEVEL=args.log_level,
            GITHUB_WRITE_INTERVAL="0",
            BACKFILL_CALLS_PER_HOUR="0",  # the import's calls would count as the deliveries'
            ENV_FILE="/nonexistent/.env",
            FLASK_SKIP_DOTENV="1",
        )
        if args.worker_threads is not None:
            env["WORKER_THREADS"] = str(args.worker_threads)
        self.worker_threads = env.get("WORKER_THREADS", "4 (default)")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.path = "/api/github/webhooks"
        server = args.server or ("gunicorn" if args.mode == "rq" else "granian")
        if args.mode == "rq":
            env["REDIS_URL"] = args.redis_url
            redis.Redis.from_url(args.redis_url).flushdb()
            workers, threads = args.web_workers or 3, args.web_threads or 8
            self.processes = [start_web(env, self.port, workers, threads, server=server), *start_workers(env, 2)]
        else:
            workers, threads = args.web_workers or 1, args.web_threads or 8
            self.processes = [start_web(env, self.port, workers, threads, server=server)]
        self.web = f"{server}, {workers} process(es) x {threads} thread(s)"
        self.sessions = {process.pid for process in self.processes}
        self.servers = frozenset(
            (["postgres"] if database_url.startswith("postgres") else [])
            + (["redis-server"] if args.mode == "rq" else [])
        )

    def phase(self, kind: str, deliveries: list[Delivery]) -> tuple[Row, float, list[float], Counter[int]]:
        """Send, wait until processed; the calls the fake saw and the CPU our processes spent meanwhile."""
        first, cpu = len(self.fake.requests), cpu_seconds(self.sessions)
        servers = server_cpu_seconds(self.servers)
        seconds, latencies, statuses = send_all(self.port, self.path, deliveries)
        self.sent += len(deliveries)
        wait_processed(self.database_url, self.sent)
        calls = Counter(f"{r.method} {r.operation_id or r.path} {r.status}" for r in self.fake.requests[first:])
        server_cpu = server_cpu_seconds(self.servers) - servers if self.servers else None
        row = Row(kind, len(deliveries), calls, cpu_seconds(self.sessions) - cpu, server_cpu)
        return row, seconds, latencies, statuses

    def close(self) -> None:
        stop(self.processes)


def greeting_posted(request: RecordedRequest) -> bool:
    return request.status == 201 and "engage:greeting" in str(request.json)


def import_history(env: dict[str, str]) -> None:
    """`flask backfill OWNER/REPO` as an operator runs it (the `history` behaviour runs the same import in the
    background): the ledger then holds the repository's whole history, the known people's issues included."""
    command = [sys.executable, "-m", "flask", "--app", "app", "backfill", REPO]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"the backfill failed: {done.stdout[-1000:]}{done.stderr[-2000:]}")


def windows_to_today(database_url: str) -> None:
    """The leaderboard windows moved to today, as a running app's `leaderboard.windows` task does within five
    minutes of its start (a benchmark's run is shorter): from then on each contribution adds to them."""
    engine = db.make_engine(database_url)
    try:
        LedgerStore(engine).advance(datetime.now(UTC).date())
    finally:
        engine.dispose()


def fresh_database(url: str) -> str:
    engine = db.make_engine(url)
    db.metadata.drop_all(engine)
    db.migrate(engine)
    engine.dispose()
    return url


def percentile(values: list[float], fraction: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * fraction))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("embedded", "rq"), default="embedded")
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder (emptied and migrated)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="for --mode rq; flushed")
    parser.add_argument("--deliveries", type=int, default=600, help="deliveries in the mix")
    parser.add_argument(
        "--bare-repository", action="store_true", help="no .github/engage.yml, CONTRIBUTING.md or code of conduct"
    )
    parser.add_argument(
        "--server",
        choices=("gunicorn", "granian", "uwsgi"),
        help="default: granian embedded (as scripts/serve), gunicorn rq (as the Procfile); uwsgi (pyuwsgi) for "
        "comparison, on PYTHONPATH",
    )
    parser.add_argument("--web-workers", type=int, help="web processes (default: 3 rq, 1 embedded)")
    parser.add_argument("--web-threads", type=int, help="threads per web process (default: 8)")
    parser.add_argument(
        "--worker-threads", type=int, help="WORKER_THREADS: deliveries each worker processes at once (default 4)"
    )
    parser.add_argument(
        "--github-latency-ms", type=float, default=0, help="the fake GitHub answers each request this much later"
    )
    parser.add_argument(
        "--backfilled",
        action="store_true",
        help="the ledger holds the repository's whole history, as after `flask backfill`: whether someone is new "
        "is the ledger's answer, not GitHub's",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="issues, comments and reviews dated now and the leaderboard windows as of today, as in a running app "
        "(each contribution then also adds to its rolling windows); default: the recorded examples' 2019 times",
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="the app's LOG_LEVEL (its default is INFO); the server's lines go to stderr, so send that to /dev/null",
    )
    parser.add_argument(
        "--mix-of",
        choices=list(MIX),
        help="the timed burst made of this kind alone (check_run: the answer's own cost, nothing to process)",
    )
    args = parser.parse_args()

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    fake = FakeGitHub(APP_ID, public).start()
    fake.latency = args.github_latency_ms / 1000
    rng, payloads = random.Random(14), Payloads(live=args.live)
    # The id the recorded payloads carry, so what the backfill imports is the repository the deliveries name.
    fake.add_repo(REPO, default_branch="master", repo_id=int(payloads.templates["issues.opened.1"]["repository"]["id"]))
    fake.add_installation(INSTALLATION, "Codertocat", [REPO])
    if not args.bare_repository:
        for path, text in REPOSITORY_FILES.items():
            fake.set_file(REPO, path, text)
    for number, login in enumerate(KNOWN, start=1):
        fake.add_issue(REPO, number, login, title="An earlier issue")
    workdir = Path(tempfile.mkdtemp(prefix="engage-mix-"))
    database_url = fresh_database(args.database_url or f"sqlite:///{workdir / 'engage.sqlite3'}")
    per_kind, newcomers = max(5, args.deliveries // 10), max(5, args.deliveries // 4)
    run = Run(args, fake, key_pem, database_url)
    try:
        run.phase("warm-up", [payloads.make(kind, rng) for kind in MIX for _ in range(2)])
        if args.backfilled:
            import_history(run.env)
        if args.live:
            windows_to_today(database_url)
        rows = [run.phase(kind, [payloads.make(kind, rng) for _ in range(per_kind)])[0] for kind in MIX]
        kinds = [args.mix_of] if args.mix_of else [kind for kind, weight in MIX.items() for _ in range(weight)]
        mix = [payloads.make(rng.choice(kinds), rng) for _ in range(args.deliveries)]
        mix_row, ack_seconds, latencies, statuses = run.phase("busy-repository mix", mix)
        greeted = []
        for i in range(newcomers):
            login, number = f"newcomer-{i}", payloads.next_number()
            fake.add_issue(REPO, number, login, title="My first issue")
            greeted.append(Delivery("newcomer's first issue", "issues", dumps(payloads.issue_opened(login, number))))
        first, start = len(fake.requests), time.perf_counter()
        greeting_row = run.phase("newcomer's first issue (greeting)", greeted)[0]
        greeting_seconds = time.perf_counter() - start
        # Greetings only: a scheduled task (response_watch's nudges) may post comments during a long phase.
        posted = sum(greeting_posted(r) for r in fake.requests[first:])
        final_statuses = count_status(database_url)
    finally:
        run.close()
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    engine = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
    workers = f"{run.web} + 2 RQ workers" if args.mode == "rq" else f"{run.web}, in-process worker"
    print(
        f"mode={args.mode} ({workers}), {engine}, GITHUB_WRITE_INTERVAL=0, WORKER_THREADS={run.worker_threads}, "
        f"GitHub latency {args.github_latency_ms:g} ms, cores={os.cpu_count()}"
        + (", ledger backfilled" if args.backfilled else "")
        + (f", the burst of {args.mix_of} alone" if args.mix_of else "")
        + (", live times and windows" if args.live else "")
    )
    print(table(COLUMNS, [row.cells() for row in [*rows, greeting_row, mix_row]]))
    summary = [
        ["acks/s, 16 connections (mix)", f"{len(mix) / ack_seconds:.0f}"],
        [
            "webhook answer p50 / p99 ms",
            f"{percentile(latencies, 0.5) * 1000:.1f} / {percentile(latencies, 0.99) * 1000:.1f}",
        ],
        ["answers", ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))],
        ["CPU ms/delivery, mix, processing included", f"{mix_row.cpu * 1000 / len(mix):.2f}"],
        ["greetings/s end to end", f"{posted / greeting_seconds:.1f} ({posted} posted for {newcomers} newcomers)"],
        ["final statuses", json.dumps(final_statuses, sort_keys=True)],
        ["contract violations at the fake", str(len(fake.violations))],
    ]
    print(table(["figure", "value"], summary))
    for violation in fake.violations[:5]:
        print("  violation:", violation)


if __name__ == "__main__":
    main()
