"""Who may use the operator pages: one seam, `require_operator`, with two ways in.

People signed in with GitHub (web.signin) who are admins of at least one installed repository may use
them for those repositories: `g.admin_repositories` is the set of their repositories' ids, and the page
and its buttons keep to them. ADMIN_TOKEN is the operator's break-glass, for everything
(`g.admin_repositories` is None). With neither configured the guarded pages answer 404 to everyone. A token in
the address (`?token=`) or the sign-in form sets a cookie (HttpOnly, SameSite=Strict, 12 hours, signed
with the token, so changing ADMIN_TOKEN signs everyone out) and redirects to the bare address, so the
token does not stay in the address bar or the history; scripts send `Authorization: Bearer <token>`
instead. Form posts carry a CSRF token derived from the cookie; requests with the Bearer header need
none, since browsers never add it on their own. Guessing is hopeless: ADMIN_TOKEN must be long
(settings.MIN_ADMIN_TOKEN_LENGTH), and after 10 wrong tokens from one client address (100 from all)
every try answers 429 with Retry-After until a minute has passed since the last wrong one
(web.security.FailureLimit, shared through Redis).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any

from flask import abort, current_app, g, redirect, request, url_for
from flask.sansio.app import App
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response as WerkzeugResponse

from services import Services
from web import signin
from web.security import FailureLimit

SESSION_COOKIE = "engage_admin"
SESSION_PATH = "/admin"
SESSION_SECONDS = 12 * 3600
FAILURE_LIMIT = "engage.admin_failure_limit"  # the app's FailureLimit, in app.extensions

SIGN_IN = "Sign in with the operator token (ADMIN_TOKEN)."
WRONG_TOKEN = "That is not the operator token. Check ADMIN_TOKEN where the app runs."
NOT_AN_ADMIN = (
    "You are signed in with GitHub as {login}, but GitHub does not list you as an admin of any repository the app "
    "is installed on. Ask an admin of the organisation, or the operator."
)
TOO_MANY_TRIES = "Too many wrong tokens. Try again in {seconds} seconds."
BAD_CSRF = "This form is out of date (or did not come from this page). Reload the page and try again."


class Denied(Exception):
    """No operator: 401 (nothing sent), 403 (a wrong token) or 429 (too many wrong tokens: `retry_after`
    seconds to wait); the blueprint answers it with its sign-in form."""

    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


def init_app(app: App) -> None:
    if FAILURE_LIMIT not in app.extensions:
        services: Services = app.extensions["engage"]
        app.extensions[FAILURE_LIMIT] = FailureLimit(services.redis)


def admin_token() -> str | None:
    """ADMIN_TOKEN, if set; 404 while neither it nor sign-in with GitHub is configured: no page at all."""
    services: Services = current_app.extensions["engage"]
    token = services.settings.admin_token
    if not token and not services.settings.signs_in:
        abort(404)
    return token


# --- the session cookie and the CSRF token (pure)


def _mac(token: str, message: str) -> str:
    return hmac.new(token.encode(), message.encode(), hashlib.sha256).hexdigest()


def session_value(token: str, issued: int, nonce: str | None = None) -> str:
    """`issued.nonce.mac`: the nonce makes every sign-in a session of its own, with its own CSRF token."""
    nonce = nonce or secrets.token_hex(8)
    return f"{issued}.{nonce}.{_mac(token, f'session:{issued}:{nonce}')}"


def session_valid(token: str, value: str, now: float) -> bool:
    """A cookie this token signed less than SESSION_SECONDS ago."""
    issued, _, rest = value.partition(".")
    nonce, _, mac = rest.partition(".")
    if not issued.isdigit() or not nonce.isalnum():
        return False
    age = now - int(issued)
    return hmac.compare_digest(mac, _mac(token, f"session:{issued}:{nonce}")) and -60 <= age < SESSION_SECONDS


def csrf_token(token: str, session: str) -> str:
    return _mac(token, f"csrf:{session}")


def _same(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


# --- who is asking


def check_token(given: str, token: str) -> None:
    """Accept the operator token, or raise Denied; past the failure limit no token is even compared, so
    guessing costs a minute per few tries (the sign-in form, `?token=` and the Bearer header alike)."""
    limit: FailureLimit = current_app.extensions[FAILURE_LIMIT]
    address = request.remote_addr or "unknown"
    wait = limit.retry_after(address)
    if wait:
        raise Denied(429, TOO_MANY_TRIES.format(seconds=wait), retry_after=wait)
    if not _same(given, token):
        limit.failed(address)
        raise Denied(403, WRONG_TOKEN)


def operator(token: str | None) -> str:
    """How the request proves it comes from an operator: "bearer" or "cookie" (ADMIN_TOKEN), or "github" (a
    signed-in admin of installed repositories, kept in `g.admin_repositories`); raises Denied otherwise."""
    g.admin_repositories = None
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer":
        check_token(given.strip(), token)
        return "bearer"
    if token and session_valid(token, request.cookies.get(SESSION_COOKIE, ""), time.time()):
        return "cookie"
    person = signin.viewer()
    if person.signed_in:
        if not person.administered:
            raise Denied(403, NOT_AN_ADMIN.format(login=person.login))
        g.admin_repositories = person.administered
        return "github"
    raise Denied(401, SIGN_IN)


def _check_csrf(how: str) -> None:
    if how == "bearer":
        return  # a browser never sends the header by itself, so no other site can make it
    if not _same(request.form.get("csrf", ""), csrf(how)):
        abort(400, BAD_CSRF)


def csrf(how: str) -> str:
    """The CSRF token this session's forms carry (the GitHub session's for a signed-in admin)."""
    if how == "github":
        return signin.csrf_token()
    return csrf_token(str(admin_token()), request.cookies.get(SESSION_COOKIE, ""))


def signed_in(endpoint: str) -> WerkzeugResponse:
    """Redirect to the bare page with a fresh session cookie, so the token leaves the address bar."""
    token = admin_token()
    if token is None:
        abort(404)
    response = redirect(url_for(endpoint), 303)
    response.set_cookie(
        SESSION_COOKIE,
        session_value(token, int(time.time())),
        max_age=SESSION_SECONDS,
        path=SESSION_PATH,
        secure=request.is_secure,
        httponly=True,
        samesite="Strict",
    )
    return response


def sign_in(given: str, endpoint: str) -> WerkzeugResponse:
    token = admin_token()
    if token is None:
        raise Denied(403, WRONG_TOKEN)  # sign-in with GitHub only: no token to compare with
    check_token(given, token)
    return signed_in(endpoint)


def sign_out(response: WerkzeugResponse) -> WerkzeugResponse:
    response.delete_cookie(SESSION_COOKIE, path=SESSION_PATH)
    return response


def require_operator(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """Only for an operator (else Denied, or 404 while ADMIN_TOKEN is unset). On a GET, `?token=` signs
    in and redirects to the bare address; a POST from the session cookie must carry the CSRF token.
    The view finds how the operator proved it in `g.operator` ("bearer", "cookie" or "github")."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        token = admin_token()
        given = request.args.get("token")
        if request.method == "GET" and given is not None and token:
            return sign_in(given, str(request.endpoint))
        g.operator = operator(token)
        if request.method == "POST":
            _check_csrf(g.operator)
        return view(*args, **kwargs)

    return guarded
