"""A local smee-style channel: what GitHub would POST to smee.io, streamed to listeners as server-sent
events the way smee.io writes them (a `ready` event on connecting, `ping` keepalives, each delivery a
`message` whose data is the request's lower-cased headers with `body`, `query` and `timestamp`).

Unlike smee.io it numbers events across connections and honours Last-Event-ID, and a test can cut the
stream, also in the middle of an event, to see the forwarder reconnect without losing or repeating one.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from webhooks.signature import sign

CHANNEL = "/EngageTestChannel1"
_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u([0-9a-f]{4})")


def github_bytes(payload: dict[str, Any]) -> bytes:
    """A payload as GitHub serialises it: compact, non-ASCII as UTF-8, control characters escaped with
    upper-case hex (JavaScript and Python write lower case)."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return re.sub(
        r"(?<!\\)((?:\\\\)*)\\u([0-9a-f]{4})", lambda m: m.group(1) + "\\u" + m.group(2).upper(), text
    ).encode()


def stringify(value: Any) -> str:
    """JavaScript's JSON.stringify, as smee.io writes an envelope (for the values payloads hold)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class FakeChannel:
    def __init__(self, secret: str, keepalive_seconds: float = 0.2):
        self.secret = secret
        self.keepalive_seconds = keepalive_seconds
        self._events: list[tuple[int, str]] = []  # (id, the event's SSE text)
        self._cond = threading.Condition()
        self._cut = 0  # bumped to end every open stream
        self._cut_mid_event = False  # the next event written is cut in two, then the stream ends
        self.replay_everything = False  # a channel that ignores Last-Event-ID and sends all again
        self.last_event_ids: list[str | None] = []  # each connection's Last-Event-ID
        self.closed = False
        channel = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != CHANNEL:
                    self.send_error(404)
                    return
                if self.headers.get("Accept") != "text/event-stream":
                    self.send_error(406)
                    return
                channel._stream(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}{CHANNEL}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def publish(
        self,
        event: str,
        payload: dict[str, Any],
        *,
        delivery_id: str | None = None,
        signed_body: bytes | None = None,
        raw_body: bool = False,
        data_lines: bool = False,
        crlf: bool = False,
    ) -> str:
        """What GitHub's POST of `payload` to the channel becomes on the stream. `signed_body`: the bytes
        GitHub signed, if not its compact form (a test tampers by signing one body and sending another);
        `raw_body`: the channel keeps them as `rawbody`; `data_lines`: one `data:` line per envelope member;
        `crlf`: lines end in CRLF."""
        delivery_id = delivery_id or str(uuid.uuid4())
        body = github_bytes(payload) if signed_body is None else signed_body
        envelope: dict[str, Any] = {
            "host": "smee.io",
            "connection": "close",
            "user-agent": "GitHub-Hookshot/044aadd",
            "content-type": "application/json",
            "x-github-event": event,
            "x-github-delivery": delivery_id,
            "x-github-hook-id": "292430182",
            "x-github-hook-installation-target-type": "integration",
            "x-hub-signature": "sha1=not-checked-by-the-app",
            "x-hub-signature-256": sign(self.secret, body),
            "body": payload,
            "query": {},
            "timestamp": int(time.time() * 1000),
        }
        if raw_body:
            envelope["rawbody"] = body.decode()
        members = [f"{stringify(name)}:{stringify(value)}" for name, value in envelope.items()]
        data = "".join(f"data: {line}\n" for line in ("{" + ",\n".join(members) + "}").split("\n"))
        if not data_lines:
            data = f"data: {'{' + ','.join(members) + '}'}\n"
        with self._cond:
            number = len(self._events) + 1
            text = f"id: {number}\n{data}\n"
            self._events.append((number, text.replace("\n", "\r\n") if crlf else text))
            self._cond.notify_all()
        return delivery_id

    def cut(self, mid_event: bool = False) -> None:
        """End every open stream now, or (mid_event) in the middle of the next event it writes."""
        with self._cond:
            if mid_event:
                self._cut_mid_event = True
            else:
                self._cut += 1
            self._cond.notify_all()

    def wait_for_listeners(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.last_event_ids) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{count} connection(s) expected, {len(self.last_event_ids)} made")
                self._cond.wait(remaining)

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cut += 1
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def _stream(self, handler: BaseHTTPRequestHandler) -> None:
        last = handler.headers.get("Last-Event-ID")
        with self._cond:
            self.last_event_ids.append(last)
            cut_at_start = self._cut
            self._cond.notify_all()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.end_headers()
        out = handler.wfile
        sent = 0 if self.replay_everything or not last else int(last)
        try:
            out.write(b"retry: 50\n\nevent: ready\ndata: {}\n\n")
            out.flush()
            while True:
                with self._cond:
                    if self._cut != cut_at_start or self.closed:
                        break
                    pending = [text for number, text in self._events if number > sent]
                    if not pending:
                        self._cond.wait(self.keepalive_seconds)
                        pending = [text for number, text in self._events if number > sent]
                    cut_mid_event = self._cut_mid_event and bool(pending)
                    self._cut_mid_event = self._cut_mid_event and not pending
                if cut_mid_event:
                    first = pending[0].encode()
                    out.write(first[: len(first) // 2])
                    out.flush()
                    break
                for text in pending:
                    out.write(text.encode())
                    sent += 1
                if not pending:
                    out.write(b": keepalive\n\nevent: ping\ndata: {}\n\n")
                out.flush()
        except OSError:
            return
        handler.close_connection = True
        with contextlib.suppress(OSError):
            handler.connection.shutdown(socket.SHUT_RDWR)
