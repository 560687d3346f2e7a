"""GitHub's REST calls on the standard library's `http.client`, on connections kept open for the next call.

Why not requests for these calls: its session, adapter and urllib3's pool cost 0.5-0.8 ms of CPU per
call, where `http.client` on a kept-open connection costs 0.27 ms (`bench/README.md`, "The GitHub
transport"), and a greeting's comment is a third of its processing. What requests does that these calls
need is done here the same way: the URL requoted and the query encoded as requests does, the JSON body
as requests writes it, TLS verified against requests' CA bundle (or REQUESTS_CA_BUNDLE), a connect
timeout apart from the read timeout, a connection the server closed while idle replaced before use.
What they seldom need stays with requests (`githubapp.client` decides): a proxy from the environment,
and following a redirect.

A request that fails on a kept-open connection is sent once more on a new one only when it could not
have acted twice (GET, HEAD, PUT, DELETE): a POST or PATCH that may have reached GitHub fails as a
connection error, as it does with requests, and the delivery's retry and its intent record decide.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import socket
import ssl
import threading
import weakref
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from requests.structures import CaseInsensitiveDict
from requests.utils import requote_uri

from domain import json_text

CONNECT_TIMEOUT_SECONDS = 5.0
KEPT_OPEN = 64  # idle connections kept for reuse: more than the threads that call GitHub at once
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Sent again on a new connection when a kept-open one fails: they change nothing when they act twice.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# What a server closing a kept-open connection looks like to the next request on it.
_DROPPED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class Answer:
    """What `Transport.send` got back: the parts of `requests.Response` the client reads."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: CaseInsensitiveDict[str], content: bytes):
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def is_redirect(self) -> bool:
        return self.status_code in REDIRECTS and "Location" in self.headers

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """A listing page of 100 issues is about 600 KB: 1.1 ms with orjson against 3.0 with json."""
        return json_text.loads(self.content)


class Transport:
    """Calls to one origin (GitHub's API: scheme, host and port of `base_url`)."""

    def __init__(self, base_url: str, verify: bool | str = True):
        """`verify`: the session's, True (requests' CA bundle) or a bundle's path (REQUESTS_CA_BUNDLE)."""
        parts = urlsplit(base_url)
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.context: ssl.SSLContext | None = None
        if parts.scheme == "https":
            bundle = verify if isinstance(verify, str) else requests.utils.DEFAULT_CA_BUNDLE_PATH
            self.context = ssl.create_default_context(cafile=bundle)
        self._lock = threading.Lock()
        self._idle: list[http.client.HTTPConnection] = []  # most recently used last
        self._pid = os.getpid()
        weakref.finalize(self, _close_all, self._idle, self._lock)

    def serves(self, url: str) -> bool:
        """Whether `url` is on this origin (another host's, a redirect's, goes through requests)."""
        return url.startswith(self.origin) and url[len(self.origin) : len(self.origin) + 1] in ("/", "?", "")

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        params: Mapping[str, Any] | None,
        body: Any,
        timeout: float,
    ) -> Answer:
        """One request; raises `requests.Timeout` or `requests.ConnectionError` as requests would."""
        target = requote_uri(url[len(self.origin) :] or "/")
        query = _encoded(params)
        if query:
            target += ("&" if "?" in target else "?") + query
        data = None
        all_headers = dict(headers)
        if body is not None:
            data = json.dumps(body, allow_nan=False).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        connection, kept = self._take(timeout)
        try:
            answer = self._exchange(connection, method, target, data, all_headers)
        except _DROPPED as exc:
            connection.close()
            if not (kept and method in IDEMPOTENT):
                raise requests.ConnectionError(f"GitHub closed the connection: {exc!r}") from exc
            connection, _ = self._take(timeout, fresh=True)
            try:
                answer = self._exchange(connection, method, target, data, all_headers)
            except _DROPPED as again:
                connection.close()
                raise requests.ConnectionError(f"GitHub closed the connection: {again!r}") from again
        self._give(connection)
        return answer

    def _exchange(
        self,
        connection: http.client.HTTPConnection,
        method: str,
        target: str,
        data: bytes | None,
        headers: dict[str, str],
    ) -> Answer:
        try:
            connection.request(method, target, body=data, headers=headers)
            response = connection.getresponse()
            content = response.read()
        except _DROPPED:
            raise
        except TimeoutError as exc:
            connection.close()
            raise requests.Timeout(f"no answer from {self.host}: {exc}") from exc
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise requests.ConnectionError(f"cannot connect to {self.host}: {exc!r}") from exc
        if response.will_close:
            connection.close()
        answer_headers = _headers(response.getheaders())
        if answer_headers.get("Content-Encoding", "").lower() == "gzip":  # not asked for (identity is), but possible
            content = zlib.decompress(content, 47)
        return Answer(response.status, answer_headers, content)

    def _take(self, timeout: float, fresh: bool = False) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection (True: kept from an earlier call) or a new one."""
        with self._lock:
            if self._pid != os.getpid():  # forked: the idle sockets are the parent's
                self._idle.clear()
                self._pid = os.getpid()
            while self._idle and not fresh:
                connection = self._idle.pop()
                if connection.sock is not None and not _closed_meanwhile(connection.sock):
                    connection.sock.settimeout(timeout)
                    return connection, True
                connection.close()
        return self._open(timeout), False

    def _give(self, connection: http.client.HTTPConnection) -> None:
        """Keep an answered connection for the next call (a closed one is left: the next opens anew)."""
        if connection.sock is None:
            return
        with self._lock:
            if len(self._idle) < KEPT_OPEN and self._pid == os.getpid():
                self._idle.append(connection)
                return
        connection.close()

    def _open(self, timeout: float) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self.context is not None:
            connection = http.client.HTTPSConnection(
                self.host, self.port, timeout=CONNECT_TIMEOUT_SECONDS, context=self.context
            )
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=CONNECT_TIMEOUT_SECONDS)
        try:
            connection.connect()
        except TimeoutError as exc:
            connection.close()
            raise requests.ConnectTimeout(f"cannot connect to {self.host}: {exc}") from exc
        except OSError as exc:
            connection.close()
            raise requests.ConnectionError(f"cannot connect to {self.host}: {exc!r}") from exc
        assert connection.sock is not None
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.sock.settimeout(timeout)
        return connection


def _close_all(idle: list[http.client.HTTPConnection], lock: threading.Lock) -> None:
    """The idle connections of a transport no longer used (its finalizer): closed, not left to the GC."""
    with lock:
        connections = list(idle)
        idle.clear()
    for connection in connections:
        connection.close()


def _closed_meanwhile(sock: socket.socket) -> bool:
    """A kept-open connection with something to read before we asked anything: the server's close (or
    bytes nobody asked for). urllib3 checks its pooled connections the same way."""
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _headers(pairs: list[tuple[str, str]]) -> CaseInsensitiveDict[str]:
    """A repeated header's values joined with ", ", as urllib3 gives them to requests."""
    headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
    for name, value in pairs:
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _encoded(params: Mapping[str, Any] | None) -> str:
    """The query as requests encodes it: a list gives the key once per value, None leaves the key out."""
    if not params:
        return ""
    pairs: list[tuple[str, Any]] = []
    for key, value in params.items():
        values = value if isinstance(value, list | tuple) else [value]
        pairs.extend((key, item) for item in values if item is not None)
    return urlencode(pairs)
