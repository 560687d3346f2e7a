"""One REST client for GitHub, and the installation-scoped view behaviours use. Calls to GitHub's host
go through `githubapp.transport` (http.client), and through requests when a proxy is set or a redirect
leads elsewhere.

All transport goes through `GitHubApp.request`; status codes become the typed errors of
`githubapp.errors`. Writes are paced per installation and, with DRY_RUN, only logged.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urljoin

import requests

from githubapp.auth import AppAuth
from githubapp.budget import Budget
from githubapp.cache import Cache
from githubapp.errors import (
    Forbidden,
    GitHubError,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from githubapp.files import FileCache
from githubapp.pacing import WritePacer
from githubapp.transport import Answer, Transport

log = logging.getLogger(__name__)

USER_AGENT = "llmasos-engage/0.1 (+https://github.com/llmasos/engage)"
API_VERSION = "2022-11-28"
WRITE_METHODS = {"POST", "PATCH", "PUT", "DELETE"}
# Connections to GitHub kept open for reuse (requests keeps 10): more than the threads that call it at once.
CONNECTIONS = 64
# Without Retry-After, GitHub asks to wait at least a minute after a secondary rate limit.
SECONDARY_LIMIT_WAIT_SECONDS = 60.0
MAX_REDIRECTS = 30  # requests' limit
ETAG_TTL_SECONDS = 24 * 3600
# GitHub refuses a comment body over 65,536 characters (422). Counted here in UTF-8 bytes, never fewer
# than characters however GitHub counts them, and enforced where every comment is written.
COMMENT_LIMIT = 65_536
CUT_SHORT = "\n\n*(This comment was cut short: it was longer than GitHub allows.)*"
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
# Told of every answer: (method, status, installation id or None for the app's own calls, headers). For metrics.
ResponseHook = Callable[[str, int, int | None, Mapping[str, str]], None]


@dataclass
class Response:
    status: int
    data: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    dry_run: bool = False


def fit_comment(body: str) -> str:
    """`body` as it is, or cut at a line end to fit GitHub's limit with a note saying so. The start (where
    the app's markers are) is kept, and a code block or HTML comment left open is closed, so the note shows."""
    if len(body.encode()) <= COMMENT_LIMIT:
        return body
    head = body.encode()[:COMMENT_LIMIT].decode(errors="ignore")
    while True:
        end = head.rfind("\n", max(len(head) - 1000, 0))  # a line end near the cut, if there is one
        head = head[:end] if end > 0 else head[:-100]
        fitted = _closed(head) + CUT_SHORT
        if len(fitted.encode()) <= COMMENT_LIMIT:
            return fitted


def _closed(markdown: str) -> str:
    """`markdown` with the fenced code block or the HTML comment it leaves open closed."""
    fence = None  # the opening run of the code block still open
    for line in markdown.splitlines():
        if found := _FENCE.match(line):
            run = found.group(1)
            if fence is None:
                fence = run
            elif run[0] == fence[0] and len(run) >= len(fence):
                fence = None
    if markdown.rfind("<!--") > markdown.rfind("-->"):
        markdown += " -->"
    return f"{markdown}\n{fence}" if fence else markdown


def error_for(
    status: int, headers: Mapping[str, str], body: Any, method: str, path: str, now: float | None = None
) -> GitHubError:
    """Map a failed answer to its typed error; pure, so the rate-limit rules are table-testable."""
    message = body.get("message", "") if isinstance(body, Mapping) else str(body or "")[:200]
    now = time.time() if now is None else now
    if status in (403, 429):
        retry_after = headers.get("Retry-After") or headers.get("retry-after")
        remaining = headers.get("X-RateLimit-Remaining") or headers.get("x-ratelimit-remaining")
        reset = headers.get("X-RateLimit-Reset") or headers.get("x-ratelimit-reset")
        if retry_after and retry_after.strip().isdigit():
            return RateLimited(message or "secondary rate limit", status, method, path, float(retry_after))
        if remaining == "0" and reset and reset.strip().isdigit():
            return RateLimited(message or "rate limit exceeded", status, method, path, max(1.0, float(reset) - now))
        if status == 429 or "rate limit" in message.lower():
            return RateLimited(message or "rate limited", status, method, path, SECONDARY_LIMIT_WAIT_SECONDS)
        return Forbidden(message, status, method, path)
    if status == 401:
        return Unauthorized(message, status, method, path)
    if status == 404:
        return NotFound(message, status, method, path)
    if status == 422:
        return ValidationFailed(message, status, method, path)
    if status >= 500:
        return ServerError(message or "server error", status, method, path)
    return GitHubError(message, status, method, path)


