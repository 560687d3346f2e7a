"""Local development like Probot's: deliveries that reach a smee-style channel are forwarded to this
machine's app, with their signatures intact, so GitHub can "deliver" to a laptop it cannot reach.

A channel (smee.io, a self-hosted smee) takes GitHub's POST and streams it to its listeners as a
server-sent event whose data is a JSON envelope: the request's headers with lower-cased names
(`x-github-event`, `x-github-delivery`, `x-hub-signature-256`, `content-type`, ...), `body` (the payload,
parsed), `query` and `timestamp`. The forwarder POSTs the body to the local webhook path with the
`x-github-*`, `x-hub-*` and `content-type` headers only, and the app verifies the signature as it would
GitHub's: nothing is re-signed, so a changed body is refused (401), never trusted.

The signature covers the bytes GitHub sent, and a channel that parsed the body may not give them back:
- an envelope member `rawbody` (a channel that keeps the raw text) is those bytes;
- otherwise the body's own text in the envelope, untouched: the channel's `JSON.stringify`, which is
  smee-client's own re-serialisation (compact, non-ASCII as UTF-8, as GitHub writes it);
- GitHub writes a control character's escape in upper case (`\\u001B`), JavaScript in lower case: that
  variant too, as @octokit/webhooks normalises it (octokit/webhooks.js#71);
- and a compact re-serialisation, for a channel that wrote the envelope with spaces.
With the webhook secret the forwarder sends the first of these whose HMAC matches the delivery's signature;
when none does (a body the channel changed beyond repair, e.g. a float GitHub wrote as `1.0`, or one
tampered with), it sends the first anyway and the app answers 401, which is logged.
"""

from __future__ import annotations

import hmac
import ipaddress
import itertools
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from ops import sse
from webhooks.signature import sign

log = logging.getLogger(__name__)

RAW_BODY_MEMBERS = ("rawbody", "rawBody", "raw_body")
FORWARDED_PREFIXES = ("x-github-", "x-hub-")
READY, PING = "ready", "ping"  # smee's events: sent on connecting, and every 30 s as a keepalive
# A channel pings every 30 s; a connection silent for three pings is dead, though TCP has not noticed.
READ_TIMEOUT_SECONDS = 90.0
CONNECT_TIMEOUT_SECONDS = 10.0
FORWARD_TIMEOUT_SECONDS = 30.0
FORWARD_TRIES = 3  # the app restarting (connection refused) or its database away (503): tried again
REMEMBERED_DELIVERIES = 1000  # forwarded ids, so an event the channel replays is not posted twice
_LOWER_CONTROL_ESCAPES = tuple(f"\\u{code:04x}" for code in range(0x20) if not f"{code:04x}".isdigit())
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


class EnvelopeError(ValueError):
    """The event's data is not a channel's webhook envelope."""


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes
    signature_matches: bool | None  # None: no secret or no signature to check against

    @property
    def delivery_id(self) -> str | None:
        return self.headers.get("x-github-delivery")

    @property
    def event(self) -> str | None:
        return self.headers.get("x-github-event")


def local_target(host: str, port: int, path: str) -> str:
    """The app's webhook address on this machine; anything else is refused, so a channel's events can
    never be sent on to another host."""
    name = host.strip().strip("[]").lower()
    if name in ("0.0.0.0", "::", ""):
        name = "127.0.0.1"  # listening on every interface: reachable on the loopback one
    try:
        loopback = ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = name in _LOOPBACK_NAMES
    if not loopback:
        raise ValueError(f"the forwarder sends only to this machine's app (127.0.0.1, ::1, localhost), not {host!r}")
    if not 0 < port < 65536:
        raise ValueError(f"PORT must be a TCP port (1-65535), got {port}")
    shown = f"[{name}]" if ":" in name else name
    return f"http://{shown}:{port}{path}"


