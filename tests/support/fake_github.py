"""A stateful fake of the GitHub REST API that enforces GitHub's OpenAPI contract.

Why: mocks that accept anything let the app drift from what GitHub really accepts.
This fake serves real HTTP on 127.0.0.1, checks every request against
``tests/contract/github/rest-api.subset.json`` (GitHub's own OpenAPI 3.0.3 description,
trimmed to the 38 operations the app may use), and records each mismatch in
``FakeGitHub.violations`` while answering it with 400 (401 for auth). Tests call
``assert_no_violations()`` at teardown so a contract breach fails loudly.

Responses start from GitHub's own response examples in the spec, with the fields
that matter (ids, numbers, bodies, logins, labels, urls) overridden from state.

What is a violation (stricter than GitHub where GitHub would silently ignore a mistake):
unknown path or method; path/query parameters of the wrong type or outside an enum; a
query parameter the operation does not define (catches ``per-page`` typos and ``per_page``
on unpaginated endpoints); a repeated query parameter; a body that fails the operation's
``requestBody`` schema, a missing required body, a body where none is defined, or a body
not sent as ``application/json``; no ``User-Agent``; an unknown ``X-GitHub-Api-Version``;
missing/invalid auth (bad JWT, unknown or expired token, JWT outside ``/app``, token on
``/app``); and a few 422s GitHub would also return for client mistakes (blank or
> 65536-char comment body, label colour not ``rrggbb``). Not violations: 404s for unknown
things, 422 for a duplicate label, 401 after ``revoke_tokens()``, and ``fail_next`` answers.
``fail_next`` only answers requests that passed validation; ``delay_next`` delays any match; ``latency`` delays
every request, as the distance to real GitHub does (each request records when it arrived and was answered).

One documented extra outside the contract: registering an App from a manifest (GitHub's web pages
``/settings/apps/new`` and ``/organizations/{org}/settings/apps/new``, and the REST call the subset leaves
out, ``POST /app-manifests/{code}/conversions``); see "the App manifest flow" below.

Usage::

    with FakeGitHub(app_id=1, public_key_pem=pem) as gh:
        gh.add_installation(7, "octo-org", ["octo-org/repo"])
        gh.add_issue("octo-org/repo", 1, "alice")
        ...  # point the app at gh.url
        gh.assert_no_violations()
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import html
import json
import math
import re
import secrets
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, quote, unquote, urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jsonschema import Draft4Validator
from jsonschema.exceptions import best_match
from werkzeug.datastructures import Headers
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

JSON = Any
API_VERSIONS = frozenset({"2022-11-28", "2026-03-10"})
JWT_EXPIRED = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future time "
    "at which the assertion expires"
)
JWT_UNDECODABLE = "A JSON web token could not be decoded"
BAD_CREDENTIALS = "Bad credentials"
DOCS = "https://docs.github.com/rest"
EXAMPLE_API = "https://api.github.com"
COMMENT_MAX = 65536
DEFAULT_PERMISSIONS = {
    "issues": "write",
    "pull_requests": "read",
    "contents": "read",
    "metadata": "read",
    "members": "read",
}


# --------------------------------------------------------------------------- contract


CONTRACT_DIR = Path(__file__).resolve().parents[1] / "contract" / "github"


def contract_file() -> Path:
    """The spec: the repository's own copy, so a clone tests alone."""
    return CONTRACT_DIR / "rest-api.subset.json"


_OAS_ONLY = {"nullable", "discriminator", "xml", "externalDocs", "example", "deprecated", "readOnly", "writeOnly"}


def oas_to_jsonschema(schema: JSON) -> JSON:
    """Translate an OpenAPI 3.0 schema to Draft 4 JSON Schema (``nullable`` becomes a null branch)."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties"):
            out[key] = {name: oas_to_jsonschema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = oas_to_jsonschema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [oas_to_jsonschema(sub) for sub in value]
        elif key not in _OAS_ONLY and not key.startswith("x-"):
            out[key] = value
    if schema.get("nullable") is True:
        kind = out.get("type")
        if isinstance(kind, str) and not {"enum", "allOf", "anyOf", "oneOf"} & out.keys():
            out["type"] = [kind, "null"]
        else:
            out = {"anyOf": [{"type": "null"}, out]}
    return out


def _schema_errors(validator: Draft4Validator, instance: JSON, where: str) -> list[str]:
    """One readable line per top-level schema error (oneOf failures name their closest branch)."""
    lines = []
    for err in sorted(validator.iter_errors(instance), key=lambda e: list(e.path)):
        detail = best_match(err.context) if err.context else None
        msg = err.message if detail is None else f"{err.message[:120]} (closest: {detail.json_path}: {detail.message})"
        lines.append(f"{where} {err.json_path}: {msg[:400]}")
    return lines


@dataclass
class Operation:
    """One (method, path template) of the spec, with cached validators."""

    method: str
    template: str
    spec: dict[str, Any]
    _validators: dict[str, Draft4Validator] = field(default_factory=dict, repr=False)

    @property
    def operation_id(self) -> str:
        return str(self.spec["operationId"])

    @property
    def doc_url(self) -> str:
        return str(self.spec.get("externalDocs", {}).get("url", DOCS))

    def parameters(self, where: str) -> list[dict[str, Any]]:
        return [p for p in self.spec.get("parameters", []) if p["in"] == where]

    def validator(self, key: str, schema: JSON) -> Draft4Validator:
        if key not in self._validators:
            self._validators[key] = Draft4Validator(oas_to_jsonschema(schema))
        return self._validators[key]

    def example(self, status: int | str = 200, name: str | None = None) -> JSON:
        """A deep copy of GitHub's response example (first one unless named)."""
        examples = self.spec["responses"][str(status)]["content"]["application/json"]["examples"]
        return copy.deepcopy(examples[name or next(iter(examples))]["value"])

    def response_errors(self, status: int, body: JSON) -> list[str]:
        """Why ``body`` is not valid for this status per the spec (empty list when it is)."""
        response = self.spec["responses"].get(str(status))
        if response is None:
            return [f"status {status} is not documented for {self.method} {self.template}"]
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            return [] if body is None else [f"status {status} has no body in the spec"]
        return _schema_errors(self.validator(f"response:{status}", schema), body, "response")


class Contract:
    """The parsed spec: route matching and request checking."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.operations: dict[tuple[str, str], Operation] = {}
        for template, item in spec["paths"].items():
            for method, op in item.items():
                if method in ("get", "put", "post", "patch", "delete", "head", "options"):
                    self.operations[(method.upper(), template)] = Operation(method.upper(), template, op)
        templates = {t for _, t in self.operations}
        # Literal segments win over {params} at the first position they differ (GitHub's routing).
        self._templates = sorted(
            ((t, tuple(t.strip("/").split("/"))) for t in templates),
            key=lambda item: tuple(seg.startswith("{") for seg in item[1]),
        )

    @staticmethod
    def _match(tsegs: tuple[str, ...], segs: list[str]) -> dict[str, str] | None:
        greedy = tsegs[-1] == "{path}"  # repos/get-content: the file path spans segments
        if len(segs) != len(tsegs) and not (greedy and len(segs) > len(tsegs)):
            return None
        params: dict[str, str] = {}
        for i, tseg in enumerate(tsegs):
            seg = unquote(segs[i])
            if tseg.startswith("{"):
                if greedy and i == len(tsegs) - 1:
                    seg = "/".join(unquote(s) for s in segs[i:])
                if not seg:
                    return None
                params[tseg[1:-1]] = seg
            elif tseg != seg:
                return None
        return params

    def route(self, method: str, raw_path: str) -> tuple[Operation | None, dict[str, str], str]:
        """The operation for a raw (percent-encoded) path, its path params, or why there is none."""
        segs = raw_path.strip("/").split("/") if raw_path.strip("/") else [""]
        if raw_path.endswith("/") and raw_path != "/":
            return None, {}, "trailing slash: no operation in the contract matches this path"
        allowed: list[str] = []
        for template, tsegs in self._templates:
            params = self._match(tsegs, segs)
            if params is None:
                continue
            op = self.operations.get((method, template))
            if op is not None:
                return op, params, ""
            allowed.append(template)
        if allowed:
            methods = sorted(m for m, t in self.operations if t == allowed[0])
            return None, {}, f"method {method} is not in the contract for {allowed[0]} (allowed: {methods})"
        return None, {}, "no operation in the contract matches this path"

    def check_request(
        self,
        op: Operation,
        path_params: Mapping[str, str],
        query: Mapping[str, list[str]],
        raw_body: bytes,
        content_type: str | None,
    ) -> tuple[list[str], dict[str, Any], dict[str, Any], JSON]:
        """Validate params and body; returns (problems, typed path params, typed query with defaults, body)."""
        problems: list[str] = []
        params: dict[str, Any] = {}
        for p in op.parameters("path"):
            params[p["name"]] = self._param(op, p, path_params.get(p["name"], ""), problems, "path")
        known = {p["name"]: p for p in op.parameters("query")}
        typed_query: dict[str, Any] = {}
        for name, values in query.items():
            if name not in known:
                problems.append(f"query parameter {name!r} is not in the contract (known: {sorted(known)})")
            elif len(values) > 1:
                problems.append(f"query parameter {name!r} given {len(values)} times")
        for name, p in known.items():
            if name in query:
                typed_query[name] = self._param(op, p, query[name][-1], problems, "query")
            elif p.get("required"):
                problems.append(f"required query parameter {name!r} is missing")
            elif "default" in p["schema"]:
                typed_query[name] = p["schema"]["default"]
        body: JSON = None
        spec_body = op.spec.get("requestBody")
        if not raw_body.strip():
            if spec_body and spec_body.get("required"):
                problems.append("request body is required")
        elif not spec_body:
            problems.append("this operation takes no request body")
        else:
            if (content_type or "").split(";")[0].strip().lower() != "application/json":
                problems.append(f"Content-Type must be application/json, got {content_type!r}")
            try:
                body = json.loads(raw_body)
            except ValueError as exc:
                problems.append(f"request body is not JSON: {exc}")
            else:
                schema = spec_body["content"]["application/json"]["schema"]
                problems += _schema_errors(op.validator("body", schema), body, "body")
        return problems, params, typed_query, body

    @staticmethod
    def _param(op: Operation, p: dict[str, Any], raw: str, problems: list[str], where: str) -> Any:
        schema, name = p["schema"], p["name"]
        value: Any = raw
        kind = schema.get("type")
        if kind == "integer":
            if not re.fullmatch(r"-?\d+", raw):
                problems.append(f"{where} parameter {name!r}={raw!r} is not an integer")
                return raw
            value = int(raw)
        elif kind == "number":
            try:
                value = float(raw)
            except ValueError:
                problems.append(f"{where} parameter {name!r}={raw!r} is not a number")
                return raw
        elif kind == "boolean":
            if raw not in ("true", "false"):
                problems.append(f"{where} parameter {name!r}={raw!r} is not true/false")
                return raw
            value = raw == "true"
        elif schema.get("format") == "date-time":
            try:
                datetime.fromisoformat(raw)
            except ValueError:
                problems.append(f"{where} parameter {name!r}={raw!r} is not an ISO 8601 date-time")
        problems += _schema_errors(op.validator(f"{where}:{name}", schema), value, f"{where} parameter {name!r}")
        return value


@functools.lru_cache(maxsize=4)
def load_contract(path: Path | None = None) -> Contract:
    """Parse the spec once per process (1.7 MB). The default one gains the user authorization's token
    exchange (``oauth-web-flow.json``, composed from GitHub's docs: it lives on the web host, outside the
    REST description)."""
    with open(path or contract_file(), encoding="utf-8") as fh:
        spec = json.load(fh)
    if path in (None, contract_file()):
        spec["paths"].update(json.loads((CONTRACT_DIR / "oauth-web-flow.json").read_text())["paths"])
    return Contract(spec)


# --------------------------------------------------------------------------- records


@dataclass
class RecordedRequest:
    """One request as the fake saw it (valid or not), and the status it answered."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: JSON
    data: bytes
    status: int | None = None
    response: JSON = None
    operation_id: str | None = None
    # time.monotonic() when it arrived and when its answer was ready: shows which requests overlapped.
    received: float = 0.0
    answered: float | None = None


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    times: int
    status: int = 0
    body: JSON = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    query: dict[str, str] = field(default_factory=dict)  # only requests with these query values

    def matches(self, method: str, path: str, args: Mapping[str, str]) -> bool:
        return (
            self.method in ("*", method)
            and self.pattern.search(path) is not None
            and all(args.get(k) == v for k, v in self.query.items())
        )


