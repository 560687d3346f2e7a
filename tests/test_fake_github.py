"""Self-test of the fake GitHub: real HTTP with `requests`, real JWTs, real contract checks.

If the fake accepted a bad request, or served a shape GitHub's spec does not describe, every
other test that leans on it would prove nothing; these tests pin both directions.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from urllib3.util import SKIP_HEADER  # urllib3 would otherwise add its own User-Agent

from tests.conftest import ROOT
from tests.support.fake_github import (
    JWT_EXPIRED,
    FakeGitHub,
    contract_file,
    iter_routes,
    load_contract,
)

APP_ID = 31337
INSTALLATION = 77
REPO = "octo-org/widgets"
UA = {"User-Agent": "fake-github-selftest"}


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def server(rsa_key: rsa.RSAPrivateKey) -> Iterator[FakeGitHub]:
    public = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with FakeGitHub(APP_ID, public) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeGitHub) -> FakeGitHub:
    server.reset()
    server.add_installation(INSTALLATION, "octo-org", [REPO])
    server.add_issue(REPO, 1, "alice", title="Crash on start", body="It crashes")
    return server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers.update(UA)
        yield session


def app_jwt(key: rsa.RSAPrivateKey, iat_offset: int = -60, lifetime: int = 600, iss: Any = str(APP_ID)) -> str:
    now = int(time.time())
    claims = {"iat": now + iat_offset, "exp": now + iat_offset + lifetime, "iss": iss}
    return jwt.encode(claims, key, algorithm="RS256")


def issue_token(fake: FakeGitHub, http: requests.Session, key: rsa.RSAPrivateKey) -> str:
    resp = http.post(
        f"{fake.url}/app/installations/{INSTALLATION}/access_tokens",
        headers={"Authorization": f"Bearer {app_jwt(key)}", "Accept": "application/vnd.github+json"},
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["token"])


@pytest.fixture
def gh(fake: FakeGitHub, http: requests.Session, rsa_key: rsa.RSAPrivateKey) -> requests.Session:
    """A session authenticated with a fresh installation token."""
    http.headers["Authorization"] = f"token {issue_token(fake, http, rsa_key)}"
    return http


def api(fake: FakeGitHub, path: str) -> str:
    return f"{fake.url}/repos/{REPO}{path}"


# ---------------------------------------------------------------- auth


def test_token_issuance_and_app_endpoints(fake: FakeGitHub, http: requests.Session, rsa_key: rsa.RSAPrivateKey) -> None:
    bearer = {"Authorization": f"Bearer {app_jwt(rsa_key)}"}
    app = http.get(f"{fake.url}/app", headers=bearer)
    assert app.status_code == 200 and app.json()["id"] == APP_ID and app.json()["slug"] == "llmasos-engage"
    listed = http.get(f"{fake.url}/app/installations", headers=bearer)
    assert [i["id"] for i in listed.json()] == [INSTALLATION]
    assert (
        http.get(f"{fake.url}/app/installations/{INSTALLATION}", headers=bearer).json()["account"]["login"]
        == "octo-org"
    )
    assert http.get(f"{fake.url}/app/installations/5", headers=bearer).status_code == 404

    resp = http.post(f"{fake.url}/app/installations/{INSTALLATION}/access_tokens", headers=bearer)
    body = resp.json()
    assert resp.status_code == 201 and body["token"].startswith("ghs_") and len(body["token"]) == 40
    assert body["repository_selection"] == "selected" and body["expires_at"].endswith("Z")
    assert (
        abs(time.mktime(time.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone - time.time() - 3600)
        < 5
    )
    assert fake.tokens_issued == 1
    assert http.post(f"{fake.url}/app/installations/999/access_tokens", headers=bearer).status_code == 404

    repos = http.get(f"{fake.url}/installation/repositories", headers={"Authorization": f"Bearer {body['token']}"})
    assert repos.json()["total_count"] == 1 and repos.json()["repositories"][0]["full_name"] == REPO
    assert http.get(api(fake, ""), headers={"Authorization": f"token {body['token']}"}).json()["full_name"] == REPO
    fake.assert_no_violations()
    assert fake.writes() == []  # token creation is not a write


def test_requests_without_valid_auth_are_401_violations(
    fake: FakeGitHub, http: requests.Session, rsa_key: rsa.RSAPrivateKey
) -> None:
    no_token = http.get(api(fake, "/issues/1"))
    assert no_token.status_code == 401 and no_token.json()["message"] == "Bad credentials"
    assert http.get(api(fake, "/issues/1"), headers={"Authorization": "token ghs_made_up"}).status_code == 401
    jwt_on_repo = http.get(api(fake, "/issues/1"), headers={"Authorization": f"Bearer {app_jwt(rsa_key)}"})
    assert jwt_on_repo.status_code == 401

    expired = http.get(f"{fake.url}/app", headers={"Authorization": f"Bearer {app_jwt(rsa_key, iat_offset=-1200)}"})
    assert expired.status_code == 401 and expired.json()["message"] == JWT_EXPIRED
    too_long = http.get(f"{fake.url}/app", headers={"Authorization": f"Bearer {app_jwt(rsa_key, lifetime=3600)}"})
    assert too_long.status_code == 401
    wrong_iss = http.get(f"{fake.url}/app", headers={"Authorization": f"Bearer {app_jwt(rsa_key, iss='1')}"})
    assert wrong_iss.status_code == 401
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = http.get(f"{fake.url}/app", headers={"Authorization": f"Bearer {app_jwt(other_key)}"})
    assert forged.status_code == 401

    assert len(fake.violations) == 7
    assert (
        "missing Authorization" in fake.violations[0] and "GET /repos/octo-org/widgets/issues/1" in fake.violations[0]
    )
    with pytest.raises(AssertionError, match="7 GitHub contract violation"):
        fake.assert_no_violations()


def test_expired_installation_token_is_rejected(
    fake: FakeGitHub, http: requests.Session, rsa_key: rsa.RSAPrivateKey
) -> None:
    fake.token_expiry_seconds = 0
    token = issue_token(fake, http, rsa_key)
    resp = http.get(api(fake, ""), headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401 and resp.json()["message"] == "Bad credentials"
    assert fake.violations == [f"GET /repos/{REPO}: 401: installation token has expired"]


def test_revoked_tokens_get_401_without_violation(
    fake: FakeGitHub, gh: requests.Session, http: requests.Session, rsa_key: rsa.RSAPrivateKey
) -> None:
    fake.revoke_tokens()
    assert gh.get(api(fake, "")).status_code == 401
    gh.headers["Authorization"] = f"token {issue_token(fake, http, rsa_key)}"
    assert gh.get(api(fake, "")).status_code == 200 and fake.tokens_issued == 2
    fake.assert_no_violations()


def test_token_only_sees_installation_repos(fake: FakeGitHub, gh: requests.Session) -> None:
    fake.add_repo("someone/else")
    assert gh.get(f"{fake.url}/repos/someone/else").status_code == 404
    assert gh.get(f"{fake.url}/repos/nobody/nothing").json()["message"] == "Not Found"
    fake.assert_no_violations()


# ---------------------------------------------------------------- contract checks


def test_unknown_paths_methods_and_params_are_violations(fake: FakeGitHub, gh: requests.Session) -> None:
    assert gh.get(api(fake, "/frobnicate")).status_code == 400
    assert gh.put(api(fake, "")).status_code == 400
    resp = gh.get(api(fake, "/issues/abc"))
    assert resp.status_code == 400 and resp.json()["message"].startswith("fake-github: ")
    assert gh.get(api(fake, "/issues"), params={"state": "opened"}).status_code == 400  # not in the enum
    assert gh.get(api(fake, "/issues"), params={"per-page": "5"}).status_code == 400  # typo'd parameter
    assert gh.get(f"{fake.url}/search/issues").status_code == 400  # q is required
    assert gh.get(api(fake, "/issues/1"), headers={"User-Agent": SKIP_HEADER}).status_code == 400
    assert gh.get(api(fake, "/issues/1"), headers={"X-GitHub-Api-Version": "2021-01-01"}).status_code == 400
    text = "\n".join(fake.violations)
    for needle in (
        "GET /repos/octo-org/widgets/frobnicate: no operation in the contract",
        "method PUT is not in the contract",
        "'issue_number'='abc' is not an integer",
        "'opened' is not one of",
        "'per-page' is not in the contract",
        "required query parameter 'q' is missing",
        "User-Agent header is missing",
        "X-GitHub-Api-Version",
    ):
        assert needle in text
    assert len(fake.violations) == 8
    assert all(r.status == 400 for r in fake.requests[1:])  # [0] issued the token


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"json": {"body": 5}}, "5 is not of type 'string'"),
        ({"json": {}}, "'body' is a required property"),
        ({}, "request body is required"),
        ({"data": "body=hi", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, "not JSON"),
        ({"data": '{"body": "hi"}'}, "Content-Type must be application/json"),
    ],
)
def test_bad_comment_bodies_are_rejected(
    fake: FakeGitHub, gh: requests.Session, kwargs: dict[str, Any], needle: str
) -> None:
    resp = gh.post(api(fake, "/issues/1/comments"), **kwargs)
    assert resp.status_code == 400
    assert any(needle in v for v in fake.violations), fake.violations
    assert fake.violations[0].startswith(f"POST /repos/{REPO}/issues/1/comments: ")
    assert fake.comments(REPO, 1) == []


def test_put_labels_follows_the_schema_not_the_prose(fake: FakeGitHub, gh: requests.Session) -> None:
    """The description says an empty array clears labels, but the schema's minItems forbids it."""
    assert gh.put(api(fake, "/issues/1/labels"), json={"labels": []}).status_code == 400
    assert gh.post(api(fake, "/issues/1/labels"), json=["bug"]).status_code == 400  # bare array: prose only
    assert len(fake.violations) == 2
    fake.violations.clear()
    assert gh.patch(api(fake, "/issues/1"), json={"labels": []}).status_code == 200  # the valid way to clear
    fake.assert_no_violations()