def channel_host(url: str) -> str:
    """A channel's address without its path: the path is the channel, readable and writable by anyone
    who knows it, so it is kept out of logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def members(text: str) -> dict[str, str]:
    """The JSON text of each member of the object `text` is, as written (no re-serialisation)."""
    decoder = json.JSONDecoder()
    found: dict[str, str] = {}
    at = _skip(text, 0)
    if text[at : at + 1] != "{":
        raise EnvelopeError("an event's data must be a JSON object")
    at = _skip(text, at + 1)
    try:
        while text[at : at + 1] != "}":
            name, at = decoder.raw_decode(text, at)
            at = _skip(text, at)
            if not isinstance(name, str) or text[at : at + 1] != ":":
                raise EnvelopeError("an event's data is not valid JSON")
            start = _skip(text, at + 1)
            _, at = decoder.raw_decode(text, start)
            found[name] = text[start:at]
            at = _skip(text, at)
            if text[at : at + 1] == ",":
                at = _skip(text, at + 1)
            elif text[at : at + 1] != "}":
                raise EnvelopeError("an event's data is not valid JSON")
    except json.JSONDecodeError as exc:
        raise EnvelopeError(f"an event's data is not valid JSON ({exc.msg})") from None
    if _skip(text, at + 1) != len(text):
        raise EnvelopeError("an event's data has text after its JSON object")
    return found


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\n\r":
        at += 1
    return at


def bodies(found: dict[str, str]) -> Iterator[bytes]:
    """The bodies the envelope may stand for, the likeliest to be GitHub's bytes first, each made only
    when the ones before did not match (a payload may be 25 MB)."""
    seen: set[bytes] = set()
    for text in _body_texts(found):
        body = text.encode("utf-8", errors="surrogatepass")
        if body not in seen:
            seen.add(body)
            yield body
    if not seen:
        raise EnvelopeError("the envelope has no body")


def _body_texts(found: dict[str, str]) -> Iterator[str]:
    for name in RAW_BODY_MEMBERS:
        if name in found and isinstance(raw := json.loads(found[name]), str):
            yield raw
    if "body" not in found:
        return
    if found["body"].startswith('"'):
        yield json.loads(found["body"])  # a channel that kept a body it could not parse, as text
        return
    yield found["body"]
    yield _upper_escapes(found["body"])
    compact = json.dumps(json.loads(found["body"]), separators=(",", ":"), ensure_ascii=False)
    yield compact
    yield _upper_escapes(compact)


def _upper_escapes(text: str) -> str:
    """JSON text with its control characters' escapes in upper-case hex, as GitHub writes them. JSON
    escapes only control characters as \\u00XX (the rest have short forms or are written as they are);
    an escaped backslash is set aside first so that a literal "\\u001b" typed in a comment stays as it is.
    str.replace, not a regular expression: a 25 MB body may hold millions of them."""
    if "\\u00" not in text:
        return text
    text = text.replace("\\\\", "\0")  # NUL cannot occur in JSON text: control characters are escaped
    for lower in _LOWER_CONTROL_ESCAPES:
        text = text.replace(lower, lower.upper().replace("\\U", "\\u"))
    return text.replace("\0", "\\\\")


def envelope(data: str, secret: str | None) -> Delivery:
    """The delivery a channel's event carries: the headers the app reads, and the body that matches
    the signature when one does."""
    found = members(data)
    headers: dict[str, str] = {}
    for name, text in found.items():
        lowered = name.lower()
        if lowered == "content-type" or lowered.startswith(FORWARDED_PREFIXES):
            value = json.loads(text)
            if isinstance(value, str) and "\r" not in value and "\n" not in value:
                headers[lowered] = value
    headers.setdefault("content-type", "application/json")
    candidates = bodies(found)
    first = next(candidates)
    signature = headers.get("x-hub-signature-256")
    if not (secret and signature):
        return Delivery(headers, first, None)
    expected = signature.strip().encode()
    for body in itertools.chain([first], candidates):
        if hmac.compare_digest(sign(secret, body).encode(), expected):
            return Delivery(headers, body, True)
    return Delivery(headers, first, False)


class ChannelError(Exception):
    """The channel answered, but not with an event stream (a wrong address, a blocked channel)."""


class Forwarder:
    """Listens to one channel and forwards its deliveries to the local app until stopped, reconnecting
    with backoff (the channel's `retry`, else 1 s doubling to a minute) and Last-Event-ID."""

    def __init__(
        self,
        source: str,
        target: str,
        secret: str | None,
        *,
        session: requests.Session | None = None,
        first_backoff: float = 1.0,
        max_backoff: float = 60.0,
        read_timeout: float = READ_TIMEOUT_SECONDS,
    ):
        self.source, self.target, self._secret = source, target, secret
        self._session = session or requests.Session()
        self._first_backoff, self._max_backoff = first_backoff, max_backoff
        self._read_timeout = read_timeout
        self._stopped = threading.Event()
        self._response: requests.Response | None = None
        self._forwarded: OrderedDict[str, None] = OrderedDict()
        self.last_event_id: str | None = None
        self._retry_seconds: float | None = None
        self._heard = False  # this connection brought an event: the channel works, the backoff starts over

    def run(self) -> None:
        delay = self._first_backoff
        while not self._stopped.is_set():
            self._heard = False
            try:
                self._listen()
                problem = "the channel closed the stream"
            except (requests.RequestException, ChannelError, sse.StreamError) as exc:
                problem = str(exc) if isinstance(exc, ChannelError | sse.StreamError) else type(exc).__name__
            if self._stopped.is_set():
                break
            if self._heard:
                delay = self._first_backoff
            wait = self._retry_seconds if self._heard and self._retry_seconds is not None else delay
            where = channel_host(self.source)
            log.warning("channel %s: %s; reconnecting in %.1f s", where, problem, wait, extra={"retry_in": wait})
            self._stopped.wait(wait)
            if not self._heard:
                delay = min(delay * 2, self._max_backoff)

    def stop(self) -> None:
        self._stopped.set()
        response = self._response
        if response is not None:
            response.close()

    def _listen(self) -> None:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache", "Accept-Encoding": "identity"}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        parser = sse.Parser()  # a new one: an event the drop cut in two is dropped with the old one
        parser.last_event_id = parser.dispatched_id = self.last_event_id
        with self._session.get(
            self.source, headers=headers, stream=True, timeout=(CONNECT_TIMEOUT_SECONDS, self._read_timeout)
        ) as response:
            self._response = response
            if response.status_code != 200:
                raise ChannelError(f"the channel answered {response.status_code}, not an event stream")
            if not response.headers.get("Content-Type", "").startswith("text/event-stream"):
                raise ChannelError("the channel answered something other than an event stream (text/event-stream)")
            while not self._stopped.is_set() and (chunk := response.raw.read1(65536)):
                for event in parser.feed(chunk):
                    self._heard = True
                    self._handle(event)
                self.last_event_id = parser.dispatched_id
                if parser.retry_ms is not None:
                    self._retry_seconds = parser.retry_ms / 1000

    def _handle(self, event: sse.ServerSentEvent) -> None:
        if event.event == READY:
            log.info("connected to channel %s; forwarding to %s", channel_host(self.source), self.target)
        elif event.event == sse.MESSAGE:
            self.forward(event.data)
        elif event.event != PING:
            log.debug("channel event %r ignored", event.event)

    def forward(self, data: str) -> int | None:
        """POST one envelope's delivery to the app; its answer's status (None: the app was unreachable)."""
        try:
            delivery = envelope(data, self._secret)
        except EnvelopeError as exc:
            log.warning("channel event skipped: %s", exc)
            return None
        fields: dict[str, object] = {"delivery_id": delivery.delivery_id, "event": delivery.event}
        if delivery.delivery_id and delivery.delivery_id in self._forwarded:
            log.info("delivery already forwarded; the channel sent it again", extra={**fields, "outcome": "duplicate"})
            return None
        if delivery.signature_matches is False:
            log.warning(
                "no form of this body matches its signature: the channel changed it, or the secret differs; "
                "the app will refuse it",
                extra=fields,
            )
        status = self._post(delivery)
        if status is not None and 200 <= status < 300 and delivery.delivery_id:
            self._forwarded[delivery.delivery_id] = None
            while len(self._forwarded) > REMEMBERED_DELIVERIES:
                self._forwarded.popitem(last=False)
        if status == 401:
            refused = "forwarded; the app refused it: bad signature (check WEBHOOK_SECRET)"
            log.warning(refused, extra={**fields, "status": status})
        elif status is None or status >= 400:
            log.error("forwarding failed", extra={**fields, "status": status})
        else:
            log.info("forwarded", extra={**fields, "status": status})
        return status

    def _post(self, delivery: Delivery) -> int | None:
        status = None
        for attempt in range(FORWARD_TRIES):
            try:
                response = self._session.post(
                    self.target, data=delivery.body, headers=delivery.headers, timeout=FORWARD_TIMEOUT_SECONDS
                )
                response.close()
                status = response.status_code
            except requests.RequestException:
                status = None
            if status is not None and status < 500:
                return status
            if attempt + 1 < FORWARD_TRIES and self._stopped.wait(0.5 * 2**attempt):
                break
        return status
