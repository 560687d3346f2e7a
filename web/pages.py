"""The public pages: overview, leaderboard, insights and good first issues, with their JSON and CSV.

Anyone may read them and nobody logs in, so they show only what an anonymous visitor may see: installed
public repositories and the owner-wide totals of public repositories. A private repository answers
exactly like one that does not exist (the same 404 and the same words), so the pages never tell
whether it is there. The HTML is rendered on the server and works without JavaScript (switchers are
links and GET forms); it loads nothing from elsewhere, which the Content-Security-Policy enforces.
The JSON endpoints answer with what `board()` and `report()` return, unchanged, so the page, the JSON
and the CSV cannot disagree.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request
from flask.blueprints import BlueprintSetupState
from markupsafe import Markup
from sqlalchemy.engine import Engine

from engagement.digest import history as digest_history
from readmodels import overview as overview_data
from readmodels.insights import ALL_PLATFORMS, MAX_WEEKS, PLATFORMS, SERIES_PLATFORMS, UnknownPlatform, report
from readmodels.leaderboard import NotVisible, board, resolve
from readmodels.stats import compact
from readmodels.waiting import queue as waiting_queue
from services import Services
from storage.db import utcnow
from storage.good_first_issues import GoodFirstIssueStore
from storage.windows import WINDOWS
from web import shell, signin
from web.charts import bar_chart, line_chart

bp = Blueprint("pages", __name__)

PAGE_LIMIT = 100  # leaderboard rows on the page; the CSV has everyone, the JSON takes `limit`
API_LIMIT = 100
SPANS = (4, 12, 26, 52)
# Narrower than the charts' default: drawn in a half-width card, the labels keep a readable size.
CHART_WIDTH, CHART_HEIGHT = 540, 210
DEFAULT_WINDOW = "30d"
DEFAULT_WEEKS = 12
GOOD_FIRST_ISSUES_SHOWN = 200
# Spreadsheets run a cell starting with one of these as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NOT_FOUND_JSON = "not found: no public repository or owner by that name"
# GitHub's name rules: an account (user or organisation) is letters, digits and hyphens (managed users
# add an underscore), at most 39 characters; a repository name is letters, digits, '.', '-' and '_'.
OWNER_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,38}"
NAMES = {"org": re.compile(OWNER_NAME), "repo": re.compile(rf"{OWNER_NAME}/[A-Za-z0-9._-]{{1,100}}")}


class Problem(Exception):
    """A request the pages cannot answer: its status and the words (a message key) for it."""

    def __init__(self, status: int, key: str, **fields: Any):
        super().__init__(key)
        self.status, self.key, self.fields = status, key, fields


def _engine() -> Engine:
    services: Services = current_app.extensions["engage"]
    return services.store.engine


# --- language, links and the layout (web/shell.py)


def _readable() -> frozenset[int]:
    """Private repositories this viewer may read (none for anonymous visitors): web.signin decides."""
    return signin.viewer().readable


@bp.record_once
def _shell(state: BlueprintSetupState) -> None:
    shell.init_app(state.app)


@bp.context_processor
def _template_helpers() -> dict[str, Any]:
    return {**shell.template_helpers(), **_install_links()}


def _install_links() -> dict[str, str | None]:
    """Where an empty page sends people to install the App: its install page when APP_SLUG names it,
    else the list of their registered Apps on GitHub (the App's registration, with its Install button)."""
    settings = current_app.extensions["engage"].settings
    slug = settings.app_slug
    return {
        "install_url": f"{settings.github_url}/apps/{quote(slug)}/installations/new" if slug else None,
        "registration_url": f"{settings.github_url}/settings/apps",
    }


@bp.after_request
def _vary_by_language(response: Response) -> Response:
    # The security headers (the policy that forbids scripts and other origins) are web/security.py's.
    response.vary.add("Accept-Language")
    return response


@bp.errorhandler(Problem)
def _problem(problem: Problem) -> tuple[Any, int]:
    t = shell.Translator()
    if request.path.startswith("/api/") or request.path.endswith(".csv"):
        message = NOT_FOUND_JSON if problem.status == 404 else shell.english(problem.key, **problem.fields)
        return jsonify({"error": message}), problem.status
    title = t("error.not_found") if problem.status == 404 else t("error.bad_request")
    page = render_template("error.html", status=problem.status, title=title, message=t(problem.key, **problem.fields))
    return page, problem.status


# --- reading the query


def _text(name: str) -> str | None:
    value = (request.args.get(name) or "").strip()
    return value or None


def _name(kind: str, value: str | None = None) -> str | None:
    """The repository (`repo`: OWNER/NAME) or owner (`org`) the query names, or None. A name GitHub
    cannot have (a NUL byte, which PostgreSQL refuses in text) is nowhere here: 404, on every database."""
    value = _text(kind) if value is None else value
    if value is not None and not NAMES[kind].fullmatch(value):
        raise Problem(404, "error.not_found_text")
    return value


def _integer(name: str, default: int, problem: str, **fields: Any) -> int:
    raw = _text(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,6}", raw):
        raise Problem(400, problem, **fields)
    return int(raw)


def _window() -> str:
    window = _text("window") or DEFAULT_WINDOW
    if window not in WINDOWS:
        raise Problem(400, "error.bad_window", choices=", ".join(WINDOWS))
    return window


def _weeks() -> int:
    weeks = _integer("weeks", DEFAULT_WEEKS, "error.bad_weeks", max=MAX_WEEKS)
    if not 1 <= weeks <= MAX_WEEKS:
        raise Problem(400, "error.bad_weeks", max=MAX_WEEKS)
    return weeks


def _board(repo: str | None, org: str | None, window: str, limit: int | None) -> dict[str, Any]:
    try:
        github_url = current_app.extensions["engage"].settings.github_url
        return board(
            _engine(), repo=repo, org=org, window=window, limit=limit, readable=_readable(), github_url=github_url
        )
    except NotVisible:
        raise Problem(404, "error.not_found_text") from None
    except ValueError:
        raise Problem(400, "error.bad_window", choices=", ".join(WINDOWS)) from None


def _platform() -> str:
    platform = _text("platform") or ALL_PLATFORMS
    if platform not in (ALL_PLATFORMS, *PLATFORMS):
        raise Problem(400, "error.bad_platform", choices=", ".join((ALL_PLATFORMS, *PLATFORMS)))
    return platform


def _report(repo: str | None, org: str | None, weeks: int, platform: str) -> dict[str, Any]:
    try:
        return report(_engine(), repo, weeks=weeks, org=None if repo else org, platform=platform, readable=_readable())
    except NotVisible:
        raise Problem(404, "error.not_found_text") from None
    except UnknownPlatform:  # a forum or chat asked of one repository
        raise Problem(400, "error.bad_platform", choices=f"{ALL_PLATFORMS}, github") from None
    except ValueError:
        raise Problem(400, "error.bad_weeks", max=MAX_WEEKS) from None


def _choices() -> dict[str, Any]:
    """What the switchers offer: installed public repositories and their owners."""
    repos = overview_data.visible_repositories(_engine(), _readable())
    return {"repositories": [r.full_name for r in repos], "owners": overview_data.owners(repos)}


# --- the overview


@bp.get("/")
def overview() -> str:
    """Installed public repositories with their last 30 days at a glance, grouped by owner."""
    groups: dict[str, list[overview_data.Summary]] = {}
    for summary in overview_data.summaries(_engine(), readable=_readable()):
        groups.setdefault(summary.repository.owner, []).append(summary)
    return render_template("overview.html", groups=groups)


# --- the leaderboard


@bp.get("/leaderboard")
def leaderboard() -> Any:
    scope = _text("scope")
    if scope is not None:
        # The switcher's one select names a repository ("repo:owner/name") or an owner ("org:owner").
        kind, _, name = scope.partition(":")
        if kind in NAMES and _name(kind, name):
            return redirect(
                shell.here(scope=None, repo=name if kind == "repo" else None, org=name if kind == "org" else None)
            )
        raise Problem(404, "error.not_found_text")
    repo, org, window = _name("repo"), _name("org"), _window()
    data = _board(repo, org, window, PAGE_LIMIT) if repo or org else None
    current = ""
    if data is not None:
        current = f"{'repo' if data['scope'] == 'repository' else 'org'}:{data['repo']}"
    return render_template(
        "leaderboard.html",
        board=data,
        formula=shell.Translator().formula(data["formula"]) if data else None,
        windows=list(WINDOWS),
        window=window,
        current=current,
        owner=data["repo"].split("/", 1)[0] if data else None,
        **_choices(),
    )


@bp.get("/api/leaderboard")
def leaderboard_json() -> Any:
    repo, org, window = _name("repo"), _name("org"), _window()
    limit = _integer("limit", API_LIMIT, "error.bad_limit")
    if not repo and not org:
        return jsonify({"error": "say which repository (repo=OWNER/NAME) or owner (org=OWNER)"}), 400
    return jsonify(_board(repo, org, window, limit))


@bp.get("/leaderboard.csv")
def leaderboard_csv() -> Any:
    repo, org, window = _name("repo"), _name("org"), _window()
    if not repo and not org:
        return jsonify({"error": "say which repository (repo=OWNER/NAME) or owner (org=OWNER)"}), 400
    data = _board(repo, org, window, None)
    filename = re.sub(r"[^A-Za-z0-9._-]+", "-", f"leaderboard-{data['repo']}-{window}") + ".csv"
    return Response(
        leaderboard_rows_csv(data),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def safe_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text: one that starts like a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def leaderboard_rows_csv(data: Mapping[str, Any]) -> str:
    """rank, login, points and a column per kind, one row per entry."""
    kinds: Sequence[str] = data["kinds"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["rank", "login", "points", *kinds])
    for entry in data["entries"]:
        row = [entry["rank"], entry["login"], entry["points"], *(entry["counts"][kind] for kind in kinds)]
        writer.writerow([safe_cell(cell) for cell in row])
    return out.getvalue()


# --- insights


@bp.get("/insights")
def insights() -> str:
    """A repository's weekly series, or an owner's with its forum and chats (`platform` chooses which)."""
    repo, org, weeks, platform = _name("repo"), _name("org"), _weeks(), _platform()
    data = _report(repo, org, weeks, platform) if repo or org else None
    return render_template(
        "insights.html",
        report=data,
        series=_series_views(data) if data else [],
        headline=_headline_views(data) if data else [],
        spans=SPANS if weeks in SPANS else sorted({*SPANS, weeks}),
        weeks=weeks,
        platforms=(ALL_PLATFORMS, *PLATFORMS),
        **_choices(),
    )


@bp.get("/api/insights")
def insights_json() -> Any:
    repo, org, weeks, platform = _name("repo"), _name("org"), _weeks(), _platform()
    if not repo and not org:
        return jsonify({"error": "say which repository (repo=OWNER/NAME) or owner (org=OWNER)"}), 400
    return jsonify(_report(repo, org, weeks, platform))


def shown_value(value: float | None, unit: str) -> float | None:
    """A value as charts and figures show it: ratios as percentages."""
    if value is None:
        return None
    return round(value * 100, 2) if unit == "ratio" else value


def figure(value: float | None, unit: str, t: shell.Translator, signed: bool = False) -> str:
    """A number for reading: at most two decimals, a percentage for ratios, hours with their unit."""
    shown = shown_value(value, unit)
    if shown is None:
        return "—"
    text = compact(shown)
    if signed and round(float(shown), 2) > 0:
        text = "+" + text
    suffix = t.unit(unit)
    if not suffix:
        return text
    return f"{text}{suffix}" if suffix == "%" else f"{text} {suffix}"


def _series_views(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each series of the platforms chosen, with its chart and its figures in the page's language."""
    t = shell.Translator()
    weeks: list[str] = data["weeks"]
    views = []
    for name, series in data["series"].items():
        if not set(SERIES_PLATFORMS[name]) & set(data["platforms"]):
            continue  # the JSON keeps its place (no data); the page has no use for an empty card
        unit = series["unit"]
        values = [shown_value(v, unit) for v in series["values"]]
        chart = bar_chart if unit == "count" else line_chart
        markup: Markup = chart(
            weeks,
            values,
            title=t.series(name),
            unit=t.unit(unit),
            mean=shown_value(series["mean"], unit),
            anomalies=[weeks.index(week) for week in series["anomalies"] if week in weeks],
            empty_text=t("insights.no_data"),
            partial=weeks.index(data["partial_week"]) if data.get("partial_week") in weeks else None,
            width=CHART_WIDTH,
            height=CHART_HEIGHT,
        )
        views.append(
            {
                "name": name,
                "data": series,
                "chart": markup,
                "mean": figure(series["mean"], unit, t),
                "stddev": figure(series["stddev"], unit, t),
                "slope": figure(series["slope"], unit, t, signed=True),
                "direction": series["direction"],
                "verdict": series["trend_verdict"],
            }
        )
    return views


def change_figure(change: float | None, unit: str, t: shell.Translator) -> str:
    """A week-on-week change: signed, in the series' unit; a ratio's in percentage points, not a percentage
    of itself."""
    if change is None or unit != "ratio":
        return figure(change, unit, t, signed=True)
    text = compact(round(change * 100, 2))
    return t("insights.points", n=("+" + text) if change > 0 else text)


def _headline_views(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The headline figures (readmodels.insights.headline) as the page words them."""
    t = shell.Translator()
    return [
        {
            **item,
            "shown": figure(item["value"], item["unit"], t),
            "previous_shown": figure(item["previous"], item["unit"], t),
            "change_shown": change_figure(item["change"], item["unit"], t),
        }
        for item in data["headline"]
    ]


# --- good first issues


@bp.get("/good-first-issues")
def good_first_issues() -> str:
    repo = _name("repo")
    choices = _choices()
    if repo is not None:
        known = {name.lower(): name for name in choices["repositories"]}
        if repo.lower() not in known:
            raise Problem(404, "error.not_found_text")
        repo = known[repo.lower()]
    issues = GoodFirstIssueStore(_engine()).open_in_listed_repositories(
        repo=repo, limit=GOOD_FIRST_ISSUES_SHOWN, readable=_readable()
    )
    now = utcnow()
    return render_template("good_first_issues.html", issues=issues, repo=repo, age=lambda at: age(at, now), **choices)


def age(opened_at: datetime | None, now: datetime) -> str:
    """How long ago an issue was opened, in whole days, in the page's language ("" when unknown)."""
    if opened_at is None:
        return ""
    t = shell.Translator()
    days = max(0, (now - opened_at).days)
    if days == 0:
        return t("gfi.opened_today")
    return t("gfi.opened_day") if days == 1 else t("gfi.opened_days", n=days)


# --- waiting for a first response


def _waiting() -> dict[str, Any]:
    try:
        return waiting_queue(_engine(), repo=_name("repo"), org=_name("org"), readable=_readable())
    except NotVisible:
        raise Problem(404, "error.not_found_text") from None


@bp.get("/waiting")
def waiting() -> str:
    """Newcomers' issues and pull requests nobody answered yet, oldest first (engagement/response_watch.py)."""
    data = _waiting()
    return render_template("waiting.html", queue=data, **_choices())


@bp.get("/api/waiting")
def waiting_json() -> Any:
    return jsonify(_waiting())


# --- past digests


@bp.get("/digests")
def digests() -> str:
    """The periods whose weekly digest went out for a listed repository or owner, newest first."""
    repo, org = _name("repo"), _name("org")
    data: dict[str, Any] = {"name": None, "periods": []}
    if repo or org:
        with _engine().connect() as conn:
            try:
                scope, data["name"] = resolve(conn, repo, None if repo else org, _readable())
            except NotVisible:
                raise Problem(404, "error.not_found_text") from None
        data["periods"] = digest_history(_engine(), scope)
    return render_template("digests.html", digests=data, **_choices())