def test_semantic_422s(fake: FakeGitHub, gh: requests.Session) -> None:
    assert gh.post(api(fake, "/issues/1/comments"), json={"body": "  "}).status_code == 422
    assert gh.post(api(fake, "/issues/1/comments"), json={"body": "x" * 65537}).status_code == 422
    assert gh.post(api(fake, "/labels"), json={"name": "bug", "color": "#ff0000"}).status_code == 422
    assert len(fake.violations) == 3 and "65537 characters" in fake.violations[1]


# ---------------------------------------------------------------- state round trips


def test_comments_round_trip_with_pagination(fake: FakeGitHub, gh: requests.Session) -> None:
    created = [gh.post(api(fake, "/issues/1/comments"), json={"body": f"note {i}"}) for i in range(5)]
    assert all(r.status_code == 201 for r in created)
    first = created[0].json()
    assert first["user"]["login"] == "llmasos-engage[bot]" and first["user"]["type"] == "Bot"
    assert created[0].headers["Location"] == first["url"] == f"{fake.url}/repos/{REPO}/issues/comments/{first['id']}"

    page1 = gh.get(api(fake, "/issues/1/comments"), params={"per_page": 2})
    assert [c["body"] for c in page1.json()] == ["note 0", "note 1"]
    assert set(page1.links) == {"next", "last"}
    assert page1.links["next"]["url"] == f"{fake.url}/repos/{REPO}/issues/1/comments?per_page=2&page=2"
    assert page1.links["last"]["url"].endswith("page=3")
    bodies: list[str] = []
    url: str | None = api(fake, "/issues/1/comments?per_page=2")
    while url:
        page = gh.get(url)
        bodies += [c["body"] for c in page.json()]
        url = page.links.get("next", {}).get("url")
    assert bodies == [f"note {i}" for i in range(5)]
    assert set(page.links) == {"prev", "first"}

    comment_id = first["id"]
    assert gh.patch(api(fake, f"/issues/comments/{comment_id}"), json={"body": "edited"}).json()["body"] == "edited"
    deleted = gh.delete(api(fake, f"/issues/comments/{comment_id}"))
    assert deleted.status_code == 204 and deleted.content == b""
    assert gh.delete(api(fake, f"/issues/comments/{comment_id}")).status_code == 404
    assert [c["body"] for c in fake.comments(REPO, 1)] == [f"note {i}" for i in range(1, 5)]
    assert gh.get(api(fake, "/issues/comments"), params={"per_page": 100}).json()[0]["body"] == "note 1"
    assert gh.get(api(fake, "/issues/9/comments")).status_code == 404
    assert len(fake.writes()) == 8
    fake.assert_no_violations()


