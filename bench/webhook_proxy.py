"""What the local-development forwarder (ops/webhook_proxy.py) costs: deliveries a second from the fake
smee channel to a WSGI app that verifies each signature, and the time to find the signed body of a
25 MB payload, plain and full of control characters (the case where smee's re-serialisation differs
from GitHub's and the upper-case variant is needed).

    .venv/bin/python bench/webhook_proxy.py
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from werkzeug.serving import make_server

from ops.webhook_proxy import Forwarder, envelope
from tests.conftest import example, installed
from tests.support.fake_channel import FakeChannel, github_bytes, stringify
from webhooks.signature import sign, verify

SECRET = "bench-secret"
COUNT = 300


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    received: list[float] = []

    def app(environ: dict[str, Any], start: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        verify(SECRET, body, environ["HTTP_X_HUB_SIGNATURE_256"])
        received.append(time.monotonic())
        start("202 Accepted", [("Content-Length", "0")])
        return [b""]

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    channel = FakeChannel(SECRET)
    forwarder = Forwarder(channel.url, f"http://127.0.0.1:{server.server_port}/hooks", SECRET)
    threading.Thread(target=forwarder.run, daemon=True).start()
    channel.wait_for_listeners(1)
    payload = installed(example("issues.opened.1"))
    started = time.monotonic()
    for _ in range(COUNT):
        channel.publish("issues", payload)
    while len(received) < COUNT:
        time.sleep(0.005)
    rate = COUNT / (received[-1] - started)
    print(f"{COUNT} deliveries of {len(github_bytes(payload))} bytes, channel to app: {rate:.0f}/s")
    for label, text in (("plain", "安装 <x> 崩溃 "), ("with control characters", "安装 <x> \x1b ")):
        big = installed(example("issues.opened.1"))
        big["issue"]["body"] = text * (24_000_000 // len(text.encode()))
        body = github_bytes(big)
        data = stringify({"x-github-event": "issues", "x-hub-signature-256": sign(SECRET, body), "body": big})
        began = time.perf_counter()
        delivery = envelope(data, SECRET)
        took = time.perf_counter() - began
        print(f"signed body of {len(body) / 1e6:.1f} MB found, {label}: {took:.2f} s ({delivery.signature_matches})")
    forwarder.stop()
    channel.close()


if __name__ == "__main__":
    main()
