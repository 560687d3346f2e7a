"""Sign in with GitHub over real HTTP, against the fake GitHub's user authorization (web flow with state
and PKCE, token exchange, `/user/installations`): who sees which private repository, on every page and
API, and what happens when tokens expire, access is revoked or someone forges the way back.

The world: two installations. Codertocat's holds Hello-World (private; mei commented there) and Space
(public; sun commented there); octo-org's holds vault (private; lin commented there). The viewers:
nobody (anonymous), ana (may read Hello-World), Codertocat (owns its installation: admin there) and bo
(admin of octo-org/vault: another organisation's admin).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from storage import web_sessions
from storage.db import web_sessions as table
from tests.conftest import INSTALLATION_ID, REPO, example, installed, run_rq_worker, services, table_count
from tests.test_admin import TOKEN
from tests.test_installations import HELLO, SPACE, lifecycle

CLIENT_ID, CLIENT_SECRET = "Iv1.engage-tests", "client-secret-for-the-tests-0123456789"
VAULT = {"id": 900001, "node_id": "R_vault", "name": "vault", "full_name": "octo-org/vault"}
OCTO_INSTALLATION = 4242
PRIVATE_A = f"repo={REPO}"
PRIVATE_B = "repo=octo-org/vault"
# Every page and API that shows one repository's data, with the word that proves the data is there.
REPOSITORY_ADDRESSES = (
    "/leaderboard?{scope}&window=all",
    "/api/leaderboard?{scope}&window=all",
    "/leaderboard.csv?{scope}&window=all",
    "/insights?{scope}",
    "/api/insights?{scope}",
    "/waiting?{scope}",
    "/api/waiting?{scope}",
    "/digests?{scope}",
)
VIEWERS = ("anonymous", "ana", "Codertocat", "bo")


def person(login: str, user_id: int) -> dict[str, Any]:
    return {"login": login, "id": user_id, "type": "User", "node_id": "x", "site_admin": False}


def comment_in(repository: dict[str, Any], owner: str, login: str, user_id: int, installation: int) -> dict[str, Any]:
    """The recorded comment, moved to `repository` (private as the test says), by `login`."""
    payload = installed(example("issue_comment.created.1"), installation)
    payload["repository"].update(repository, owner={**payload["repository"]["owner"], "login": owner})
    payload["repository"]["html_url"] = f"https://github.com/{repository['full_name']}"
    when = (datetime.now(UTC) - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")  # inside every window
    payload["comment"].update(
        id=user_id * 10, body="Thanks, this helps!", user=person(login, user_id), created_at=when, updated_at=when
    )
    payload["sender"] = person(login, user_id)
    return payload


@pytest.fixture
def recheck_seconds() -> float:
    return 0.3  # SIGN_IN_RECHECK_SECONDS (2 minutes by default), short so tests see rechecks


@pytest.fixture
def world(github, make_app, serve, redis_url, recheck_seconds):
    """The app with sign-in configured, and the two installations' history delivered through it."""
    github.set_oauth_client(CLIENT_ID, CLIENT_SECRET)
    github.add_repo(REPO, private=True, default_branch="master", repo_id=HELLO["id"])
    github.add_repo(SPACE["full_name"], repo_id=SPACE["id"])
    github.add_installation(INSTALLATION_ID, "Codertocat", [REPO, SPACE["full_name"]], account_type="User")
    github.add_repo(VAULT["full_name"], private=True, repo_id=VAULT["id"])
    github.add_installation(OCTO_INSTALLATION, "octo-org", [VAULT["full_name"]])
    github.set_permission(REPO, "ana", "read")
    github.set_permission(VAULT["full_name"], "bo", "admin")
    app = make_app(
        redis_url=redis_url,
        behaviours=(),
        github_url=github.url,
        github_client_id=CLIENT_ID,
        github_client_secret=CLIENT_SECRET,
        sign_in_recheck_seconds=recheck_seconds,
    )
    server = serve(app)
    octo = lifecycle("installation.created.1", repositories=[{**VAULT, "private": True}])
    octo["installation"].update(id=OCTO_INSTALLATION, account={**octo["installation"]["account"], "login": "octo-org"})
    deliveries = [
        ("installation", lifecycle("installation.created.1", repositories=[{**HELLO, "private": True}, SPACE])),
        ("installation", octo),
        ("issue_comment", comment_in({**HELLO, "private": True}, "Codertocat", "mei", 501, INSTALLATION_ID)),
        ("issue_comment", comment_in({**SPACE, "private": False}, "Codertocat", "sun", 502, INSTALLATION_ID)),
        ("issue_comment", comment_in({**VAULT, "private": True}, "octo-org", "lin", 503, OCTO_INSTALLATION)),
    ]
    for event, payload in deliveries:
        assert server.deliver(event, payload).status_code == 202
        run_rq_worker(server.app)
    return server