@dataclass
class _Principal:
    kind: str  # "app" (JWT), "installation" (token), "user" (user access token) or "anonymous"
    key: str
    installation_id: int | None = None
    repos: frozenset[str] | None = None  # token restricted to these repo keys
    login: str | None = None  # a user token's person


@dataclass
class _Resp:
    status: int
    body: JSON = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None


class _Abort(Exception):
    """Raised by handlers to answer early (404, 422, ...)."""

    def __init__(self, resp: _Resp) -> None:
        super().__init__(resp.status)
        self.resp = resp


@dataclass
class _Ctx:
    op: Operation
    method: str
    path: str
    raw_path: str
    params: dict[str, Any]
    query: dict[str, Any]
    args: list[tuple[str, str]]
    body: JSON
    headers: Headers
    principal: _Principal


Handler = Callable[["FakeGitHub", _Ctx], _Resp]
_ROUTES: dict[tuple[str, str], Handler] = {}


def _route(method: str, template: str) -> Callable[[Handler], Handler]:
    """Register a handler for one contract operation."""

    def register(fn: Handler) -> Handler:
        _ROUTES[(method, template)] = fn
        return fn

    return register


class _QuietHandler(WSGIRequestHandler):
    """Keep werkzeug's per-request log lines out of test output."""

    def log(self, type: str, message: str, *args: Any) -> None:
        pass


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rewrite(obj: JSON, old: str, new: str) -> JSON:
    """Replace a substring in every string of a JSON tree (example urls -> ours)."""
    if isinstance(obj, str):
        return obj.replace(old, new)
    if isinstance(obj, list):
        return [_rewrite(v, old, new) for v in obj]
    if isinstance(obj, dict):
        return {k: _rewrite(v, old, new) for k, v in obj.items()}
    return obj


def _node_id(kind: str, ident: int) -> str:
    return base64.b64encode(f"{kind}{ident}".encode()).decode()


def _error(status: int, message: str, doc: str = DOCS, **extra: Any) -> _Resp:
    return _Resp(status, {"message": message, "documentation_url": doc, "status": str(status), **extra})


_SEARCH_TERM = re.compile(r'(-?)([a-z][\w-]*):("[^"]*"|\S+)|("[^"]*"|\S+)')
_SEARCH_KINDS = {("type", "issue"), ("is", "issue"), ("type", "pr"), ("is", "pr"), ("is", "pull-request")}
_SEARCH_MERGE = {("is", "merged"), ("is", "unmerged")}


def _search_supported(qual: str, value: str) -> bool:
    return (
        qual in ("", "repo", "user", "org", "author", "assignee", "label", "reviewed-by")
        or (qual, value) in _SEARCH_KINDS
        or (qual, value) in _SEARCH_MERGE
        or (qual in ("is", "state") and value in ("open", "closed"))
    )


def _search_match(qual: str, value: str, repo_key: str, issue: dict[str, Any]) -> bool:
    """Does one search term (qualifier or plain word) match a stored issue?"""
    if qual == "":
        return value in f"{issue['title']} {issue['body']}".lower()
    if qual == "repo":
        return repo_key == value
    if qual in ("user", "org"):
        return repo_key.split("/")[0] == value
    if qual == "author":
        return bool(issue["user"].lower() == value)
    if qual == "assignee":
        return value in [a.lower() for a in issue["assignees"]]
    if qual == "label":
        return value in issue["labels"]
    if (qual, value) in _SEARCH_KINDS:
        return bool(issue["pr"] == (value != "issue"))
    if (qual, value) in _SEARCH_MERGE:
        return bool(issue["pr"]) and bool(issue.get("merged_at")) == (value == "merged")
    return bool(issue["state"] == value)


# --------------------------------------------------------------------------- the fake