def test_labels(fake: FakeGitHub, gh: requests.Session) -> None:
    made = gh.post(api(fake, "/labels"), json={"name": "good first issue", "color": "7057ff"})
    assert made.status_code == 201 and made.json()["name"] == "good first issue"
    dup = gh.post(api(fake, "/labels"), json={"name": "Good First Issue"})
    assert dup.status_code == 422 and dup.json()["message"] == "Validation Failed"
    assert dup.json()["errors"] == [{"resource": "Label", "code": "already_exists", "field": "name"}]
    assert gh.get(api(fake, "/labels/good%20first%20issue")).json()["color"] == "7057ff"
    assert gh.get(api(fake, "/labels/nope")).status_code == 404

    added = gh.post(api(fake, "/issues/1/labels"), json={"labels": ["good first issue", "triage"]})
    assert added.status_code == 200 and [lab["name"] for lab in added.json()] == ["good first issue", "triage"]
    assert fake.issue_labels(REPO, 1) == ["good first issue", "triage"]
    assert set(fake.repo_labels(REPO)) == {"good first issue", "triage"}  # adding creates missing labels

    slashed = gh.post(api(fake, "/issues/1/labels"), json={"labels": ["area/docs"]})
    assert slashed.status_code == 200 and "area/docs" in fake.issue_labels(REPO, 1)
    assert gh.delete(api(fake, "/issues/1/labels/area%2Fdocs")).status_code == 200
    removed = gh.delete(api(fake, "/issues/1/labels/triage"))
    assert removed.status_code == 200 and [lab["name"] for lab in removed.json()] == ["good first issue"]
    absent = gh.delete(api(fake, "/issues/1/labels/triage"))
    assert absent.status_code == 404 and absent.json()["message"] == "Label does not exist"

    assert gh.put(api(fake, "/issues/1/labels"), json={"labels": ["bug"]}).status_code == 200
    assert fake.issue_labels(REPO, 1) == ["bug"]
    renamed = gh.patch(api(fake, "/labels/bug"), json={"new_name": "defect", "color": "d73a4a"})
    assert renamed.json()["name"] == "defect" and fake.issue_labels(REPO, 1) == ["defect"]
    assert [lab["name"] for lab in gh.get(api(fake, "/issues/1/labels")).json()] == ["defect"]
    assert gh.get(api(fake, "/issues"), params={"labels": "defect"}).json()[0]["number"] == 1
    fake.assert_no_violations()