def sign_in(server, github, login: str) -> requests.Session:
    """A browser that signs in as `login` (who is signed in to GitHub) and comes back to the home page."""
    github.sign_in_browser(login)
    browser = requests.Session()
    answer = browser.get(server.url + "/auth/login?next=/", timeout=30)
    assert answer.status_code == 200 and answer.url == server.url + "/", answer.url
    assert f'data-login="{login}"' in answer.text
    return browser


def browser_for(server, github, viewer: str) -> requests.Session:
    return requests.Session() if viewer == "anonymous" else sign_in(server, github, viewer)


def sees(browser: requests.Session, server, path: str, *words: str) -> bool:
    """Whether the address answers 200 and shows one of `words`; anything but 200 or 404 is a failure."""
    answer = browser.get(server.url + path, timeout=30)
    assert answer.status_code in (200, 404), (path, answer.status_code)
    return answer.status_code == 200 and any(word in answer.text for word in words)


@pytest.mark.parametrize("viewer", VIEWERS)
def test_every_page_and_api_shows_a_private_repository_to_its_readers_only(world, github, viewer):
    browser = browser_for(world, github, viewer)
    reads_a, reads_b = viewer in ("ana", "Codertocat"), viewer == "bo"
    for address in REPOSITORY_ADDRESSES:
        assert sees(browser, world, address.format(scope=PRIVATE_A), "Hello-World", "mei") is reads_a, (viewer, address)
        assert sees(browser, world, address.format(scope=PRIVATE_B), "vault", "lin") is reads_b, (viewer, address)
        assert sees(browser, world, address.format(scope="repo=Codertocat/Space"), "Space", "sun"), (viewer, address)
    board_a = browser.get(world.url + f"/api/leaderboard?{PRIVATE_A}&window=all", timeout=30)
    assert board_a.status_code == 404 if not reads_a else [e["login"] for e in board_a.json()["entries"]] == ["mei"]
    home = browser.get(world.url + "/", timeout=30).text
    assert ("Hello-World" in home, "vault" in home, "Space" in home) == (reads_a, reads_b, True)
    # Owner-wide boards and insights add the owner's private repositories their viewer reads to the public ones.
    for org, people in (
        ("Codertocat", {"sun"} | ({"mei"} if reads_a else set())),
        ("octo-org", {"lin"} & {reads_b * "lin"}),
    ):
        answer = browser.get(world.url + f"/api/leaderboard?org={org}&window=all", timeout=30)
        shown = {e["login"] for e in answer.json()["entries"]} if answer.status_code == 200 else set()
        assert shown == people, (viewer, org)
        report = browser.get(world.url + f"/api/insights?org={org}&weeks=8", timeout=30)
        arrived = sum(report.json()["series"]["new_contributors"]["values"] or [0]) if report.status_code == 200 else 0
        assert arrived == len(people), (viewer, org)
    # Each viewer's pages are theirs: no shared cache may keep or serve them to someone else.
    answer = browser.get(world.url + "/", timeout=30)
    assert "Cookie" in answer.headers["Vary"]
    assert (answer.headers.get("Cache-Control") == "private, no-store") is (viewer != "anonymous")
    # A badge is the same for everyone: shared caches (GitHub's image proxy) may keep one copy.
    badge = browser.get(world.url + "/badges/Codertocat/Space/health/active.svg", timeout=30)
    assert badge.status_code == 200 and "Cookie" not in badge.headers.get("Vary", "")
    assert badge.headers["Cache-Control"].startswith("public")


@pytest.mark.parametrize(
    ("viewer", "status", "repositories_listed"),
    [
        ("anonymous", 401, set()),
        ("ana", 403, set()),  # reads Hello-World, administers nothing
        ("Codertocat", 200, {REPO, "Codertocat/Space"}),
        ("bo", 200, {"octo-org/vault"}),
    ],
)
def test_the_operator_page_is_for_admins_of_the_installed_repositories(
    world, github, viewer, status, repositories_listed
):
    browser = browser_for(world, github, viewer)
    answer = browser.get(world.url + "/admin", timeout=30)
    assert answer.status_code == status
    shown = {name for name in (REPO, "Codertocat/Space", "octo-org/vault") if f"<td>{name}</td>" in answer.text}
    assert shown == repositories_listed
    if viewer == "anonymous":
        assert "Sign in with GitHub" in answer.text and 'name="token"' not in answer.text  # no ADMIN_TOKEN set
    if viewer == "ana":
        assert "not list you as an admin" in answer.text


