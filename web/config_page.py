"""`/config/OWNER/REPO`: what will the bot say? The effective configuration and every message it makes.

The preview is `engagement.preview`'s, which `flask config check OWNER/REPO` prints too: the configuration
read through the app's copies of repository files (a page view costs GitHub nothing while they are held)
and each message rendered by its behaviour's own functions. A private repository is shown only to a
viewer who may read it (web.signin); to anyone else it answers the same 404 as a name nobody installed.
Everything the file says is text on this page, escaped by the templates, never markup.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, current_app, render_template, request
from flask.blueprints import BlueprintSetupState
from werkzeug.wrappers import Response

from engagement import preview
from githubapp.errors import GitHubError, TransientError
from services import Services
from web import shell, signin
from web.pages import NAMES

log = logging.getLogger(__name__)
bp = Blueprint("config_page", __name__)


@bp.record_once
def _shell(state: BlueprintSetupState) -> None:
    shell.init_app(state.app)


@bp.context_processor
def _template_helpers() -> dict[str, Any]:
    def switch(lang: str) -> str:  # the address names the repository in its path, which `here` leaves out
        params = {**request.args.to_dict(), **(request.view_args or {}), "lang": lang}
        return shell.link(str(request.endpoint), **params)

    return shell.template_helpers(switch)


@bp.after_request
def _vary_by_language(response: Response) -> Response:
    response.vary.add("Accept-Language")
    return response


def _not_found() -> tuple[str, int]:
    t = shell.Translator()
    page = render_template("error.html", status=404, title=t("error.not_found"), message=t("error.not_found_text"))
    return page, 404


def shown(value: Any) -> str:
    """A setting's value as the file would hold it (JSON is YAML): text quoted, lists in brackets."""
    return json.dumps(value, ensure_ascii=False)


@bp.get("/config/<owner>/<name>")
def config_preview(owner: str, name: str) -> Any:
    full_name = f"{owner}/{name}"
    if not NAMES["repo"].fullmatch(full_name):
        return _not_found()
    services: Services = current_app.extensions["engage"]
    repo = preview.installed(services.store.engine, full_name, signin.viewer().readable)
    if repo is None:
        return _not_found()
    try:
        found = preview.preview_installed(services, repo)
    except (GitHubError, TransientError) as exc:  # the file cannot be read now, and the app holds no copy
        log.warning("config preview: GitHub did not answer: %s", exc, extra={"repo": repo.full_name})
        t = shell.Translator()
        page = render_template("error.html", status=503, title=t("config.unavailable"), message=t("config.retry"))
        return page, 503
    return render_template("config.html", preview=found, shown=shown, html_url=repo.html_url)