def test_issue_updates_assignees_reactions_and_pulls(fake: FakeGitHub, gh: requests.Session) -> None:
    fake.add_issue(REPO, 2, "bob", title="Add feature", pull_request=True, labels=["enhancement"])
    closed = gh.patch(api(fake, "/issues/1"), json={"state": "closed", "state_reason": "not_planned", "title": None})
    assert closed.json()["state"] == "closed" and closed.json()["state_reason"] == "not_planned"
    assert gh.get(api(fake, "/issues"), params={"state": "open"}).json()[0]["number"] == 2
    assert [i["number"] for i in gh.get(api(fake, "/issues"), params={"state": "all", "creator": "alice"}).json()] == [
        1
    ]

    assert gh.post(api(fake, "/issues/2/assignees"), json={"assignees": ["carol", "dan"]}).status_code == 201
    assert gh.delete(api(fake, "/issues/2/assignees"), json={"assignees": ["carol"]}).status_code == 200
    assert fake.assignees(REPO, 2) == ["dan"]

    assert gh.post(api(fake, "/issues/2/reactions"), json={"content": "eyes"}).status_code == 201
    assert gh.post(api(fake, "/issues/2/reactions"), json={"content": "eyes"}).status_code == 200  # already there
    assert gh.post(api(fake, "/issues/2/reactions"), json={"content": "wow"}).status_code == 400
    fake.violations.clear()
    comment_id = fake.add_comment(REPO, 2, "bob", "ping")
    assert gh.post(api(fake, f"/issues/comments/{comment_id}/reactions"), json={"content": "+1"}).status_code == 201
    assert fake.reactions(REPO, issue_number=2) == ["eyes"] and fake.reactions(REPO, comment_id=comment_id) == ["+1"]

    pulls = gh.get(api(fake, "/pulls")).json()
    assert [p["number"] for p in pulls] == [2] and pulls[0]["user"]["login"] == "bob"
    assert gh.get(api(fake, "/pulls/2")).json()["labels"][0]["name"] == "enhancement"
    assert gh.get(api(fake, "/pulls/1")).status_code == 404
    assert "pull_request" in gh.get(api(fake, "/issues/2")).json()
    assert "pull_request" not in gh.get(api(fake, "/issues/1")).json()
    fake.assert_no_violations()


