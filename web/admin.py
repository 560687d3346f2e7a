"""The operator page: recent and failed deliveries with their errors, a button to retry them, each
installation's GitHub request budget, and the repositories whose history is still being imported.

Why: a failed delivery must never vanish silently, and whoever keeps the app running should not need a
shell to see it and try again. The page does what `flask --app app deliveries list` and `deliveries
retry` do, through the same functions (`DeliveryStore.list`, `webhooks.dispatch.retry`).

Who may use it is web/auth.py's business (`require_operator`: ADMIN_TOKEN today, 404 while it is unset).
Everything shown is escaped: errors quote GitHub's answers, and those quote people's text.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app, g, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue

from engagement import digest, history
from githubapp.budget import Budget, Reading
from logs import scrub
from services import Services
from storage.db import repositories, utcnow
from storage.deliveries import FAILED
from web import auth, shell
from web.auth import Denied, require_operator
from webhooks.dispatch import NOT_FAILED, REQUEUED, STRANDED, failed_delivery_ids, retry

log = logging.getLogger(__name__)
bp = Blueprint("admin", __name__, url_prefix="/admin")

RECENT_SHOWN = 50
FAILED_SHOWN = 100
HISTORY_SHOWN = 20
OUTCOMES = (REQUEUED, STRANDED, NOT_FAILED)

RETRIED = {
    REQUEUED: "Delivery {id} is queued again.",
    STRANDED: "Delivery {id} is pending again; the queue is down, so the sweeper will dispatch it.",
    NOT_FAILED: "Delivery {id} is not failed, so it was left alone.",
}
RETRIED_ALL = "{requeued} failed deliveries queued again{stranded}."


def _services() -> Services:
    services: Services = current_app.extensions["engage"]
    return services


@bp.before_request
def _only_with_a_token() -> None:
    auth.admin_token()  # 404 for every address under /admin while ADMIN_TOKEN is unset


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    auth.init_app(state.app)
    shell.init_app(state.app)


@bp.errorhandler(Denied)
def _denied(denied: Denied) -> ResponseReturnValue:
    token_form = bool(_services().settings.admin_token)
    page = render_template(
        "admin.html", mode="signin", message=denied.message, status_code=denied.status, token_form=token_form
    )
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
    return shell.template_helpers(switch=lambda lang: url_for("admin.page", lang=lang))


# --- the page and its buttons


@bp.get("")
@require_operator
def page() -> ResponseReturnValue:
    """Failed deliveries with each handler's outcome and a Retry button, then the 50 most recent."""
    services = _services()
    store = services.store
    repositories = _administered_names()
    failed = store.list([FAILED], limit=FAILED_SHOWN + 1, repositories=repositories)
    shown = failed[:FAILED_SHOWN]
    budget = _budget(services.github.budget)
    history_on = services.settings.backfill_calls_per_hour > 0  # off: the page says how many, not where each is
    if budget is not None and repositories is not None:
        ours = {delivery.installation_id for delivery in store.list((), RECENT_SHOWN, repositories)}
        budget = [reading for reading in budget if reading.installation_id in ours]
    return render_template(
        "admin.html",
        mode="page",
        failed=shown,
        more_failed=len(failed) > FAILED_SHOWN,
        outcomes={delivery.id: store.handler_outcomes(delivery.id) for delivery in shown},
        recent=store.list((), limit=RECENT_SHOWN, repositories=repositories),
        csrf=auth.csrf(g.operator) if g.operator in ("cookie", "github") else "",
        signed_in_with_github=g.operator == "github",
        notice=_notice(),
        scrub=scrub,
        budget=budget,
        now=services.github.budget.clock(),
        undelivered=digest.undelivered(store.engine) if repositories is None else [],
        history_on=history_on,
        history=history.pending(services.stores.ledger, utcnow(), repositories, HISTORY_SHOWN if history_on else 0),
    )


def _administered_names() -> set[str] | None:
    """The repositories (full names) a signed-in admin may act on; None for the operator (all)."""
    ids = g.admin_repositories
    if ids is None:
        return None
    with _services().store.engine.connect() as conn:
        query = sa.select(repositories.c.full_name).where(repositories.c.id.in_(sorted(ids)))
        return {str(name) for name in conn.execute(query).scalars()}


def _may_retry(delivery_id: str) -> bool:
    names = _administered_names()
    if names is None:
        return True
    delivery = _services().store.get(delivery_id)
    return delivery is not None and (delivery.repository or "") in names


def _budget(budget: Budget) -> list[Reading] | None:
    """Each installation's GitHub request budget; None when the shared cache cannot be read now."""
    try:
        return budget.readings()
    except Exception as exc:
        log.warning("admin: GitHub budget unreadable: %s", type(exc).__name__)
        return None


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
    return auth.sign_in(request.form.get("token", ""), "admin.page")


@bp.post("/logout")
@require_operator
def logout() -> ResponseReturnValue:
    if g.operator == "github":
        abort(400, "Sign out of GitHub with the button at the top of the page.")
    return auth.sign_out(redirect(url_for("admin.page"), 303))


@bp.post("/retry")
@require_operator
def retry_one() -> ResponseReturnValue:
    """Retry one failed delivery, as `flask --app app deliveries retry ID` does."""
    delivery_id = (request.form.get("delivery_id") or "").strip()
    if not delivery_id:
        abort(400, "say which delivery to retry (delivery_id)")
    if not _may_retry(delivery_id):
        abort(404)  # not one of this admin's repositories: as if there were no such delivery
    services = _services()
    [(_, outcome)] = retry(services.store, services.dispatcher, [delivery_id])
    return redirect(url_for("admin.page", retried=delivery_id, outcome=outcome), 303)


@bp.post("/retry-failed")
@require_operator
def retry_all_failed() -> ResponseReturnValue:
    """Retry every failed delivery, as `flask --app app deliveries retry --all-failed` does."""
    services = _services()
    names = _administered_names()
    if names is None:
        chosen = failed_delivery_ids(services.store)
    else:
        chosen = [d.id for d in services.store.list([FAILED], limit=100_000, repositories=names)]
    outcomes = [outcome for _, outcome in retry(services.store, services.dispatcher, chosen)]
    return redirect(
        url_for("admin.page", requeued=outcomes.count(REQUEUED), stranded=outcomes.count(STRANDED)),
        303,
    )
