"""The GitHub client's own HTTP transport (githubapp.transport) against servers that keep connections
open, close them while idle, drop them mid-request, or speak TLS: what real GitHub and the networks
between do, and the fake GitHub (which answers every call) does not."""

from __future__ import annotations

import contextlib
import datetime
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from githubapp.cache import MemoryCache
from githubapp.client import GitHubApp
from githubapp.errors import Unavailable
from githubapp.pacing import WritePacer

ANSWER = b'{"id": 1, "body": "hello"}'
# What the server does with each request it reads on a connection: answer it, or close without a word.
ANSWERS, CLOSE = "answer", "close"


class KeepAliveServer:
    """HTTP/1.1 on a raw socket: answers with Content-Length and keeps the connection open, as GitHub does.

    `plan(connection number, request number on it)` says what to do with each request; `requests` records
    (connection number, method, path, body) of every request read, answered or not."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.tls = tls
        self.plan: Callable[[int, int], str] = lambda connection, number: ANSWERS
        self.requests: list[tuple[int, str, str, bytes]] = []
        self.connections = 0
        self.open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://localhost:{self.port}"

    def close_idle(self) -> None:
        """The server's idle timeout: it closes every connection it keeps open."""
        with self._lock:
            for sock in self.open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # close() alone waits for the reader's file to close
                sock.close()
            self.open.clear()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            if self.tls is not None:
                try:
                    sock = self.tls.wrap_socket(sock, server_side=True)
                except (ssl.SSLError, OSError):
                    sock.close()
                    continue
            with self._lock:
                self.connections += 1
                self.open.append(sock)
                number = self.connections
            threading.Thread(target=self._serve, args=(sock, number), daemon=True).start()

    def _serve(self, sock: socket.socket, connection: int) -> None:
        reader = sock.makefile("rb")
        number = 0
        try:
            while True:
                line = reader.readline()
                if not line:
                    return
                method, path, _ = line.decode().split(" ", 2)
                length = 0
                while (header := reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                body = reader.read(length) if length else b""
                number += 1
                with self._lock:
                    self.requests.append((connection, method, path, body))
                if self.plan(connection, number) == CLOSE:
                    sock.shutdown(socket.SHUT_RDWR)
                    return
                head = f"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {len(ANSWER)}\r\n"
                sock.sendall(head.encode() + b"X-RateLimit-Remaining: 4999\r\n\r\n" + ANSWER)
        except (OSError, ValueError):
            return
        finally:
            reader.close()
            sock.close()

    def stop(self) -> None:
        self.listener.close()
        self.close_idle()


@pytest.fixture
def server() -> Iterator[KeepAliveServer]:
    running = KeepAliveServer()
    yield running
    running.stop()


def app_for(url: str, timeout: float = 5.0) -> GitHubApp:
    return GitHubApp(url, None, None, MemoryCache(), WritePacer(0), timeout=timeout)


def post(app: GitHubApp, body: str = "hello") -> object:
    return app.request("POST", "/repos/o/r/issues/1/comments", token="ghs_test", body={"body": body}).data


def get(app: GitHubApp) -> object:
    return app.request("GET", "/repos/o/r/issues/1", token="ghs_test").data


def test_calls_share_one_kept_open_connection(server):
    """On real GitHub a new connection is a TLS handshake: a thread's calls reuse the one it has."""
    app = app_for(server.url)
    for _ in range(3):
        assert post(app) == {"id": 1, "body": "hello"}
    assert server.connections == 1 and len(server.requests) == 3
    assert json.loads(server.requests[0][3]) == {"body": "hello"}


def test_a_connection_the_server_closed_while_idle_is_replaced_before_the_comment(server):
    """GitHub closes connections left idle: the next comment goes on a new one, once, without an error."""
    app = app_for(server.url)
    post(app, "first")
    server.close_idle()
    assert post(app, "second") == {"id": 1, "body": "hello"}
    assert [json.loads(body)["body"] for _, _, _, body in server.requests] == ["first", "second"]
    assert server.connections == 2


def test_a_read_dropped_on_a_kept_open_connection_is_asked_again(server):
    """A GET cannot act twice: when the kept-open connection dies under it, it is sent once more."""
    app = app_for(server.url)
    get(app)
    server.plan = lambda connection, number: CLOSE if (connection, number) == (1, 2) else ANSWERS
    assert get(app) == {"id": 1, "body": "hello"}
    assert [(connection, method) for connection, method, _, _ in server.requests] == [
        (1, "GET"),
        (1, "GET"),
        (2, "GET"),
    ]


def test_a_comment_dropped_after_it_was_sent_is_not_sent_twice(server):
    """A POST that reached GitHub may have acted: it fails as a connection error (the delivery's retry and
    its intent record decide), rather than being sent again and posting the comment twice."""
    app = app_for(server.url)
    post(app, "first")
    server.plan = lambda connection, number: CLOSE if (connection, number) == (1, 2) else ANSWERS
    with pytest.raises(Unavailable, match="cannot connect"):
        post(app, "second")
    assert [json.loads(body)["body"] for _, _, _, body in server.requests] == ["first", "second"]
    assert post(app, "third") == {"id": 1, "body": "hello"}, "the next call opens a new connection"


def test_a_server_that_does_not_answer_in_time_is_unavailable(server):
    app = app_for(server.url, timeout=0.3)
    answered = threading.Event()

    def never(connection: int, number: int) -> str:
        answered.wait(5)
        return ANSWERS

    server.plan = never
    with pytest.raises(Unavailable, match=r"no answer within 0\.3s"):
        get(app)
    answered.set()


def _certificate(tmp_path) -> tuple[str, str]:
    """A self-signed certificate for localhost (the CA bundle an operator points REQUESTS_CA_BUNDLE at)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_file), str(key_file)


def test_tls_is_verified_against_the_ca_bundle(tmp_path, monkeypatch):
    """GitHub Enterprise Server behind a company CA: REQUESTS_CA_BUNDLE names it, and a certificate no
    bundle vouches for is refused (nothing is sent)."""
    cert_file, key_file = _certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    tls = KeepAliveServer(tls=context)
    try:
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
        with pytest.raises(Unavailable, match="cannot connect"):
            post(app_for(tls.url))
        assert tls.requests == []
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert_file)
        trusting = app_for(tls.url)
        assert post(trusting) == {"id": 1, "body": "hello"}
        assert post(trusting) == {"id": 1, "body": "hello"}
        assert len(tls.requests) == 2 and tls.connections == 1, "one handshake for both calls"
    finally:
        tls.stop()