def test_contents_etag_and_304(fake: FakeGitHub, gh: requests.Session) -> None:
    fake.set_file(REPO, ".github/engage.yml", "greeting: hi\n")
    first = gh.get(api(fake, "/contents/.github/engage.yml"))
    body = first.json()
    assert first.status_code == 200 and body["encoding"] == "base64" and body["type"] == "file"
    assert base64.b64decode(body["content"]).decode() == "greeting: hi\n" and len(body["sha"]) == 40
    etag = first.headers["ETag"]
    remaining = int(first.headers["X-RateLimit-Remaining"])

    cached = gh.get(api(fake, "/contents/.github/engage.yml"), headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    assert int(cached.headers["X-RateLimit-Remaining"]) == remaining  # conditional hits are free

    fake.set_file(REPO, ".github/engage.yml", "greeting: hello\n")
    changed = gh.get(api(fake, "/contents/.github/engage.yml"), headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert gh.get(api(fake, "/contents/missing.yml")).status_code == 404
    assert gh.get(api(fake, "/contents/.github/engage.yml"), params={"ref": "dev"}).status_code == 404
    listing = gh.get(api(fake, "/contents/.github")).json()
    assert [(e["name"], e["type"]) for e in listing] == [("engage.yml", "file")]
    fake.assert_no_violations()


def test_people_endpoints(fake: FakeGitHub, gh: requests.Session) -> None:
    fake.set_permission(REPO, "maint", "maintain")
    perm = gh.get(api(fake, "/collaborators/maint/permission")).json()
    assert (perm["permission"], perm["role_name"]) == ("write", "maintain")
    assert gh.get(api(fake, "/collaborators/stranger/permission")).json()["permission"] == "read"
    fake.add_member("octo-org", "alice")
    assert gh.get(f"{fake.url}/orgs/octo-org/members/alice").status_code == 204
    assert gh.get(f"{fake.url}/orgs/octo-org/members/bob").status_code == 404
    assert gh.get(f"{fake.url}/users/alice").json()["login"] == "alice"
    fake.add_commit(REPO, "alice")
    fake.add_commit(REPO, "bob")
    fake.add_commit(REPO, "alice")
    contributors = gh.get(api(fake, "/contributors")).json()
    assert [(c["login"], c["contributions"]) for c in contributors] == [("alice", 2), ("bob", 1)]
    assert len(gh.get(api(fake, "/commits"), params={"author": "bob"}).json()) == 1
    fake.assert_no_violations()


def test_search_by_author(fake: FakeGitHub, gh: requests.Session) -> None:
    fake.add_issue(REPO, 2, "alice", title="Second", pull_request=True)
    fake.add_issue(REPO, 3, "bob", title="Third")
    fake.add_issue("elsewhere/repo", 4, "alice")  # not in the installation: never found

    def numbers(q: str) -> list[int]:
        resp = gh.get(f"{fake.url}/search/issues", params={"q": q})
        assert resp.status_code == 200 and resp.json()["incomplete_results"] is False
        assert resp.json()["total_count"] == len(resp.json()["items"])
        assert resp.headers["X-RateLimit-Resource"] == "search"
        return sorted(i["number"] for i in resp.json()["items"])

    assert numbers(f"repo:{REPO} author:alice") == [1, 2]
    assert numbers(f"repo:{REPO} author:alice type:issue") == [1]
    assert numbers(f"repo:{REPO} author:alice is:pr") == [2]
    assert numbers("author:bob is:issue is:open") == [3]
    assert numbers("crash in:title -author:bob") == [1]
    fake.assert_no_violations()
    assert gh.get(f"{fake.url}/search/issues", params={"q": "commenter:bob"}).status_code == 400
    assert "not supported by the fake" in fake.violations[0]


# ---------------------------------------------------------------- faults, headers, records


def test_fail_next_and_delay_next(fake: FakeGitHub, gh: requests.Session) -> None:
    fake.fail_next("GET", r"/issues/1$", 502, times=2)
    assert [gh.get(api(fake, "/issues/1")).status_code for _ in range(3)] == [502, 502, 200]

    reset = str(int(time.time()) + 60)
    fake.fail_next("POST", r"/comments$", 403, {"message": "API rate limit exceeded"},
                   {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})  # fmt: skip
    limited = gh.post(api(fake, "/issues/1/comments"), json={"body": "hi"})
    assert limited.status_code == 403 and limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.headers["X-RateLimit-Reset"] == reset and fake.comments(REPO, 1) == []

    fake.fail_next(
        "*", r"/comments$", 403, {"message": "You have exceeded a secondary rate limit."}, {"Retry-After": "1"}
    )
    assert gh.post(api(fake, "/issues/1/comments"), json={"body": "hi"}).headers["Retry-After"] == "1"
    fake.fail_next("POST", r"/comments$", 429)
    assert gh.post(api(fake, "/issues/1/comments"), json={"body": "hi"}).status_code == 429

    fake.delay_next("POST", r"/comments$", 0.5)
    with pytest.raises(requests.Timeout):
        gh.post(api(fake, "/issues/1/comments"), json={"body": "slow"}, timeout=0.1)
    deadline = time.monotonic() + 5
    while not fake.comments(REPO, 1) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [c["body"] for c in fake.comments(REPO, 1)] == ["slow"]  # the write landed anyway
    fake.assert_no_violations()


def test_latency_delays_every_request_and_records_show_the_overlap(fake: FakeGitHub, gh: requests.Session) -> None:
    fake.latency = 0.3
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda n: gh.get(api(fake, f"/issues/{n}")), (1, 1)))
    assert [answer.status_code for answer in answers] == [200, 200]
    first, second = fake.calls("GET", f"/repos/{REPO}/issues/1")
    for record in (first, second):
        assert record.answered is not None and record.answered - record.received >= 0.3
    assert max(first.received, second.received) < min(first.answered, second.answered), "served side by side"
    fake.reset()
    assert fake.latency == 0.0
    fake.assert_no_violations()


