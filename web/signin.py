"""Sign in with GitHub: who is looking at a page, and which private repositories they may see (issue 13).

The GitHub App's own user authorization (web flow with `state` and PKCE S256; GITHUB_CLIENT_ID and
GITHUB_CLIENT_SECRET, which registering the App writes to .env). `/auth/login` sends the browser to
GitHub, `/auth/callback` exchanges the code and opens a server-side session (storage.web_sessions; the
cookie is HttpOnly, SameSite=Lax so the way back from GitHub carries it, Secure behind TLS), and
`/auth/logout` (a POST with the session's CSRF token) ends it.

`viewer()` is the one seam every page asks: anonymous visitors (and everyone while sign-in is not
configured) read public repositories only; a signed-in person reads, besides, the private repositories
of our installations GitHub says they have explicit access to. That answer is kept with the session and
asked again after SIGN_IN_RECHECK_SECONDS (2 minutes), so access revoked on GitHub disappears here within minutes; an
expired user token is refreshed first, and a session whose token GitHub refuses ends. When GitHub cannot
be asked, the last answer serves for at most GRANTS_STALE_SECONDS, then the person sees public data only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app, g, redirect, render_template, request, url_for
from flask.sansio.app import App
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response as WerkzeugResponse

from githubapp.errors import GitHubError, Unauthorized
from githubapp.user_auth import Refused, UserAuth, pkce_pair
from services import Services
from storage.db import repositories, utcnow
from storage.web_sessions import Session, SessionStore, Tokens, digest
from web import shell
from web.security import FailureLimit

log = logging.getLogger(__name__)
bp = Blueprint("signin", __name__, url_prefix="/auth")

SESSION_COOKIE = "engage_session"
STATE_COOKIE = "engage_sign_in"
GRANTS_STALE_SECONDS = 600  # while GitHub cannot be asked, the last answer serves this long at most
REFRESH_MARGIN = timedelta(minutes=2)  # refresh a user token this long before it expires
EXTENSION = "engage:signin"


@dataclass(frozen=True)
class Viewer:
    """Who is looking: a signed-in person and their roles per repository id, or nobody (anonymous)."""

    login: str | None = None
    user_id: int | None = None
    grants: Mapping[int, str] = field(default_factory=dict)
    session_hash: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.login is not None

    @property
    def readable(self) -> frozenset[int]:
        """Repository ids this person may read besides the public ones."""
        return frozenset(self.grants)

    @property
    def administered(self) -> frozenset[int]:
        return frozenset(repo for repo, role in self.grants.items() if role == "admin")


ANONYMOUS = Viewer()


@dataclass
class SignIn:
    auth: UserAuth
    store: SessionStore
    limit: FailureLimit
    secret: str
    recheck_seconds: float


def init_app(app: App) -> None:
    """Sign-in's parts, once per app; the pages' template helpers get `viewer` and the sign-out form."""
    if EXTENSION in app.extensions:
        return
    services: Services = app.extensions["engage"]
    settings = services.settings
    sign_in = None
    if settings.signs_in:
        assert settings.github_client_id and settings.github_client_secret
        auth = UserAuth(
            settings.github_client_id,
            settings.github_client_secret,
            settings.github_url,
            settings.github_api_url,
            settings.github_timeout_seconds,
        )
        store = SessionStore(services.store.engine, settings.github_client_secret)
        # Every sign-in started counts: 20 a minute from one address, 600 from all, are plenty for people.
        limit = FailureLimit(services.redis, per_address=20, overall=600, prefix="engage:github-sign-in")
        sign_in = SignIn(auth, store, limit, settings.github_client_secret, settings.sign_in_recheck_seconds)
    app.extensions[EXTENSION] = sign_in
    app.context_processor(_template_helpers)
    app.after_request(_private_when_signed_in)


def _sign_in() -> SignIn | None:
    found: SignIn | None = current_app.extensions.get(EXTENSION)
    return found


def _template_helpers() -> dict[str, Any]:
    sign_in = _sign_in()
    if sign_in is None:
        return {"viewer": ANONYMOUS, "signs_in": False}
    return {"viewer": viewer(), "signs_in": True, "sign_out_csrf": csrf_token}


def viewer() -> Viewer:
    """This request's viewer, decided once (anonymous without a live session)."""
    if "viewer" not in g:
        g.viewer = _resolve()
    found: Viewer = g.viewer
    return found


