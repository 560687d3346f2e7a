"""The GitHub App client against the fake GitHub over real HTTP (and its pure parts table-tested)."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import jwt as pyjwt
import pytest

from githubapp.auth import make_jwt
from githubapp.cache import MemoryCache, RedisCache
from githubapp.client import GitHubApp, _redirected, error_for, next_link
from githubapp.errors import (
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
    Unavailable,
    ValidationFailed,
    WritesThrottled,
)
from githubapp.pacing import WritePacer
from settings import load_private_key
from tests.conftest import APP_ID, INSTALLATION_ID, REPO, wait_for


def client(github, app_key, cache=None, pacer=None, app_id=APP_ID, timeout=10.0, dry_run=False):
    return GitHubApp(
        github.url, app_id, app_key[0], cache or MemoryCache(), pacer or WritePacer(0), dry_run=dry_run, timeout=timeout
    )


def test_jwt_follows_githubs_rules(app_key):
    now = 1_800_000_000
    token = make_jwt(APP_ID, load_private_key(app_key[0]), now)
    claims = pyjwt.decode(token, app_key[1], algorithms=["RS256"], options={"verify_exp": False, "verify_iat": False})
    assert claims["iss"] == str(APP_ID)
    assert claims["iat"] == now - 60, "iat is backdated 60 s against clock drift"
    assert now < claims["exp"] <= now + 600, "exp is in the future and at most 10 minutes ahead"
    assert pyjwt.get_unverified_header(token)["alg"] == "RS256"


def test_app_endpoints_use_the_jwt(github, app_key):
    assert client(github, app_key).as_app("GET", "/app").data["id"] == APP_ID


def test_installation_token_is_cached_until_near_expiry(github, app_key):
    gh = client(github, app_key)
    for number in (1, 2):
        gh.installation(INSTALLATION_ID).create_comment(REPO, number, "hello")
    assert github.tokens_issued == 1


def test_threads_finding_no_token_at_once_ask_github_for_one(github, app_key):
    """A burst of deliveries after a start: the worker threads share the one token fetched."""
    gh = client(github, app_key)
    github.delay_next("POST", r"/access_tokens$", 0.3)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda number: gh.installation(INSTALLATION_ID).list_comments(REPO, number), (1, 2, 1, 2)))
    assert github.tokens_issued == 1


def test_tokens_close_to_expiry_are_renewed(github, app_key):
    github.token_expiry_seconds = 4 * 60  # inside the 5-minute refresh margin
    gh = client(github, app_key)
    gh.installation(INSTALLATION_ID).list_comments(REPO, 1)
    gh.installation(INSTALLATION_ID).list_comments(REPO, 1)
    assert github.tokens_issued == 2


def test_workers_share_tokens_through_redis(github, app_key, redis_url):
    import redis

    connection = redis.Redis.from_url(redis_url)
    try:
        for _ in range(2):  # two processes' worth of clients, one Redis
            client(github, app_key, cache=RedisCache(connection)).installation(INSTALLATION_ID).list_comments(REPO, 1)
        assert github.tokens_issued == 1
        assert not any(b"ghs_" in key for key in connection.keys("*")), "tokens are values, never key names"
    finally:
        connection.close()


def test_a_revoked_cached_token_is_replaced_once(github, app_key):
    gh = client(github, app_key)
    inst = gh.installation(INSTALLATION_ID)
    inst.list_comments(REPO, 1)
    github.fail_next("GET", r"/issues/1/comments", 401, body={"message": "Bad credentials"})
    inst.list_comments(REPO, 1)
    assert github.tokens_issued == 2


def test_wrong_app_id_names_the_fix(github, app_key):
    with pytest.raises(Unauthorized, match="check that APP_ID matches the private key"):
        client(github, app_key, app_id=APP_ID + 1).installation(INSTALLATION_ID).list_comments(REPO, 1)
    github.violations.clear()  # the fake rightly logged the refused JWT


def test_pagination_follows_link_headers(github, app_key):
    for n in range(1, 131):
        github.add_comment(REPO, 1, "Codertocat", f"comment {n}")
    comments = client(github, app_key).installation(INSTALLATION_ID).list_comments(REPO, 1)
    assert [c["body"] for c in comments] == [f"comment {n}" for n in range(1, 131)]
    pages = github.calls("GET", f"/repos/{REPO}/issues/1/comments")
    assert len(pages) == 2


def test_files_are_kept_until_forgotten_then_read_again_with_etags(github, app_key):
    github.set_file(REPO, ".github/engage.yml", "greeting:\n  enabled: true\n")
    app = client(github, app_key)
    inst = app.installation(INSTALLATION_ID)
    assert inst.read_file(REPO, ".github/engage.yml") == "greeting:\n  enabled: true\n"
    assert inst.read_file(REPO, ".github/engage.yml") == "greeting:\n  enabled: true\n"
    assert inst.read_file(REPO, "missing.yml") is None
    assert inst.read_file(REPO, "missing.yml") is None, "absence is kept too"
    statuses = [call.status for call in github.calls("GET", f"/repos/{REPO}/contents/")]
    assert statuses == [200, 404], "the copies answer the second reads"
    app.files.forget(REPO, [None], [".github/engage.yml"])  # what a push that changes it does
    assert inst.read_file(REPO, ".github/engage.yml") == "greeting:\n  enabled: true\n"
    assert github.calls("GET", f"/repos/{REPO}/contents/")[-1].status == 304, "unchanged: a free 304"
    github.set_file(REPO, ".github/engage.yml", "greeting:\n  enabled: false\n")
    app.files.forget(REPO, [None], [".github/engage.yml"])
    assert inst.read_file(REPO, ".github/engage.yml") == "greeting:\n  enabled: false\n"


def test_threads_finding_no_copy_of_a_file_at_once_read_it_from_github_once(github, app_key):
    """A burst of greetings after a start, or after a push changed the contributing guide: the worker
    threads share the one copy read."""
    github.set_file(REPO, "CONTRIBUTING.md", "# How to help\n")
    github.delay_next("GET", r"/contents/CONTRIBUTING\.md$", 0.3)
    gh = client(github, app_key)
    with ThreadPoolExecutor(4) as pool:
        texts = list(pool.map(lambda _: gh.installation(INSTALLATION_ID).read_file(REPO, "CONTRIBUTING.md"), range(4)))
    assert texts == ["# How to help\n"] * 4
    assert len(github.calls("GET", f"/repos/{REPO}/contents/CONTRIBUTING.md")) == 1


def test_files_are_read_from_github_while_the_shared_cache_is_down():
    """Redis gone costs a call per read, never the answer."""
    import redis

    from githubapp.files import FileCache

    files, reads = FileCache(RedisCache(redis.Redis.from_url("redis://127.0.0.1:1/0"))), []

    def fetch() -> str:
        reads.append(1)
        return "# How to help\n"

    assert [files.read(REPO, "CONTRIBUTING.md", None, fetch) for _ in range(2)] == ["# How to help\n"] * 2
    assert len(reads) == 2


def test_a_netrc_on_the_server_does_not_replace_the_apps_credentials(github, app_key, tmp_path, monkeypatch):
    """requests would send a `.netrc` entry for GitHub's host instead of the token the app set."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password their-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    gh = client(github, app_key)
    assert gh.as_app("GET", "/app").data["id"] == APP_ID
    gh.installation(INSTALLATION_ID).create_comment(REPO, 1, "hello")
    assert all(c.headers["Authorization"].startswith(("Bearer ", "token ")) for c in github.requests)