def next_link(link_header: str | None) -> str | None:
    """The rel="next" URL of a Link header (GitHub's pagination), if any."""
    for part in (link_header or "").split(","):
        section = part.split(";")
        if len(section) > 1 and any(s.strip() == 'rel="next"' for s in section[1:]):
            return section[0].strip().strip("<>")
    return None


def session_for(base_url: str) -> requests.Session:
    """An HTTP session that takes its proxy and CA bundle from the environment once, when it is made.

    With `trust_env` on, requests reads them again for every request (proxies, no_proxy, the CA bundle:
    about a tenth of a GitHub call's CPU), and a `~/.netrc` entry for GitHub's host would replace the
    Authorization header the app sets with that file's credentials.
    """
    session = requests.Session()
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.trust_env = False
    return session


class GitHubApp:
    """The app's connection to GitHub: authentication, the HTTP session, pacing, caches."""

    def __init__(
        self,
        base_url: str,
        app_id: int | None,
        private_key: str | None,
        cache: Cache,
        pacer: WritePacer,
        dry_run: bool = False,
        timeout: float = 10.0,
        on_response: ResponseHook | None = None,
        budget: Budget | None = None,
        waiting: Callable[[], AbstractContextManager[None]] = nullcontext,
    ):
        self.base_url = base_url.rstrip("/")
        # Entered around each call: the worker's processing turn goes to another delivery meanwhile.
        self.waiting = waiting
        self.session = session_for(self.base_url)
        # GitHub's host directly, unless the environment names a proxy (which requests speaks to).
        self.transport = None if self.session.proxies else Transport(self.base_url, self.session.verify)
        # Threads calling GitHub at once (WORKER_THREADS, web requests) each keep their connection open.
        for scheme in ("https://", "http://"):
            self.session.mount(scheme, requests.adapters.HTTPAdapter(pool_maxsize=CONNECTIONS))
        self.session.headers.update(
            {"User-Agent": USER_AGENT, "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
        )
        # requests' own defaults left out: the lean transport decodes no gzip and keeps its connection open.
        self.lean_headers = {
            name: value
            for name, value in self.session.headers.items()
            if name.lower() not in ("accept-encoding", "connection")
        }
        self.cache = cache
        self.pacer = pacer
        self.dry_run = dry_run
        self.timeout = timeout
        self.auth = AppAuth(app_id, private_key, cache, self._create_token) if app_id and private_key else None
        self.on_response = on_response
        self.budget = budget if budget is not None else Budget(cache)
        self.files = FileCache(cache)

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        token: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        installation_id: int | None = None,
    ) -> Response:
        url = path_or_url if path_or_url.startswith("http") else self.base_url + path_or_url
        path = url[len(self.base_url) :] if url.startswith(self.base_url) else url
        all_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
        try:
            with self.waiting():
                answer = self._send(method, url, params, body, all_headers)
        except requests.Timeout as exc:
            raise Unavailable(f"no answer within {self.timeout}s", 0, method, path) from exc
        except requests.ConnectionError as exc:
            raise Unavailable(f"cannot connect to {self.base_url}", 0, method, path) from exc
        if installation_id is not None:
            self.budget.record(installation_id, answer.headers)
        if self.on_response is not None:
            self.on_response(method, answer.status_code, installation_id, answer.headers)
        data = _decode(answer)
        log.debug(
            "github call",
            extra={"method": method, "path": path, "status": answer.status_code, "installation_id": installation_id},
        )
        if answer.status_code >= 400:
            raise error_for(answer.status_code, answer.headers, data, method, path)
        return Response(answer.status_code, data, answer.headers)

    def _send(
        self, method: str, url: str, params: Mapping[str, Any] | None, body: Any, headers: Mapping[str, str]
    ) -> requests.Response | Answer:
        """On GitHub's own host, through the lean transport (`githubapp.transport`, why there), following a
        redirect (a renamed or transferred repository) as requests does (`_redirected`), the token dropped
        when the redirect leaves GitHub's host."""
        if self.transport is None or not self.transport.serves(url):
            return self._send_with_requests(method, url, params, body, headers)
        answer = self.transport.send(method, url, {**self.lean_headers, **headers}, params, body, self.timeout)
        for _ in range(MAX_REDIRECTS):
            if not answer.is_redirect:
                return answer
            url = urljoin(url, answer.headers["Location"])
            method, body = _redirected(answer.status_code, method, body)
            if not self.transport.serves(url):
                away = {name: value for name, value in headers.items() if name.lower() != "authorization"}
                return self._send_with_requests(method, url, None, body, away)
            answer = self.transport.send(method, url, {**self.lean_headers, **headers}, None, body, self.timeout)
        raise requests.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")

    def _send_with_requests(
        self, method: str, url: str, params: Mapping[str, Any] | None, body: Any, headers: Mapping[str, str]
    ) -> requests.Response:
        """What `Session.request` sends, less the work it does per call that GitHub's API never needs: through
        a proxy from the environment, or to another host.

        The session's merging of cookies, environment and hooks, and its cookie jar's bookkeeping of
        every answer, were about a quarter of a call's CPU through requests. The request is prepared as
        requests does (URL and query quoted, JSON body) and sent by the session's adapter with the
        session's proxies and CA bundle. A redirect is followed by the session, which drops the token
        when the redirect leaves GitHub's host.
        """
        prepared = requests.PreparedRequest()
        prepared.prepare(method=method, url=url, headers={**self.session.headers, **headers}, params=params, json=body)
        session, timeout = self.session, (5, self.timeout)
        answer = session.get_adapter(url).send(
            prepared, timeout=timeout, verify=session.verify, proxies=session.proxies, cert=session.cert
        )
        if not answer.is_redirect:
            return answer
        prepared.prepare_cookies(session.cookies)  # what following a redirect keeps track of
        followed = session.resolve_redirects(
            answer, prepared, timeout=timeout, verify=session.verify, proxies=session.proxies, cert=session.cert
        )
        return [answer, *followed][-1]

    def _require_auth(self) -> AppAuth:
        if self.auth is None:
            raise Unauthorized("APP_ID and PRIVATE_KEY (or PRIVATE_KEY_PATH) must be set to call GitHub")
        return self.auth

    def _create_token(self, installation_id: int, app_jwt: str) -> dict[str, str]:
        try:
            answer = self.request("POST", f"/app/installations/{installation_id}/access_tokens", token=app_jwt)
        except Unauthorized as exc:
            raise Unauthorized(
                f"GitHub refused the app's JWT ({exc.message}): check that APP_ID matches the private key "
                "and that the machine's clock is right",
                401,
                exc.method,
                exc.path,
            ) from exc
        data: dict[str, str] = answer.data
        return data

    def as_app(self, method: str, path: str, **kwargs: Any) -> Response:
        """A call authenticated as the app itself (JWT), e.g. `GET /app`."""
        return self.request(method, path, token=self._require_auth().app_jwt(), **kwargs)

    def installation(self, installation_id: int) -> InstallationClient:
        return InstallationClient(self, installation_id)


