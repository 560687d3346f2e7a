"""What the web server itself costs per request: a three-line WSGI app answering 202, on gunicorn's gthread or
sync workers or on granian (scripts/serve's server).

    .venv/bin/python bench/server_floor.py                          # gthread, 1 process x 8 threads (embedded's)
    .venv/bin/python bench/server_floor.py --worker-class sync --workers 3

Sends 3,000 small deliveries at 16 connections with delivery_mix's client and prints the server's CPU per
request (utime+stime of its process tree), acks/s and p50/p99: the floor under any webhook answer.
"""

from __future__ import annotations

import argparse
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.delivery_mix import Payloads, cpu_seconds, percentile, send_all  # noqa: E402

APP = """def app(environ, start_response):
    environ["wsgi.input"].read()
    start_response("202 Accepted", [("Content-Type", "application/json")])
    return [b'{"message":"accepted"}']
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker-class", choices=("gthread", "sync", "granian"), default="gthread")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="engage-floor-"))
    (folder / "floor.py").write_text(APP)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    if args.worker_class == "granian":  # as scripts/serve runs it
        command = [str(ROOT / ".venv/bin/granian"), "--interface", "wsgi", "--workers", str(args.workers)]
        command += ["--blocking-threads", str(args.threads), "--port", str(port), "--log-level", "error"]
        command += ["--working-dir", str(folder), "floor:app"]
    else:
        command = [str(ROOT / ".venv/bin/gunicorn"), "--workers", str(args.workers), "--threads", str(args.threads)]
        command += ["--worker-class", args.worker_class, "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
        command += ["--chdir", str(folder), "floor:app"]
    server = subprocess.Popen(command, start_new_session=True)
    try:
        time.sleep(2)
        rng, payloads = random.Random(1), Payloads()
        deliveries = [payloads.make("check_run", rng) for _ in range(3200)]
        send_all(port, "/", deliveries[:200])  # warm-up
        cpu = cpu_seconds({server.pid})
        seconds, latencies, statuses = send_all(port, "/", deliveries[200:])
        cpu = cpu_seconds({server.pid}) - cpu
    finally:
        server.terminate()
        server.wait()
    n = len(deliveries) - 200
    print(
        f"{args.worker_class}, {args.workers} process(es) x {args.threads} thread(s): {dict(statuses)}, "
        f"{n / seconds:.0f} acks/s, CPU {cpu * 1000 / n:.3f} ms/request, "
        f"p50 {percentile(latencies, 0.5) * 1000:.1f} / p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