def test_rate_limit_headers_and_records(fake: FakeGitHub, gh: requests.Session) -> None:
    first, second = gh.get(api(fake, "")), gh.get(api(fake, ""))
    for resp in (first, second):
        assert resp.headers["X-RateLimit-Limit"] == "5000" and resp.headers["X-RateLimit-Resource"] == "core"
        assert int(resp.headers["X-RateLimit-Reset"]) > time.time() + 3500
    assert int(first.headers["X-RateLimit-Remaining"]) - int(second.headers["X-RateLimit-Remaining"]) == 1
    assert second.headers["X-RateLimit-Used"] == "2"
    core = gh.get(f"{fake.url}/rate_limit").json()["resources"]["core"]
    assert core["remaining"] == 4998

    gh.post(api(fake, "/issues/1/comments"), json={"body": "hi"})
    record = fake.calls("POST", f"/repos/{REPO}/issues")[0]
    assert record.json == {"body": "hi"} and record.status == 201 and record.headers["User-Agent"] == UA["User-Agent"]
    assert record.operation_id == "issues/create-comment"
    assert [r.path for r in fake.calls(method="GET")] == [f"/repos/{REPO}", f"/repos/{REPO}", "/rate_limit"]
    fake.assert_no_violations()


def test_reset_keeps_the_server(fake: FakeGitHub, gh: requests.Session) -> None:
    gh.get(api(fake, "/nope"))
    url = fake.url
    fake.reset()
    assert fake.url == url and fake.violations == [] and fake.requests == [] and fake.tokens_issued == 0
    assert gh.get(f"{url}/rate_limit").status_code == 401  # old tokens are gone too
    fake.violations.clear()


