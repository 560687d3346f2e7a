"""A repository's contributors (readmodels/contributors.py): `/contributors/OWNER/REPO` as a page (en, zh)
and `/contributors/OWNER/REPO.md` as a CONTRIBUTORS.md to copy into the repository.

Like every page, it shows a private repository only to a viewer signed in with GitHub who may read it
(web.signin); anyone else gets the same 404 as for a repository that does not exist.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from flask.blueprints import BlueprintSetupState

from readmodels import contributors as data
from readmodels.leaderboard import NotVisible
from services import Services
from web import shell, signin
from web.pages import NAMES

bp = Blueprint("contributors", __name__)
MARKDOWN = ".md"


@bp.record_once
def _shell(state: BlueprintSetupState) -> None:
    shell.init_app(state.app)


@bp.context_processor
def _template_helpers() -> dict[str, Any]:
    # The language switch keeps the repository, which is in the path rather than the query.
    names = dict(request.view_args or {})
    return shell.template_helpers(lambda lang: shell.here(lang=lang, **names))


@bp.after_request
def _vary_by_language(response: Response) -> Response:
    response.vary.add("Accept-Language")
    return response


@bp.get("/contributors/<owner>/<name>")
def repository(owner: str, name: str) -> Any:
    as_markdown = name.endswith(MARKDOWN)
    repo = f"{owner}/{name.removesuffix(MARKDOWN) if as_markdown else name}"
    services: Services = current_app.extensions["engage"]
    try:
        if not NAMES["repo"].fullmatch(repo):
            raise NotVisible(repo)
        found = data.of_repository(
            services.store.engine, repo, signin.viewer().readable, github_url=services.settings.github_url
        )
    except NotVisible:
        if as_markdown:
            return Response("not found: no public repository by that name\n", 404, mimetype="text/plain")
        t = shell.Translator()
        message = t("error.not_found_text")
        return render_template("error.html", status=404, title=t("error.not_found"), message=message), 404
    if as_markdown:
        return Response(data.markdown(found), mimetype="text/markdown")
    markdown_name = found.repository.split("/", 1)[1] + MARKDOWN
    markdown_url = shell.link("contributors.repository", owner=found.repository.split("/", 1)[0], name=markdown_name)
    return render_template("contributors.html", found=found, markdown_url=markdown_url)
