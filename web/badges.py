"""Badges for READMEs (issue 13 §3): a contributor's merged pull requests or rank on a repository's or
an owner's leaderboard, and a repository's health, as shields-style SVG at `/badges/...svg`.

    /badges/OWNER/REPO/contributors/LOGIN/merged.svg   ?window=all (default) | 7d | 30d | 90d | 365d
    /badges/OWNER/REPO/contributors/LOGIN/rank.svg     ?window=30d (default) | ...
    /badges/orgs/OWNER/contributors/LOGIN/merged.svg   (and rank.svg): the owner-wide board
    /badges/OWNER/REPO/health/active.svg               people with a contribution in the last 30 days
    /badges/OWNER/REPO/health/first-response.svg       median time to a first response, last 30 days
    any of them with ?lang=zh (else the reader's Accept-Language, else English)

`orgs` cannot be an account's name (github.com/orgs/... is GitHub's own address), so the owner-wide
addresses never hide a repository's. A badge is pasted into a README anywhere and fetched by anyone
(GitHub's image proxy among them), so it shows only what an anonymous visitor may see, whoever asks:
installed public repositories and the public part of an owner; it never asks who the viewer is, which
is also what lets shared caches keep it (`Cache-Control: public`, a strong ETag of the bytes, 304 on
If-None-Match). A private, unknown or unlisted repository, or an address that is no badge, answers a
grey "not found" badge with 404 and no figure at all. Someone off the leaderboards by their own choice
gets a neutral "opted out" badge, never their figures. The figures are the read models' own
(readmodels.leaderboard.standing, readmodels.overview, readmodels.insights): no GitHub request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Response, current_app, request, url_for
from flask.blueprints import BlueprintSetupState
from sqlalchemy.engine import Engine

import catalogs
from readmodels import overview
from readmodels.insights import first_response
from readmodels.leaderboard import NotVisible, resolve, standing
from readmodels.stats import compact
from services import Services
from storage.windows import WINDOWS
from web import shell, signin
from web.badge_svg import Badge, render
from web.pages import NAMES

bp = Blueprint("badges", __name__, url_prefix="/badges")

CACHE_CONTROL = "public, max-age=300"
DEFAULT_WINDOWS = {"merged": "all", "rank": "30d"}
HEALTH_DAYS = 30  # the overview's and the leaderboard's 30-day window
MAX_LOGIN = 255  # the contributors table's column
FAST, SLOW = 24.0, 72.0  # hours to a first response shown green, yellow, then orange
LOGIN_PLACEHOLDER = "LOGIN"


class Refused(Exception):
    """No badge for this address: its status and the value shown (a message key), never a figure."""

    def __init__(self, status: int, key: str):
        super().__init__(key)
        self.status, self.key = status, key


def _engine() -> Engine:
    services: Services = current_app.extensions["engage"]
    return services.store.engine


@bp.record_once
def _shell(state: BlueprintSetupState) -> None:
    shell.init_app(state.app)


# --- answering


def answer(badge: Badge, status: int = 200) -> Response:
    """The SVG with its caching headers; a 200 answers 304 when the reader holds these very bytes."""
    body = render(badge, shell.html_lang(shell.language()[0])).encode()
    response = Response(body, status=status, mimetype="image/svg+xml")
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.vary.add("Accept-Language")  # unless ?lang= says, the reader's language chooses the words
    response.set_etag(hashlib.sha256(body).hexdigest()[:40])
    if status == 200:
        response.make_conditional(request)
    return response


@bp.errorhandler(Refused)
def _refused(refused: Refused) -> Response:
    t = shell.Translator()
    title = t("badge.not_found_title") if refused.status == 404 else t(f"{refused.key}_title", choices=_choices())
    return answer(Badge(t("badge.label"), t(refused.key), "lightgrey", title), refused.status)


def _choices() -> str:
    return ", ".join(WINDOWS)


def _owner(owner: str, name: str | None = None) -> tuple[str | None, str | None]:
    """(repo, org) as the read models take them, or Refused for a name GitHub cannot have."""
    if name is None:
        if not NAMES["org"].fullmatch(owner):
            raise Refused(404, "badge.not_found")
        return None, owner
    full_name = f"{owner}/{name}"
    if not NAMES["repo"].fullmatch(full_name):
        raise Refused(404, "badge.not_found")
    return full_name, None


def _window(metric: str) -> str:
    window = (request.args.get("window") or "").strip() or DEFAULT_WINDOWS[metric]
    if window not in WINDOWS:
        raise Refused(400, "badge.bad_window")
    return window


# --- a contributor's badges


@bp.get("/<owner>/<name>/contributors/<login>/<any(merged, rank):metric>.svg")
def repository_contributor(owner: str, name: str, login: str, metric: str) -> Response:
    return _contributor(*_owner(owner, name), login, metric)


@bp.get("/orgs/<owner>/contributors/<login>/<any(merged, rank):metric>.svg")
def owner_contributor(owner: str, login: str, metric: str) -> Response:
    return _contributor(*_owner(owner), login, metric)


def _contributor(repo: str | None, org: str | None, login: str, metric: str) -> Response:
    if not login.strip() or len(login) > MAX_LOGIN or "\x00" in login:
        raise Refused(404, "badge.not_found")
    window = _window(metric)
    try:
        place = standing(_engine(), login, repo=repo, org=org, window=window)
    except NotVisible:
        raise Refused(404, "badge.not_found") from None
    return answer(contributor_badge(metric, place, shell.Translator()))


def contributor_badge(metric: str, place: Mapping[str, Any], t: shell.Translator) -> Badge:
    """What a contributor's badge says, from `standing()`: figures only for someone on the board."""
    window = t.window(place["window"])
    label = (
        t(f"badge.{metric}")
        if place["window"] == "all"
        else t("badge.windowed", label=t(f"badge.{metric}"), window=window)
    )
    fields = {"login": place["login"], "name": place["repo"], "window": window}
    if place["opted_out"]:
        return Badge(label, t("badge.opted_out"), "lightgrey", t("badge.opted_out_title", **fields))
    if not place["shown"]:
        return Badge(label, t("badge.not_shown"), "lightgrey", t("badge.not_shown_title", **fields))
    if metric == "merged":
        merged = place["counts"]["merged"]
        return Badge(label, str(merged), "blue", t("badge.merged_title", count=merged, **fields))
    if place["rank"] is None:
        return Badge(label, t("badge.unranked"), "lightgrey", t("badge.unranked_title", **fields))
    rank, total, points = place["rank"], place["total"], place["points"]
    value = t("badge.rank_value", rank=rank, total=total)
    return Badge(label, value, "blue", t("badge.rank_title", rank=rank, total=total, points=points, **fields))