def _resolve() -> Viewer:
    sign_in = _sign_in()
    value = request.cookies.get(SESSION_COOKIE)
    if sign_in is None or not value:
        return ANONYMOUS
    session = sign_in.store.get(value)
    if session is None:
        g.drop_session_cookie = True
        return ANONYMOUS
    try:
        session = _fresh(sign_in, session)
    except (Refused, Unauthorized) as exc:
        # The person revoked the App, or the refresh token is spent: this session is over.
        log.info("sign-in: session ended by GitHub (%s)", type(exc).__name__)
        sign_in.store.revoke(session.session_hash)
        g.drop_session_cookie = True
        return ANONYMOUS
    return Viewer(session.login, session.user_id, session.grants, session.session_hash)


def _fresh(sign_in: SignIn, session: Session) -> Session:
    """The session with a live token and a recent answer on what the person may read."""
    now = utcnow()
    tokens = session.tokens
    if tokens.access_expires_at is not None and now >= tokens.access_expires_at - REFRESH_MARGIN:
        try:
            tokens = _refreshed(sign_in, session.session_hash, tokens, now)
        except GitHubError as exc:
            return _stale(session, now, exc)
    checked = session.grants_checked_at
    if checked is not None and (now - checked).total_seconds() < sign_in.recheck_seconds:
        return session
    try:
        try:
            grants = sign_in.auth.grants(tokens.access, _installation_ids())
        except Unauthorized:  # GitHub dropped the token before its time: one refresh, then give up
            tokens = _refreshed(sign_in, session.session_hash, tokens, now)
            grants = sign_in.auth.grants(tokens.access, _installation_ids())
    except Unauthorized:
        raise
    except GitHubError as exc:
        return _stale(session, now, exc)
    sign_in.store.set_grants(session.session_hash, grants, now)
    return Session(session.session_hash, session.user_id, session.login, tokens, grants, now, session.expires_at)


def _refreshed(sign_in: SignIn, session_hash: str, tokens: Tokens, now: datetime) -> Tokens:
    """New tokens for the session (a refresh replaces both); Refused when the refresh token is spent."""
    if not tokens.refresh or (tokens.refresh_expires_at is not None and now >= tokens.refresh_expires_at):
        raise Refused("the user token expired and cannot be refreshed")
    grant = sign_in.auth.refresh(tokens.refresh, now)
    fresh = Tokens(grant.access, grant.access_expires_at, grant.refresh, grant.refresh_expires_at)
    sign_in.store.replace_tokens(session_hash, fresh)
    return fresh


def _stale(session: Session, now: Any, exc: Exception) -> Session:
    """GitHub could not be asked: the last answer while it is recent enough, else public data only."""
    log.warning("sign-in: could not ask GitHub what %s may read: %s", session.login, type(exc).__name__)
    checked = session.grants_checked_at
    if checked is not None and (now - checked).total_seconds() < GRANTS_STALE_SECONDS:
        return session
    return Session(
        session.session_hash, session.user_id, session.login, session.tokens, {}, checked, session.expires_at
    )


def _installation_ids() -> set[int]:
    services: Services = current_app.extensions["engage"]
    with services.store.engine.connect() as conn:
        query = sa.select(repositories.c.installation_id).where(repositories.c.installation_id.is_not(None))
        return {int(found) for found in conn.execute(query.distinct()).scalars()}


def csrf_token() -> str:
    """The sign-out form's token: bound to this session, useless to another site."""
    sign_in, session = _sign_in(), viewer().session_hash
    if sign_in is None or session is None:
        return ""
    return hmac.new(sign_in.secret.encode(), f"csrf:{session}".encode(), hashlib.sha256).hexdigest()


def _private_when_signed_in(response: Response) -> Response:
    """Pages differ by who asks: shared caches must keep them apart, and signed-in pages for nobody else."""
    if _sign_in() is None:
        return response
    if g.get("viewer") is not None:  # the answer consulted the viewer (badges and static files never do)
        response.vary.add("Cookie")
    if g.get("viewer") is not None and g.viewer.signed_in:
        response.headers["Cache-Control"] = "private, no-store"
    if g.get("drop_session_cookie"):
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- the three addresses


