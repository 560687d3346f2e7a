"""The operator page: recent and failed deliveries with their errors, and a button to retry them.

Why: a failed delivery must never vanish silently, and whoever keeps the app running should not need a
shell to see it and try again. The page does what `flask --app app deliveries list` and `deliveries
retry` do, through the same functions (`DeliveryStore.list`, `webhooks.dispatch.retry`).

It answers only to ADMIN_TOKEN, and 404 to everyone while that is unset. `/admin?token=...` or the
sign-in form set a cookie (HttpOnly, SameSite=Strict, 12 hours, signed with the token, so changing
ADMIN_TOKEN signs everyone out) and redirect to `/admin`, so the token does not stay in the address bar
or the history; scripts send `Authorization: Bearer <token>` instead. The forms carry a CSRF token
derived from the cookie; requests with the Bearer header need none, since browsers never add it on
their own. Guessing is hopeless: ADMIN_TOKEN must be long (settings.MIN_ADMIN_TOKEN_LENGTH), and after
10 wrong tokens from one client address (100 from all) every try answers 429 with Retry-After until a
minute has passed since the last wrong one (web.security.FailureLimit, shared through Redis).
Everything shown is escaped: errors quote GitHub's answers, and those quote people's text.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response as WerkzeugResponse

from logs import scrub
from services import Services
from storage.deliveries import FAILED
from web import pages
from web.security import FailureLimit
from webhooks.dispatch import NOT_FAILED, REQUEUED, STRANDED, failed_delivery_ids, retry

bp = Blueprint("admin", __name__, url_prefix="/admin")

SESSION_COOKIE = "engage_admin"
SESSION_SECONDS = 12 * 3600
RECENT_SHOWN = 50
FAILED_SHOWN = 100
OUTCOMES = (REQUEUED, STRANDED, NOT_FAILED)
FAILURE_LIMIT = "engage.admin_failure_limit"  # the app's FailureLimit, in app.extensions

SIGN_IN = "Sign in with the operator token (ADMIN_TOKEN)."
WRONG_TOKEN = "That is not the operator token. Check ADMIN_TOKEN where the app runs."
TOO_MANY_TRIES = "Too many wrong tokens. Try again in {seconds} seconds."
BAD_CSRF = "This form is out of date (or did not come from this page). Reload the page and try again."
RETRIED = {
    REQUEUED: "Delivery {id} is queued again.",
    STRANDED: "Delivery {id} is pending again; the queue is down, so the sweeper will dispatch it.",
    NOT_FAILED: "Delivery {id} is not failed, so it was left alone.",
}
RETRIED_ALL = "{requeued} failed deliveries queued again{stranded}."


class Denied(Exception):
    """No operator: 401 (nothing sent), 403 (a wrong token) or 429 (too many wrong tokens: `retry_after`
    seconds to wait), answered with the sign-in form."""

    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


def _services() -> Services:
    services: Services = current_app.extensions["engage"]
    return services


def _token() -> str:
    token = _services().settings.admin_token
    if not token:
        abort(404)  # no token, no page: it is not there at all
    return token


# --- the session cookie and the CSRF token (pure)


def _mac(token: str, message: str) -> str:
    return hmac.new(token.encode(), message.encode(), hashlib.sha256).hexdigest()


def session_value(token: str, issued: int) -> str:
    return f"{issued}.{_mac(token, f'session:{issued}')}"


def session_valid(token: str, value: str, now: float) -> bool:
    """A cookie this token signed less than SESSION_SECONDS ago."""
    issued, _, mac = value.partition(".")
    if not issued.isdigit():
        return False
    age = now - int(issued)
    return hmac.compare_digest(mac, _mac(token, f"session:{issued}")) and -60 <= age < SESSION_SECONDS


def csrf_token(token: str, session: str) -> str:
    return _mac(token, f"csrf:{session}")


def _same(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


def _check_token(given: str, token: str) -> None:
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


# --- who is asking


def _operator(token: str) -> str:
    """How the request proves it comes from an operator: "bearer" or "cookie"; raises Denied otherwise."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        _check_token(given.strip(), token)
        return "bearer"
    if session_valid(token, request.cookies.get(SESSION_COOKIE, ""), time.time()):
        return "cookie"
    raise Denied(401, SIGN_IN)


def _check_csrf(token: str, how: str) -> None:
    if how == "bearer":
        return  # a browser never sends the header by itself, so no other site can make it
    expected = csrf_token(token, request.cookies.get(SESSION_COOKIE, ""))
    if not _same(request.form.get("csrf", ""), expected):
        abort(400, BAD_CSRF)


