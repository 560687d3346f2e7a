"""The same durable webhook answer on two server models: granian's WSGI threads (the app's model) and granian's
RSGI event loop with one writer thread, for the decision bench/README.md leaves to the planners.

Both do only what a durable answer needs, the same way: the signature checked (HMAC-SHA256, constant time),
the body parsed with orjson for the stored fields, the row INSERTed (`ON CONFLICT DO NOTHING`) into SQLite
(WAL, synchronous NORMAL), committed in groups, then 202. The threaded one batches with the app's own
`storage.group_commit.GroupCommit` (8 granian threads, as scripts/serve); the event loop hands its rows to
one thread that writes whatever is queued in one transaction and resolves each answer's future. Neither
runs Flask, the app's counters, logs or dispatch: this is the floor of each model, not the app.

    .venv/bin/python bench/intake_models.py                 # both, the mix of 4,000 at 16 connections
    .venv/bin/python bench/intake_models.py --deliveries 400

Prints acks/s, p50/p99, the server's CPU per answer (user and kernel) and its context switches per answer
(bench/proc_sample.py).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.delivery_mix import MIX, SECRET, Delivery, Payloads, percentile, send_all  # noqa: E402
from bench.proc_sample import cpu_ticks, switches  # noqa: E402
from tests.support.processes import free_port  # noqa: E402

COMMON = f'''
import hashlib, hmac, os, sqlite3, time
import orjson

SECRET = {SECRET!r}.encode()
SCHEMA = """CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, event TEXT NOT NULL, action TEXT,
    installation_id INTEGER, repository TEXT, sender TEXT, payload TEXT NOT NULL, received_at REAL NOT NULL)"""
INSERT = "INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
ANSWER = b'{{"message":"accepted"}}'


def connect():
    db = sqlite3.connect(os.environ["INTAKE_DB"], isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(SCHEMA)
    return db


def row(delivery_id, event, signature, body):
    """The stored row, or None when the signature is wrong."""
    expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature or ""):
        return None
    payload = orjson.loads(body)
    return (delivery_id, event, payload.get("action"), (payload.get("installation") or {{}}).get("id"),
            (payload.get("repository") or {{}}).get("full_name"), (payload.get("sender") or {{}}).get("login"),
            body.decode(), time.time())


def write(db, rows):
    db.execute("BEGIN IMMEDIATE")
    try:
        new = [db.execute(INSERT, values).rowcount == 1 for values in rows]
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return new
'''

THREADS = (
    COMMON
    + """
from storage.group_commit import GroupCommit

db = connect()
group = GroupCommit(lambda rows: write(db, rows))


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    values = row(environ.get("HTTP_X_GITHUB_DELIVERY"), environ.get("HTTP_X_GITHUB_EVENT"),
                 environ.get("HTTP_X_HUB_SIGNATURE_256"), body)
    if values is None:
        start_response("401 Unauthorized", [("Content-Type", "application/json")])
        return [b"{}"]
    group.submit(values)
    start_response("202 Accepted", [("Content-Type", "application/json")])
    return [ANSWER]
"""
)

EVENT_LOOP = (
    COMMON
    + """
import asyncio, queue, threading

pending = queue.SimpleQueue()


def writer():
    db = connect()
    while True:
        batch = [pending.get()]
        while len(batch) < 32:
            try:
                batch.append(pending.get_nowait())
            except queue.Empty:
                break
        try:
            results = write(db, [values for values, _, _ in batch])
        except Exception as exc:
            for _, future, loop in batch:
                loop.call_soon_threadsafe(future.set_exception, exc)
            continue
        for (_, future, loop), new in zip(batch, results):
            loop.call_soon_threadsafe(future.set_result, new)


threading.Thread(target=writer, daemon=True).start()


async def app(scope, proto):
    body = await proto()
    headers = scope.headers
    values = row(headers.get("x-github-delivery"), headers.get("x-github-event"),
                 headers.get("x-hub-signature-256"), body)
    if values is None:
        proto.response_bytes(401, [("content-type", "application/json")], b"{}")
        return
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    pending.put((values, future, loop))
    await future
    proto.response_bytes(202, [("content-type", "application/json")], ANSWER)
"""
)

MODELS = {
    "threads": ("intake_threads", THREADS, ["--interface", "wsgi", "--blocking-threads", "8"]),
    "event-loop": ("intake_loop", EVENT_LOOP, ["--interface", "rsgi"]),
}


def started(port: int, server: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def measure(model: str, deliveries: list[Delivery], folder: Path) -> str:
    module, source, interface = MODELS[model]
    (folder / f"{module}.py").write_text(source)
    port = free_port()
    command = [str(ROOT / ".venv/bin/granian"), *interface, "--workers", "1", "--port", str(port)]
    command += ["--log-level", "error", "--working-dir", str(folder), f"{module}:app"]
    env = {"INTAKE_DB": str(folder / f"{model}.sqlite3"), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    server = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        started(port, server)
        send_all(port, "/", deliveries[:200])  # warm-up
        workers = [
            int(pid)
            for pid in subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
        ]
        pids = [server.pid, *workers]
        ticks = [cpu_ticks(pid) for pid in pids]
        before = [switches(pid) for pid in pids]
        seconds, latencies, statuses = send_all(port, "/", deliveries[200:])
        user = sum(cpu_ticks(pid)[0] - t[0] for pid, t in zip(pids, ticks, strict=True))
        kernel = sum(cpu_ticks(pid)[1] - t[1] for pid, t in zip(pids, ticks, strict=True))
        switched = sum(sum(switches(pid)) - sum(b) for pid, b in zip(pids, before, strict=True))
    finally:
        server.terminate()
        server.wait()
    n, tick = len(deliveries) - 200, 1 / os.sysconf("SC_CLK_TCK")
    return (
        f"| {model} | {dict(statuses)} | {n / seconds:.0f} | {percentile(latencies, 0.5) * 1000:.1f} / "
        f"{percentile(latencies, 0.99) * 1000:.1f} | {user * tick * 1000 / n:.3f} | {kernel * tick * 1000 / n:.3f} | "
        f"{switched / n:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=4000, help="the mix's deliveries after 200 to warm up")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["threads", "event-loop"])
    args = parser.parse_args()
    rng, payloads = random.Random(14), Payloads()
    kinds = [kind for kind, weight in MIX.items() for _ in range(weight)]
    deliveries = [payloads.make(rng.choice(kinds), rng) for _ in range(args.deliveries + 200)]
    folder = Path(tempfile.mkdtemp(prefix="engage-intake-"))
    print("| model | answers | acks/s | p50 / p99 ms | user CPU ms/answer | kernel CPU ms/answer | switches/answer |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    try:
        for model in args.models:
            print(measure(model, deliveries, folder), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
