"""Intake of the three platforms side by side (issue 12): GitHub, Discourse and Telegram deliveries at
the same gunicorn on the app factory, each a distinct delivery (its own id, post or update), then RQ
workers recording them in the ledger.

Prints, per platform: acknowledged deliveries/s and p50/p99 latency at 16 connections (wrk), and the
rate at which the workers processed them (each one recorded once in the ledger). Same machine, same
database, one platform after another. The bodies are real recorded payloads from tests/contract, each
copy changed only in its ids and signed as its platform signs.

    .venv/bin/python bench/platforms.py                       # SQLite
    .venv/bin/python bench/platforms.py --database postgres   # the local PostgreSQL (database "test")
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from bench.load import (  # noqa: E402
    APP_ID,
    EXAMPLES,
    INSTALLATION,
    REDIS_URL,
    SECRET,
    count_status,
    drain,
    environment,
    fresh_database,
    start_web,
    start_workers,
    stop,
)
from storage import db  # noqa: E402
from tests.support.fake_github import FakeGitHub  # noqa: E402
from webhooks import discourse  # noqa: E402
from webhooks.signature import sign  # noqa: E402

CONTRACT = ROOT / "tests" / "contract"
FORUM_SECRET = "bench-forum-secret-0123456789"
FORUM_URL = "https://forum.example.org"
TELEGRAM_SECRET = "bench-telegram-secret"
BOT_TOKEN = "7123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
ORG = "Codertocat"

# wrk reads one request per record: a line of headers ("Name: value" joined by tabs), a line of body.
WRK_SCRIPT = """
local records = {}
local file = io.open(os.getenv("BENCH_REQUESTS"), "rb")
while true do
  local headers = file:read("*l")
  if not headers then break end
  local body = file:read("*l")
  local parsed = {}
  for name, value in headers:gmatch("([^\\t:]+): ([^\\t]*)") do parsed[name] = value end
  records[#records + 1] = wrk.format("POST", nil, parsed, body)
end
file:close()
local offset, step, index = 0, 1, 0
function setup(thread)
  thread:set("offset", offset)
  offset = offset + 1
end
function init(args)
  step = tonumber(os.getenv("BENCH_THREADS"))
  index = offset
end
function request()
  index = index + step
  if index > #records then
    return wrk.format("GET", "/healthz")  -- every record sent once: the rest is not counted as intake
  end
  return records[index]
end
"""


def github_requests(count: int) -> list[tuple[dict[str, str], bytes]]:
    base = json.loads((EXAMPLES / "issue_comment.created.1.json").read_text())
    base["installation"] = {"id": INSTALLATION}
    found = []
    for n in range(count):
        payload = copy.deepcopy(base)
        payload["comment"]["id"] = 10_000_000 + n
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "issue_comment",
            "X-GitHub-Delivery": f"bench-{n}",
            "X-Hub-Signature-256": sign(SECRET, body),
        }
        found.append((headers, body))
    return found


def discourse_requests(count: int) -> list[tuple[dict[str, str], bytes]]:
    folder = CONTRACT / "discourse" / "webhooks"
    base = json.loads((folder / "post_created.reply.json").read_text())
    recorded = json.loads((folder / "deliveries.json").read_text())["deliveries"]
    headers_base = next(e["headers"] for e in recorded if e["file"] == "post_created.reply.json")
    found = []
    for n in range(count):
        payload = copy.deepcopy(base)
        payload["post"]["id"] = 1_000_000 + n
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {
            **{k: v for k, v in headers_base.items() if k != "User-Agent"},
            "X-Discourse-Event-Id": str(500_000 + n),
            "X-Discourse-Instance": FORUM_URL,
            "X-Discourse-Event-Signature": discourse.sign(FORUM_SECRET, body),
        }
        found.append((headers, body))
    return found


def telegram_requests(count: int) -> list[tuple[dict[str, str], bytes]]:
    base = json.loads((CONTRACT / "telegram" / "examples" / "updates" / "message.reply.json").read_text())
    found = []
    for n in range(count):
        payload = copy.deepcopy(base)
        payload["update_id"] = 800_000_000 + n
        payload["message"]["message_id"] = 2_000_000 + n
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
        found.append((headers, body))
    return found


PLATFORMS: dict[str, tuple[str, Callable[[int], list[tuple[dict[str, str], bytes]]]]] = {
    "github": ("/api/github/webhooks", github_requests),
    "discourse": ("/api/discourse/webhooks", discourse_requests),
    "telegram": ("/api/telegram/webhook", telegram_requests),
}


def run_wrk(
    port: int, path: str, records: list[tuple[dict[str, str], bytes]], args: argparse.Namespace, workdir: Path
) -> tuple[float, float]:
    import os
    import re
    import subprocess

    script, requests_file = workdir / "platform.lua", workdir / "requests.txt"
    script.write_text(WRK_SCRIPT)
    with requests_file.open("wb") as out:
        for headers, body in records:
            out.write("\t".join(f"{k}: {v}" for k, v in headers.items()).encode() + b"\n" + body + b"\n")
    env = dict(os.environ, BENCH_REQUESTS=str(requests_file), BENCH_THREADS="2")
    command = ["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.seconds}s", "--latency", "-s", str(script)]
    out = subprocess.run(
        [*command, f"http://127.0.0.1:{port}{path}"], env=env, capture_output=True, text=True, check=True
    ).stdout

    def millis(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return millis("50%"), millis("99%")


def stored_since(database_url: str, before: int) -> int:
    engine = db.make_engine(database_url)
    with engine.connect() as conn:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(db.deliveries)).scalar_one())
    engine.dispose()
    return total - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--deliveries", type=int, default=30_000, help="distinct deliveries prepared per platform")
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--rq-workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=3197)
    args = parser.parse_args()

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    fake = FakeGitHub(APP_ID, public).start()
    fake.add_repo("Codertocat/Hello-World", default_branch="master", repo_id=186853002)
    fake.add_installation(INSTALLATION, ORG, ["Codertocat/Hello-World"])
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        database_url = fresh_database(args.database, workdir)
        env = environment(database_url, fake, key_pem, 0.0)
        env.update(
            ENGAGE_BEHAVIOURS="",
            DISCOURSE_URL=FORUM_URL,
            DISCOURSE_WEBHOOK_SECRET=FORUM_SECRET,
            TELEGRAM_BOT_TOKEN=BOT_TOKEN,
            TELEGRAM_WEBHOOK_SECRET=TELEGRAM_SECRET,
            COMMUNITY_ORG=ORG,
        )
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        web = start_web(env, args.port, args.web_workers, 1)
        rows = []
        try:
            for name, (path, build) in PLATFORMS.items():
                records = build(args.deliveries)
                before = stored_since(database_url, 0)
                p50, p99 = run_wrk(args.port, path, records, args, workdir)
                acked = stored_since(database_url, before)
                workers = start_workers(env, args.rq_workers)
                try:
                    drained = drain(database_url, before + acked, timeout=600)
                finally:
                    stop(workers)
                rows.append((name, acked / args.seconds, p50, p99, acked, acked / drained if drained else 0.0))
        finally:
            stop([web])
            fake.stop()
        statuses = count_status(database_url)
    print(
        f"{args.database}, {args.web_workers} gunicorn sync workers, {args.connections} connections, {args.seconds} s"
    )
    print(f"{'platform':<10} {'acks/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'stored':>8} {'processed/s':>12}")
    for name, rate, p50, p99, acked, processed in rows:
        print(f"{name:<10} {rate:>8.0f} {p50:>8.1f} {p99:>8.1f} {acked:>8} {processed:>12.0f}")
    print("statuses:", statuses)


if __name__ == "__main__":
    main()
