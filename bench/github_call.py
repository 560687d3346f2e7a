"""What one GitHub call costs the app in CPU: `GitHubApp.request` through its transport, or through requests.

    .venv/bin/python bench/github_call.py                 # both, alternated, 3 rounds of 3,000 calls each
    .venv/bin/python bench/github_call.py --close         # the server closes after each answer (the fake GitHub does)

A local server answers every call at once with a comment's 201 and GitHub's rate-limit headers, over HTTP/1.1
kept open (as api.github.com does) or closed after each answer (`--close`, as the test suite's fake GitHub
and `delivery_mix.py` do). It runs in another process, so the figure is this process's CPU only
(`thread_time`): the request built, sent, its answer read and decoded, the budget recorded. "requests" is
the same client with its transport switched off, which is what a proxy from the environment does (and what
every call did before `githubapp/transport.py`).
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from githubapp.cache import MemoryCache  # noqa: E402
from githubapp.client import GitHubApp  # noqa: E402
from githubapp.pacing import WritePacer  # noqa: E402

ANSWER = b'{"id": 1, "body": "Welcome!", "html_url": "https://github.com/o/r/issues/1#issuecomment-1"}'
HEADERS = {
    "Content-Type": "application/json; charset=utf-8",
    "X-RateLimit-Limit": "5000",
    "X-RateLimit-Remaining": "4999",
    "X-RateLimit-Used": "1",
    "X-RateLimit-Reset": "4102444800",
    "X-RateLimit-Resource": "core",
    "X-GitHub-Request-Id": "0000:1111:2222:3333:4444",
}


def serve(port: int, close: bool) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0" if close else "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            head = [f"{self.protocol_version} 201 Created", *(f"{k}: {v}" for k, v in HEADERS.items())]
            head.append(f"Content-Length: {len(ANSWER)}")
            # One write: headers and body apart would meet the client's delayed ACK on a kept-open connection.
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + ANSWER)
            self.close_connection = close

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def cpu_per_call(app: GitHubApp, calls: int) -> float:
    started = time.thread_time()
    for _ in range(calls):
        body = {"body": "Welcome! " * 40}
        app.request("POST", "/repos/o/r/issues/1/comments", token="ghs_bench", body=body, installation_id=1)
    return (time.thread_time() - started) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--close", action="store_true", help="the server closes the connection after each answer")
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = multiprocessing.Process(target=serve, args=(port, args.close), daemon=True)
    server.start()
    time.sleep(0.5)
    transport = GitHubApp(f"http://127.0.0.1:{port}", None, None, MemoryCache(), WritePacer(0))
    through_requests = GitHubApp(f"http://127.0.0.1:{port}", None, None, MemoryCache(), WritePacer(0))
    through_requests.transport = None
    figures: dict[str, list[float]] = {"transport": [], "requests": []}
    try:
        for app in (transport, through_requests):
            cpu_per_call(app, 200)  # warm-up: connections, imports
        for _ in range(args.rounds):
            figures["transport"].append(cpu_per_call(transport, args.calls))
            figures["requests"].append(cpu_per_call(through_requests, args.calls))
    finally:
        server.terminate()
    kept = "closed after each answer" if args.close else "kept open"
    print(f"CPU ms per GitHub call (POST a comment, 201), connection {kept}, {args.calls} calls x {args.rounds}:")
    for name, values in figures.items():
        print(f"  {name:9s} {min(values):.3f} best, {' '.join(f'{v:.3f}' for v in values)}")


if __name__ == "__main__":
    main()
