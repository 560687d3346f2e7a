"""Load benchmark: signed real payloads at gunicorn on the app factory, then RQ workers draining them.

Prints acknowledged deliveries/s with p50/p99 latency (wrk, unique delivery ids), the end-to-end
rate of deliveries fully processed by RQ workers against the local fake GitHub, and the bare cost
of the pieces measured the same way. Everything runs on this machine (loopback only).

    .venv/bin/python bench/load.py                       # SQLite
    .venv/bin/python bench/load.py --database postgres   # the local PostgreSQL (database "test")
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from storage import db  # noqa: E402
from tests.support.fake_github import FakeGitHub  # noqa: E402
from webhooks.signature import sign  # noqa: E402

EXAMPLES = ROOT / "tests" / "contract" / "github" / "webhook-examples"
SECRET = "bench-secret"
APP_ID, INSTALLATION = 777, 4242
REPO = "Codertocat/Hello-World"
REDIS_URL = "redis://127.0.0.1:6379/14"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

WRK_SCRIPT = """
local body_file = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.method = "POST"
wrk.body = body_file:read("*a")
body_file:close()
local run, counter, tid = os.getenv("BENCH_RUN"), 0, 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function request()
  counter = counter + 1
  return wrk.format(nil, nil, {
    ["Content-Type"] = "application/json",
    ["User-Agent"] = "GitHub-Hookshot/bench",
    ["X-GitHub-Event"] = os.getenv("BENCH_EVENT"),
    ["X-Hub-Signature-256"] = os.getenv("BENCH_SIGNATURE"),
    ["X-GitHub-Delivery"] = run .. "-" .. tid .. "-" .. counter,
  })