def test_the_contract_is_the_repositorys_own_copy() -> None:
    assert contract_file().is_file() and contract_file().is_relative_to(ROOT), "a clone alone must test"


def test_fake_implements_every_contract_operation() -> None:
    assert sorted(load_contract().operations) == list(iter_routes())


def signed_in_user(fake: FakeGitHub, http: requests.Session, login: str) -> dict[str, str]:
    """`login` through the App's user authorization (PKCE): the headers of their user access token."""
    fake.set_oauth_client("Iv1.client", "client-secret")
    fake.sign_in_browser(login)
    verifier = "v" * 43
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "client_id": "Iv1.client",
        "redirect_uri": "http://app.test/auth/callback",
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    anonymous = {"Authorization": None}  # a browser and the app's server, not an installation
    page = http.get(f"{fake.url}/login/oauth/authorize", params=query, headers=anonymous, allow_redirects=False)
    code = parse_qs(urlsplit(page.headers["Location"]).query)["code"][0]
    body = {"client_id": "Iv1.client", "client_secret": "client-secret", "code": code, "code_verifier": verifier}
    token = http.post(f"{fake.url}/login/oauth/access_token", json=body, headers=anonymous).json()
    return {"Authorization": f"Bearer {token['access_token']}", **UA}


def test_user_authorization_checks_pkce_and_the_client_and_shows_only_the_persons_repositories(
    fake: FakeGitHub, http: requests.Session
) -> None:
    fake.add_repo("octo-org/secret", private=True)
    fake.add_installation(77, "octo-org", ["octo-org/secret", "octo-org/open"])
    fake.set_permission("octo-org/secret", "bob", "triage")
    headers = signed_in_user(fake, http, "bob")
    assert http.get(f"{fake.url}/user", headers=headers).json()["login"] == "bob"
    [repo] = http.get(f"{fake.url}/user/installations/77/repositories", headers=headers).json()["repositories"]
    assert repo["full_name"] == "octo-org/secret" and repo["permissions"]["triage"] and not repo["permissions"]["push"]
    carol = signed_in_user(fake, http, "carol")  # no explicit access anywhere
    assert http.get(f"{fake.url}/user/installations", headers=carol).json()["total_count"] == 0
    assert http.get(f"{fake.url}/user/installations/77/repositories", headers=carol).status_code == 404
    # A wrong verifier, a used code, a wrong secret: GitHub's 200 with an error object.
    page = http.get(
        f"{fake.url}/login/oauth/authorize",
        params={
            "client_id": "Iv1.client",
            "redirect_uri": "http://a.test/cb",
            "state": "s",
            "code_challenge": "c" * 43,
            "code_challenge_method": "S256",
        },
        allow_redirects=False,
    )
    code = parse_qs(urlsplit(page.headers["Location"]).query)["code"][0]
    wrong = {"client_id": "Iv1.client", "client_secret": "client-secret", "code": code, "code_verifier": "x" * 43}
    assert http.post(f"{fake.url}/login/oauth/access_token", json=wrong).json()["error"] == "bad_verification_code"
    fake.expire_user_tokens()
    assert http.get(f"{fake.url}/user", headers=headers).status_code == 401
    # Without PKCE the authorize page is a violation.
    http.get(f"{fake.url}/login/oauth/authorize", params={"client_id": "Iv1.client", "state": "s"})
    assert any("PKCE" in v for v in fake.violations)
    fake.violations.clear()