def _signed_in(token: str) -> WerkzeugResponse:
    """Redirect to the bare /admin with a fresh session cookie, so the token leaves the address bar."""
    response = redirect(url_for("admin.page"), 303)
    response.set_cookie(
        SESSION_COOKIE,
        session_value(token, int(time.time())),
        max_age=SESSION_SECONDS,
        path="/admin",
        secure=request.is_secure,
        httponly=True,
        samesite="Strict",
    )
    return response


@bp.before_request
def _only_with_a_token() -> None:
    _token()


@bp.record_once
def _count_failures(state: BlueprintSetupState) -> None:
    services: Services = state.app.extensions["engage"]
    state.app.extensions[FAILURE_LIMIT] = FailureLimit(services.redis)


@bp.errorhandler(Denied)
def _denied(denied: Denied) -> ResponseReturnValue:
    page = render_template("admin.html", mode="signin", message=denied.message, status_code=denied.status)
    headers = {"WWW-Authenticate": 'Bearer realm="admin"'}
    if denied.retry_after:
        headers["Retry-After"] = str(denied.retry_after)
    return page, denied.status, headers


@bp.after_request
def _private(response: Response) -> Response:
    """Stricter than the site's headers (web/security.py): nothing of this page is cached or referred."""
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.context_processor
def _template_helpers() -> dict[str, Any]:
    helpers = pages._template_helpers()  # the site's header, footer and language switch
    helpers["toggle_url"] = url_for("admin.page", lang=helpers["toggle"]["lang"])
    return helpers


# --- the page and its buttons


@bp.get("")
def page() -> ResponseReturnValue:
    """Failed deliveries with each handler's outcome and a Retry button, then the 50 most recent."""
    token = _token()
    given = request.args.get("token")
    if given is not None:
        _check_token(given, token)
        return _signed_in(token)
    how = _operator(token)
    store = _services().store
    failed = store.list([FAILED], limit=FAILED_SHOWN + 1)
    shown = failed[:FAILED_SHOWN]
    return render_template(
        "admin.html",
        mode="page",
        failed=shown,
        more_failed=len(failed) > FAILED_SHOWN,
        outcomes={delivery.id: store.handler_outcomes(delivery.id) for delivery in shown},
        recent=store.list((), limit=RECENT_SHOWN),
        csrf=csrf_token(token, request.cookies.get(SESSION_COOKIE, "")) if how == "cookie" else "",
        notice=_notice(),
        scrub=scrub,
    )


def _notice() -> str | None:
    """What the last button did, from the redirect's query (PRG: a reload does not press it again)."""
    outcome, delivery_id = request.args.get("outcome"), request.args.get("retried")
    if delivery_id and outcome in OUTCOMES:
        return RETRIED[outcome].format(id=delivery_id)
    requeued, stranded = request.args.get("requeued", ""), request.args.get("stranded", "")
    if requeued.isdigit() and stranded.isdigit():
        later = f" ({stranded} wait for the sweeper: the queue is down)" if int(stranded) else ""
        return RETRIED_ALL.format(requeued=int(requeued) + int(stranded), stranded=later)
    return None


@bp.post("/login")
def login() -> ResponseReturnValue:
    token = _token()
    _check_token(request.form.get("token", ""), token)
    return _signed_in(token)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    token = _token()
    _check_csrf(token, _operator(token))
    response = redirect(url_for("admin.page"), 303)
    response.delete_cookie(SESSION_COOKIE, path="/admin")
    return response


@bp.post("/retry")
def retry_one() -> ResponseReturnValue:
    """Retry one failed delivery, as `flask --app app deliveries retry ID` does."""
    token = _token()
    _check_csrf(token, _operator(token))
    delivery_id = (request.form.get("delivery_id") or "").strip()
    if not delivery_id:
        abort(400, "say which delivery to retry (delivery_id)")
    services = _services()
    [(_, outcome)] = retry(services.store, services.dispatcher, [delivery_id])
    return redirect(url_for("admin.page", retried=delivery_id, outcome=outcome), 303)


@bp.post("/retry-failed")
def retry_all_failed() -> ResponseReturnValue:
    """Retry every failed delivery, as `flask --app app deliveries retry --all-failed` does."""
    token = _token()
    _check_csrf(token, _operator(token))
    services = _services()
    outcomes = [
        outcome for _, outcome in retry(services.store, services.dispatcher, failed_delivery_ids(services.store))
    ]
    return redirect(
        url_for("admin.page", requeued=outcomes.count(REQUEUED), stranded=outcomes.count(STRANDED)),
        303,
    )
