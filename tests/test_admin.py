"""The operator page over real HTTP: only with ADMIN_TOKEN, the token turned into a cookie, failed
deliveries shown with their errors and each handler's outcome, escaped, and the Retry buttons doing what
`deliveries retry` does, behind a CSRF token."""

from __future__ import annotations

import json
import re
import time
import tracemalloc
from collections.abc import Callable, Iterator

import pytest
import requests

from engagement import history
from jobs import backfill as backfill_module
from storage.deliveries import FAILED, IGNORED
from tests.conftest import REPO, LiveServer, MakeApp, services, wait_for
from tests.support import behaviours
from tests.test_backfill import add_history
from tests.test_history import NOPE
from tests.test_installations import HELLO, created
from tests.test_pipeline import acks, opened
from tests.test_setup import Form, forms
from web.auth import SESSION_COOKIE, SESSION_SECONDS, csrf_token, session_valid, session_value

TOKEN = "operator-token-for-the-tests-0123456789"  # ADMIN_TOKEN must have 32 characters or more
HOSTILE = "<script>alert('pwned')</script><img src=x onerror=alert(1)> & \"quotes\""


@pytest.fixture(autouse=True)
def handlers_behave() -> Iterator[None]:
    behaviours.BREAK["crash"] = False
    yield
    behaviours.BREAK["crash"] = False


@pytest.fixture
def operator_server(make_app: MakeApp, serve: Callable[..., LiveServer]) -> LiveServer:
    """The app with ADMIN_TOKEN set and the embedded worker (no Redis)."""
    return serve(make_app(admin_token=TOKEN))


def signed_in(server: LiveServer) -> requests.Session:
    browser = requests.Session()
    answer = browser.get(server.url + f"/admin?token={TOKEN}", timeout=30)
    assert answer.status_code == 200 and answer.url == server.url + "/admin"
    return browser


def failed_delivery(server: LiveServer, delivery_id: str, number: int = 1) -> None:
    """A real delivery that fails: the test.crash handler raises (test.ack still comments)."""
    behaviours.BREAK["crash"] = True
    assert server.deliver("issues", opened(number), delivery_id=delivery_id).status_code == 202
    store = services(server.app).store
    wait_for(lambda: store.get(delivery_id).status == FAILED, message=f"{delivery_id} failed")
    behaviours.BREAK["crash"] = False


def retry_form(page: str, delivery_id: str) -> Form:
    return next(f for f in forms(page) if f.inputs.get("delivery_id") == delivery_id)


def test_without_admin_token_there_is_no_page(make_app, serve):
    server = serve(make_app())
    for method, path, headers in (
        ("GET", "/admin", {}),
        ("GET", f"/admin?token={TOKEN}", {}),
        ("GET", "/admin", {"Authorization": f"Bearer {TOKEN}"}),
        ("POST", "/admin/retry", {"Authorization": f"Bearer {TOKEN}"}),
        ("POST", "/admin/retry-failed", {}),
    ):
        assert requests.request(method, server.url + path, headers=headers, timeout=30).status_code == 404, path


REFUSED = [
    ("nothing sent", "GET", "/admin", {}, {}, 401),
    ("a wrong token in the address", "GET", "/admin?token=wrong", {}, {}, 403),
    ("a wrong Bearer token", "GET", "/admin", {"Authorization": "Bearer wrong"}, {}, 403),
    ("a wrong token in the sign-in form", "POST", "/admin/login", {}, {"token": "wrong"}, 403),
    ("a forged cookie", "GET", "/admin", {"Cookie": f"{SESSION_COOKIE}=1.abc"}, {}, 401),
    ("a retry without credentials", "POST", "/admin/retry", {}, {"delivery_id": "x"}, 401),
    ("a retry with a wrong Bearer token", "POST", "/admin/retry-failed", {"Authorization": "Bearer no"}, {}, 403),
]


