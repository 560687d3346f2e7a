"""Server-sent events: a stream's bytes in, its events out (pure, no I/O), as the WHATWG HTML standard's
"event stream interpretation" describes them, so any channel that speaks SSE works (smee.io, a self-hosted
smee, the tests' fake).

Lines end in CRLF, LF or CR (a CR at the end of one chunk may be the first half of a CRLF split across
two reads); a blank line dispatches the event; `:` starts a comment (keepalives); `data` lines join with
LF; `id` persists as the last event id until the next one (what a reconnection sends as Last-Event-ID);
`retry` is the reconnection delay in milliseconds. An event without data is not dispatched, and an event
cut off by the end of the stream is dropped, never half-delivered.
"""

from __future__ import annotations

from dataclasses import dataclass

MESSAGE = "message"
# A channel is reachable by anyone who knows its address: an event larger than any webhook could make
# (GitHub's cap is 25 MB; its JSON in an envelope, a raw copy beside it) ends the stream, not the memory.
MAX_EVENT_BYTES = 128 * 1024 * 1024


class StreamError(ValueError):
    """The stream broke the rules in a way that ends it (an event too large to be a webhook)."""


@dataclass(frozen=True)
class ServerSentEvent:
    event: str
    data: str
    id: str | None  # the last event id when this event was dispatched (the stream's, not only this event's)


class Parser:
    """Feed it chunks as they arrive; it returns the events they complete."""

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._max = max_event_bytes
        self._size = 0  # bytes of the event being read, its lines so far
        self._pending: list[bytes] = []  # a line not yet ended, in the pieces it came in (a payload may be MBs)
        self._after_cr = False  # the previous chunk ended with CR: a leading LF belongs to it
        self._at_start = True  # a byte order mark may open the stream, and is not part of its first line
        self._data: list[str] = []
        self._event = ""
        self.last_event_id: str | None = None  # the buffer: the latest `id` line read
        self.dispatched_id: str | None = None  # as of the last complete event: what a reconnection resumes from
        self.retry_ms: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        if self._at_start and chunk:
            if len(chunk) < 3 and b"\xef\xbb\xbf".startswith(chunk):
                self._pending.append(chunk)  # too short to tell yet: decided when the next bytes come
                return []
            chunk = b"".join([*self._pending, chunk]).removeprefix(b"\xef\xbb\xbf")
            self._pending, self._at_start = [], False
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._after_cr = chunk.endswith(b"\r")
        self._size += len(chunk)
        if self._size > self._max:
            raise StreamError(f"an event larger than {self._max} bytes: not a webhook")
        if b"\n" not in chunk and b"\r" not in chunk:
            self._pending.append(chunk)  # joined once, when the line ends: not once per read
            return []
        lines = b"".join([*self._pending, chunk]).replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        self._pending = [lines.pop()]  # after the last line end: incomplete (b"" when the chunk ended a line)
        events = []
        for line in lines:
            event = self._line(line.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: smee and most servers send these (or `ping` events) as keepalives
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        return None  # an unknown field is ignored, as the standard says

    def _dispatch(self) -> ServerSentEvent | None:
        data, event = self._data, self._event
        self._data, self._event, self._size = [], "", 0
        self.dispatched_id = self.last_event_id
        if not data:
            return None
        return ServerSentEvent(event or MESSAGE, "\n".join(data), self.last_event_id)