@bp.before_request
def _configured() -> None:
    if _sign_in() is None:
        abort(404)  # no client id and secret: nobody signs in, the addresses are not there


@bp.record_once
def _setup(state: Any) -> None:
    shell.init_app(state.app)


@bp.context_processor
def _shell_helpers() -> dict[str, Any]:
    return shell.template_helpers()


def _refused(key: str, status: int = 400, headers: Mapping[str, str] | None = None) -> Response:
    return Response(render_template("signin.html", problem=key), status, headers=dict(headers or {}))


def _return_to(raw: str | None) -> str:
    """Where to go after signing in: a path on this site only (never another host)."""
    if raw and raw.startswith("/") and not raw.startswith("//") and "\\" not in raw and len(raw) <= 2000:
        return raw
    return "/"


def _callback_url() -> str:
    services: Services = current_app.extensions["engage"]
    base = services.settings.base_url
    return f"{base}{url_for('signin.callback')}" if base else url_for("signin.callback", _external=True)


def _cookie(response: WerkzeugResponse, name: str, value: str, seconds: int, path: str) -> None:
    response.set_cookie(
        name, value, max_age=seconds, path=path, secure=request.is_secure, httponly=True, samesite="Lax"
    )


@bp.get("/login")
def login() -> ResponseReturnValue:
    sign_in = _sign_in()
    assert sign_in is not None
    address = request.remote_addr or "unknown"
    wait = sign_in.limit.retry_after(address)
    if wait:
        return _refused("signin.too_many", 429, {"Retry-After": str(wait)})
    sign_in.limit.failed(address)  # every start counts towards the limit
    state = secrets.token_urlsafe(32)
    verifier, challenge = pkce_pair()
    sign_in.store.begin(state, verifier, _return_to(request.args.get("next")))
    response = redirect(sign_in.auth.authorize_url(_callback_url(), state, challenge), 302)
    _cookie(response, STATE_COOKIE, state, 600, "/auth")
    return response


@bp.get("/callback")
def callback() -> ResponseReturnValue:
    sign_in = _sign_in()
    assert sign_in is not None
    state, code = request.args.get("state", ""), request.args.get("code", "")
    if request.args.get("error"):  # the person said no on GitHub
        return _refused("signin.declined")
    cookie = request.cookies.get(STATE_COOKIE, "")
    if not state or not code or not cookie or not hmac.compare_digest(state.encode(), cookie.encode()):
        return _refused("signin.bad_state")  # not started in this browser: a forged or replayed callback
    begun = sign_in.store.finish(state)
    if begun is None:
        return _refused("signin.bad_state")
    verifier, return_to = begun
    now = utcnow()
    try:
        grant = sign_in.auth.exchange(code, verifier, _callback_url(), now)
        user_id, login = sign_in.auth.user(grant.access)
    except Refused:
        return _refused("signin.bad_state")
    except GitHubError as exc:
        log.warning("sign-in: GitHub failed: %s", type(exc).__name__)
        return _refused("signin.github_failed", 502)
    value = secrets.token_urlsafe(32)
    tokens = Tokens(grant.access, grant.access_expires_at, grant.refresh, grant.refresh_expires_at)
    sign_in.store.create(value, user_id, login, tokens)
    log.info("sign-in: %s signed in", login)
    response = redirect(return_to, 303)
    _cookie(response, SESSION_COOKIE, value, int(timedelta(days=30).total_seconds()), "/")
    response.delete_cookie(STATE_COOKIE, path="/auth")
    return response


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    sign_in = _sign_in()
    assert sign_in is not None
    who = viewer()
    if who.session_hash is not None:
        if not hmac.compare_digest(request.form.get("csrf", "").encode(), csrf_token().encode()):
            abort(400, "This form is out of date (or did not come from this page). Reload the page and try again.")
        sign_in.store.revoke(who.session_hash)
    response = redirect(_return_to(request.form.get("next")), 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


__all__ = ["ANONYMOUS", "Viewer", "bp", "digest", "init_app", "viewer"]