def test_the_proxy_from_the_environment_is_used(github, app_key, monkeypatch):
    """HTTPS_PROXY/HTTP_PROXY (and NO_PROXY) are read once, when the app starts, and then used for every call."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens there: a proxy that is down
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    through_proxy = client(github, app_key)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    bypassing = client(github, app_key)
    monkeypatch.delenv("HTTP_PROXY")
    with pytest.raises(Unavailable, match="cannot connect"):
        through_proxy.as_app("GET", "/app")
    assert bypassing.as_app("GET", "/app").data["id"] == APP_ID


def test_a_moved_resource_is_followed_and_the_token_stays_on_githubs_host(github, app_key):
    """GitHub answers 301 for a renamed or transferred repository: the call still gets its answer. A
    redirect to another host gets the request without the installation's token."""
    inst = client(github, app_key).installation(INSTALLATION_ID)
    moved = f"{github.url}/repos/{REPO}/issues/2"
    github.fail_next("GET", rf"/repos/{REPO}/issues/1$", 301, {"message": "Moved Permanently"}, {"Location": moved})
    assert inst.get(f"/repos/{REPO}/issues/1")["number"] == 2
    followed = [c for c in github.requests if c.path == f"/repos/{REPO}/issues/2"]
    assert followed and followed[-1].headers["Authorization"].startswith("Bearer ghs_")

    seen: list[dict[str, str]] = []

    class Elsewhere(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            answer = b'{"elsewhere": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    other = http.server.ThreadingHTTPServer(("localhost", 0), Elsewhere)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        away = f"http://localhost:{other.server_address[1]}/somewhere"
        github.fail_next("GET", rf"/repos/{REPO}/issues/1$", 302, {"message": "Found"}, {"Location": away})
        assert inst.get(f"/repos/{REPO}/issues/1") == {"elsewhere": True}
    finally:
        other.shutdown()
        other.server_close()
    assert len(seen) == 1 and "Authorization" not in seen[0]


def test_a_comment_redirected_with_307_is_posted_where_it_points(github, app_key):
    """A 307 (a transferred repository's write) keeps the method and the body: the comment lands once, there."""
    inst = client(github, app_key).installation(INSTALLATION_ID)
    there = f"{github.url}/repos/{REPO}/issues/2/comments"
    github.fail_next("POST", rf"/repos/{REPO}/issues/1/comments$", 307, {"message": "Moved"}, {"Location": there})
    assert inst.create_comment(REPO, 1, "hello there")["body"] == "hello there"
    posted = [c for c in github.requests if c.method == "POST" and c.path.endswith("/comments")]
    assert [(c.path, c.status) for c in posted] == [
        (f"/repos/{REPO}/issues/1/comments", 307),
        (f"/repos/{REPO}/issues/2/comments", 201),
    ]


@pytest.mark.parametrize(
    "status, method, followed",
    [
        (301, "GET", ("GET", None)),
        (301, "POST", ("GET", None)),
        (301, "PATCH", ("PATCH", None)),
        (302, "DELETE", ("GET", None)),
        (303, "PUT", ("GET", None)),
        (303, "HEAD", ("HEAD", None)),
        (307, "POST", ("POST", {"body": "hi"})),
        (308, "PATCH", ("PATCH", {"body": "hi"})),
    ],
)
def test_redirects_are_followed_by_requests_rules(status, method, followed):
    assert _redirected(status, method, {"body": "hi"}) == followed


def test_github_failures_become_typed_errors(github, app_key):
    inst = client(github, app_key, timeout=0.5).installation(INSTALLATION_ID)
    github.fail_next("POST", r"/comments$", 500)
    with pytest.raises(ServerError):
        inst.create_comment(REPO, 1, "x")
    with pytest.raises(NotFound):
        inst.get(f"/repos/{REPO}/issues/999")
    inst.remove_label(REPO, 1, "never-there")  # a label already gone counts as removed
    github.delay_next("GET", r"/issues/1$", 1.0)
    with pytest.raises(Unavailable, match="no answer"):
        inst.get(f"/repos/{REPO}/issues/1")
    # Let the slow answer finish inside this test, so it is not recorded against the next one.
    wait_for(
        lambda: all(c.status for c in github.calls("GET", f"/repos/{REPO}/issues/1")), message="the delayed answer"
    )


def test_dry_run_sends_no_write(github, app_key, caplog):
    import logging

    caplog.set_level(logging.INFO)
    inst = client(github, app_key, dry_run=True).installation(INSTALLATION_ID)
    assert inst.create_comment(REPO, 1, "would say hi") is None
    assert github.writes() == [] and github.comments(REPO, 1) == []
    record = next(r for r in caplog.records if r.getMessage() == "dry run: would call GitHub")
    assert (record.method, record.path, record.body) == (
        "POST",
        f"/repos/{REPO}/issues/1/comments",
        {"body": "would say hi"},
    )


RESET = 1_800_000_120


@pytest.mark.parametrize(
    "status, headers, body, error, retry_after",
    [
        pytest.param(
            403,
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(RESET)},
            {"message": "API rate limit exceeded"},
            RateLimited,
            120.0,
            id="primary limit waits for reset",
        ),
        pytest.param(
            429,
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(RESET)},
            {},
            RateLimited,
            120.0,
            id="primary limit as 429",
        ),
        pytest.param(
            403,
            {"Retry-After": "30"},
            {"message": "You have exceeded a secondary rate limit"},
            RateLimited,
            30.0,
            id="secondary limit honours Retry-After",
        ),
        pytest.param(
            403,
            {},
            {"message": "You have exceeded a secondary rate limit"},
            RateLimited,
            60.0,
            id="secondary limit without Retry-After waits a minute",
        ),
        pytest.param(
            403,
            {"X-RateLimit-Remaining": "4999"},
            {"message": "Resource not accessible by integration"},
            Forbidden,
            None,
            id="missing permission is not a rate limit",
        ),
        pytest.param(404, {}, {"message": "Not Found"}, NotFound, None, id="not found"),
        pytest.param(422, {}, {"message": "Validation Failed"}, ValidationFailed, None, id="validation"),
        pytest.param(502, {}, "<html>bad gateway</html>", ServerError, None, id="bad gateway"),
        pytest.param(401, {}, {"message": "Bad credentials"}, Unauthorized, None, id="bad credentials"),
    ],
)
def test_error_mapping(status, headers, body, error, retry_after):
    mapped = error_for(status, headers, body, "POST", "/x", now=RESET - 120)
    assert type(mapped) is error
    assert getattr(mapped, "retry_after", None) == retry_after