@pytest.mark.parametrize("method, path, headers, data, status", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_without_the_right_token_the_page_refuses_and_offers_sign_in(
    operator_server, method, path, headers, data, status
):
    answer = requests.request(
        method, operator_server.url + path, headers=headers, data=data, allow_redirects=False, timeout=30
    )
    assert answer.status_code == status
    assert SESSION_COOKIE not in answer.headers.get("Set-Cookie", "")
    assert 'name="token"' in answer.text and answer.headers["WWW-Authenticate"] == 'Bearer realm="admin"'


def test_wrong_tokens_are_limited_then_every_try_waits_and_sessions_stay(make_app, serve):
    server = serve(make_app(admin_token=TOKEN))
    operator = signed_in(server)  # signed in before the guessing starts
    guess = requests.Session()
    for n in range(10):
        answer = guess.post(server.url + "/admin/login", data={"token": f"guess-{n}"}, timeout=30)
        assert answer.status_code == 403, n
    # Past the limit no token is compared, the right one included, whichever way it is sent.
    for method, path, headers, data in (
        ("POST", "/admin/login", {}, {"token": TOKEN}),
        ("GET", f"/admin?token={TOKEN}", {}, {}),
        ("GET", "/admin", {"Authorization": f"Bearer {TOKEN}"}, {}),
        ("POST", "/admin/retry-failed", {"Authorization": f"Bearer {TOKEN}"}, {}),
    ):
        answer = guess.request(method, server.url + path, headers=headers, data=data, timeout=30)
        assert answer.status_code == 429, path
        assert 1 <= int(answer.headers["Retry-After"]) <= 60
        assert "Too many wrong tokens. Try again in" in answer.text
    assert operator.get(server.url + "/admin", timeout=30).status_code == 200


def test_the_limit_is_shared_by_every_web_process_through_redis(make_app, serve, redis_url):
    first, second = (serve(make_app(admin_token=TOKEN, redis_url=redis_url)) for _ in range(2))
    for n in range(10):
        wrong = {"Authorization": f"Bearer guess-{n}"}
        assert requests.get((first, second)[n % 2].url + "/admin", headers=wrong, timeout=30).status_code == 403
    for server in (first, second):
        answer = requests.get(server.url + "/admin", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert answer.status_code == 429 and int(answer.headers["Retry-After"]) <= 60


def test_the_token_in_the_address_becomes_a_strict_cookie_and_leaves_the_address(operator_server):
    answer = requests.get(operator_server.url + f"/admin?token={TOKEN}", allow_redirects=False, timeout=30)
    assert (answer.status_code, answer.headers["Location"]) == (303, "/admin")
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and TOKEN not in cookie
    assert all(part in cookie for part in ("HttpOnly", "SameSite=Strict", "Path=/admin", f"Max-Age={SESSION_SECONDS}"))
    page = signed_in(operator_server).get(operator_server.url + "/admin", timeout=30)
    assert page.status_code == 200 and "Deliveries" in page.text
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"


def test_the_sign_in_form_sets_the_same_cookie(operator_server):
    browser = requests.Session()
    answer = browser.post(operator_server.url + "/admin/login", data={"token": TOKEN}, timeout=30)
    assert answer.status_code == 200 and answer.url == operator_server.url + "/admin"
    assert browser.cookies.get(SESSION_COOKIE, path="/admin")


def test_a_failed_delivery_shows_its_error_and_outcomes_and_retry_runs_what_failed(operator_server, github):
    failed_delivery(operator_server, "crashy")
    browser = signed_in(operator_server)
    page = browser.get(operator_server.url + "/admin", timeout=30).text
    failed_section = page.split('data-section="failed"', 1)[1].split('data-section="recent"', 1)[0]
    assert 'data-delivery="crashy"' in failed_section and "handler bug for the test" in failed_section
    assert '<li data-handler="test.ack"><code>test.ack</code>: <span class="ops-status-done">done</span>' in page
    assert '<span class="ops-status-failed">failed</span>' in page

    comment_reads = len(github.calls("GET", f"/repos/{REPO}/issues/1/comments"))
    form = retry_form(page, "crashy")
    retried = browser.post(operator_server.url + form.action, data=form.inputs, timeout=30)
    assert retried.status_code == 200 and "Delivery crashy is queued again." in retried.text
    store = services(operator_server.app).store
    wait_for(lambda: store.get("crashy").status == "done", message="retried delivery done")
    assert store.handler_outcomes("crashy")["test.crash"] == ("done", None)
    assert len(acks(github)) == 1, "the handler that succeeded before did not run again"
    assert len(github.calls("GET", f"/repos/{REPO}/issues/1/comments")) == comment_reads, "not even to look"


def test_retry_all_failed_retries_every_failed_delivery(operator_server, github):
    failed_delivery(operator_server, "first", number=1)
    failed_delivery(operator_server, "second", number=2)
    browser = signed_in(operator_server)
    page = browser.get(operator_server.url + "/admin", timeout=30).text
    [form] = [f for f in forms(page) if f.action.endswith("/admin/retry-failed")]
    answer = browser.post(operator_server.url + form.action, data=form.inputs, timeout=30)
    assert "2 failed deliveries queued again." in answer.text
    store = services(operator_server.app).store
    wait_for(lambda: {store.get(i).status for i in ("first", "second")} == {"done"}, message="both done")


def test_a_retry_of_a_delivery_that_is_not_failed_leaves_it_alone(operator_server):
    services(operator_server.app).store.insert(
        id="fine", event="ping", action=None, installation_id=None, repository=None, sender=None, payload_text="{}",
        status=IGNORED,
    )  # fmt: skip
    browser = signed_in(operator_server)
    csrf = retry_csrf(browser, operator_server)
    answer = browser.post(operator_server.url + "/admin/retry", data={"delivery_id": "fine", "csrf": csrf}, timeout=30)
    assert "Delivery fine is not failed, so it was left alone." in answer.text
    assert services(operator_server.app).store.get("fine").status == IGNORED


def retry_csrf(browser: requests.Session, server: LiveServer) -> str:
    page = browser.get(server.url + "/admin", timeout=30).text
    return next(f.inputs["csrf"] for f in forms(page) if "csrf" in f.inputs)


def test_a_post_without_the_pages_csrf_token_is_refused(operator_server):
    failed_delivery(operator_server, "guarded")
    browser = signed_in(operator_server)
    other = signed_in(operator_server)
    later = signed_in(operator_server)  # the same second: still a session of its own, with its own token
    for data in (
        {"delivery_id": "guarded"},
        {"delivery_id": "guarded", "csrf": ""},
        {"delivery_id": "guarded", "csrf": retry_csrf(later, operator_server)},
    ):
        answer = browser.post(operator_server.url + "/admin/retry", data=data, allow_redirects=False, timeout=30)
        assert answer.status_code == 400, data
    assert other.post(operator_server.url + "/admin/retry-failed", data={}, timeout=30).status_code == 400
    assert services(operator_server.app).store.get("guarded").status == FAILED


def test_scripts_use_the_bearer_header_and_need_no_csrf_token(operator_server):
    failed_delivery(operator_server, "scripted")
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    page = requests.get(operator_server.url + "/admin", headers=bearer, timeout=30)
    assert page.status_code == 200 and 'data-delivery="scripted"' in page.text
    answer = requests.post(
        operator_server.url + "/admin/retry", headers=bearer, data={"delivery_id": "scripted"}, allow_redirects=False,
        timeout=30,
    )  # fmt: skip
    assert answer.status_code == 303
    store = services(operator_server.app).store
    wait_for(lambda: store.get("scripted").status == "done", message="done")


def test_error_text_from_github_is_shown_escaped(operator_server, github):
    github.fail_next("POST", r"/issues/1/comments$", 422, body={"message": HOSTILE})
    assert operator_server.deliver("issues", opened(), delivery_id="hostile").status_code == 202
    store = services(operator_server.app).store
    wait_for(lambda: store.get("hostile").status == FAILED, message="failed")
    assert "<img src=x onerror=alert(1)>" in store.handler_outcomes("hostile")["test.ack"][1]
    page = signed_in(operator_server).get(operator_server.url + "/admin", timeout=30).text
    assert "<script>alert" not in page and "<img src=x" not in page and page.count("<script") == 0
    handler = page.split('<li data-handler="test.ack">', 1)[1].split("</li>", 1)[0]
    assert (
        "422 &lt;script&gt;alert(" in handler and "&lt;img src=x onerror=alert(1)&gt; &amp; &#34;quotes&#34;" in handler
    )


def test_recent_deliveries_are_the_newest_fifty_newest_first(operator_server):
    store = services(operator_server.app).store
    for n in range(55):
        store.insert(
            id=f"d-{n:02}", event="ping", action=None, installation_id=None, repository=None, sender=None,
            payload_text="{}", status=IGNORED,
        )  # fmt: skip
    page = signed_in(operator_server).get(operator_server.url + "/admin", timeout=30).text
    recent = page.split('data-section="recent"', 1)[1]
    shown = [part.split('"', 1)[0] for part in recent.split('<tr data-delivery="')[1:]]
    assert shown == [f"d-{n:02}" for n in range(54, 4, -1)]


def peak_memory_of(action: Callable[[], object]) -> int:
    """The most memory the process (the server's threads included) held at once while `action` ran."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_page_and_deliveries_list_never_load_payloads(operator_server):
    """Five 20 MB deliveries used to cost the page and the command 140 MB, kept by the process afterwards."""
    store = services(operator_server.app).store
    big = json.dumps({"zen": "x" * 20_000_000})
    for n in range(5):
        store.insert(
            id=f"big-{n}", event="issues", action="opened", installation_id=None, repository=REPO, sender=None,
            payload_text=big, status=FAILED if n < 2 else IGNORED, last_error="boom" if n < 2 else None,
        )  # fmt: skip
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    pages: list[str] = []
    used = peak_memory_of(lambda: pages.append(requests.get(operator_server.url + "/admin", headers=bearer).text))
    assert all(f'data-delivery="big-{n}"' in pages[0] for n in range(5))
    # Not zero: serving any request over HTTP here briefly holds about 10 MB.
    assert used < 20_000_000, f"the page held {used:,} bytes"
    listed = []
    runner = operator_server.app.test_cli_runner()
    used = peak_memory_of(lambda: listed.append(runner.invoke(args=["deliveries", "list"]).output))
    assert all(f"big-{n}" in listed[0] for n in range(5))
    assert used < 20_000_000, f"`deliveries list` held {used:,} bytes"


def test_sessions_expire_and_belong_to_one_token():
    now = time.time()
    value = session_value(TOKEN, int(now))
    assert session_valid(TOKEN, value, now)
    assert not session_valid(TOKEN, value, now + SESSION_SECONDS + 1)
    assert not session_valid("another-token", value, now), "changing ADMIN_TOKEN signs everyone out"
    assert not session_valid(TOKEN, "not.a-session", now)
    assert csrf_token(TOKEN, value) != csrf_token(TOKEN, session_value(TOKEN, int(now))), "each sign-in its own"


def test_the_history_import_shows_where_each_repository_stands_escaped(make_app, serve, github, monkeypatch):
    monkeypatch.setattr(backfill_module, "PER_PAGE", 2)
    add_history(github)
    github.fail_next("GET", "^/repos/Codertocat/Nope$", 403, body={"message": HOSTILE}, times=5)
    server = serve(make_app(admin_token=TOKEN, backfill_calls_per_hour=4 * 12, behaviours=()))
    assert server.deliver("installation", created(NOPE, HELLO)).status_code == 202
    services(server.app).dispatcher.wait_idle()
    browser = signed_in(server)

    page = browser.get(server.url + "/admin", timeout=30).text
    section = page.split('<section data-section="history">', 1)[1].split("</section>", 1)[0]
    assert "2 installed repositories are having their" in section
    assert section.count("waiting for its first slice") == 2

    assert services(server.app).tasks.run_now(history.NAME).result == "ran"  # 4 requests: Nope fails, Hello starts
    section = browser.get(server.url + "/admin", timeout=30).text.split('<section data-section="history">', 1)[1]
    section = section.split("</section>", 1)[0]
    nope = section.split('<tr data-history="Codertocat/Nope">', 1)[1].split("</tr>", 1)[0]
    assert "set aside for 6 hours after an error: cannot read Codertocat/Nope from GitHub" in nope
    assert "&lt;script&gt;alert(" in nope and "<script" not in section and "<img src=x" not in section
    hello = section.split(f'<tr data-history="{REPO}">', 1)[1].split("</tr>", 1)[0]
    assert re.search(r"at page \d+ of (issues|pulls|comments)", hello), hello


def test_the_history_import_says_when_it_is_off(make_app, serve, github):
    server = serve(make_app(admin_token=TOKEN, behaviours=()))  # the tests' default: BACKFILL_CALLS_PER_HOUR=0
    assert server.deliver("installation", created(HELLO)).status_code == 202
    services(server.app).dispatcher.wait_idle()
    page = signed_in(server).get(server.url + "/admin", timeout=30).text
    section = " ".join(page.split('<section data-section="history">', 1)[1].split("</section>", 1)[0].split())
    assert "Off (<code>BACKFILL_CALLS_PER_HOUR=0</code>): 1 installed repository has no whole history" in section