end
"""


def payload(installation: bool) -> bytes:
    data = json.loads((EXAMPLES / "issues.opened.1.json").read_text())
    data["issue"]["number"] = 1
    if installation:
        data["installation"] = {"id": INSTALLATION}
    else:
        data.pop("installation", None)
    return json.dumps(data).encode()


def fresh_database(kind: str, workdir: Path) -> str:
    url = POSTGRES_URL if kind == "postgres" else f"sqlite:///{workdir / 'bench.sqlite3'}"
    engine = db.make_engine(url)
    db.metadata.drop_all(engine)
    db.migrate(engine)
    engine.dispose()
    return url


def environment(database_url: str, fake: FakeGitHub, key_pem: str, write_interval: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        WEBHOOK_SECRET=SECRET,
        APP_ID=str(APP_ID),
        PRIVATE_KEY=key_pem.replace("\n", "\\n"),
        GITHUB_API_URL=fake.url,
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        ENGAGE_BEHAVIOURS="bench.behaviours",
        LOG_LEVEL="WARNING",
        GITHUB_WRITE_INTERVAL=str(write_interval),
        BACKFILL_CALLS_PER_HOUR="0",  # the import's calls would count as the deliveries'
        ENV_FILE="/nonexistent/.env",
        FLASK_SKIP_DOTENV="1",  # only ENV_FILE, as the systemd units run it
    )
    return env


def start_web(
    env: dict[str, str], port: int, workers: int, threads: int, worker_class: str = "sync", server: str = "gunicorn"
) -> subprocess.Popen[bytes]:
    """The web process tree: gunicorn (sync, or gthread with threads; the Procfile's server), granian's WSGI
    interface (scripts/serve's, the embedded layout's, without its access log), or uWSGI for comparison (on
    PYTHONPATH: not one of our dependencies)."""
    if server == "granian":
        command = [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "wsgi",
            "--workers",
            str(workers),
            "--blocking-threads",
            str(threads),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--factory",
            "app:create_app",
        ]
    elif server == "uwsgi":
        command = [
            sys.executable,
            "-c",
            "import pyuwsgi; pyuwsgi.run()",
            "--http-socket",
            f"127.0.0.1:{port}",
            "--processes",
            str(workers),
            "--threads",
            str(threads),
            "--master",
            "--lazy-apps",
            "--enable-threads",
            "--disable-logging",
            "--die-on-term",
            "--module",
            "app:create_app()",
        ]
    else:
        command = [
            str(ROOT / ".venv/bin/gunicorn"),
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--worker-class",
            "gthread" if threads > 1 else worker_class,
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "app:create_app()",
        ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    import requests

    for _ in range(200):
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise SystemExit("gunicorn did not come up")


def start_workers(env: dict[str, str], count: int) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [str(ROOT / ".venv/bin/flask"), "--app", "app", "worker"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def run_wrk(port: int, body: bytes, connections: int, seconds: int, workdir: Path) -> dict[str, float]:
    script, body_file = workdir / "deliveries.lua", workdir / "body.json"
    script.write_text(WRK_SCRIPT)
    body_file.write_bytes(body)
    env = dict(
        os.environ,
        BENCH_BODY=str(body_file),
        BENCH_RUN=uuid.uuid4().hex[:12],
        BENCH_EVENT="issues",
        BENCH_SIGNATURE=sign(SECRET, body),
    )
    out = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/api/github/webhooks",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def millis(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests": float(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": millis("50%"),
        "p99": millis("99%"),
        "errors": float(non_2xx.group(1)) if non_2xx else 0.0,
        "socket_errors": socket_errors.group(1) if socket_errors else "none",
    }  # type: ignore[dict-item]


def count_status(database_url: str) -> dict[str, int]:
    engine = db.make_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(db.deliveries.c.status, sa.func.count()).group_by(db.deliveries.c.status))
        counts = {status: count for status, count in rows}
    engine.dispose()
    return counts


def drain(database_url: str, total: int, timeout: float) -> float:
    """Seconds until every stored delivery is done (or ignored)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        counts = count_status(database_url)
        if counts.get("done", 0) + counts.get("ignored", 0) >= total:
            return time.monotonic() - start
        time.sleep(0.2)
    raise SystemExit(f"not drained after {timeout}s: {count_status(database_url)}")


def per_item(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """Median microseconds per call over 5 rounds of `repeat` calls."""
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for i in range(repeat):
            fn(i)
        rounds.append((time.perf_counter() - start) / repeat * 1e6)
    return statistics.median(rounds)


def piece_costs(database_url: str, body: bytes, fake: FakeGitHub, key_pem: str) -> dict[str, float]:
    """Each piece measured on its own, in this process, the way the web and worker processes run it."""
    from rq import Queue, SimpleWorker
    from rq.serializers import JSONSerializer

    import services as services_module
    import settings as settings_module
    from storage.deliveries import DeliveryStore
    from webhooks.event import parse
    from webhooks.signature import verify

    signature = sign(SECRET, body)
    costs = {
        "signature check + JSON parse": per_item(
            lambda i: (verify(SECRET, body, signature), parse("d", "issues", body)), 2000
        )
    }
    engine = db.make_engine(database_url)
    store = DeliveryStore(engine)
    text = body.decode()

    def store_delivery(target: DeliveryStore, delivery_id: str, status: str = "pending") -> None:
        target.insert(
            id=delivery_id,
            event="issues",
            action="opened",
            installation_id=None,
            repository=REPO,
            sender="x",
            payload_text=text,
            status=status,
        )

    costs["one database insert"] = per_item(lambda i: store_delivery(store, uuid.uuid4().hex, "done"), 300)
    engine.dispose()
    connection = redis.Redis.from_url(REDIS_URL)
    connection.flushdb()
    queue = Queue("bench-noop", connection=connection, serializer=JSONSerializer)
    costs["one RQ enqueue"] = per_item(
        lambda i: queue.enqueue("bench.noop.noop", "x", job_id=f"noop-{uuid.uuid4().hex}", unique=True, result_ttl=0),
        500,
    )
    costs["one RQ no-op job"] = timed_burst(
        SimpleWorker([queue], connection=connection, serializer=JSONSerializer), queue.count
    )

    # A real delivery needing no GitHub write, processed by an RQ worker the two ways the app queues them.
    settings = settings_module.Settings(
        webhook_secret=SECRET,
        app_id=APP_ID,
        private_key=key_pem,
        github_api_url=fake.url,
        database_url=database_url,
        redis_url=REDIS_URL,
        behaviours=("bench.behaviours",),
        log_level="WARNING",
        testing=True,
    )
    services = services_module.build(settings)
    services_module.install(services)
    worker = SimpleWorker([settings.queue_name], connection=connection, serializer=JSONSerializer)
    for label, count in (("one delivery, new (batched job)", 1000), ("one delivery, alone in its job", 300)):
        ids = [uuid.uuid4().hex for _ in range(count)]
        for delivery_id in ids:
            store_delivery(services.store, delivery_id)
        if "batched" in label:
            for delivery_id in ids:
                services.dispatcher.submit(delivery_id)
            services.dispatcher.wait_idle(60)  # type: ignore[attr-defined]
        else:
            for delivery_id in ids:
                services.dispatcher.dispatch(delivery_id)
        costs[label + " (no GitHub write)"] = timed_burst(worker, count)
        assert all(services.store.get(i).status == "done" for i in ids[:5])  # type: ignore[union-attr]
    services.close()
    connection.close()
    return costs


def timed_burst(worker, items: int) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    worker.work(burst=True, logging_level="WARNING")
    return (time.perf_counter() - start) / items * 1e6


def wait_processed(database_url: str, total: int, timeout: float) -> float:
    return drain(database_url, total, timeout)


def paced_writes(args: argparse.Namespace, fake: FakeGitHub, key_pem: str, workdir: Path, count: int) -> str:
    """`count` writes to one installation with GitHub's 1 s pacing: all done, none dropped, spaced out."""
    import requests

    database_url = fresh_database(args.database, workdir)
    env = environment(database_url, fake, key_pem, 1.0)
    web = start_web(env, args.port, 1, 4)
    workers = start_workers(env, args.rq_workers)
    try:
        before = len(fake.calls("POST", f"/repos/{REPO}/issues/1/reactions"))
        body = payload(True)
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "issues",
            "X-Hub-Signature-256": sign(SECRET, body),
        }
        start = time.monotonic()
        for i in range(count):
            requests.post(
                f"http://127.0.0.1:{args.port}/api/github/webhooks",
                data=body,
                headers={**headers, "X-GitHub-Delivery": f"paced-{i}"},
                timeout=10,
            ).raise_for_status()
        seconds = drain(database_url, count, timeout=count * 5 + 60)
    finally:
        stop([web, *workers])
    writes = len(fake.calls("POST", f"/repos/{REPO}/issues/1/reactions")) - before
    counts = count_status(database_url)
    return (
        f"paced writes (GITHUB_WRITE_INTERVAL=1, one installation): {count} deliveries -> {writes} writes in "
        f"{seconds:.1f} s ({writes / seconds:.2f} writes/s), statuses {counts}; elapsed since first POST "
        f"{time.monotonic() - start:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--web-threads", type=int, default=1)
    parser.add_argument(
        "--web-class", choices=("sync", "gthread"), default="sync", help="gthread keeps client connections alive"
    )
    parser.add_argument("--rq-workers", type=int, default=2)
    parser.add_argument("--paced", type=int, default=10, help="deliveries for the pacing check (0: skip)")
    parser.add_argument("--port", type=int, default=3199)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    fake = FakeGitHub(APP_ID, public).start()
    fake.add_repo(REPO)
    fake.add_installation(INSTALLATION, "Codertocat", [REPO])
    fake.add_issue(REPO, 1, "Codertocat")
    workdir = Path(tempfile.mkdtemp(prefix="engage-bench-"))
    redis.Redis.from_url(REDIS_URL).flushdb()
    print(
        f"database={args.database} connections={args.connections} web=gunicorn {args.web_workers} {args.web_class} "
        f"workers x {args.web_threads} threads, rq_workers={args.rq_workers}, cores={os.cpu_count()}"
    )

    for label, body in (
        ("needs no GitHub write (no installation)", payload(False)),
        ("one GitHub write each (a reaction, unpaced)", payload(True)),
    ):
        database_url = fresh_database(args.database, workdir)
        env = environment(database_url, fake, key_pem, 0.0)
        web = start_web(env, args.port, args.web_workers, args.web_threads, args.web_class)
        try:
            run_wrk(args.port, body, args.connections, 2, workdir)  # warm-up
            ack = run_wrk(args.port, body, args.connections, args.seconds, workdir)
        finally:
            stop([web])
        total = sum(count_status(database_url).values())
        workers = start_workers(env, args.rq_workers)
        try:
            seconds = drain(database_url, total, timeout=900)
        finally:
            stop(workers)
        print(
            f"{label}:\n"
            f"  acknowledged {ack['rate']:8.0f} deliveries/s  p50 {ack['p50']:.2f} ms  p99 {ack['p99']:.2f} ms  "
            f"non-2xx {ack['errors']:.0f}  socket errors {ack['socket_errors']}\n"
            f"  processed    {total / seconds:8.0f} deliveries/s end to end by {args.rq_workers} RQ workers "
            f"({total} deliveries, warm-up included, in {seconds:.1f} s; statuses {count_status(database_url)})",
            flush=True,
        )

    costs = piece_costs(fresh_database(args.database, workdir), payload(False), fake, key_pem)
    print("bare cost of the pieces (median µs per item, one process):")
    for name, micros in costs.items():
        print(f"  {name:<52} {micros:8.1f}")
    noop = costs["one RQ no-op job"]
    print(
        f"  ratio new delivery / no-op job: {costs['one delivery, new (batched job) (no GitHub write)'] / noop:.2f}; "
        f"alone / no-op job: {costs['one delivery, alone in its job (no GitHub write)'] / noop:.2f}"
    )
    if args.paced:
        print(paced_writes(args, fake, key_pem, workdir, args.paced))
    fake.stop()
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