class FakeGitHub:
    """Threaded local GitHub API; see the module docstring."""

    def __init__(self, app_id: int, public_key_pem: bytes, contract: Contract | None = None) -> None:
        self.app_id = app_id
        self.public_key_pem = public_key_pem
        self.contract = contract or load_contract(contract_file())
        missing = set(_ROUTES) - set(self.contract.operations)
        assert not missing, f"fake routes not in the contract: {missing}"
        self._lock = threading.RLock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # ---- lifecycle

    def reset(self) -> None:
        """Forget all state, records and queued faults (the server keeps running)."""
        with self._lock:
            self.violations: list[str] = []
            self.requests: list[RecordedRequest] = []
            self.tokens_issued = 0
            self.token_expiry_seconds = 3600
            self.latency = 0.0  # seconds every request waits before it is handled, as real GitHub's do
            self.app_slug = "llmasos-engage"
            self._faults: list[_Fault] = []
            self._ids = 1000
            self._installations: dict[int, dict[str, Any]] = {}
            self._tokens: dict[str, dict[str, Any]] = {}
            self._revoked: set[str] = set()
            self._repos: dict[str, dict[str, Any]] = {}
            self._issues: dict[tuple[str, int], dict[str, Any]] = {}
            self._comments: dict[int, dict[str, Any]] = {}
            self._members: set[tuple[str, str]] = set()
            self._rate: dict[tuple[str, str], list[int]] = {}  # (key, resource) -> [limit, used, reset]
            self.registered_apps: dict[int, dict[str, Any]] = {}  # Apps made by the manifest flow, by id
            self._manifest_codes: dict[str, tuple[int, float]] = {}  # one-time code -> (app id, expiry)
            # The App's user authorization (the web flow): see "signing people in" below.
            self.oauth_client: tuple[str, str] | None = None  # the App's client id and secret
            self.browser_user: str | None = None  # who is signed in to GitHub in "the browser"
            self.user_token_seconds = 8 * 3600  # GitHub App user tokens expire after 8 hours
            self.refresh_token_seconds = 15_811_200  # and their refresh tokens after 6 months
            self._oauth_codes: dict[str, dict[str, Any]] = {}
            self._user_tokens: dict[str, dict[str, Any]] = {}  # access token -> {"login", "expires"}
            self._refresh_tokens: dict[str, dict[str, Any]] = {}  # refresh token -> {"login", "expires"}

    def start(self) -> Self:
        server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """API base URL, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("FakeGitHub is not started")
        return f"http://127.0.0.1:{self._server.port}"

    @property
    def bot_login(self) -> str:
        return f"{self.app_slug}[bot]"

    # ---- checks and records

    def assert_no_violations(self) -> None:
        with self._lock:
            found = list(self.violations)
        if found:
            raise AssertionError(f"{len(found)} GitHub contract violation(s):\n" + "\n".join(f"- {v}" for v in found))

    def calls(self, method: str | None = None, path_prefix: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method.upper())
                and (path_prefix is None or r.path.startswith(path_prefix))
            ]

    def writes(self) -> list[RecordedRequest]:
        """Requests that change GitHub (token creation does not count)."""
        return [
            r
            for r in self.calls()
            if r.method not in ("GET", "HEAD") and not re.fullmatch(r"/app/installations/[^/]+/access_tokens", r.path)
        ]

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        query: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` valid matching requests with a canned error (state is untouched).

        ``query``: only requests with these query values, e.g. ``{"page": "2"}`` to fail one page of a list.
        """
        with self._lock:
            self._faults.append(
                _Fault(
                    method.upper(),
                    re.compile(path_regex),
                    times,
                    status,
                    body,
                    dict(headers or {}),
                    query=dict(query or {}),
                )
            )

    def delay_next(self, method: str, path_regex: str, seconds: float, times: int = 1) -> None:
        """Sleep before handling the next matching requests; they still take effect (like a slow GitHub)."""
        with self._lock:
            self._faults.append(_Fault(method.upper(), re.compile(path_regex), times, delay=seconds))

    def revoke_tokens(self) -> None:
        """Invalidate all issued installation tokens (as a reinstall or key rotation does).

        Using a revoked token gets GitHub's 401 but is not a violation: the test caused it on purpose.
        """
        with self._lock:
            self._revoked.update(self._tokens)
            self._tokens.clear()

    def _take_fault(self, method: str, path: str, delay: bool, args: Mapping[str, str]) -> _Fault | None:
        for fault in self._faults:
            if (fault.delay > 0) == delay and fault.matches(method, path, args):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # ---- state setup

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def add_installation(
        self,
        installation_id: int,
        account_login: str,
        repos: Iterable[str],
        permissions: dict[str, str] | None = None,
        account_type: str = "Organization",
    ) -> None:
        with self._lock:
            keys = [self._ensure_repo(r)["key"] for r in repos]
            self._installations[installation_id] = {
                "id": installation_id,
                "account": account_login,
                "account_type": account_type,
                "repos": keys,
                "permissions": dict(permissions or DEFAULT_PERMISSIONS),
                "created_at": _now(),
            }

    def set_rate_limit(
        self, installation_id: int, *, remaining: int, limit: int = 5000, reset: float | None = None
    ) -> None:
        """The installation's core budget as GitHub counts it now (`reset`: epoch seconds the window ends,
        default an hour from now); each later charged request takes one more, as before."""
        with self._lock:
            end = int(reset if reset is not None else time.time() + 3600)
            self._rate[(f"installation:{installation_id}", "core")] = [limit, limit - remaining, end]

    def add_repo(
        self, full_name: str, private: bool = False, default_branch: str = "main", repo_id: int | None = None
    ) -> None:
        """`repo_id`: the id GitHub gave it, e.g. the one in a recorded payload (default: a fresh one)."""
        with self._lock:
            repo = self._ensure_repo(full_name)
            repo.update(private=private, default_branch=default_branch)
            if repo_id is not None:
                repo["id"] = repo_id

    def _ensure_repo(self, full_name: str) -> dict[str, Any]:
        key = full_name.lower()
        if key not in self._repos:
            owner, _, name = full_name.partition("/")
            assert owner and name and "/" not in name, f"repo must be 'owner/name', got {full_name!r}"
            self._repos[key] = {
                "key": key,
                "full_name": full_name,
                "id": self._next_id(),
                "private": False,
                "default_branch": "main",
                "labels": {},
                "files": {},
                "permissions": {},
                "commits": [],
                "reviews": [],
                "created_at": _now(),
            }
        return self._repos[key]

    def add_issue(
        self,
        full_name: str,
        number: int,
        user_login: str,
        title: str = "",
        body: str = "",
        pull_request: bool = False,
        labels: Iterable[str] = (),
        state: str = "open",
        author_association: str = "NONE",
        created_at: str | None = None,
        merged: bool = False,
    ) -> None:
        """`merged=True` makes a closed, merged pull request."""
        with self._lock:
            repo = self._ensure_repo(full_name)
            stamp = created_at or _now()
            if merged:
                pull_request, state = True, "closed"
            issue = self._issue_record(number, user_login, title or f"Issue {number}", body, stamp)
            issue.update(pr=pull_request, state=state, author_association=author_association)
            if state == "closed":
                issue.update(state_reason="completed", closed_at=stamp, merged_at=stamp if merged else None)
            self._issues[(repo["key"], number)] = issue
            self._attach_labels(repo, issue, list(labels))

    def _issue_record(self, number: int, user_login: str, title: str, body: str, stamp: str) -> dict[str, Any]:
        """A new open issue as the fake stores it."""
        return {
            "number": number,
            "id": self._next_id(),
            "user": user_login,
            "title": title,
            "body": body,
            "pr": False,
            "labels": [],
            "state": "open",
            "state_reason": None,
            "assignees": [],
            "created_at": stamp,
            "updated_at": stamp,
            "closed_at": None,
            "author_association": "NONE",
            "reactions": [],
            "merged_at": None,
        }

    def add_comment(
        self,
        full_name: str,
        number: int,
        user_login: str,
        body: str,
        author_association: str = "NONE",
        created_at: str | None = None,
        comment_id: int | None = None,
    ) -> int:
        """Seed a comment by someone else (e.g. the contributor); returns its id. Like GitHub, a new
        comment bumps its issue's `updated_at` (what the issue list's `since` filters on)."""
        with self._lock:
            repo = self._ensure_repo(full_name)
            issue = self._issues.get((repo["key"], number))
            assert issue is not None, f"no issue {full_name}#{number}"
            comment = self._new_comment(repo, number, user_login, body, author_association)
            if comment_id is not None:
                del self._comments[comment["id"]]
                comment["id"] = comment_id
                self._comments[comment_id] = comment
            if created_at is not None:
                comment.update(created_at=created_at, updated_at=created_at)
            self._touch(issue, comment["created_at"])
            return int(comment["id"])

    def _touch(self, issue: dict[str, Any], stamp: str) -> None:
        issue["updated_at"] = max(issue["updated_at"], stamp)

    def add_commit(
        self, full_name: str, author_login: str, message: str = "commit", pull_number: int | None = None
    ) -> str:
        """Seed a commit (feeds list-commits, pull commits and contributors); returns its sha."""
        with self._lock:
            repo = self._ensure_repo(full_name)
            sha = hashlib.sha1(f"{full_name}{len(repo['commits'])}{message}".encode()).hexdigest()
            repo["commits"].append(
                {"sha": sha, "author": author_login, "message": message, "pull": pull_number, "date": _now()}
            )
            return sha

    def add_review(
        self,
        full_name: str,
        pull_number: int,
        user_login: str,
        state: str = "APPROVED",
        body: str = "",
        submitted_at: str | None = None,
    ) -> int:
        """Seed a review (APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED or PENDING); returns its id."""
        with self._lock:
            repo = self._ensure_repo(full_name)
            review = {
                "id": self._next_id(),
                "pull": pull_number,
                "user": user_login,
                "state": state,
                "body": body,
                "at": submitted_at or _now(),
            }
            repo["reviews"].append(review)
            pull = self._issues.get((repo["key"], pull_number))
            if pull is not None and state != "PENDING":
                self._touch(pull, review["at"])
            return int(review["id"])

    def close_issue(
        self, full_name: str, number: int, by: str | None = None, at: str | None = None, merged: bool = False
    ) -> None:
        """Close an issue or pull request (`merged`: merge it) at a time, by someone (`closed_by`)."""
        with self._lock:
            issue = self._issues[(full_name.lower(), number)]
            assert issue["pr"] or not merged, f"{full_name}#{number} is an issue: it cannot be merged"
            stamp = at or _now()
            issue.update(
                state="closed",
                state_reason="completed",
                closed_at=stamp,
                closed_by=by,
                merged_at=stamp if merged else None,
            )
            self._touch(issue, stamp)

    def react(self, full_name: str, number: int, content: str, user_login: str) -> None:
        """Someone's reaction to an issue or pull request (counted in its `reactions` summary)."""
        with self._lock:
            issue = self._issues[(full_name.lower(), number)]
            issue["reactions"].append(
                {"id": self._next_id(), "content": content, "created_at": _now(), "user": user_login}
            )

    def user_id(self, login: str) -> int:
        """The id the fake gives a login in every answer (so payloads can be edited to agree)."""
        return int(self._user(login)["id"])

    def set_file(self, full_name: str, path: str, text: str, ref: str | None = None) -> None:
        with self._lock:
            repo = self._ensure_repo(full_name)
            repo["files"][(ref or repo["default_branch"], path.strip("/"))] = text

    def set_permission(self, full_name: str, login: str, permission: str) -> None:
        """Role of ``login`` on the repo: admin, maintain, write, triage, read or none (default read)."""
        with self._lock:
            self._ensure_repo(full_name)["permissions"][login.lower()] = permission

    def add_member(self, org: str, login: str) -> None:
        with self._lock:
            self._members.add((org.lower(), login.lower()))

    # ---- state inspection (API-shaped copies)

    def issue(self, full_name: str, number: int) -> dict[str, Any]:
        with self._lock:
            repo = self._repos[full_name.lower()]
            return self._issue_json(repo, self._issues[(repo["key"], number)])

    def comments(self, full_name: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            repo = self._repos[full_name.lower()]
            return [self._comment_json(repo, c) for c in self._comments_of(repo["key"], number)]

    def issue_labels(self, full_name: str, number: int) -> list[str]:
        with self._lock:
            repo = self._repos[full_name.lower()]
            return [repo["labels"][k]["name"] for k in self._issues[(repo["key"], number)]["labels"]]

    def repo_labels(self, full_name: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            repo = self._repos[full_name.lower()]
            return {lab["name"]: self._label_json(repo, lab) for lab in repo["labels"].values()}

    def assignees(self, full_name: str, number: int) -> list[str]:
        with self._lock:
            return list(self._issues[(full_name.lower(), number)]["assignees"])

    def reactions(self, full_name: str, issue_number: int | None = None, comment_id: int | None = None) -> list[str]:
        """Reaction contents on an issue or on a comment, in creation order."""
        with self._lock:
            if comment_id is not None:
                return [r["content"] for r in self._comments[comment_id]["reactions"]]
            assert issue_number is not None
            return [r["content"] for r in self._issues[(full_name.lower(), issue_number)]["reactions"]]

    # ---- WSGI entry

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        req = Request(environ)
        raw_path = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(req.path)).split("?", 1)[0]
        data = req.get_data(cache=True)
        try:
            parsed = json.loads(data) if data.strip() else None
        except ValueError:
            parsed = None
        record = RecordedRequest(
            req.method,
            req.path,
            dict(req.args.items()),
            dict(req.headers.items()),
            parsed,
            data,
            received=time.monotonic(),
        )
        with self._lock:
            self.requests.append(record)
            slow = self._take_fault(req.method, req.path, True, req.args)
            wait = self.latency + (slow.delay if slow is not None else 0.0)
        if wait > 0:
            time.sleep(wait)
        with self._lock:
            try:
                resp = self._process(req, raw_path, data, record)
            except Exception as exc:
                self.violations.append(f"{req.method} {req.path}: fake-github internal error: {exc!r}")
                resp = _error(500, f"fake-github: internal error: {exc!r}")
            record.status, record.response, record.answered = resp.status, resp.body, time.monotonic()
        if resp.raw is not None:
            payload = resp.raw
        elif resp.body is None:
            payload = b""
        else:
            payload = json.dumps(_rewrite(resp.body, EXAMPLE_API, self.url)).encode()
            resp.headers.setdefault("Content-Type", "application/json; charset=utf-8")
        return Response(payload, status=resp.status, headers=resp.headers)(environ, start_response)

    def _violation(self, method: str, path: str, reasons: list[str]) -> None:
        self.violations.extend(f"{method} {path}: {r}" for r in reasons)

    def _process(self, req: Request, raw_path: str, data: bytes, record: RecordedRequest) -> _Resp:
        method, path = req.method, req.path
        extra = self._manifest_flow(req, data)
        if extra is not None:
            return extra
        op, path_params, why = self.contract.route(method, raw_path)
        if op is None:
            self._violation(method, path, [why])
            return _error(400, f"fake-github: {why}")
        record.operation_id = op.operation_id
        problems: list[str] = []
        if not req.headers.get("User-Agent"):
            problems.append("User-Agent header is missing (GitHub rejects such requests)")
        version = req.headers.get("X-GitHub-Api-Version")
        if version is not None and version not in API_VERSIONS:
            problems.append(f"X-GitHub-Api-Version {version!r} is not a supported version")
        principal, auth_message, auth_reason = self._authenticate(op, req.headers.get("Authorization"))
        checked, params, query, body = self.contract.check_request(
            op, path_params, req.args.to_dict(flat=False), data, req.headers.get("Content-Type")
        )
        problems += checked
        if principal is None:
            self._violation(method, path, [f"401: {auth_reason}", *problems] if auth_reason else problems)
            return self._with_rate(_error(401, auth_message or BAD_CREDENTIALS), f"anon:{req.remote_addr}", path, op)
        if problems:
            self._violation(method, path, problems)
            return self._with_rate(
                _error(400, "fake-github: " + "; ".join(problems)), self._rate_key(principal), path, op
            )
        fault = self._take_fault(method, path, False, req.args)
        if fault is not None:
            canned = _Resp(fault.status, fault.body if fault.body is not None else {"message": f"HTTP {fault.status}"})
            canned = self._with_rate(canned, self._rate_key(principal), path, op)
            canned.headers.update(fault.headers)
            return canned
        ctx = _Ctx(
            op, method, path, raw_path, params, query, list(req.args.items(multi=True)), body, req.headers, principal
        )
        try:
            resp = _ROUTES[(op.method, op.template)](self, ctx)
        except _Abort as stop:
            resp = stop.resp
        if method == "GET" and resp.status == 200:
            payload = resp.raw if resp.raw is not None else json.dumps(resp.body, sort_keys=True).encode()
            etag = f'W/"{hashlib.sha256(payload).hexdigest()[:40]}"'
            resp.headers["ETag"] = etag
            wanted = {t.strip().removeprefix("W/") for t in req.headers.get("If-None-Match", "").split(",")}
            if etag.removeprefix("W/") in wanted:  # conditional hit: free against the rate limit, like GitHub
                return self._with_rate(
                    _Resp(304, None, {"ETag": etag}), self._rate_key(principal), path, op, charge=False
                )
        return self._with_rate(resp, self._rate_key(principal), path, op, charge=op.operation_id != "rate-limit/get")

    # ---- auth

    def _authenticate(self, op: Operation, header: str | None) -> tuple[_Principal | None, str, str]:
        """Who is calling, or (None, GitHub's message, the violation reason; empty when not a violation)."""
        scheme, _, cred = (header or "").strip().partition(" ")
        cred = cred.strip()
        if op.template == "/app" or op.template.startswith("/app/"):
            if not header:
                return None, JWT_UNDECODABLE, "missing Authorization header (this endpoint needs the app JWT)"
            if scheme.lower() != "bearer":
                return None, JWT_UNDECODABLE, f"app JWT must be sent as 'Bearer <jwt>', got scheme {scheme!r}"
            if cred in self._tokens:
                return None, JWT_UNDECODABLE, "installation token used where the app JWT is required"
            try:
                claims = jwt.decode(
                    cred, self.public_key_pem, algorithms=["RS256"], options={"require": ["exp", "iat", "iss"]}
                )
            except jwt.ExpiredSignatureError:
                return None, JWT_EXPIRED, "app JWT has expired"
            except jwt.ImmatureSignatureError:
                return (
                    None,
                    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
                    "app JWT iat is in the future",
                )
            except jwt.InvalidTokenError as exc:
                return None, JWT_UNDECODABLE, f"app JWT rejected: {exc}"
            if str(claims["iss"]) != str(self.app_id):
                return None, JWT_UNDECODABLE, f"app JWT iss={claims['iss']!r}, expected {self.app_id}"
            if claims["exp"] - claims["iat"] > 660 or claims["exp"] - time.time() > 660:
                return (
                    None,
                    "'Expiration time' claim ('exp') is too far in the future",
                    "app JWT lives longer than 10 minutes",
                )
            return _Principal("app", "app"), "", ""
        if op.template.startswith("/login/oauth/"):
            if header:
                return None, BAD_CREDENTIALS, "the token exchange takes the client secret in its body, no Authorization"
            return _Principal("anonymous", "anonymous"), "", ""
        if op.template == "/user" or op.template.startswith("/user/"):
            return self._authenticate_user(scheme, cred)
        if cred in self._user_tokens:
            return None, BAD_CREDENTIALS, "user access token used outside /user (the app acts as its installation)"
        if not header:
            return None, BAD_CREDENTIALS, "missing Authorization header (installation token required)"
        if scheme.lower() not in ("bearer", "token"):
            return None, BAD_CREDENTIALS, f"Authorization scheme {scheme!r} is not 'Bearer' or 'token'"
        token = self._tokens.get(cred)
        if cred in self._revoked:
            return None, BAD_CREDENTIALS, ""
        if token is None:
            looks_jwt = cred.count(".") == 2
            return (
                None,
                BAD_CREDENTIALS,
                "app JWT used outside /app (use an installation token)" if looks_jwt else "unknown token",
            )
        if time.time() >= token["expires"]:
            return None, BAD_CREDENTIALS, "installation token has expired"
        return _Principal("installation", cred, token["installation"], token["repos"]), "", ""

    def _authenticate_user(self, scheme: str, cred: str) -> tuple[_Principal | None, str, str]:
        if scheme.lower() not in ("bearer", "token") or not cred:
            return None, "Requires authentication", "missing user access token on a /user operation"
        token = self._user_tokens.get(cred)
        if token is None:
            if cred in self._tokens:
                return None, BAD_CREDENTIALS, "installation token used on /user (a user access token is required)"
            return None, BAD_CREDENTIALS, ""  # revoked or never issued: GitHub's 401, not a mistake of the app
        if time.time() >= token["expires"]:
            return None, BAD_CREDENTIALS, ""  # expired: the app should refresh it; GitHub answers 401
        return _Principal("user", f"user:{token['login'].lower()}", login=token["login"]), "", ""

    def _with_rate(self, resp: _Resp, key: str, path: str, op: Operation, charge: bool = True) -> _Resp:
        """Add GitHub's X-RateLimit-* headers; ``remaining`` counts down per token."""
        resource = "search" if path.startswith("/search/") else "core"
        limit = 60 if key.startswith("anon:") else 30 if resource == "search" else 5000
        bucket = self._bucket(key, resource, limit)
        if charge:
            bucket[1] = min(bucket[0], bucket[1] + 1)
        resp.headers.update(
            {
                "X-RateLimit-Limit": str(bucket[0]),
                "X-RateLimit-Remaining": str(bucket[0] - bucket[1]),
                "X-RateLimit-Reset": str(bucket[2]),
                "X-RateLimit-Used": str(bucket[1]),
                "X-RateLimit-Resource": resource,
                "X-GitHub-Api-Version-Selected": "2022-11-28",
                "X-GitHub-Request-Id": secrets.token_hex(8).upper(),
            }
        )
        return resp

    @staticmethod
    def _rate_key(principal: _Principal) -> str:
        """GitHub counts an installation's requests together, whichever of its tokens made them."""
        return f"installation:{principal.installation_id}" if principal.kind == "installation" else principal.key

    def _bucket(self, key: str, resource: str, limit: int) -> list[int]:
        bucket = self._rate.get((key, resource))
        if bucket is None or bucket[2] <= time.time():
            window = 60 if resource == "search" else 3600
            bucket = self._rate[(key, resource)] = [limit, 0, int(time.time()) + window]
        return bucket

    # ---- helpers for handlers

    def _not_found(self, ctx: _Ctx, message: str = "Not Found") -> _Abort:
        return _Abort(_error(404, message, ctx.op.doc_url))

    def _repo(self, ctx: _Ctx) -> dict[str, Any]:
        """The repo in the path, 404 if unknown or outside the token's installation (as GitHub does)."""
        key = f"{ctx.params['owner']}/{ctx.params['repo']}".lower()
        repo = self._repos.get(key)
        if repo is None or not self._visible(ctx.principal, key):
            raise self._not_found(ctx)
        return repo

    def _visible(self, principal: _Principal, key: str) -> bool:
        inst = self._installations.get(principal.installation_id or -1)
        return inst is not None and key in inst["repos"] and (principal.repos is None or key in principal.repos)

    def _issue(
        self, ctx: _Ctx, repo: dict[str, Any], number: int | None = None, pr: bool | None = None
    ) -> dict[str, Any]:
        issue = self._issues.get((repo["key"], number if number is not None else ctx.params["issue_number"]))
        if issue is None or (pr is not None and issue["pr"] != pr):
            raise self._not_found(ctx)
        return issue

    def _comment(self, ctx: _Ctx, repo: dict[str, Any]) -> dict[str, Any]:
        comment = self._comments.get(ctx.params["comment_id"])
        if comment is None or comment["repo"] != repo["key"]:
            raise self._not_found(ctx)
        return comment

    def _comments_of(self, key: str, number: int) -> list[dict[str, Any]]:
        return [c for c in self._comments.values() if c["repo"] == key and c["number"] == number]

    def _unprocessable(self, ctx: _Ctx, errors: list[dict[str, Any]], violation: str | None = None) -> _Abort:
        if violation:
            self._violation(ctx.method, ctx.path, [f"422: {violation}"])
        return _Abort(_error(422, "Validation Failed", ctx.op.doc_url, errors=errors))

    def _paginate(self, ctx: _Ctx, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        """Slice by per_page/page and build GitHub's Link header (absolute, other params kept)."""
        per_page = min(max(int(ctx.query.get("per_page", 30)), 1), 100)
        page = max(int(ctx.query.get("page", 1)), 1)
        last = max(1, math.ceil(len(items) / per_page))
        others = [(k, v) for k, v in ctx.args if k != "page"]

        def link(target: int, rel: str) -> str:
            return f'<{self.url}{ctx.raw_path}?{urlencode([*others, ("page", str(target))])}>; rel="{rel}"'

        links = []
        if page > 1:
            links.append(link(min(page - 1, last), "prev"))
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links.append(link(1, "first"))
        return items[(page - 1) * per_page : page * per_page], ({"Link": ", ".join(links)} if links else {})

    def _list(self, ctx: _Ctx, items: list[Any]) -> _Resp:
        page, headers = self._paginate(ctx, items)
        return _Resp(200, page, headers)

    def _new_comment(self, repo: dict[str, Any], number: int, login: str, body: str, assoc: str) -> dict[str, Any]:
        stamp = _now()
        comment = {
            "id": self._next_id(),
            "repo": repo["key"],
            "number": number,
            "user": login,
            "body": body,
            "created_at": stamp,
            "updated_at": stamp,
            "author_association": assoc,
            "reactions": [],
        }
        self._comments[comment["id"]] = comment
        return comment

    def _label(
        self, repo: dict[str, Any], name: str, color: str = "ededed", description: str | None = None
    ) -> dict[str, Any]:
        """Get or create a repo label (GitHub creates unknown labels when they are added to issues)."""
        key = name.lower()
        if key not in repo["labels"]:
            repo["labels"][key] = {"id": self._next_id(), "name": name, "color": color, "description": description}
        label: dict[str, Any] = repo["labels"][key]
        return label

    def _attach_labels(
        self, repo: dict[str, Any], issue: dict[str, Any], names: list[Any], replace: bool = False
    ) -> None:
        if replace:
            issue["labels"] = []
        for item in names:
            key = self._label(repo, item["name"] if isinstance(item, dict) else str(item))["name"].lower()
            if key not in issue["labels"]:
                issue["labels"].append(key)

    def _react(self, ctx: _Ctx, target: dict[str, Any]) -> _Resp:
        for existing in target["reactions"]:
            if existing["content"] == ctx.body["content"] and existing.get("user", self.bot_login) == self.bot_login:
                return _Resp(200, self._reaction_json(ctx, existing))
        reaction = {"id": self._next_id(), "content": ctx.body["content"], "created_at": _now()}
        target["reactions"].append(reaction)
        return _Resp(201, self._reaction_json(ctx, reaction))

    # ---- JSON shapes (GitHub's examples with our state laid over them)

    def _user(self, login: str, kind: str | None = None) -> dict[str, Any]:
        user = self._op("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments").example()[0]["user"]
        uid = zlib.crc32(login.lower().encode()) % 90_000_000 + 10_000_000
        user = _rewrite(user, "/users/octocat", f"/users/{quote(login)}")
        kind = kind or ("Bot" if login.endswith("[bot]") else "User")
        html = f"https://github.com/apps/{login[:-5]}" if kind == "Bot" else f"https://github.com/{login}"
        user.update(
            login=login,
            id=uid,
            node_id=_node_id("U_", uid),
            type=kind,
            html_url=html,
            avatar_url=f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            user_view_type="public",
        )
        return dict(user)

    def _op(self, method: str, template: str) -> Operation:
        return self.contract.operations[(method, template)]

    def _app_json(self) -> dict[str, Any]:
        app = self._op("GET", "/app").example()
        app.update(
            id=self.app_id,
            slug=self.app_slug,
            name=self.app_slug,
            node_id=_node_id("A_", self.app_id),
            html_url=f"https://github.com/apps/{self.app_slug}",
        )
        if self.oauth_client is not None:  # the App's own client ID, as its settings page shows it
            app["client_id"] = self.oauth_client[0]
        return dict(app)

    def _installation_json(self, inst: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
        out = base or self._op("GET", "/app/installations/{installation_id}").example()
        account = self._user(inst["account"], inst["account_type"])
        out.update(
            id=inst["id"],
            account=account,
            app_id=self.app_id,
            app_slug=self.app_slug,
            target_id=account["id"],
            target_type=inst["account_type"],
            permissions=inst["permissions"],
            repository_selection="selected",
            access_tokens_url=f"{self.url}/app/installations/{inst['id']}/access_tokens",
            repositories_url=f"{self.url}/installation/repositories",
            created_at=inst["created_at"],
            updated_at=inst["created_at"],
            single_file_name=None,
            single_file_paths=[],
            has_multiple_single_files=False,
            html_url=f"https://github.com/organizations/{inst['account']}/settings/installations/{inst['id']}",
        )
        return out

    def _repo_json(self, repo: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
        out = base if base is not None else self._op("GET", "/repos/{owner}/{repo}").example()
        for key in ("organization", "parent", "source", "template_repository"):
            out.pop(key, None)
        out = _rewrite(out, "octocat/Hello-World", repo["full_name"])
        owner, name = repo["full_name"].split("/")
        out.update(
            id=repo["id"],
            node_id=_node_id("R_", repo["id"]),
            name=name,
            full_name=repo["full_name"],
            owner=self._user(owner),
            private=repo["private"],
            fork=False,
            language=None,
            visibility="private" if repo["private"] else "public",
            default_branch=repo["default_branch"],
            open_issues_count=sum(1 for (k, _), i in self._issues.items() if k == repo["key"] and i["state"] == "open"),
        )
        return dict(out)

    def _label_json(self, repo: dict[str, Any], label: dict[str, Any]) -> dict[str, Any]:
        out = self._op("GET", "/repos/{owner}/{repo}/labels/{name}").example()
        out.update(
            id=label["id"],
            node_id=_node_id("LA_", label["id"]),
            name=label["name"],
            color=label["color"],
            description=label["description"],
            default=False,
            url=f"{self.url}/repos/{repo['full_name']}/labels/{quote(label['name'])}",
        )
        return dict(out)

    def _issue_json(
        self, repo: dict[str, Any], issue: dict[str, Any], base: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        out = base if base is not None else self._op("GET", "/repos/{owner}/{repo}/issues/{issue_number}").example()
        full, n = repo["full_name"], issue["number"]
        out = _rewrite(_rewrite(out, "octocat/Hello-World", full), "/1347", f"/{n}")
        api, html = (
            f"{self.url}/repos/{full}/issues/{n}",
            f"https://github.com/{full}/{'pull' if issue['pr'] else 'issues'}/{n}",
        )
        assignees = [self._user(a) for a in issue["assignees"]]
        out.update(
            id=issue["id"],
            node_id=_node_id("I_", issue["id"]),
            number=n,
            title=issue["title"],
            body=issue["body"],
            user=self._user(issue["user"]),
            state=issue["state"],
            state_reason=issue["state_reason"],
            labels=[self._label_json(repo, repo["labels"][k]) for k in issue["labels"]],
            assignee=assignees[0] if assignees else None,
            assignees=assignees,
            milestone=None,
            locked=False,
            active_lock_reason=None,
            comments=len(self._comments_of(repo["key"], n)),
            closed_at=issue["closed_at"],
            created_at=issue["created_at"],
            updated_at=issue["updated_at"],
            closed_by=self._user(issue["closed_by"]) if issue.get("closed_by") else None,
            reactions=self._reaction_rollup(f"{api}/reactions", issue["reactions"]),
            url=api,
            html_url=html,
            repository_url=f"{self.url}/repos/{full}",
            comments_url=f"{api}/comments",
            events_url=f"{api}/events",
            labels_url=f"{api}/labels{{/name}}",
            author_association=issue["author_association"],
        )
        out.pop("pinned_comment", None)
        if issue["pr"]:
            pulls = f"https://github.com/{full}/pull/{n}"
            out["pull_request"] = {
                "url": f"{self.url}/repos/{full}/pulls/{n}",
                "html_url": pulls,
                "diff_url": f"{pulls}.diff",
                "patch_url": f"{pulls}.patch",
                "merged_at": issue.get("merged_at"),
            }
        else:
            out.pop("pull_request", None)
        return dict(out)

    @staticmethod
    def _reaction_rollup(url: str, reactions: list[dict[str, Any]]) -> dict[str, Any]:
        """GitHub's reaction summary on issues ("Reaction Rollup")."""
        contents = ("+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket")
        rollup: dict[str, Any] = {"url": url, "total_count": len(reactions)}
        rollup.update({c: sum(1 for r in reactions if r["content"] == c) for c in contents})
        return rollup

    def _pull_json(self, repo: dict[str, Any], issue: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
        full, n = repo["full_name"], issue["number"]
        out = _rewrite(_rewrite(base, "octocat/Hello-World", full), "/1347", f"/{n}")
        as_issue = self._issue_json(repo, issue)
        for key in (
            "id",
            "title",
            "body",
            "user",
            "state",
            "labels",
            "assignee",
            "assignees",
            "milestone",
            "locked",
            "active_lock_reason",
            "created_at",
            "updated_at",
            "closed_at",
            "author_association",
        ):
            out[key] = as_issue[key]
        out.update(
            number=n,
            node_id=_node_id("PR_", issue["id"]),
            html_url=as_issue["html_url"],
            merged_at=issue.get("merged_at"),
            merge_commit_sha=None,
            requested_reviewers=[],
            requested_teams=[],
            draft=False,
        )
        if "merged" in out:
            out.update(
                merged=bool(issue.get("merged_at")),
                merged_by=None,
                comments=as_issue["comments"],
                commits=sum(1 for c in repo["commits"] if c["pull"] == n),
            )
        for label in out["labels"]:  # pull-request-simple types label.description as a non-null string
            label["description"] = label["description"] or ""
        for side, ref in (("head", f"pr-{n}"), ("base", repo["default_branch"])):
            owner = repo["full_name"].split("/")[0]
            out[side].update(
                ref=ref,
                label=f"{owner}:{ref}",
                user=self._user(owner),
                sha=hashlib.sha1(f"{full}{side}{n}".encode()).hexdigest(),
                repo=self._repo_json(repo, out[side]["repo"]),
            )
        return dict(out)

    def _comment_json(self, repo: dict[str, Any], comment: dict[str, Any]) -> dict[str, Any]:
        out = self._op("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments").example(201)
        full, cid, n = repo["full_name"], comment["id"], comment["number"]
        out.update(
            id=cid,
            node_id=_node_id("IC_", cid),
            body=comment["body"],
            user=self._user(comment["user"]),
            created_at=comment["created_at"],
            updated_at=comment["updated_at"],
            author_association=comment["author_association"],
            url=f"{self.url}/repos/{full}/issues/comments/{cid}",
            html_url=f"https://github.com/{full}/{self._kind_path(repo, n)}/{n}#issuecomment-{cid}",
            issue_url=f"{self.url}/repos/{full}/issues/{n}",
        )
        if comment["user"] == self.bot_login:
            out["performed_via_github_app"] = self._app_json()
        return dict(out)

    def _kind_path(self, repo: dict[str, Any], number: int) -> str:
        issue = self._issues.get((repo["key"], number))
        return "pull" if issue is not None and issue["pr"] else "issues"

    def _reaction_json(self, ctx: _Ctx, reaction: dict[str, Any]) -> dict[str, Any]:
        out = ctx.op.example(201)
        out.update(
            id=reaction["id"],
            node_id=_node_id("REA_", reaction["id"]),
            user=self._user(self.bot_login),
            content=reaction["content"],
            created_at=reaction["created_at"],
        )
        return dict(out)

    def _commit_json(self, repo: dict[str, Any], commit: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
        out = _rewrite(_rewrite(base, "octocat/Hello-World", repo["full_name"]), base["sha"], commit["sha"])
        out.update(
            sha=commit["sha"],
            node_id=_node_id("C_", zlib.crc32(commit["sha"].encode())),
            author=self._user(commit["author"]),
            committer=self._user(commit["author"]),
        )
        for who in ("author", "committer"):
            out["commit"][who].update(
                name=commit["author"], email=f"{commit['author']}@users.noreply.github.com", date=commit["date"]
            )
        out["commit"]["message"] = commit["message"]
        return dict(out)

    # ---- handlers: app & installations

    @_route("POST", "/app/installations/{installation_id}/access_tokens")
    def _create_token(self, ctx: _Ctx) -> _Resp:
        inst = self._installations.get(ctx.params["installation_id"])
        if inst is None:
            raise self._not_found(ctx)
        wanted = dict((ctx.body or {}).get("permissions") or inst["permissions"])
        for perm, level in wanted.items():
            granted = inst["permissions"].get(perm)
            if granted is None or (granted == "read" and level != "read"):
                raise _Abort(
                    _error(422, "The permissions requested are not granted to this installation.", ctx.op.doc_url)
                )
        repos: frozenset[str] | None = None
        names = (ctx.body or {}).get("repositories")
        if names:
            owner = inst["account"].lower()
            repos = frozenset(f"{owner}/{n.lower()}" for n in names)
            if not repos <= set(inst["repos"]):
                raise _Abort(
                    _error(
                        422,
                        "There is at least one repository that does not exist or is not accessible "
                        "to the parent installation.",
                        ctx.op.doc_url,
                    )
                )
        token = "ghs_" + secrets.token_urlsafe(27).replace("-", "a").replace("_", "b")[:36]
        expires = time.time() + self.token_expiry_seconds
        self._tokens[token] = {"installation": inst["id"], "expires": expires, "repos": repos}
        self.tokens_issued += 1
        out = ctx.op.example(201)
        out.update(
            token=token,
            permissions=wanted,
            repository_selection="selected",
            expires_at=datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        base_repo = out.pop("repositories")[0]
        if repos is not None:
            out["repositories"] = [self._repo_json(self._repos[k], copy.deepcopy(base_repo)) for k in sorted(repos)]
        return _Resp(201, out)

    @_route("GET", "/app")
    def _get_app(self, ctx: _Ctx) -> _Resp:
        return _Resp(200, self._app_json())

    @_route("GET", "/app/installations")
    def _list_installations(self, ctx: _Ctx) -> _Resp:
        base, out = ctx.op.example()[0], []
        for _, inst in sorted(self._installations.items()):
            item = self._installation_json(inst, copy.deepcopy(base))
            # The contract types this account as allOf[Simple User, Enterprise] (upstream quirk; the
            # single-installation operation says anyOf), so it also needs the Enterprise fields.
            item["account"].update(
                name=inst["account"],
                slug=inst["account"].lower(),
                created_at=inst["created_at"],
                updated_at=inst["created_at"],
            )
            out.append(item)
        return self._list(ctx, out)

    @_route("GET", "/app/installations/{installation_id}")
    def _get_installation(self, ctx: _Ctx) -> _Resp:
        inst = self._installations.get(ctx.params["installation_id"])
        if inst is None:
            raise self._not_found(ctx)
        return _Resp(200, self._installation_json(inst))

    @_route("GET", "/installation/repositories")
    def _list_installation_repos(self, ctx: _Ctx) -> _Resp:
        base = ctx.op.example()["repositories"][0]
        inst = self._installations[ctx.principal.installation_id or -1]
        repos = [
            self._repo_json(self._repos[k], copy.deepcopy(base))
            for k in inst["repos"]
            if self._visible(ctx.principal, k)
        ]
        page, headers = self._paginate(ctx, repos)
        return _Resp(
            200, {"total_count": len(repos), "repository_selection": "selected", "repositories": page}, headers
        )

    # ---- handlers: issues

    @_route("GET", "/repos/{owner}/{repo}/issues")
    def _list_issues(self, ctx: _Ctx) -> _Resp:
        repo, q = self._repo(ctx), ctx.query
        wanted = [w.strip().lower() for w in q.get("labels", "").split(",") if w.strip()]
        issues = [i for (k, _), i in self._issues.items() if k == repo["key"]]
        issues = [
            i
            for i in issues
            if q["state"] in ("all", i["state"])
            and ("creator" not in q or i["user"].lower() == q["creator"].lower())
            and all(w in i["labels"] for w in wanted)
            and ("since" not in q or i["updated_at"] >= q["since"])
            and (
                q.get("assignee") in (None, "*" if i["assignees"] else "none")
                or q.get("assignee", "").lower() in [a.lower() for a in i["assignees"]]
            )
        ]
        return self._list(ctx, [self._issue_json(repo, i) for i in self._sorted(ctx, repo, issues)])

    def _sorted(self, ctx: _Ctx, repo: dict[str, Any], issues: list[dict[str, Any]]) -> list[dict[str, Any]]:
        sort = ctx.query.get("sort", "created")
        key: Callable[[dict[str, Any]], Any] = {
            "updated": lambda i: (i["updated_at"], i["number"]),
            "comments": lambda i: (len(self._comments_of(repo["key"], i["number"])), i["number"]),
        }.get(sort, lambda i: (i["created_at"], i["number"]))
        return sorted(issues, key=key, reverse=ctx.query.get("direction", "desc") == "desc")

    @_route("POST", "/repos/{owner}/{repo}/issues")
    def _create_issue(self, ctx: _Ctx) -> _Resp:
        """issues/create, as the app: the next free number in the repository (issues and pulls share them)."""
        repo = self._repo(ctx)
        body = ctx.body.get("body") or ""
        self._check_comment_body(ctx, body)  # an issue's body has the same cap as a comment's
        with self._lock:
            number = max((n for key, n in self._issues if key == repo["key"]), default=0) + 1
            issue = self._issue_record(number, self.bot_login, str(ctx.body["title"]), body, _now())
            self._issues[(repo["key"], number)] = issue
            self._attach_labels(repo, issue, list(ctx.body.get("labels") or []))
        out = self._issue_json(repo, issue, self._op("POST", "/repos/{owner}/{repo}/issues").example(201))
        return _Resp(201, out, {"Location": out["url"]})

    @_route("GET", "/repos/{owner}/{repo}/issues/{issue_number}")
    def _get_issue(self, ctx: _Ctx) -> _Resp:
        repo = self._repo(ctx)
        return _Resp(200, self._issue_json(repo, self._issue(ctx, repo)))

    @_route("PATCH", "/repos/{owner}/{repo}/issues/{issue_number}")
    def _update_issue(self, ctx: _Ctx) -> _Resp:
        repo = self._repo(ctx)
        issue, body = self._issue(ctx, repo), ctx.body or {}
        for key in ("title", "body"):
            if key in body:
                issue[key] = "" if body[key] is None else str(body[key])
        if "state" in body and body["state"] != issue["state"]:
            closing = body["state"] == "closed"
            issue.update(
                state=body["state"],
                closed_at=_now() if closing else None,
                state_reason=body.get("state_reason") or ("completed" if closing else "reopened"),
            )
        if "labels" in body:
            self._attach_labels(repo, issue, body["labels"], replace=True)
        if "assignees" in body:
            issue["assignees"] = [a["login"] if isinstance(a, dict) else a for a in body["assignees"]]
        elif "assignee" in body:
            issue["assignees"] = [body["assignee"]] if body["assignee"] else []
        issue["updated_at"] = _now()
        return _Resp(200, self._issue_json(repo, issue))

    @_route("POST", "/repos/{owner}/{repo}/issues/{issue_number}/assignees")
    def _add_assignees(self, ctx: _Ctx) -> _Resp:
        repo = self._repo(ctx)
        issue = self._issue(ctx, repo)
        for a in (ctx.body or {}).get("assignees", []):
            login = a["login"] if isinstance(a, dict) else a
            if login.lower() not in [x.lower() for x in issue["assignees"]]:
                issue["assignees"].append(login)
        return _Resp(201, self._issue_json(repo, issue))

    @_route("DELETE", "/repos/{owner}/{repo}/issues/{issue_number}/assignees")
    def _remove_assignees(self, ctx: _Ctx) -> _Resp:
        repo = self._repo(ctx)
        issue = self._issue(ctx, repo)
        gone = {a.lower() for a in ctx.body["assignees"]}
        issue["assignees"] = [a for a in issue["assignees"] if a.lower() not in gone]
        return _Resp(200, self._issue_json(repo, issue))

    # ---- handlers: comments

    @_route("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
    def _list_comments(self, ctx: _Ctx) -> _Resp:
        repo = self._repo(ctx)
        issue = self._issue(ctx, repo)
        found = [
            c for c in self._comments_of(repo["key"], issue["number"]) if c["updated_at"] >= ctx.query.get("since", "")
        ]
        return self._list(ctx, [self._comment_json(repo, c) for c in found])

    @_route("GET", "/repos/{owner}/{repo}/issues/comments")
    def _list_repo_comments(self, ctx: _Ctx) -> _Resp:
        repo = self._repo(ctx)
        found = [
            c
            for c in self._comments.values()
            if c["repo"] == repo["key"] and c["updated_at"] >= ctx.query.get("since", "")
        ]
        key = "updated_at" if ctx.query.get("sort") == "updated" else "created_at"
        found.sort(key=lambda c: (c[key], c["id"]), reverse=ctx.query.get("direction") == "desc")
        return self._list(ctx, [self._comment_json(repo, c) for c in found])

    def _check_comment_body(self, ctx: _Ctx, body: str) -> None:
        if not body.strip():
            raise self._unprocessable(
                ctx,
                [{"resource": "IssueComment", "code": "missing_field", "field": "body"}],
                "comment body is blank (GitHub: Body cannot be blank)",
            )
        if len(body) > COMMENT_MAX:
            raise self._unprocessable(
                ctx,
                [
                    {
                        "resource": "IssueComment",
                        "code": "custom",
                        "field": "body",
                        "message": f"body is too long (maximum is {COMMENT_MAX} characters)",
                    }
                ],
                f"comment body has {len(body)} characters (max {COMMENT_MAX})",
            )

    @_route("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
    def _create_comment(self, ctx: _Ctx) -> _Resp:
        repo = self._repo(ctx)
        issue = self._issue(ctx, repo)
        self._check_comment_body(ctx, ctx.body["body"])
        comment = self._new_comment(repo, issue["number"], self.bot_login, ctx.body["body"], "NONE")
        out = self._comment_json(repo, comment)
        return _Resp(201, out, {"Location": out["url"]})

    @_route("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
    def _update_comment(self, ctx: _Ctx) -> _Resp:
        repo = self._repo(ctx)
        comment = self._comment(ctx, repo)
        self._check_comment_body(ctx, ctx.body["body"])
        comment.update(body=ctx.body["body"], updated_at=_now())
        return _Resp(200, self._comment_json(repo, comment))

    @_route("DELETE", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
    def _delete_comment(self, ctx: _Ctx) -> _Resp:
        del self._comments[self._comment(ctx, self._repo(ctx))["id"]]
        return _Resp(204)

    # ---- handlers: labels

    @_route("GET", "/repos/{owner}/{repo}/labels")
    def _list_repo_labels(self, ctx: _Ctx) -> _Resp:
        repo = self._repo(ctx)
        return self._list(ctx, [self._label_json(repo, lab) for lab in repo["labels"].values()])

    @_route("GET", "/repos/{owner}/{repo}/labels/{name}")
    def _get_label(self, ctx: _Ctx) -> _Resp:
        repo = self._repo(ctx)
        label = repo["labels"].get(ctx.params["name"].lower())
        if label is None:
            raise self._not_found(ctx)
        return _Resp(200, self._label_json(repo, label))

    def _check_color(self, ctx: _Ctx, color: str | None) -> None:
        if color is not None and not re.fullmatch(r"[0-9a-fA-F]{6}", color):
            raise self._unprocessable(
                ctx,
                [{"resource": "Label", "code": "invalid", "field": "color"}],
                f"label color {color!r} is not 6 hex digits without '#'",
            )

    @_route("POST", "/repos/{owner}/{repo}/labels")
    def _create_label(self, ctx: _Ctx) -> _Resp:
        repo = self._repo(ctx)
        name = ctx.body["name"]
        if name.lower() in repo["labels"]:
            raise self._unprocessable(ctx, [{"resource": "Label", "code": "already_exists", "field": "name"}])
        self._check_color(ctx, ctx.body.get("color"))
        label = self._label(repo, name, ctx.body.get("color") or "ededed", ctx.body.get("description"))
        out = self._label_json(repo, label)
        return _Resp(201, out, {"Location": out["url"]})

    @_route("PATCH", "/repos/{owner}/{repo}/labels/{name}")
    def _update_label(self, ctx: _Ctx) -> _Resp:
        repo = self._repo(ctx)
        old_key, body = ctx.params["name"].lower(), ctx.body or {}
        label = repo["labels"].get(old_key)
        if label is None:
            raise self._not_found(ctx)
        self._check_color(ctx, body.get("color"))
        new_name = body.get("new_name") or label["name"]
        if new_name.lower() != old_key and new_name.lower() in repo["labels"]:
            raise self._unprocessable(ctx, [{"resource": "Label", "code": "already_exists", "field": "name"}])
        label.update(
            name=new_name,
            color=body.get("color") or label["color"],
            description=body.get("description", label["description"]),
        )
        repo["labels"] = {(new_name.lower() if k == old_key else k): v for k, v in repo["labels"].items()}
        for (key, _), issue in self._issues.items():
            if key == repo["key"]:
                issue["labels"] = [new_name.lower() if k == old_key else k for k in issue["labels"]]
        return _Resp(200, self._label_json(repo, label))

    def _issue_labels_resp(self, repo: dict[str, Any], issue: dict[str, Any]) -> _Resp:
        return _Resp(200, [self._label_json(repo, repo["labels"][k]) for k in issue["labels"]])

    @_route("GET", "/repos/{owner}/{repo}/issues/{issue_number}/labels")
    def _list_issue_labels(self, ctx: _Ctx) -> _Resp:
        repo = self._repo(ctx)
        issue = self._issue(ctx, repo)
        return self._list(ctx, [self._label_json(repo, repo["labels"][k]) for k in issue["labels"]])

    @_route("POST", "/repos/{owner}/{repo}/issues/{issue_number}/labels")
    def _add_labels(self, ctx: _Ctx) -> _Resp:
        repo = self._repo(ctx)
        issue = self._issue(ctx, repo)
        self._attach_labels(repo, issue, (ctx.body or {}).get("labels", []))
        return self._issue_labels_resp(repo, issue)

    @_route("PUT", "/repos/{owner}/{repo}/issues/{issue_number}/labels")
    def _set_labels(self, ctx: _Ctx) -> _Resp:
        repo = self._repo(ctx)
        issue = self._issue(ctx, repo)
        self._attach_labels(repo, issue, (ctx.body or {}).get("labels", []), replace=True)
        return self._issue_labels_resp(repo, issue)

    @_route("DELETE", "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}")
    def _remove_label(self, ctx: _Ctx) -> _Resp:
        repo = self._repo(ctx)
        issue = self._issue(ctx, repo)
        key = ctx.params["name"].lower()
        if key not in issue["labels"]:
            raise self._not_found(ctx, "Label does not exist")
        issue["labels"].remove(key)
        return self._issue_labels_resp(repo, issue)

    # ---- handlers: reactions

    @_route("POST", "/repos/{owner}/{repo}/issues/{issue_number}/reactions")
    def _react_issue(self, ctx: _Ctx) -> _Resp:
        repo = self._repo(ctx)
        return self._react(ctx, self._issue(ctx, repo))

    @_route("POST", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions")
    def _react_comment(self, ctx: _Ctx) -> _Resp:
        return self._react(ctx, self._comment(ctx, self._repo(ctx)))

    # ---- handlers: pulls and commits

    @_route("GET", "/repos/{owner}/{repo}/pulls")
    def _list_pulls(self, ctx: _Ctx) -> _Resp:
        repo, base = self._repo(ctx), ctx.op.example()[0]
        pulls = [
            i
            for (k, _), i in self._issues.items()
            if k == repo["key"] and i["pr"] and ctx.query["state"] in ("all", i["state"])
        ]
        ctx.query.setdefault("direction", "desc")
        return self._list(ctx, [self._pull_json(repo, i, copy.deepcopy(base)) for i in self._sorted(ctx, repo, pulls)])

    @_route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}")
    def _get_pull(self, ctx: _Ctx) -> _Resp:
        repo = self._repo(ctx)
        issue = self._issue(ctx, repo, ctx.params["pull_number"], pr=True)
        return _Resp(200, self._pull_json(repo, issue, ctx.op.example()))

    @_route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews")
    def _list_reviews(self, ctx: _Ctx) -> _Resp:
        repo = self._repo(ctx)
        n = self._issue(ctx, repo, ctx.params["pull_number"], pr=True)["number"]
        out = []
        for review in (r for r in repo["reviews"] if r["pull"] == n):
            item = _rewrite(_rewrite(ctx.op.example()[0], "octocat/Hello-World", repo["full_name"]), "/12", f"/{n}")
            item.update(
                id=review["id"],
                node_id=_node_id("PRR_", review["id"]),
                user=self._user(review["user"]),
                body=review["body"],
                state=review["state"],
                submitted_at=review["at"],
                html_url=f"https://github.com/{repo['full_name']}/pull/{n}#pullrequestreview-{review['id']}",
            )
            item["_links"]["html"]["href"] = item["html_url"]
            if review["state"] == "PENDING":  # not submitted yet
                item.pop("submitted_at")
            out.append(item)
        return self._list(ctx, out)

    @_route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/commits")
    def _list_pull_commits(self, ctx: _Ctx) -> _Resp:
        repo = self._repo(ctx)
        n = self._issue(ctx, repo, ctx.params["pull_number"], pr=True)["number"]
        base = ctx.op.example()[0]
        return self._list(
            ctx, [self._commit_json(repo, c, copy.deepcopy(base)) for c in repo["commits"] if c["pull"] == n]
        )

    @_route("GET", "/repos/{owner}/{repo}/commits")
    def _list_commits(self, ctx: _Ctx) -> _Resp:
        repo, q, base = self._repo(ctx), ctx.query, ctx.op.example()[0]
        found = [
            c
            for c in reversed(repo["commits"])
            if ("author" not in q or c["author"].lower() == q["author"].lower())
            and c["date"] >= q.get("since", "")
            and ("until" not in q or c["date"] <= q["until"])
        ]
        return self._list(ctx, [self._commit_json(repo, c, copy.deepcopy(base)) for c in found])

    @_route("GET", "/repos/{owner}/{repo}/contributors")
    def _list_contributors(self, ctx: _Ctx) -> _Resp:
        repo, counts = self._repo(ctx), dict[str, int]()
        for c in repo["commits"]:
            counts[c["author"]] = counts.get(c["author"], 0) + 1
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].lower()))
        return self._list(ctx, [{**self._user(login), "contributions": n} for login, n in ranked])

    # ---- handlers: repos, contents, people

    @_route("GET", "/repos/{owner}/{repo}")
    def _get_repo(self, ctx: _Ctx) -> _Resp:
        return _Resp(200, self._repo_json(self._repo(ctx)))

    @_route("GET", "/repos/{owner}/{repo}/contents/{path}")
    def _get_content(self, ctx: _Ctx) -> _Resp:
        repo = self._repo(ctx)
        ref, path = ctx.query.get("ref") or repo["default_branch"], ctx.params["path"].strip("/")
        full = repo["full_name"]
        text = repo["files"].get((ref, path))
        if text is not None and "raw" in ctx.headers.get("Accept", ""):
            return _Resp(200, raw=text.encode(), headers={"Content-Type": "application/vnd.github.raw; charset=utf-8"})

        def entry(p: str, kind: str, data: bytes | None) -> dict[str, Any]:
            sha = (
                hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
                if data is not None
                else hashlib.sha1(p.encode()).hexdigest()
            )
            api, html = (
                f"{self.url}/repos/{full}/contents/{quote(p)}",
                f"https://github.com/{full}/{'blob' if data is not None else 'tree'}/{ref}/{p}",
            )
            git = f"{self.url}/repos/{full}/git/{'blobs' if data is not None else 'trees'}/{sha}"
            return {
                "type": kind,
                "size": len(data or b""),
                "name": p.rsplit("/", 1)[-1],
                "path": p,
                "sha": sha,
                "url": f"{api}?ref={quote(ref)}",
                "git_url": git,
                "html_url": html,
                "download_url": f"https://raw.githubusercontent.com/{full}/{ref}/{p}" if data is not None else None,
                "_links": {"self": f"{api}?ref={quote(ref)}", "git": git, "html": html},
            }

        if text is not None:
            out = ctx.op.example(200, "response-if-content-is-a-file")
            data = text.encode()
            b64 = base64.b64encode(data).decode()
            out.update(
                entry(path, "file", data),
                encoding="base64",
                content="".join(b64[i : i + 60] + "\n" for i in range(0, len(b64), 60)),
            )
            return _Resp(200, out)
        children: dict[str, bytes | None] = {}
        for (fref, fpath), ftext in repo["files"].items():
            if fref == ref and fpath.startswith(path + "/"):
                head, _, rest = fpath[len(path) + 1 :].partition("/")
                children[f"{path}/{head}"] = None if rest else ftext.encode()
        if not children:
            raise self._not_found(ctx)
        return _Resp(200, [entry(p, "dir" if d is None else "file", d) for p, d in sorted(children.items())])

    @_route("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission")
    def _get_permission(self, ctx: _Ctx) -> _Resp:
        repo, login = self._repo(ctx), ctx.params["username"]
        role = repo["permissions"].get(login.lower(), "read")
        out = ctx.op.example()
        user = {**self._user(login), "role_name": role}
        out.update(permission={"maintain": "write", "triage": "read"}.get(role, role), role_name=role, user=user)
        return _Resp(200, out)

    @_route("GET", "/orgs/{org}/members/{username}")
    def _check_member(self, ctx: _Ctx) -> _Resp:
        if (ctx.params["org"].lower(), ctx.params["username"].lower()) in self._members:
            return _Resp(204)
        return _Resp(404)

    @_route("GET", "/users/{username}")
    def _get_user(self, ctx: _Ctx) -> _Resp:
        out = ctx.op.example()
        out.update(self._user(ctx.params["username"]))
        return _Resp(200, out)

    @_route("GET", "/rate_limit")
    def _rate_limit(self, ctx: _Ctx) -> _Resp:
        out = ctx.op.example()
        for resource, limit in (("core", 5000), ("search", 30)):
            lim, used, reset = self._bucket(self._rate_key(ctx.principal), resource, limit)
            out["resources"][resource] = {"limit": lim, "used": used, "remaining": lim - used, "reset": reset}
        out["rate"] = out["resources"]["core"]
        return _Resp(200, out)

    # ---- handlers: search

    @_route("GET", "/search/issues")
    def _search_issues(self, ctx: _Ctx) -> _Resp:
        """Supports repo/user/org/author/assignee/label/type/is/state qualifiers (``-`` negates) and words."""
        terms = []
        for neg, qual, value, word in _SEARCH_TERM.findall(ctx.query["q"]):
            value = (value or word).strip('"').lower()
            if qual in ("in", "sort"):  # where words match / ordering: irrelevant for the fake
                continue
            if not _search_supported(qual, value):
                self._violation(ctx.method, ctx.path, [f"search qualifier {qual}:{value} is not supported by the fake"])
                raise _Abort(_error(400, f"fake-github: search qualifier {qual}:{value} is not supported"))
            terms.append((bool(neg), qual, value))
        reviewed = {(k, r["pull"], r["user"].lower()) for k, repo in self._repos.items() for r in repo["reviews"]}

        def matches(q: str, v: str, k: str, i: dict[str, Any]) -> bool:
            return (k, i["number"], v) in reviewed if q == "reviewed-by" else _search_match(q, v, k, i)

        hits = [
            (k, i)
            for (k, _), i in self._issues.items()
            if self._visible(ctx.principal, k) and all(matches(q, v, k, i) != neg for neg, q, v in terms)
        ]
        order = {"created": "created_at", "updated": "updated_at"}.get(ctx.query.get("sort", ""), "number")
        hits.sort(key=lambda ki: (ki[1][order], ki[1]["number"]), reverse=ctx.query.get("order", "desc") == "desc")
        base = ctx.op.example()["items"][0]
        items = []
        for key, issue in hits:
            item = copy.deepcopy(base)
            item.pop("type", None)
            item.update(self._issue_json(self._repos[key], issue), score=1.0)
            items.append(item)
        page, headers = self._paginate(ctx, items)
        body = {
            "total_count": len(items),
            "incomplete_results": False,
            "items": page,
            "search_type": ctx.query.get("search_type", "lexical"),
        }
        return _Resp(200, body, headers)

    # ---- the App manifest flow (documented extras outside the contract)
    #
    # Registering an App from a manifest (docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-
    # from-a-manifest) happens on GitHub's web side, which the REST contract does not describe, and ends with
    # the one REST call the subset leaves out, "Create a GitHub App from a manifest" (docs.github.com/en/rest/
    # apps/apps#create-a-github-app-from-a-manifest). The fake serves both from its one address, so GITHUB_URL
    # and GITHUB_API_URL both point at it:
    # - POST /settings/apps/new?state=S (or /organizations/{org}/settings/apps/new) with a `manifest` form
    #   field: a page showing the manifest and a "Create GitHub App" button (a GET shows a page asking for one);
    # - the button (POST /settings/apps or /organizations/{org}/settings/apps) registers the App and redirects
    #   to the manifest's redirect_url with ?code=C&state=S, as GitHub does; C works once, within an hour;
    # - POST /app-manifests/{C}/conversions, without auth: 201 with the App (the `integration` shape of GET /app)
    #   plus client_id, client_secret, webhook_secret and pem; 404 for a used, expired or unknown code.
    # A manifest GitHub would refuse (a missing url, unknown keys, wrong types) is a violation.

    WEB_USER = "octocat"  # who is signed in on the fake's web side
    _NEW_APP = re.compile(r"^(?:/organizations/(?P<org>[^/]+))?/settings/apps(?P<new>/new)?$")
    _CONVERSION = re.compile(r"^/app-manifests/(?P<code>[^/]+)/conversions$")
    _MANIFEST_KEYS = frozenset(
        {
            "name",
            "url",
            "hook_attributes",
            "redirect_url",
            "callback_urls",
            "setup_url",
            "description",
            "public",
            "default_events",
            "default_permissions",
            "request_oauth_on_install",
            "setup_on_update",
        }
    )

    def _manifest_flow(self, req: Request, data: bytes) -> _Resp | None:
        """Answer the manifest flow's requests; None for every other path (the contract's)."""
        page = self._NEW_APP.match(req.path)
        if page is not None:
            form = {k: v[-1] for k, v in parse_qs(data.decode("utf-8", "replace")).items()}
            org = unquote(page["org"]) if page["org"] else None
            if page["new"] and req.method in ("GET", "POST"):
                return self._new_app_page(req, form, org)
            if not page["new"] and req.method == "POST":
                return self._create_app(form, org)
            return None
        conversion = self._CONVERSION.match(req.path)
        if conversion is not None and req.method == "POST":
            return self._convert_manifest(req, data, conversion["code"])
        if req.path == "/login/oauth/authorize" and req.method == "GET":
            return self._authorize_page(req)
        return None

    def manifest_problems(self, manifest: Any) -> list[str]:
        """Why GitHub would refuse this manifest (empty when it would not)."""
        if not isinstance(manifest, dict):
            return ["the manifest must be a JSON object"]
        problems = [f"unknown manifest key {key!r}" for key in sorted(set(manifest) - self._MANIFEST_KEYS)]

        def is_url(value: Any) -> bool:
            return isinstance(value, str) and re.match(r"https?://[^/\s]+", value) is not None

        if not is_url(manifest.get("url")):
            problems.append("url (the App's homepage) is required and must be an http(s) URL")
        hook = manifest.get("hook_attributes")
        if not isinstance(hook, dict) or not is_url(hook.get("url")) or set(hook) - {"url", "active"}:
            problems.append("hook_attributes must be an object with an http(s) url (and optionally active)")
        elif not isinstance(hook.get("active", True), bool):
            problems.append("hook_attributes.active must be true or false")
        for key in ("redirect_url", "setup_url"):
            if key in manifest and not is_url(manifest[key]):
                problems.append(f"{key} must be an http(s) URL")
        callbacks = manifest.get("callback_urls", [])
        if not isinstance(callbacks, list) or len(callbacks) > 10 or not all(is_url(u) for u in callbacks):
            problems.append("callback_urls must be a list of up to 10 http(s) URLs")
        name = manifest.get("name", "")
        if not isinstance(name, str) or len(name) > 34:
            problems.append("name must be a string of at most 34 characters")
        for key in ("public", "request_oauth_on_install", "setup_on_update"):
            if key in manifest and not isinstance(manifest[key], bool):
                problems.append(f"{key} must be true or false")
        events = manifest.get("default_events", [])
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            problems.append("default_events must be a list of event names")
        permissions = manifest.get("default_permissions", {})
        if not isinstance(permissions, dict) or not all(v in ("read", "write", "admin") for v in permissions.values()):
            problems.append("default_permissions must map permission names to read, write or admin")
        return problems

    def _new_app_page(self, req: Request, form: dict[str, str], org: str | None) -> _Resp:
        raw = form.get("manifest")
        if req.method == "GET" or raw is None:
            if req.args.get("manifest"):
                self._violation(req.method, req.path, ["the manifest must be POSTed as a form field, not in the URL"])
            return self._html(200, "Register new GitHub App", "<p>No manifest was posted.</p>")
        try:
            manifest = json.loads(raw)
        except ValueError as exc:
            manifest, problems = None, [f"the manifest is not JSON: {exc}"]
        else:
            problems = self.manifest_problems(manifest)
        if problems:
            self._violation(req.method, req.path, problems)
            items = "".join(f"<li>{html.escape(p)}</li>" for p in problems)
            return self._html(422, "Invalid GitHub App manifest", f"<ul class='problems'>{items}</ul>")
        owner = org or self.WEB_USER
        action = f"/organizations/{quote(org)}/settings/apps" if org else "/settings/apps"
        state = req.args.get("state", "")
        hidden = "".join(
            f"<input type='hidden' name='{name}' value='{html.escape(value, quote=True)}'>"
            for name, value in (("manifest", raw), ("state", state))
        )
        body = (
            f"<p>Register <strong data-name>{html.escape(str(manifest.get('name', '')))}</strong> "
            f"for <strong data-owner>{html.escape(owner)}</strong>.</p>"
            f"<pre data-manifest>{html.escape(json.dumps(manifest, indent=2))}</pre>"
            f"<form method='post' action='{html.escape(action, quote=True)}'>{hidden}"
            f"<button type='submit'>Create GitHub App for {html.escape(owner)}</button></form>"
        )
        return self._html(200, "Create GitHub App", body)

    def register_app_from_manifest(self, manifest: dict[str, Any], org: str | None = None) -> str:
        """Register an App as GitHub does when its "Create GitHub App" button is pressed; the one-time code."""
        with self._lock:
            app_id = self._next_id()
            base = re.sub(r"[^a-z0-9]+", "-", str(manifest.get("name") or f"app-{app_id}").lower()).strip("-")
            taken = {a["slug"] for a in self.registered_apps.values()}
            slug = next(c for c in (base, *(f"{base}-{n}" for n in range(2, 100))) if c not in taken)
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.registered_apps[app_id] = {
                "id": app_id,
                "slug": slug,
                "owner": org or self.WEB_USER,
                "owner_type": "Organization" if org else "User",
                "manifest": copy.deepcopy(manifest),
                # GitHub hands out PKCS#1 keys ("BEGIN RSA PRIVATE KEY").
                "pem": key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.TraditionalOpenSSL,
                    serialization.NoEncryption(),
                ).decode(),
                "public_key_pem": key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                ),
                "webhook_secret": secrets.token_hex(20),
                "client_id": f"Iv1.{secrets.token_hex(8)}",
                "client_secret": secrets.token_hex(20),
                "created_at": _now(),
            }
            code = secrets.token_hex(20)
            self._manifest_codes[code] = (app_id, time.time() + 3600)
            return code

    def _create_app(self, form: dict[str, str], org: str | None) -> _Resp:
        try:
            manifest = json.loads(form.get("manifest", ""))
        except ValueError:
            manifest = None
        problems = self.manifest_problems(manifest)
        if problems:
            self._violation("POST", "/settings/apps", problems)
            return self._html(422, "Invalid GitHub App manifest", "<p>The manifest was refused.</p>")
        code = self.register_app_from_manifest(manifest, org)
        target = manifest.get("redirect_url")
        if not target:
            return self._html(200, "GitHub App created", "<p>Your GitHub App was created.</p>")
        query = urlencode({"code": code, **({"state": form["state"]} if form.get("state") else {})})
        return _Resp(302, None, {"Location": f"{target}{'&' if '?' in target else '?'}{query}"})

    def _convert_manifest(self, req: Request, data: bytes, code: str) -> _Resp:
        problems = []
        if not req.headers.get("User-Agent"):
            problems.append("User-Agent header is missing (GitHub rejects such requests)")
        version = req.headers.get("X-GitHub-Api-Version")
        if version is not None and version not in API_VERSIONS:
            problems.append(f"X-GitHub-Api-Version {version!r} is not a supported version")
        if data.strip():
            problems.append("this operation takes no request body")
        if problems:
            self._violation(req.method, req.path, problems)
            return _error(400, "fake-github: " + "; ".join(problems))
        fault = self._take_fault(req.method, req.path, False, req.args)
        if fault is not None:
            return _Resp(fault.status, fault.body if fault.body is not None else {"message": f"HTTP {fault.status}"})
        app_id, expires = self._manifest_codes.pop(unquote(code), (0, 0.0))
        if app_id not in self.registered_apps or time.time() > expires:
            return _error(404, "Not Found", f"{DOCS}/apps/apps#create-a-github-app-from-a-manifest")
        return _Resp(201, self.manifest_app_json(app_id))

    def manifest_app_json(self, app_id: int) -> dict[str, Any]:
        """A registered App as the conversion returns it: GET /app's shape, and its credentials."""
        app = self.registered_apps[app_id]
        manifest = app["manifest"]
        body = self._op("GET", "/app").example()
        body.update(
            id=app_id,
            slug=app["slug"],
            node_id=_node_id("A_", app_id),
            owner=self._user(app["owner"], app["owner_type"]),
            name=manifest.get("name") or app["slug"],
            description=manifest.get("description") or "",
            external_url=manifest["url"],
            html_url=f"{self.url}/apps/{app['slug']}",
            created_at=app["created_at"],
            updated_at=app["created_at"],
            permissions={"metadata": "read", **manifest.get("default_permissions", {})},
            events=list(manifest.get("default_events", [])),
            client_id=app["client_id"],
            client_secret=app["client_secret"],
            webhook_secret=app["webhook_secret"],
            pem=app["pem"],
        )
        return dict(body)

    # ---- signing people in: the App's user authorization (web flow with PKCE)

    # GitHub's web page GET /login/oauth/authorize (outside the REST contract) and the token exchange
    # POST /login/oauth/access_token (oauth-web-flow.json, composed from GitHub's docs), both on GITHUB_URL.
    # The page signs in `browser_user` (set by the test: who is signed in to GitHub in the browser) and
    # redirects at once with ?code=C&state=S, as GitHub does for an App the person authorised before;
    # nobody signed in gets GitHub's sign-in page. An authorize request without state, without a PKCE
    # S256 challenge or with another client id is a violation. Codes work once, for 10 minutes; access
    # tokens live `user_token_seconds`, refresh tokens `refresh_token_seconds`, and a refresh replaces both.

    ROLES = ("read", "triage", "write", "maintain", "admin")

    def set_oauth_client(self, client_id: str, client_secret: str) -> None:
        with self._lock:
            self.oauth_client = (client_id, client_secret)

    def sign_in_browser(self, login: str | None) -> None:
        with self._lock:
            self.browser_user = login

    def expire_user_tokens(self) -> None:
        """Every user access token issued so far is past its 8 hours (refresh tokens still work)."""
        with self._lock:
            for token in self._user_tokens.values():
                token["expires"] = 0.0

    def revoke_user_authorization(self, login: str) -> None:
        """The person revoked the App's authorization: their tokens and refresh tokens stop working."""
        with self._lock:
            for tokens in (self._user_tokens, self._refresh_tokens):
                for key in [k for k, v in tokens.items() if v["login"].lower() == login.lower()]:
                    del tokens[key]

    def _authorize_page(self, req: Request) -> _Resp:
        args = req.args
        problems = []
        if self.oauth_client is None or args.get("client_id") != self.oauth_client[0]:
            problems.append(f"client_id {args.get('client_id')!r} is not the App's")
        if not args.get("state"):
            problems.append("no state (CSRF protection of the web flow)")
        if args.get("code_challenge_method") != "S256" or not re.fullmatch(
            r"[A-Za-z0-9_-]{43}", args.get("code_challenge", "")
        ):
            problems.append("no PKCE S256 code_challenge")
        redirect_uri = args.get("redirect_uri", "")
        if not re.match(r"https?://", redirect_uri):
            problems.append(f"redirect_uri {redirect_uri!r} is not an http(s) address")
        if problems:
            self._violation(req.method, req.path, problems)
            return self._html(400, "Authorization error", "<p>" + html.escape("; ".join(problems)) + "</p>")
        if self.browser_user is None:
            return self._html(200, "Sign in to GitHub", "<p>to continue to the App.</p>")
        code = secrets.token_hex(10)
        self._oauth_codes[code] = {
            "login": self.browser_user,
            "challenge": args["code_challenge"],
            "redirect_uri": redirect_uri,
            "expires": time.time() + 600,
        }
        separator = "&" if "?" in redirect_uri else "?"
        target = f"{redirect_uri}{separator}{urlencode({'code': code, 'state': args['state']})}"
        return _Resp(302, None, {"Location": target}, raw=b"")

    def _issue_user_token(self, login: str) -> dict[str, Any]:
        access, refresh = f"ghu_{secrets.token_hex(18)}", f"ghr_{secrets.token_hex(36)}"
        self._user_tokens[access] = {"login": login, "expires": time.time() + self.user_token_seconds}
        self._refresh_tokens[refresh] = {"login": login, "expires": time.time() + self.refresh_token_seconds}
        return {
            "access_token": access,
            "expires_in": self.user_token_seconds,
            "refresh_token": refresh,
            "refresh_token_expires_in": self.refresh_token_seconds,
            "scope": "",
            "token_type": "bearer",
        }

    @_route("POST", "/login/oauth/access_token")
    def _exchange_user_token(self, ctx: _Ctx) -> _Resp:
        body = ctx.body
        if self.oauth_client is None or (body["client_id"], body["client_secret"]) != self.oauth_client:
            return _Resp(
                200,
                {
                    "error": "incorrect_client_credentials",
                    "error_description": "The client_id and/or client_secret passed are incorrect.",
                },
            )
        if "refresh_token" in body:
            grant = self._refresh_tokens.pop(body["refresh_token"], None)
            if grant is None or time.time() >= grant["expires"]:
                return _Resp(
                    200,
                    {
                        "error": "bad_refresh_token",
                        "error_description": "The refresh token passed is incorrect or expired.",
                    },
                )
            return _Resp(200, self._issue_user_token(grant["login"]))
        code = self._oauth_codes.pop(body["code"], None)
        verifier = body.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if code is None or time.time() >= code["expires"] or challenge != code["challenge"]:
            return _Resp(200, ctx.op.example(name="bad-code"))
        if body.get("redirect_uri") not in (None, code["redirect_uri"]):
            return _Resp(
                200,
                {
                    "error": "redirect_uri_mismatch",
                    "error_description": "The redirect_uri MUST match the registered callback URL.",
                },
            )
        return _Resp(200, self._issue_user_token(code["login"]))

    def _user_role(self, login: str, key: str) -> str | None:
        """The person's explicit role on a repository (owning it counts as admin), or None."""
        repo = self._repos[key]
        if repo["full_name"].split("/")[0].lower() == login.lower():
            return "admin"
        role = repo["permissions"].get(login.lower())
        return role if role in self.ROLES else None

    def _user_installation(self, ctx: _Ctx, inst: dict[str, Any]) -> list[tuple[str, str]]:
        login = ctx.principal.login or ""
        return [(key, role) for key in inst["repos"] if (role := self._user_role(login, key))]

    @_route("GET", "/user")
    def _get_authenticated_user(self, ctx: _Ctx) -> _Resp:
        out = ctx.op.example(name="response-with-public-profile-information")
        out.update(self._user(ctx.principal.login or ""))
        return _Resp(200, out)

    @_route("GET", "/user/installations")
    def _list_user_installations(self, ctx: _Ctx) -> _Resp:
        base = ctx.op.example()["installations"][0]
        found = [
            self._installation_json(inst, copy.deepcopy(base))
            for _, inst in sorted(self._installations.items())
            if self._user_installation(ctx, inst)
        ]
        page, headers = self._paginate(ctx, found)
        return _Resp(200, {"total_count": len(found), "installations": page}, headers)

    @_route("GET", "/user/installations/{installation_id}/repositories")
    def _list_user_installation_repos(self, ctx: _Ctx) -> _Resp:
        inst = self._installations.get(ctx.params["installation_id"])
        readable = self._user_installation(ctx, inst) if inst is not None else []
        if not readable:
            raise self._not_found(ctx)
        base = ctx.op.example()["repositories"][0]
        repos = []
        for key, role in readable:
            item = self._repo_json(self._repos[key], copy.deepcopy(base))
            rank = self.ROLES.index(role)
            item["permissions"] = {
                "admin": rank >= 4,
                "maintain": rank >= 3,
                "push": rank >= 2,
                "triage": rank >= 1,
                "pull": True,
            }
            repos.append(item)
        page, headers = self._paginate(ctx, repos)
        return _Resp(
            200, {"total_count": len(repos), "repository_selection": "selected", "repositories": page}, headers
        )

    @staticmethod
    def _html(status: int, title: str, body: str) -> _Resp:
        page = (
            f"<!doctype html><html lang='en'><head><meta charset='utf-8'><link rel='icon' href='data:,'>"
            f"<title>{html.escape(title)} · fake GitHub</title></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
        )
        return _Resp(status, None, {"Content-Type": "text/html; charset=utf-8"}, raw=page.encode())


def iter_routes() -> Iterator[tuple[str, str]]:
    """The (method, template) pairs the fake implements (for coverage checks)."""
    return iter(sorted(_ROUTES))