# --- a repository's health


@bp.get("/<owner>/<name>/health/<any(active, 'first-response'):metric>.svg")
def health(owner: str, name: str, metric: str) -> Response:
    repo, _ = _owner(owner, name)
    assert repo is not None
    t = shell.Translator()
    try:
        if metric == "active":
            shown, active = overview.active_contributors(_engine(), repo)
            return answer(active_badge(shown, active, t))
        return answer(first_response_badge(first_response(_engine(), repo, days=HEALTH_DAYS), t))
    except NotVisible:
        raise Refused(404, "badge.not_found") from None


def active_badge(name: str, active: int, t: shell.Translator) -> Badge:
    color = "brightgreen" if active else "lightgrey"
    return Badge(t("badge.active"), str(active), color, t("badge.active_title", name=name, count=active))


def duration(hours: float, t: shell.Translator) -> str:
    """A wait as people say it: minutes under an hour, hours under two days, days beyond."""
    if hours < 1:
        return t("badge.minutes", n=max(1, round(hours * 60)))
    if hours < 48:
        return t("badge.hours", n=compact(round(hours, 1)))
    return t("badge.days", n=compact(round(hours / 24, 1)))


def first_response_badge(data: Mapping[str, Any], t: shell.Translator) -> Badge:
    label, hours = t("badge.first_response"), data["median_hours"]
    if hours is None:
        return Badge(label, t("badge.no_data"), "lightgrey", t("badge.first_response_none_title", name=data["repo"]))
    color = "brightgreen" if hours <= FAST else "yellow" if hours <= SLOW else "orange"
    value = duration(float(hours), t)
    title = t("badge.first_response_title", name=data["repo"], value=value, answered=data["answered"])
    return Badge(label, value, color, title)


@bp.get("/<path:anything>")
def unknown(anything: str) -> Response:
    """Any other address under /badges: a badge still (a README shows it), saying there is none."""
    raise Refused(404, "badge.not_found")


# --- the Markdown to paste (templates/badges_section.html, on the leaderboard page)


@bp.app_context_processor
def _template_helpers() -> dict[str, Callable[..., Any]]:
    return {"badge_snippets": snippets}


def snippets(board: Mapping[str, Any]) -> dict[str, Any] | None:
    """The badges a leaderboard page offers, each with its address and the Markdown to paste (for the
    signed-in viewer's own login, else a placeholder), or None for a board no anonymous visitor sees (a
    private repository shown to a signed-in viewer): its badges would only say "not found"."""
    repo = board["repo"] if board["scope"] == "repository" else None
    org = None if repo else board["repo"]
    with _engine().connect() as conn:
        try:
            resolve(conn, repo, org)  # as the badge itself will: public data only
        except NotVisible:
            return None
    t = shell.Translator()
    lang = shell.language()[0]
    params: dict[str, Any] = {} if lang == catalogs.DEFAULT else {"lang": lang}
    login = signin.viewer().login or LOGIN_PLACEHOLDER
    if repo:
        owner, name = repo.split("/", 1)
        where: dict[str, str] = {"owner": owner, "name": name}
        contributor_endpoint, board_link = "badges.repository_contributor", {"repo": repo}
    else:
        where, contributor_endpoint, board_link = {"owner": board["repo"]}, "badges.owner_contributor", {"org": org}

    def offered(kind: str, title: str, target: str, endpoint: str, /, **values: Any) -> dict[str, str]:
        """`path` for the page's own preview, `src` (absolute) for a README anywhere."""
        src = url_for(endpoint, _external=True, **values, **params)
        path = url_for(endpoint, **values, **params)
        return {"kind": kind, "name": title, "path": path, "src": src, "markdown": f"[![{title}]({src})]({target})"}

    leaderboard = url_for("pages.leaderboard", _external=True, **board_link)
    badges = [
        offered(
            "contributor", t(f"badge.{metric}"), leaderboard, contributor_endpoint, login=login, metric=metric, **where
        )
        for metric in ("merged", "rank")
    ]
    if repo:
        insights = url_for("pages.insights", repo=repo, _external=True)
        badges += [
            offered("health", t(f"badge.{key}"), insights, "badges.health", metric=metric, **where)
            for metric, key in (("active", "active"), ("first-response", "first_response"))
        ]
    return {"login": login, "windows": _choices(), "badges": badges}