def test_next_link_reads_githubs_link_header():
    header = (
        '<https://api.github.com/repositories/1/issues?page=2>; rel="next", '
        '<https://api.github.com/repositories/1/issues?page=5>; rel="last"'
    )
    assert next_link(header) == "https://api.github.com/repositories/1/issues?page=2"
    assert next_link('<https://x/?page=1>; rel="prev"') is None and next_link(None) is None


def test_writes_are_paced_per_installation_across_workers(redis_url):
    import redis

    connection = redis.Redis.from_url(redis_url)
    slept: list[float] = []
    try:
        pacers = [WritePacer(1.0, max_wait_seconds=5, connection=connection, sleep=slept.append) for _ in range(2)]
        for pacer in pacers * 2:
            pacer.wait_for_slot(1)
        pacers[0].wait_for_slot(2)  # another installation has its own pace
        assert [round(s) for s in slept] == [1, 2, 3]
        with pytest.raises(WritesThrottled) as throttled:
            for _ in range(10):
                pacers[1].wait_for_slot(1)
        assert throttled.value.retry_after > 5
    finally:
        connection.close()


def test_memory_pacer_spaces_writes_too():
    slept: list[float] = []
    pacer = WritePacer(0.5, sleep=slept.append)
    start = time.time()
    for _ in range(3):
        pacer.wait_for_slot(7)
    assert len(slept) == 2 and slept[-1] <= 1.0 + (time.time() - start)