def test_responses_match_the_contract(
    fake: FakeGitHub, gh: requests.Session, http: requests.Session, rsa_key: rsa.RSAPrivateKey
) -> None:
    """Everything the fake served in a broad session validates against GitHub's response schemas."""
    fake.add_issue(REPO, 2, "bob", pull_request=True, labels=["x"])
    fake.add_commit(REPO, "bob", pull_number=2)
    fake.add_review(REPO, 2, "carol")
    fake.set_file(REPO, "README.md", "hello")
    comment = gh.post(api(fake, "/issues/1/comments"), json={"body": "hi"}).json()["id"]
    for path in ("", "/issues", "/issues/1", "/issues/2", "/issues/1/comments", "/issues/comments", "/labels",
                 "/labels/x", "/issues/2/labels", "/pulls", "/pulls/2", "/pulls/2/reviews", "/pulls/2/commits",
                 "/commits", "/contributors", "/contents/README.md", "/collaborators/bob/permission"):  # fmt: skip
        assert gh.get(api(fake, path)).status_code == 200, path
    gh.patch(api(fake, "/issues/1"), json={"body": "new", "assignees": ["bob"]})
    gh.patch(api(fake, f"/issues/comments/{comment}"), json={"body": "edited"})
    gh.post(api(fake, "/labels"), json={"name": "new"})
    gh.patch(api(fake, "/labels/new"), json={"color": "000000"})
    gh.post(api(fake, "/issues/1/labels"), json={"labels": ["new"]})
    gh.put(api(fake, "/issues/1/labels"), json={"labels": ["x"]})
    gh.delete(api(fake, "/issues/1/labels/x"))
    gh.post(api(fake, "/issues/1/assignees"), json={"assignees": ["dan"]})
    gh.delete(api(fake, "/issues/1/assignees"), json={"assignees": ["dan"]})
    gh.post(api(fake, "/issues/1/reactions"), json={"content": "heart"})
    gh.post(api(fake, f"/issues/comments/{comment}/reactions"), json={"content": "rocket"})
    gh.post(api(fake, "/labels"), json={"name": "new"})  # 422
    gh.post(api(fake, "/issues"), json={"title": "Community digest, 2026-W48", "body": "text"})
    gh.get(f"{fake.url}/search/issues", params={"q": f"repo:{REPO}"})
    gh.get(f"{fake.url}/users/bob")
    gh.get(f"{fake.url}/rate_limit")
    gh.get(f"{fake.url}/installation/repositories")
    fake.add_member("octo-org", "bob")
    gh.get(f"{fake.url}/orgs/octo-org/members/bob")
    gh.get(f"{fake.url}/orgs/octo-org/members/carol")
    gh.get(api(fake, "/labels/missing"))  # 404
    gh.delete(api(fake, f"/issues/comments/{comment}"))
    bearer = {"Authorization": f"Bearer {app_jwt(rsa_key)}"}
    for path in ("/app", "/app/installations", f"/app/installations/{INSTALLATION}"):
        http.get(f"{fake.url}{path}", headers=bearer)
    fake.set_permission(REPO, "bob", "write")
    user = signed_in_user(fake, http, "bob")
    for path in ("/user", "/user/installations", f"/user/installations/{INSTALLATION}/repositories"):
        assert http.get(f"{fake.url}{path}", headers=user).status_code == 200, path
    fake.assert_no_violations()

    contract = load_contract()
    problems, seen = [], set()
    for record in fake.requests:
        if record.operation_id is None:
            continue  # GitHub's web pages (the authorize page), outside the REST contract
        op = next(o for o in contract.operations.values() if o.operation_id == record.operation_id)
        seen.add(op.operation_id)
        problems += [
            f"{op.operation_id} {record.status}: {e}" for e in op.response_errors(record.status or 0, record.response)
        ]
    assert problems == [], "\n".join(problems)
    assert len(seen) == len(contract.operations)
