"""The weekly digest: what one complete ISO week (UTC) brought a repository or an owner's listed
repositories, as a `Digest` value (`build`), and that value as text (`render`, a pure function).

Posting it (destinations, schedule, once per period) is another module's job; it takes the text from
here, so `flask --app app digest OWNER[/REPO] --preview` prints exactly what would be posted. The
figures are the insights' own (`readmodels.insights.report`), so the digest and the insights page never
disagree; people off the leaderboard (opted out, or excluded by its settings) are counted but never
named, and nobody is @-mentioned: a digest must not ping everyone it names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

import catalogs
from domain import contributions as kinds
from engagement.common.templates import inline_code
from engagement.good_first_issues.claims import step_intent_prefix
from engagement.good_first_issues.decide import RELEASE
from engagement.leaderboard import LeaderboardConfig, settings_of
from readmodels.events import Running, running
from readmodels.insights import report, scope_repositories
from readmodels.leaderboard import POINT_COLUMNS, _hidden, formula, resolve
from readmodels.stats import compact, iso_week_start, summarise
from readmodels.waiting import past_slo
from storage.db import (
    actor_days,
    contributions,
    contributors,
    good_first_issues,
    intents,
    repositories,
    scope_members,
    unindexed,
)
from storage.good_first_issues import FREE_FOR_NEWCOMERS
from storage.ledger import scoring_in

BASELINE_WEEKS = 12  # the change of each figure is against the mean of this many complete weeks before
TOP = 5
# Headline figures in the order the digest shows them: an insights series, its unit (as in
# readmodels.insights.SERIES) and its message (a count's singular beside it, key + ".one").
FIGURES = {
    "active_contributors": ("count", "digest.figure.active_contributors", "digest.figure.active_contributors.one"),
    "new_contributors": ("count", "digest.figure.new_contributors", "digest.figure.new_contributors.one"),
    "prs_merged": ("count", "digest.figure.prs_merged", "digest.figure.prs_merged.one"),
    "first_response_issues_hours": ("hours", "digest.figure.first_response_issues_hours", ""),
    "first_response_pulls_hours": ("hours", "digest.figure.first_response_pulls_hours", ""),
    "pr_acceptance": ("ratio", "digest.figure.pr_acceptance", ""),
    "satisfaction": ("ratio", "digest.figure.satisfaction", ""),
}
LANGUAGES = ("en", "zh")
_ISO_WEEK = re.compile(r"(\d{4})-W(\d{2})")


class BadWeek(ValueError):
    """Not an ISO week (YYYY-Www), or one that has not ended yet: a digest covers a whole week."""


@dataclass(frozen=True)
class Figure:
    name: str  # an insights series: active_contributors, pr_acceptance, ...
    unit: str  # count | hours | ratio
    value: float | None  # None: nothing to measure that week (no pull request closed, ...)
    mean: float | None  # of the BASELINE_WEEKS complete weeks before, over those with a value
    anomaly: bool  # the insights call this week an anomaly (over it and the weeks before)

    @property
    def change(self) -> float | None:
        return None if self.value is None or self.mean is None else round(self.value - self.mean, 4)


@dataclass(frozen=True)
class FirstMerge:
    login: str
    repository: str
    number: int
    url: str


@dataclass(frozen=True)
class TopContributor:
    login: str
    points: int


@dataclass(frozen=True)
class Waiting:
    """An issue or pull request still waiting for a first human response past the response SLO."""

    repository: str
    number: int
    title: str
    url: str
    author: str
    newcomer: bool
    age_hours: float


@dataclass(frozen=True)
class Digest:
    name: str  # owner/name, or the owner
    scope: str  # repo:<id> | org:<owner>
    week: date  # its Monday (UTC)
    newcomers: tuple[str, ...]  # logins, by their first contribution; named ones only
    unnamed_newcomers: int  # newcomers off the leaderboard: counted, not named
    first_merges: tuple[FirstMerge, ...]
    top_contributors: tuple[TopContributor, ...]  # empty when the scope's leaderboard is turned off
    figures: tuple[Figure, ...]
    good_first_issues_open: int  # now: free for a newcomer to take
    good_first_issues_claimed: int  # now: held with /claim
    good_first_issues_released: int = 0  # claims released that week for want of activity (the claims task)
    # Past the response watch's deadline at the week's end and still unanswered (readmodels/waiting.py).
    waiting_for_response: tuple[Waiting, ...] = field(default=())
    # Events covering the scope that run when the digest is made (readmodels/events.py): a line each.
    events: tuple[Running, ...] = field(default=())

    @property
    def iso_week(self) -> str:
        year, number, _ = self.week.isocalendar()
        return f"{year}-W{number:02d}"


def parse_week(text: str) -> date:
    """The Monday of an ISO week written `2026-W48`."""
    match = _ISO_WEEK.fullmatch(text.strip())
    if not match:
        raise BadWeek(f"{text!r} is not an ISO week: write it as YYYY-Www, e.g. 2026-W48")
    try:
        return date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError:
        raise BadWeek(f"{text} does not exist: {match[1]} has no week {match[2]}") from None


def digest_week(week: date | None, today: date) -> date:
    """The week a digest covers: `week` (any day of it), or by default the last complete one; a week
    that has not ended by `today` is refused (its part-week would read as a slump)."""
    monday = iso_week_start(week) if week else iso_week_start(today) - timedelta(weeks=1)
    if monday + timedelta(weeks=1) > today:
        year, number, _ = monday.isocalendar()
        sunday = monday + timedelta(days=6)
        raise BadWeek(f"{year}-W{number:02d} has not ended (it runs until Sunday {sunday} UTC): choose a past week")
    return monday


def build(
    engine: Engine,
    repo: str | None = None,
    org: str | None = None,
    week: date | None = None,
    today: date | None = None,
    at: datetime | None = None,
) -> Digest:
    """The digest of a repository the pages list (`owner/name`) or an owner's listed repositories together
    (`org`) for one complete ISO week, with the events running `at` (default: now, or `today`'s start);
    raises leaderboard.NotVisible, BadWeek."""
    if at is None:
        at = datetime.now(UTC) if today is None else datetime.combine(today, datetime.min.time())
    at = at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at
    today = today or datetime.now(UTC).date()
    monday = digest_week(week, today)
    start, end = (datetime.combine(day, datetime.min.time()) for day in (monday, monday + timedelta(weeks=1)))
    # The baseline weeks, the digest week, and the next one (which the insights leave out as running).
    insights = report(engine, repo, weeks=BASELINE_WEEKS + 2, today=monday + timedelta(weeks=1), org=org)
    with engine.connect() as conn:
        scope, name = resolve(conn, repo, org)
        repo_ids = scope_repositories(conn, scope)
        settings = settings_of(scoring_in(conn, scope))
        hidden = set(_hidden(conn, settings))
        newcomers = _newcomers(conn, scope, start, end)
        first_merges = _first_merges(conn, repo_ids, start, end)
        top = _top(conn, repo_ids, settings, hidden, monday) if settings.enabled else []
        claimed, free = _good_first_issues(conn, repo_ids)
        released = _released(conn, repo_ids, start, end)
        waiting = past_slo(conn, repo_ids, min(end, datetime.now(UTC).replace(tzinfo=None)))
        events = running(conn, repo_ids, at)
    return Digest(
        name=name,
        scope=scope,
        week=monday,
        newcomers=tuple(login for actor_id, login in newcomers if actor_id not in hidden),
        unnamed_newcomers=sum(actor_id in hidden for actor_id, _ in newcomers),
        first_merges=tuple(merge for actor_id, merge in first_merges if actor_id not in hidden),
        top_contributors=tuple(top),
        figures=tuple(_figure(name, unit, insights) for name, (unit, *_) in FIGURES.items()),
        good_first_issues_open=free,
        good_first_issues_claimed=claimed,
        good_first_issues_released=released,
        waiting_for_response=tuple(
            Waiting(
                w.item.repository,
                w.item.number,
                w.item.title,
                w.item.html_url,
                w.item.author,
                w.item.newcomer,
                w.age_hours,
            )
            for w in waiting
        ),
        events=tuple(events),
    )


def _figure(name: str, unit: str, insights: dict[str, object]) -> Figure:
    series = insights["series"][name]  # type: ignore[index]
    values = series["values"]
    return Figure(
        name=name,
        unit=unit,
        value=values[BASELINE_WEEKS],
        mean=summarise(values[:BASELINE_WEEKS]).mean,
        anomaly=insights["weeks"][BASELINE_WEEKS] in series["anomalies"],  # type: ignore[index]
    )


def _newcomers(conn: Connection, scope: str, start: datetime, end: datetime) -> list[tuple[int, str]]:
    """(id, login) of people whose first contribution to the scope fell in [start, end), first come first."""
    m, c = scope_members.c, contributors.c
    query = (
        sa.select(m.actor_id, c.login)
        .join(contributors, c.id == m.actor_id)
        .where(m.scope == scope, m.first_at >= start, m.first_at < end)
        .order_by(m.first_at, c.login)
    )
    return [(int(actor_id), str(login)) for actor_id, login in conn.execute(query)]


def _first_merges(
    conn: Connection, repo_ids: list[int], start: datetime, end: datetime
) -> list[tuple[int, FirstMerge]]:
    """Pull requests merged in [start, end) whose author had no earlier merge in the scope's repositories."""
    c, earlier = contributions.c, contributions.alias("earlier").c
    # Unindexed: through ix_contributions_repo_time, SQLite took 141 s owner-wide on the 1M-contribution ledger
    # (bench/README.md), where ix_contributions_repo_actor finds the author's merges directly.
    merged_before = unindexed(earlier.occurred_at < c.occurred_at)
    before = (
        sa.select(earlier.id)
        .where(earlier.kind == kinds.PR_MERGED, earlier.repo_id.in_(repo_ids))
        .where(earlier.actor_id == c.actor_id, merged_before)
    )
    query = (
        sa.select(c.actor_id, contributors.c.login, repositories.c.full_name, c.number, c.url)
        .join(contributors, contributors.c.id == c.actor_id)
        .join(repositories, repositories.c.id == c.repo_id)
        .where(c.kind == kinds.PR_MERGED, c.repo_id.in_(repo_ids), c.occurred_at >= start, c.occurred_at < end)
        .where(~sa.exists(before))
        .order_by(c.occurred_at, c.id)
    )
    return [
        (int(row.actor_id), FirstMerge(str(row.login), str(row.full_name), int(row.number or 0), str(row.url or "")))
        for row in conn.execute(query)
    ]


def _top(
    conn: Connection, repo_ids: list[int], settings: LeaderboardConfig, hidden: set[int], monday: date
) -> list[TopContributor]:
    """The week's highest scorers under the scope's formula (ties by login), people off the board left out."""
    d = actor_days.c
    weights = formula(settings)["points"]
    points = sum(
        (sa.literal(int(weights[kind])) * sa.func.sum(d[column]) for kind, column in POINT_COLUMNS.items()),
        sa.literal(0),
    ).label("points")
    query = (
        sa.select(d.actor_id, points)
        .where(d.repo_id.in_(repo_ids), d.day >= monday, d.day <= monday + timedelta(days=6))
        .where(d.actor_id.notin_(hidden) if hidden else sa.true())
        .group_by(d.actor_id)
    )
    scores = {int(actor_id): int(score) for actor_id, score in conn.execute(query) if int(score or 0) > 0}
    names = sa.select(contributors.c.id, contributors.c.login).where(contributors.c.id.in_(list(scores)))
    logins = {int(actor_id): str(login) for actor_id, login in conn.execute(names)}
    ranked = sorted(scores, key=lambda actor_id: (-scores[actor_id], logins.get(actor_id, "").lower()))
    return [TopContributor(logins.get(actor_id, ""), scores[actor_id]) for actor_id in ranked[:TOP]]


def _released(conn: Connection, repo_ids: list[int], start: datetime, end: datetime) -> int:
    """Claims the claims task released in the week: each release is an intent, begun when it was made."""
    if not repo_ids:
        return 0
    i = intents.c
    started = sa.or_(*(i.key.like(f"{step_intent_prefix(RELEASE, repo_id)}%") for repo_id in repo_ids))
    query = sa.select(sa.func.count()).where(started, i.created_at >= start, i.created_at < end, i.done_at.is_not(None))
    return int(conn.execute(query).scalar_one())


def _good_first_issues(conn: Connection, repo_ids: list[int]) -> tuple[int, int]:
    """(claimed, free for newcomers) good first issues open now in the repositories."""
    g = good_first_issues.c
    claimed = sa.func.sum(sa.case((sa.and_(g.labelled == sa.true(), g.claimant.is_not(None)), 1), else_=0))
    free = sa.func.sum(sa.case((sa.and_(*FREE_FOR_NEWCOMERS), 1), else_=0))
    row = conn.execute(sa.select(claimed, free).where(g.repo_id.in_(repo_ids), g.state == "open")).one()
    return int(row[0] or 0), int(row[1] or 0)


# --- rendering


@dataclass(frozen=True)
class Style:
    """How text is marked up for a destination: GitHub's Markdown (MARKDOWN) or a chat's plain text (PLAIN)."""

    escape: Callable[[str], str]  # the catalog's own words
    code: Callable[[str], str]  # someone else's text (a login, a title): inert, never a mention
    heading: Callable[[str], str]
    link: Callable[[str, str], str]  # (text already styled, url)
    item: Callable[[str], str]


def _markdown_link(text: str, url: str) -> str:
    return f"[{text}]({url})" if url.startswith("https://") and not re.search(r"[\s()<>]", url) else text


MARKDOWN = Style(
    escape=lambda text: text,
    code=inline_code,
    heading=lambda text: f"### {text}",
    link=_markdown_link,
    item=lambda text: f"- {text}",
)


def _plain_link(text: str, url: str) -> str:
    return f"{text} ({url})" if url.startswith("https://") else text


# For chat destinations, which take plain text and escape it themselves (Telegram's HTML mode). Chat
# apps turn `@name` into a mention, so a word joiner after each `@` keeps others' text inert.
PLAIN = Style(
    escape=lambda text: text,
    code=lambda text: text.replace("@", "@\u2060"),
    heading=lambda text: text,
    link=_plain_link,
    item=lambda text: f"• {text}",
)


def render(digest: Digest, lang: str = "en", style: Style = MARKDOWN) -> str:
    """The digest as posted: in `lang` (en, zh, or `both`: English then Chinese), in `style`'s markup."""
    if lang == "both":
        return "\n---\n\n".join(render(digest, one, style) for one in LANGUAGES)  # each ends with a newline
    if lang not in catalogs.languages(catalogs.BOT):
        raise ValueError(f"no bot catalog for {lang!r}")

    def say(key: str, **fields: str) -> str:
        return style.escape(catalogs.text(lang, key)).format(**fields)

    sunday = digest.week + timedelta(days=6)
    lines = [
        style.heading(
            say(
                "digest.title",
                name=style.code(digest.name),
                week=digest.iso_week,
                first=str(digest.week),
                last=str(sunday),
            )
        ),
        "",
        style.heading(say("digest.newcomers.heading")),
        _names(digest.newcomers, digest.unnamed_newcomers, say, style) or say("digest.newcomers.none"),
        "",
        style.heading(say("digest.first_merges.heading")),
    ]
    lines += [
        style.item(
            say(
                "digest.first_merges.item",
                login=style.code(m.login),
                pull=style.link(f"{m.repository}#{m.number}", m.url),
            )
        )
        for m in digest.first_merges
    ] or [say("digest.first_merges.none")]
    if digest.top_contributors:
        lines += ["", style.heading(say("digest.top.heading"))]
        lines += [
            style.item(say("digest.top.item", login=style.code(top.login), points=str(top.points)))
            for top in digest.top_contributors
        ]
    if digest.events:
        lines += ["", style.heading(say("digest.events.heading"))]
        lines += [
            style.item(
                say(
                    "digest.events.item",
                    name=style.code(event.name),
                    end=event.ends,
                    timezone=event.timezone,
                    participants=str(event.participants),
                    newcomers=str(event.newcomers),
                )
            )
            for event in digest.events
        ]
    lines += ["", style.heading(say("digest.health.heading"))]
    lines += [style.item(_figure_text(figure, say)) for figure in digest.figures]
    if digest.waiting_for_response:
        lines += ["", style.heading(say("digest.waiting.heading"))]
        lines += [
            style.item(
                say(
                    "digest.waiting.item",
                    item=style.link(f"{w.repository}#{w.number}", w.url),
                    title=style.code(w.title),
                    author=style.code(w.author),
                    hours=_shown(w.age_hours, "hours", say),
                )
            )
            for w in digest.waiting_for_response
        ]
    lines += [
        "",
        style.heading(say("digest.good_first_issues.heading")),
        say(
            "digest.good_first_issues.counts",
            open=str(digest.good_first_issues_open),
            claimed=str(digest.good_first_issues_claimed),
            released=str(digest.good_first_issues_released),
        ),
        "",
        say("digest.footer", weeks=str(BASELINE_WEEKS)),
    ]
    return "\n".join(lines) + "\n"


def _names(logins: Sequence[str], unnamed: int, say: Callable[..., str], style: Style) -> str:
    names = say("digest.separator").join(style.code(login) for login in logins)
    if unnamed and names:
        return say("digest.names_and_more", names=names, n=str(unnamed))
    return names or (say("digest.unnamed_only", n=str(unnamed)) if unnamed else "")


def _figure_text(figure: Figure, say: Callable[..., str]) -> str:
    """'12 active contributors (+3 vs the 12-week mean of 9; unusually high)'."""
    _, plural, singular = FIGURES[figure.name]
    key = singular if singular and figure.value == 1 else plural
    if figure.value is None:
        return say("digest.figure_line", figure=say(key, value="—"), notes=say("digest.no_data"))
    value = _shown(figure.value, figure.unit, say)
    notes = []
    if figure.mean is None or figure.change is None:
        notes.append(say("digest.no_baseline"))
    else:
        change = _shown(figure.change, figure.unit, say)
        signed = change if figure.change < 0 else ("±" if figure.change == 0 else "+") + change
        notes.append(
            say("digest.change", change=signed, mean=_shown(figure.mean, figure.unit, say), weeks=str(BASELINE_WEEKS))
        )
    if figure.anomaly and figure.change:
        notes.append(say("digest.anomaly.high" if figure.change > 0 else "digest.anomaly.low"))
    return say("digest.figure_line", figure=say(key, value=value), notes=say("digest.note_separator").join(notes))


def _shown(value: float, unit: str, say: Callable[..., str]) -> str:
    """As the pages show figures: at most two decimals, ratios as percentages, hours with their unit."""
    if unit == "ratio":
        return f"{compact(value * 100)}%"
    if unit == "hours":
        return say("digest.hours", n=compact(value))
    return compact(value)
