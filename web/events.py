"""The event pages: `/events` (running, upcoming, past), `/events/<slug>` (its leaderboard) and
`/events/<slug>/people` (participants and newcomers), with `/api/events/<slug>`.

What an event shows follows the viewer as every page does (`web.signin`): its private repositories'
contributions only to those who may read them, and an event with nothing this viewer may see answers
404, exactly like one that does not exist. Times are shown in the event's own time zone.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request
from sqlalchemy.engine import Engine

from engagement.events import SLUG
from readmodels import events as data
from readmodels.leaderboard import NotVisible
from services import Services
from web import shell, signin

bp = Blueprint("events", __name__)


class Missing(Exception):
    """No such event, or none this viewer may see."""


def _engine() -> Engine:
    services: Services = current_app.extensions["engage"]
    return services.store.engine


@bp.context_processor
def _template_helpers() -> dict[str, Any]:
    # The language switch keeps the slug, which is in the path rather than the query (`shell.here`).
    def switch(lang: str) -> str:
        params = {**request.args.to_dict(), **(request.view_args or {}), "lang": lang}
        return shell.link(str(request.endpoint), **params)

    return shell.template_helpers(switch)


@bp.after_request
def _vary_by_language(response: Any) -> Any:
    response.vary.add("Accept-Language")
    return response


@bp.errorhandler(Missing)
def _missing(_: Missing) -> tuple[Any, int]:
    if request.path.startswith("/api/"):
        return jsonify({"error": "not found: no event by that name"}), 404
    t = shell.Translator()
    page = render_template("error.html", status=404, title=t("error.not_found"), message=t("events.not_found"))
    return page, 404


def _github_url() -> str:
    return str(current_app.extensions["engage"].settings.github_url)


def _read(reader: Any, slug: str, **options: Any) -> dict[str, Any]:
    if not SLUG.fullmatch(slug):
        raise Missing(slug)
    try:
        found: dict[str, Any] = reader(_engine(), slug, signin.viewer().readable, **options)
    except NotVisible:
        raise Missing(slug) from None
    return found


@bp.get("/events")
def index() -> str:
    return render_template("events.html", events=data.listed(_engine(), signin.viewer().readable), now=data.now_utc())


@bp.get("/events/<slug>")
def event(slug: str) -> str:
    board = _read(data.board, slug, github_url=_github_url())
    return render_template("event.html", board=board, formula=shell.Translator().formula(board["formula"]))


@bp.get("/events/<slug>/people")
def people(slug: str) -> str:
    return render_template("event_people.html", people=_read(data.people, slug))


@bp.get("/api/events/<slug>")
def event_json(slug: str) -> Any:
    return jsonify(_read(data.board, slug, github_url=_github_url()))