def test_admin_token_stays_a_break_glass_beside_sign_in(github, make_app, serve):
    github.set_oauth_client(CLIENT_ID, CLIENT_SECRET)
    server = serve(
        make_app(
            github_url=github.url, github_client_id=CLIENT_ID, github_client_secret=CLIENT_SECRET, admin_token=TOKEN
        )
    )
    page = requests.get(server.url + "/admin", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert page.status_code == 200 and "Failed deliveries" in page.text
    form = requests.get(server.url + "/admin", timeout=30)
    assert form.status_code == 401 and "Sign in with GitHub" in form.text and 'name="token"' in form.text


def test_the_way_to_github_and_back_carries_state_and_pkce(world, github):
    browser = requests.Session()
    github.sign_in_browser("ana")
    target = f"/leaderboard?{PRIVATE_A}&window=all"
    first = browser.get(world.url + "/auth/login", params={"next": target}, allow_redirects=False)
    assert first.status_code == 302
    to_github = urlsplit(first.headers["Location"])
    query = {key: values[0] for key, values in parse_qs(to_github.query).items()}
    assert to_github.path == "/login/oauth/authorize" and first.headers["Location"].startswith(github.url)
    assert query["client_id"] == CLIENT_ID and query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 32 and query["redirect_uri"] == world.url + "/auth/callback"
    cookie = next(c for c in browser.cookies if c.name == "engage_sign_in")
    assert cookie.path == "/auth" and cookie.has_nonstandard_attr("HttpOnly")
    back = browser.get(first.headers["Location"], allow_redirects=False)  # GitHub sends the browser back
    callback = back.headers["Location"]
    landed = browser.get(callback, timeout=30)
    assert landed.url == world.url + target and "mei" in landed.text
    session = next(c for c in browser.cookies if c.name == "engage_session")
    assert session.has_nonstandard_attr("HttpOnly") and session.get_nonstandard_attr("SameSite") == "Lax"
    # The same way back again (a replay, or a stolen address) opens nothing.
    replay = requests.Session()
    replay.cookies.set("engage_sign_in", query["state"], path="/auth")
    again = replay.get(callback, timeout=30)
    assert again.status_code == 400 and "engage_session" not in again.cookies


@pytest.mark.parametrize(
    "forged",
    [
        "/auth/callback?code=abc&state=guessed",  # no state cookie: not started in this browser
        "/auth/callback?error=access_denied&state=x",  # the person said no on GitHub
    ],
)
def test_a_callback_that_did_not_start_here_signs_nobody_in(world, forged):
    browser = requests.Session()
    browser.cookies.set("engage_sign_in", "other-state", path="/auth")
    answer = browser.get(world.url + forged, timeout=30)
    assert answer.status_code == 400
    assert "Nothing was kept" in answer.text or "did not start in this browser" in answer.text
    assert not any(c.name == "engage_session" for c in browser.cookies)


def test_a_redirect_after_sign_in_stays_on_this_site(world, github):
    github.sign_in_browser("ana")
    browser = requests.Session()
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        landed = browser.get(world.url + "/auth/login", params={"next": target}, timeout=30)
        assert landed.url == world.url + "/", target


def test_signing_out_ends_the_session_on_the_server(world, github):
    browser = sign_in(world, github, "ana")
    value = browser.cookies["engage_session"]
    page = browser.get(world.url + f"/leaderboard?{PRIVATE_A}&window=all", timeout=30).text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert csrf is not None
    assert browser.post(world.url + "/auth/logout", data={"csrf": "forged"}, timeout=30).status_code == 400
    assert sees(browser, world, f"/leaderboard?{PRIVATE_A}&window=all", "mei")  # a forged form signs nobody out
    out = browser.post(world.url + "/auth/logout", data={"csrf": csrf.group(1), "next": "/"}, timeout=30)
    assert out.status_code == 200 and "Sign in with GitHub" in out.text
    assert not sees(browser, world, f"/leaderboard?{PRIVATE_A}&window=all", "mei")
    stolen = requests.Session()  # the old cookie, kept somewhere, is worth nothing now
    stolen.cookies.set("engage_session", value)
    assert not sees(stolen, world, f"/leaderboard?{PRIVATE_A}&window=all", "mei")


def test_access_taken_away_on_github_disappears_at_the_next_check(world, github):
    browser = sign_in(world, github, "ana")
    assert sees(browser, world, f"/api/leaderboard?{PRIVATE_A}&window=all", "mei")
    github.set_permission(REPO, "ana", "none")
    time.sleep(0.4)  # SIGN_IN_RECHECK_SECONDS is 0.3 here (2 minutes by default)
    assert not sees(browser, world, f"/api/leaderboard?{PRIVATE_A}&window=all", "mei")
    assert 'data-login="ana"' in browser.get(world.url + "/", timeout=30).text  # still signed in


def test_an_expired_token_is_refreshed_and_a_revoked_authorization_signs_out(world, github):
    browser = sign_in(world, github, "ana")
    refreshes_before = len([c for c in github.calls("POST", "/login/oauth/access_token")])
    github.expire_user_tokens()
    time.sleep(0.4)
    assert sees(browser, world, f"/api/leaderboard?{PRIVATE_A}&window=all", "mei")
    assert len(github.calls("POST", "/login/oauth/access_token")) == refreshes_before + 1
    github.revoke_user_authorization("ana")
    time.sleep(0.4)
    home = browser.get(world.url + "/", timeout=30)
    assert 'data-login="ana"' not in home.text and "Sign in with GitHub" in home.text
    assert "engage_session" not in browser.cookies  # the app told the browser to drop it
    assert not sees(browser, world, f"/api/leaderboard?{PRIVATE_A}&window=all", "mei")


@pytest.mark.parametrize("recheck_seconds", [3600.0])
def test_what_a_person_may_read_costs_github_calls_at_sign_in_and_at_rechecks_only(world, github):
    """Signing in: the exchange, /user, /user/installations and 1 call per installation of ours they reach;
    then no GitHub call per page until the recheck falls due."""
    before = len(github.requests)
    browser = sign_in(world, github, "Codertocat")
    made = [f"{r.method} {r.path}" for r in github.requests[before:] if not r.path.startswith("/login/oauth/authorize")]
    assert sorted(made) == sorted(
        [
            "POST /login/oauth/access_token",
            "GET /user",
            "GET /user/installations",
            f"GET /user/installations/{INSTALLATION_ID}/repositories",
        ]
    )
    before = len(github.requests)
    for path in ("/", f"/leaderboard?{PRIVATE_A}", f"/api/insights?{PRIVATE_A}", "/good-first-issues"):
        assert browser.get(world.url + path, timeout=30).status_code == 200
    assert github.requests[before:] == []


def test_sign_in_is_rate_limited_per_address(world, github):
    github.sign_in_browser("ana")
    browser = requests.Session()
    answers = [browser.get(world.url + "/auth/login", allow_redirects=False, timeout=30) for _ in range(21)]
    assert [a.status_code for a in answers[:20]] == [302] * 20
    assert answers[20].status_code == 429 and int(answers[20].headers["Retry-After"]) > 0
    assert "Too many sign-ins" in answers[20].text


def test_without_a_client_id_nobody_signs_in(make_app, serve):
    server = serve(make_app())
    assert requests.get(server.url + "/auth/login", timeout=30).status_code == 404
    assert "Sign in with GitHub" not in requests.get(server.url + "/", timeout=30).text


@pytest.mark.parametrize(("proxies", "secure"), [(1, True), (0, False)])
def test_behind_a_trusted_tls_proxy_the_cookies_are_secure(github, make_app, serve, proxies, secure):
    """TRUSTED_PROXIES=1: the proxy's X-Forwarded-Proto says https, so cookies are Secure and GitHub is
    told an https callback; with 0 the same header is ignored (anyone could send it)."""
    github.set_oauth_client(CLIENT_ID, CLIENT_SECRET)
    server = serve(
        make_app(
            github_url=github.url,
            github_client_id=CLIENT_ID,
            github_client_secret=CLIENT_SECRET,
            trusted_proxies=proxies,
        )
    )
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "engage.example", "X-Forwarded-For": "203.0.113.9"}
    answer = requests.get(server.url + "/auth/login", headers=forwarded, allow_redirects=False, timeout=30)
    assert answer.status_code == 302
    assert ("; Secure" in answer.headers["Set-Cookie"]) is secure
    callback = parse_qs(urlsplit(answer.headers["Location"]).query)["redirect_uri"][0]
    assert callback == ("https://engage.example/auth/callback" if secure else server.url + "/auth/callback")


def test_ended_sessions_are_forgotten_by_the_hourly_task(world, github):
    browser = sign_in(world, github, "ana")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', browser.get(world.url + "/", timeout=30).text)
    assert csrf is not None
    browser.post(world.url + "/auth/logout", data={"csrf": csrf.group(1)}, timeout=30)
    sign_in(world, github, "bo")  # still signed in: kept
    assert table_count(world.app, table) == 2
    ran = world.app.test_cli_runner().invoke(args=["tasks", "run", "signin.prune"])
    assert ran.output.strip() == "signin.prune: ran"
    assert table_count(world.app, table) == 2  # ana's ended just now: kept a week, for the record
    assert web_sessions.prune(services(world.app).store.engine, older_than=timedelta(0)) == 1
    assert table_count(world.app, table) == 1
