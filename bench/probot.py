"""Probot beside us: its welcome app under the same client, payloads and fake GitHub as `delivery_mix.py`.

Issue 14 compares the app with Probot 14 on one machine. This runs Probot's side of that comparison
with delivery_mix's own phases, so the two scripts' figures can be read side by side in one sitting:

    .venv/bin/python bench/probot.py                          # npm installs probot@14.3.2 once, into --probot-dir
    .venv/bin/python bench/delivery_mix.py --mode embedded    # ours, the same phases
    .venv/bin/python bench/delivery_mix.py --mode rq

The welcome app posts a comment on every `issues.opened`, with Octokit's write throttling off (as ours
runs with `GITHUB_WRITE_INTERVAL=0`); Probot has no first-time check, no deduplication and no durable
store, and it answers the webhook only after its handler ran (its middleware awaits the handlers, so an
`issues.opened` answer waits for the comment). Printed: acks/s and p50/p99 of the busy-repository mix
(its 5% of issues opened get a comment each), the node process's CPU per delivery of the mix and per
greeting (utime+stime from /proc), and greetings per second for `--deliveries`/4 distinct newcomers,
counted where the comments arrive (the fake GitHub, which validates every request against the contract).
Needs node and npm (Debian's nodejs, or any Node 20+).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from bench.delivery_mix import (  # noqa: E402
    APP_ID,
    INSTALLATION,
    KNOWN,
    MIX,
    REPO,
    SECRET,
    Delivery,
    Payloads,
    cpu_seconds,
    dumps,
    percentile,
    send_all,
    table,
)
from tests.support.fake_github import FakeGitHub  # noqa: E402

PROBOT_VERSION = "14.3.2"  # the version the issue measured
WELCOME_APP = """
import { createServer } from "node:http";
import { Probot, ProbotOctokit, createNodeMiddleware } from "probot";

const app = (app) => app.on("issues.opened", (context) =>
  context.octokit.rest.issues.createComment(context.issue({ body: "Welcome!" })));
const probot = new Probot({
  appId: process.env.APP_ID,
  privateKey: process.env.PRIVATE_KEY,
  secret: process.env.WEBHOOK_SECRET,
  baseUrl: process.env.GITHUB_API_URL,
  logLevel: "warn",
  // A function, not an object: Probot assigns its own throttle options over an object's, turning it back on.
  Octokit: ProbotOctokit.defaults((options) => ({ ...options, throttle: { ...options.throttle, enabled: false } })),
});
const middleware = await createNodeMiddleware(app, { probot, webhooksPath: "/api/github/webhooks" });
createServer(middleware).listen(Number(process.env.PORT), "127.0.0.1");
"""


def install_probot(folder: Path) -> None:
    """probot@PROBOT_VERSION in `folder`, installed once (about 4 s from the npm registry)."""
    if (folder / "node_modules" / "probot").is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text('{"name": "engage-bench-probot", "private": true, "type": "module"}\n')
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", f"probot@{PROBOT_VERSION}"],
        cwd=folder,
        check=True,
    )


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"probot did not listen on {port} within {timeout}s")


def newcomers_issues(fake: FakeGitHub, payloads: Payloads, count: int, prefix: str) -> list[Delivery]:
    """`count` people opening their first issue, each issue also made at the fake (Probot comments on it)."""
    deliveries = []
    for i in range(count):
        login, number = f"{prefix}-{i}", payloads.next_number()
        fake.add_issue(REPO, number, login, title="My first issue")
        deliveries.append(Delivery("newcomer's first issue", "issues", dumps(payloads.issue_opened(login, number))))
    return deliveries


def comments(fake: FakeGitHub) -> int:
    return sum(1 for r in fake.requests if r.operation_id == "issues/create-comment" and r.status == 201)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=600, help="deliveries in the mix, as delivery_mix's")
    parser.add_argument(
        "--probot-dir", type=Path, default=Path.home() / ".cache" / "engage-bench" / f"probot-{PROBOT_VERSION}"
    )
    args = parser.parse_args()
    install_probot(args.probot_dir)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    fake = FakeGitHub(APP_ID, public).start()
    fake.add_repo(REPO, default_branch="master")
    fake.add_installation(INSTALLATION, "Codertocat", [REPO])
    for number, login in enumerate(KNOWN, start=1):
        fake.add_issue(REPO, number, login, title="An earlier issue")
    app_file = args.probot_dir / "welcome.mjs"
    app_file.write_text(WELCOME_APP)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(
        os.environ,
        APP_ID=str(APP_ID),
        PRIVATE_KEY=key_pem,
        WEBHOOK_SECRET=SECRET,
        GITHUB_API_URL=fake.url,
        PORT=str(port),
        NODE_ENV="production",
    )
    node = subprocess.Popen(["node", str(app_file)], cwd=args.probot_dir, env=env, start_new_session=True)
    path = "/api/github/webhooks"
    rng, payloads = random.Random(14), Payloads()
    try:
        wait_port(port)
        warm_up = [payloads.make(kind, rng) for kind in MIX for _ in range(2) if not kind.startswith("issue opened")]
        send_all(port, path, warm_up + newcomers_issues(fake, payloads, 2, "early"))  # and the installation token
        kinds = [kind for kind, weight in MIX.items() for _ in range(weight)]
        mix = [payloads.make(rng.choice(kinds), rng) for _ in range(args.deliveries)]
        for delivery in mix:  # Probot comments on every issue opened: the issue must exist at the fake
            if delivery.event == "issues":
                issue = json.loads(delivery.body)["issue"]
                fake.add_issue(REPO, issue["number"], issue["user"]["login"], title=issue["title"])
        cpu = cpu_seconds({node.pid})
        ack_seconds, latencies, statuses = send_all(port, path, mix)
        mix_cpu = cpu_seconds({node.pid}) - cpu
        newcomers = max(5, args.deliveries // 4)
        greeted = newcomers_issues(fake, payloads, newcomers, "newcomer")
        before, cpu = comments(fake), cpu_seconds({node.pid})
        start = time.perf_counter()
        send_all(port, path, greeted)
        while comments(fake) - before < newcomers and time.perf_counter() - start < 60:
            time.sleep(0.005)
        greeting_seconds = time.perf_counter() - start
        greeting_cpu = cpu_seconds({node.pid}) - cpu
        posted = comments(fake) - before
    finally:
        os.killpg(node.pid, signal.SIGTERM)
        node.wait(10)
        fake.stop()
    node_info = f"node {node_version()}, one process, throttling off, cores={os.cpu_count()}"
    print(f"Probot {PROBOT_VERSION} welcome app, {node_info}")
    print(
        table(
            ["figure", "value"],
            [
                ["acks/s, 16 connections (mix)", f"{len(mix) / ack_seconds:.0f}"],
                [
                    "webhook answer p50 / p99 ms",
                    f"{percentile(latencies, 0.5) * 1000:.1f} / {percentile(latencies, 0.99) * 1000:.1f}",
                ],
                ["answers", ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))],
                ["CPU ms/delivery, mix", f"{mix_cpu * 1000 / len(mix):.2f}"],
                ["CPU ms/delivery, newcomer greeted", f"{greeting_cpu * 1000 / newcomers:.2f}"],
                [
                    "greetings/s end to end",
                    f"{posted / greeting_seconds:.1f} ({posted} posted for {newcomers} newcomers)",
                ],
                ["contract violations at the fake", str(len(fake.violations))],
            ],
        )
    )
    for violation in fake.violations[:5]:
        print("  violation:", violation)


def node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    tempfile.tempdir = tempfile.gettempdir()
    main()
