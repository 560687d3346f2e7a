"""A page for every contributor (issue 13 §3): `/people/<login>` and `/api/people/<login>`.

What `readmodels.people.page` returns, as HTML (en, zh) or unchanged as JSON, for what this viewer may
see (web.signin). An unknown login, a name GitHub cannot have, and someone whose only activity is in
repositories the viewer may not read all answer the same 404 with the same words, so the page never
tells whether they exist; someone who opted out of the leaderboard gets a page that says only that.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from flask.blueprints import BlueprintSetupState

from readmodels.leaderboard import NotVisible
from readmodels.people import page
from services import Services
from web import shell, signin
from web.pages import OWNER_NAME

bp = Blueprint("people", __name__)

LOGIN = re.compile(OWNER_NAME)  # GitHub's rule for account names
NOT_FOUND_JSON = "not found: no contributor by that name with activity you may see"


class Missing(LookupError):
    """Nobody by that name this viewer may see."""


@bp.record_once
def _shell(state: BlueprintSetupState) -> None:
    shell.init_app(state.app)


@bp.context_processor
def _template_helpers() -> dict[str, Any]:
    # The language switch keeps the login, which is in the path rather than the query.
    def switch(lang: str) -> str:
        return shell.link(str(request.endpoint), **{**(request.view_args or {}), **request.args, "lang": lang})

    return shell.template_helpers(switch)


@bp.after_request
def _vary_by_language(response: Response) -> Response:
    response.vary.add("Accept-Language")
    return response


def _person(login: str) -> dict[str, Any]:
    if not LOGIN.fullmatch(login):
        raise Missing(login)
    services: Services = current_app.extensions["engage"]
    try:
        return page(
            services.store.engine, login, readable=signin.viewer().readable, github_url=services.settings.github_url
        )
    except NotVisible:
        raise Missing(login) from None


@bp.get("/people/<login>")
def person(login: str) -> Any:
    try:
        data = _person(login)
    except Missing:
        t = shell.Translator()
        return render_template("error.html", status=404, title=t("error.not_found"), message=t("people.not_found")), 404
    return render_template("person.html", person=data)


@bp.get("/api/people/<login>")
def person_json(login: str) -> Any:
    try:
        return jsonify(_person(login))
    except Missing:
        return jsonify({"error": NOT_FOUND_JSON}), 404