def _fitted(body: str) -> str:
    fitted = fit_comment(body)
    if fitted != body:
        log.warning("comment cut to GitHub's limit", extra={"length": len(body)})
    return fitted


def _redirected(status: int, method: str, body: Any) -> tuple[str, Any]:
    """The method and body a redirect is followed with, by requests' rules (`Session.rebuild_method`): a 303
    or a 302 turns the method into GET (HEAD stays), a 301 a POST; only a 307 or 308 keeps the body."""
    if (status in (302, 303) and method != "HEAD") or (status == 301 and method == "POST"):
        method = "GET"
    return method, body if status in (307, 308) else None


def _decode(answer: requests.Response | Answer) -> Any:
    if not answer.content:
        return None
    try:
        return answer.json()
    except ValueError:
        return answer.text


class InstallationClient:
    """GitHub as one installation sees it. Behaviours get this narrow interface."""

    def __init__(self, app: GitHubApp, installation_id: int):
        self.app = app
        self.installation_id = installation_id

    def request(self, method: str, path: str, **kwargs: Any) -> Response:
        auth = self.app._require_auth()
        if method in WRITE_METHODS:
            if self.app.dry_run:
                log.info(
                    "dry run: would call GitHub",
                    extra={
                        "method": method,
                        "path": path,
                        "body": kwargs.get("body"),
                        "installation_id": self.installation_id,
                    },
                )
                return Response(0, None, {}, dry_run=True)
            self.app.pacer.wait_for_slot(self.installation_id)
        token = auth.installation_token(self.installation_id)
        try:
            return self.app.request(method, path, token=token, installation_id=self.installation_id, **kwargs)
        except Unauthorized:
            # A cached token can be revoked early (app reinstalled, key rotated): fetch a fresh one once.
            auth.forget_token(self.installation_id)
            token = auth.installation_token(self.installation_id)
            return self.app.request(method, path, token=token, installation_id=self.installation_id, **kwargs)

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params).data

    def paginate(self, path: str, params: Mapping[str, Any] | None = None, limit: int = 1000) -> Iterator[Any]:
        """Every item of a list endpoint, following the Link header; stops after `limit` items."""
        url: str | None = path
        query: Mapping[str, Any] | None = {"per_page": 100, **(params or {})}
        count = 0
        while url:
            answer = self.request("GET", url, params=query)
            items = answer.data.get("items", []) if isinstance(answer.data, dict) else answer.data
            for item in items or []:
                yield item
                count += 1
                if count >= limit:
                    return
            url, query = next_link(answer.headers.get("Link")), None  # the next link carries the query

    def get_cached(self, path: str) -> Any:
        """GET with an ETag: a 304 answer costs no rate limit and reuses the stored body."""
        key = f"etag:{self.installation_id}:{path}"
        stored = self.app.cache.get(key)
        headers = {"If-None-Match": json.loads(stored)["etag"]} if stored else None
        answer = self.request("GET", path, headers=headers)
        if answer.status == 304 and stored:
            return json.loads(stored)["data"]
        etag = answer.headers.get("ETag")
        if etag:
            self.app.cache.set(key, json.dumps({"etag": etag, "data": answer.data}), ETAG_TTL_SECONDS)
        return answer.data

    def can_spare(self, lookup: str) -> bool:
        """True while this installation's budget leaves room for optional lookups (`lookup` names the one
        asking, for the skip counter); essential calls never ask."""
        return self.app.budget.spare(self.installation_id, lookup)

    # The operations behaviours use. Each names the REST operation it calls.

    def read_file(self, repo: str, path: str, ref: str | None = None) -> str | None:
        """repos/get-content: the text of a file, or None when it does not exist; the copy the app holds
        when it has one (githubapp.files: a push that changes the file forgets it)."""
        return self.app.files.read(repo, path, ref, lambda: self._read_file(repo, path, ref), self.app.waiting)

    def _read_file(self, repo: str, path: str, ref: str | None) -> str | None:
        suffix = f"?ref={quote(ref, safe='')}" if ref else ""
        try:
            data = self.get_cached(f"/repos/{repo}/contents/{quote(path)}{suffix}")
        except NotFound:
            return None
        if not isinstance(data, dict) or data.get("type") != "file":
            return None
        return base64.b64decode(data.get("content", "")).decode("utf-8", errors="replace")

    def create_comment(self, repo: str, number: int, body: str) -> Any:
        """issues/create-comment (cut to GitHub's limit, like every comment the app writes)."""
        return self.request("POST", f"/repos/{repo}/issues/{number}/comments", body={"body": _fitted(body)}).data

    def create_issue(self, repo: str, title: str, body: str) -> Any:
        """issues/create (the body cut to GitHub's limit, as a comment's). Returns the issue."""
        return self.request("POST", f"/repos/{repo}/issues", body={"title": title, "body": _fitted(body)}).data

    def update_comment(self, repo: str, comment_id: int, body: str) -> Any:
        """issues/update-comment (cut to GitHub's limit, like every comment the app writes)."""
        path = f"/repos/{repo}/issues/comments/{comment_id}"
        return self.request("PATCH", path, body={"body": _fitted(body)}).data

    def list_comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        """issues/list-comments."""
        return list(self.paginate(f"/repos/{repo}/issues/{number}/comments"))

    def add_labels(self, repo: str, number: int, labels: list[str]) -> Any:
        """issues/add-labels."""
        return self.request("POST", f"/repos/{repo}/issues/{number}/labels", body={"labels": labels}).data

    def remove_label(self, repo: str, number: int, label: str) -> None:
        """issues/remove-label; a label already gone counts as removed."""
        with contextlib.suppress(NotFound):
            self.request("DELETE", f"/repos/{repo}/issues/{number}/labels/{quote(label, safe='')}")

    def react_to_issue(self, repo: str, number: int, content: str) -> Any:
        """reactions/create-for-issue; GitHub answers 200 instead of 201 when the reaction exists."""
        return self.request("POST", f"/repos/{repo}/issues/{number}/reactions", body={"content": content}).data

    def get_label(self, repo: str, name: str) -> dict[str, Any] | None:
        """issues/get-label: the repository's label of that name, or None when it has none."""
        try:
            label: dict[str, Any] = self.get(f"/repos/{repo}/labels/{quote(name, safe='')}")
        except NotFound:
            return None
        return label

    def create_label(self, repo: str, name: str, color: str, description: str = "") -> bool:
        """issues/create-label; False when the label exists already (GitHub's 422 `already_exists`)."""
        body = {"name": name, "color": color, **({"description": description} if description else {})}
        try:
            self.request("POST", f"/repos/{repo}/labels", body=body)
        except ValidationFailed:
            if self.get_label(repo, name) is None:
                raise  # refused for another reason (a bad colour or name)
            return False
        return True

    def collaborator_permission(self, repo: str, username: str) -> dict[str, Any] | None:
        """repos/get-collaborator-permission-level: `permission` (admin, write, read or none) and, on
        current GitHub, `role_name` (admin, maintain, write, triage, read or a custom role); None when
        GitHub does not know the user."""
        try:
            answer: dict[str, Any] = self.get(f"/repos/{repo}/collaborators/{quote(username, safe='')}/permission")
        except NotFound:
            return None
        return answer

    def get_user(self, username: str) -> dict[str, Any] | None:
        """users/get-by-username: the account's `id` and `type` (User, Organization, Bot); None when GitHub
        has no account by that name."""
        try:
            answer: dict[str, Any] = self.get(f"/users/{quote(username, safe='')}")
        except NotFound:
            return None
        return answer

    def add_assignees(self, repo: str, number: int, logins: list[str]) -> Any:
        """issues/add-assignees; GitHub leaves out, silently, people who cannot be assigned. Returns the issue."""
        return self.request("POST", f"/repos/{repo}/issues/{number}/assignees", body={"assignees": logins}).data

    def remove_assignees(self, repo: str, number: int, logins: list[str]) -> Any:
        """issues/remove-assignees (a DELETE with a body). Returns the issue."""
        return self.request("DELETE", f"/repos/{repo}/issues/{number}/assignees", body={"assignees": logins}).data

    def delete_comment(self, repo: str, comment_id: int) -> None:
        """issues/delete-comment; a comment already gone counts as deleted."""
        with contextlib.suppress(NotFound):
            self.request("DELETE", f"/repos/{repo}/issues/comments/{comment_id}")

    def react_to_comment(self, repo: str, comment_id: int, content: str) -> Any:
        """reactions/create-for-issue-comment; GitHub answers 200 instead of 201 when the reaction exists."""
        return self.request(
            "POST", f"/repos/{repo}/issues/comments/{comment_id}/reactions", body={"content": content}
        ).data

    def get_issue(self, repo: str, number: int) -> dict[str, Any]:
        """issues/get (a pull request's issue view carries the reactions its own payload lacks)."""
        issue: dict[str, Any] = self.get(f"/repos/{repo}/issues/{number}")
        return issue

    def list_reviews(self, repo: str, number: int) -> Iterator[dict[str, Any]]:
        """pulls/list-reviews, every page."""
        return self.paginate(f"/repos/{repo}/pulls/{number}/reviews")

    def issues_by(self, repo: str, creator: str, limit: int = 10) -> list[dict[str, Any]]:
        """issues/list-for-repo: the first issues and pull requests `creator` opened, oldest first."""
        query = {"creator": creator, "state": "all", "sort": "created", "direction": "asc", "per_page": limit}
        items: list[dict[str, Any]] = self.get(f"/repos/{repo}/issues", query)
        return items

    def search_issues(self, query: str, limit: int = 10) -> list[dict[str, Any]]:
        """search/issues-and-pull-requests: the first matches."""
        found = self.get("/search/issues", {"q": query, "per_page": limit})
        return [item for item in found.get("items", []) if isinstance(item, dict)] if isinstance(found, dict) else []
