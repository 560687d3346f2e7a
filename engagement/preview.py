"""What will the bot say? A repository's effective configuration, where each value comes from, and every
message the bot posts, rendered with sample values by the behaviours' own functions.

The config page (`/config/OWNER/REPO`) and `flask --app app config check` both show this. Nothing here
writes anything: the configuration is loaded exactly as a delivery loads it (`config.for_event`, through
the app's copies of repository files), and each message goes through the behaviour's own `decide` and
`render`, so what is previewed cannot drift from what is posted. A message the configuration turns off
shows the behaviour's own reason instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast

import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from engagement import config_check, greeting, leaderboard, milestones, response_watch, thanks
from engagement import digest as digest_posting
from engagement.common import config as repo_config
from engagement.common.config import CONFIG_PATH, Problem, RepoConfig
from engagement.common.language import answer_in, detect
from engagement.good_first_issues import decide as gfi
from engagement.good_first_issues import messages as gfi_messages
from engagement.good_first_issues.actions import contributing_link
from engagement.good_first_issues.defaults import NAME as GFI
from engagement.good_first_issues.defaults import GoodFirstIssuesConfig
from githubapp.api import GitHub
from githubapp.errors import GitHubError
from githubapp.files import FILE_TTL_SECONDS
from readmodels import digest as digest_content
from storage.db import listed_on_pages, repositories
from storage.good_first_issues import GoodFirstIssue
from storage.watched_items import WatchedItem
from webhooks.context import Context, DeliveryLogger
from webhooks.event import Event

log = logging.getLogger(__name__)

REPOSITORY, ORGANISATION, FILE, DEFAULT = "repository", "organisation", "file", "default"

# The sample people and item every message is rendered for: a newcomer's first issue, number 1.
NEWCOMER, NUMBER = "new-contributor", 1
REVIEWERS = ("reviewer-one", "reviewer-two")
MAINTAINER, COMMENT_ID = "maintainer", 1
# What the sample newcomer writes, in each language the bot answers (`language: auto` follows it).
WRITTEN = {
    "en": ("The settings page crashes", "It crashes when I open the settings page."),
    "zh": ("设置页面崩溃", "打开设置页面时程序崩溃。"),
}
# A fixed moment, so that a preview is the same every time (a Monday, 09:00 UTC).
OPENED_AT = datetime(2026, 1, 5, 9, 0)


@dataclass(frozen=True)
class Setting:
    key: str  # dotted: greeting.language
    value: Any
    source: str  # REPOSITORY | ORGANISATION | FILE | DEFAULT


@dataclass(frozen=True)
class Rendered:
    """One message for a text written in `written_in`: the comment (in `language`), or why none is posted."""

    written_in: str  # the language of what the bot answers; "" when it answers no text
    language: str
    body: str | None
    reason: str = ""


@dataclass(frozen=True)
class Message:
    name: str  # the occasion, e.g. greeting.issue (a key of its own in the pages' catalog: config.when.<name>)
    behaviour: str
    rendered: tuple[Rendered, ...]


@dataclass(frozen=True)
class Preview:
    repo: str
    source: str  # the file read (OWNER/REPO/.github/engage.yml, OWNER/.github/..., a path) or "defaults"
    origin: str  # REPOSITORY | ORGANISATION | FILE | DEFAULT: whose file it is
    settings: tuple[Setting, ...]
    problems: tuple[Problem, ...]
    messages: tuple[Message, ...] = field(default=())


# --- where the configuration comes from


def origin_of(config: RepoConfig, repo: str) -> str:
    """Whose file the configuration is: the repository's, its organisation's `.github` repository's, or none."""
    if config.source == "defaults":
        return DEFAULT
    if config.source.lower() == f"{repo}/{CONFIG_PATH}".lower():
        return REPOSITORY
    owner = repo.split("/", 1)[0]
    if config.source.lower() == f"{owner}/.github/{CONFIG_PATH}".lower():
        return ORGANISATION
    return FILE


def settings_of(config: RepoConfig, origin: str) -> tuple[Setting, ...]:
    """Every value in effect, section by section, with its source: the file's when it set it (and it was
    taken), else the default."""

    def leaves(values: Mapping[str, Any], prefix: str) -> Iterator[Setting]:
        for key, value in values.items():
            path = f"{prefix}.{key}"
            if isinstance(value, dict):
                yield from leaves(value, path)
            else:
                yield Setting(path, value, origin if path in config.given else DEFAULT)

    return tuple(setting for name, section in config.sections.items() for setting in leaves(section, name))


# --- which repository, as the app knows it


@dataclass(frozen=True)
class Installed:
    """An installed repository as the app's database holds it."""

    id: int
    full_name: str
    html_url: str
    private: bool
    installation_id: int


def installed(engine: Engine, full_name: str, readable: Collection[int] | None = None) -> Installed | None:
    """The installed repository of that name (GitHub's names are case-insensitive). `readable`: only one
    the pages list to a viewer who may read those private repositories; None: any (the operator's CLI)."""
    r = repositories.c
    shown = listed_on_pages(readable) if readable is not None else r.installation_id.is_not(None)
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(r.id, r.full_name, r.html_url, r.private, r.installation_id)
            .where(shown, sa.func.lower(r.full_name) == full_name.lower())
            .order_by(r.updated_at.desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    return Installed(int(row.id), str(row.full_name), str(row.html_url), bool(row.private), int(row.installation_id))


def default_branch(services: Any, repo: Installed) -> str | None:
    """The repository's default branch, which the greeting's and the guide's file links name: kept in the
    shared cache like the files themselves (repos/get once per FILE_TTL_SECONDS), None when GitHub cannot say."""
    cache, key = services.github.cache, f"default-branch:{repo.full_name.lower()}"
    try:
        stored = cache.get(key)
    except redis.RedisError:
        stored = None
    if stored:
        return str(stored)
    try:
        data = services.github.installation(repo.installation_id).get(f"/repos/{repo.full_name}")
    except GitHubError as exc:  # the links then name `main`, as for a payload without the branch
        log.info("default branch unknown: %s", exc, extra={"repo": repo.full_name})
        return None
    branch = str(data.get("default_branch") or "") if isinstance(data, dict) else ""
    if branch:
        try:
            cache.set(key, branch, FILE_TTL_SECONDS)
        except redis.RedisError as exc:
            log.debug("cache unavailable: %s", exc)
    return branch or None


def preview_installed(services: Any, repo: Installed) -> Preview:
    """The preview of an installed repository: its configuration read as every delivery reads it (the
    default branch's `.github/engage.yml`, else the organisation's, through the app's copies)."""
    repository = {
        "id": repo.id,
        "full_name": repo.full_name,
        "html_url": repo.html_url or f"https://github.com/{repo.full_name}",
        "private": repo.private,
        "default_branch": default_branch(services, repo),
    }
    return for_repository(services, repository, repo.installation_id)


# --- the entry points


class _NoFiles:
    """GitHub for a file checked on its own: no repository, so it has no other file (links fall back)."""

    def can_spare(self, lookup: str) -> bool:
        return True

    def read_file(self, repo: str, path: str, ref: str | None = None) -> str | None:
        return None


def sample_repository(full_name: str) -> dict[str, Any]:
    return {"id": 0, "full_name": full_name, "html_url": f"https://github.com/{full_name}", "private": False}


def for_repository(services: Any, repository: Mapping[str, Any], installation_id: int) -> Preview:
    """The preview of an installed repository, its configuration read as a delivery reads it. `repository`
    is what a payload carries of it: id, full_name, html_url and default_branch (None: the default branch)."""
    ctx = _context(services, repository, installation_id, services.github.installation)
    config = repo_config.load(ctx.github, repository, services.configurable)
    ctx.shared["config"] = config
    return _preview(ctx, config, repository)


def for_text(services: Any, text: str, path: str, repo: str = "OWNER/REPO") -> Preview:
    """The preview of a configuration file that is not in a repository yet (`flask config check PATH`)."""
    repository = sample_repository(repo)
    ctx = _context(services, repository, 0, lambda _id: cast(GitHub, _NoFiles()))
    config = repo_config.parse(text, services.configurable, source=path)
    ctx.shared["config"] = config
    return _preview(ctx, config, repository)


def _context(services: Any, repository: Mapping[str, Any], installation_id: int, github: Any) -> Context:
    """What a handler would see for the sample event in this repository (as response_watch's pass builds it)."""
    payload = {"repository": dict(repository), "installation": {"id": installation_id}}
    fields = {"behaviour": "preview", "repo": repository["full_name"], "installation_id": installation_id}
    return Context(
        Event("preview", "preview", payload),
        DeliveryLogger(log, fields),
        services.stores,
        github,
        services.github.files,
        services.configurable,
        True,  # dry run: nothing a preview does may write
        {},
    )


def _preview(ctx: Context, config: RepoConfig, repository: Mapping[str, Any]) -> Preview:
    repo = str(repository["full_name"])
    origin = origin_of(config, repo)
    messages: list[Message] = []
    for build in (_greetings, _good_first_issues, _thanks, _milestones, _leaderboard, _response_watch, _digest):
        messages.extend(build(ctx, config, repository))
    messages.extend(_config_check(config))
    return Preview(repo, config.source, origin, settings_of(config, origin), config.problems, tuple(messages))


# --- each behaviour's messages, through its own decide and render


def _text(lang: str) -> str:
    title, body = WRITTEN[lang]
    return f"{title}\n{body}"


def _each_language(render: Callable[[str], tuple[str, str | None, str]]) -> tuple[Rendered, ...]:
    """`render(written_in)` -> (language, body or None, reason), once per language the sample is written in."""
    return tuple(Rendered(lang, *render(lang)) for lang in WRITTEN)


def _greetings(ctx: Context, config: RepoConfig, repository: Mapping[str, Any]) -> list[Message]:
    section = config.typed(greeting.GreetingConfig, greeting.NAME)
    links = greeting.links_for(ctx, repository, section)
    found = []
    for kind in greeting.KINDS:

        def render(lang: str, kind: str = kind) -> tuple[str, str | None, str]:
            situation = greeting.Situation(
                kind=kind,
                repo=str(repository["full_name"]),
                repo_id=int(repository.get("id") or 0),
                number=NUMBER,
                login=NEWCOMER,
                user_id=0,
                opened_at=OPENED_AT,
                association="NONE",
                text=_text(lang),
                archived=False,
            )
            plan = greeting.decide(situation, section, greeting.Facts(0))
            if isinstance(plan, str):
                return answer_in(section.language, situation.text), None, plan
            return plan.language, greeting.render(plan, section, links), ""

        found.append(Message(greeting.MESSAGES[kind], greeting.NAME, _each_language(render)))
    return found


def _sample_issue(repository: Mapping[str, Any], lang: str, section: GoodFirstIssuesConfig) -> gfi.Issue:
    title, body = WRITTEN[lang]
    return gfi.Issue(
        repo=str(repository["full_name"]),
        repo_id=int(repository.get("id") or 0),
        number=NUMBER,
        title=title,
        body=body,
        html_url=f"{repository.get('html_url')}/issues/{NUMBER}",
        labels=(gfi.canonical(section),),
        assignees=(),
        state="open",
        pull_request=False,
        archived=False,
    )


# The replies to commands, with the command each answers.
REPLIES = {
    gfi.NOT_ALLOWED: gfi.MARK,
    gfi.NOT_GOOD_FIRST: gfi.CLAIM,
    gfi.CLOSED: gfi.CLAIM,
    gfi.HELD: gfi.CLAIM,
    gfi.CAP_REACHED: gfi.CLAIM,
    gfi.NOT_YOURS: gfi.UNCLAIM,
    gfi.NOT_ASSIGNED: gfi.CLAIM,
}


def _good_first_issues(ctx: Context, config: RepoConfig, repository: Mapping[str, Any]) -> list[Message]:
    section = config.typed(GoodFirstIssuesConfig, GFI)
    url = gfi_messages.list_url(repository, gfi.canonical(section))
    contributing = contributing_link(ctx, repository, section)

    def guide(lang: str) -> tuple[str, str | None, str]:
        issue = _sample_issue(repository, lang, section)
        language = gfi.language_for(issue, section)
        if off := gfi.off_reason(issue, section):
            return language, None, off
        return language, gfi_messages.render_guide(issue, section, language, contributing), ""

    found = [Message(gfi_messages.GUIDE, GFI, _each_language(guide))]
    for kind, command in REPLIES.items():

        def reply(lang: str, kind: str = kind, command: str = command) -> tuple[str, str | None, str]:
            issue = _sample_issue(repository, lang, section)
            language = gfi.language_for(issue, section)
            if off := gfi.off_reason(issue, section):
                return language, None, off
            plan = gfi.Plan(command, gfi.REPLY, language, kind, holder=REVIEWERS[0], count=section.claim_cap)
            return language, gfi_messages.render_reply(plan, issue, NEWCOMER, COMMENT_ID, section, url), ""

        found.append(Message(gfi_messages.REPLIES[kind], GFI, _each_language(reply)))
    for step, days in (
        (gfi.REMIND, section.claims.remind_after_days),
        (gfi.RELEASE, section.claims.release_after_days),
    ):

        def claim_step(lang: str, step: str = step, days: int = days) -> tuple[str, str | None, str]:
            language = answer_in(section.language, WRITTEN[lang][0])
            if days <= 0:
                return language, None, f"claims.{step}_after_days is 0: never"
            claim = GoodFirstIssue(
                int(repository.get("id") or 0),
                str(repository["full_name"]),
                NUMBER,
                WRITTEN[lang][0],
                f"{repository.get('html_url')}/issues/{NUMBER}",
                labelled=True,
                state="open",
                assignees=(NEWCOMER,),
                claimant=NEWCOMER,
                claimed_at=OPENED_AT,
                guide_round=0,
            )
            plan = gfi.decide_claim(claim, section, OPENED_AT + timedelta(days=days))
            if isinstance(plan, str):
                return language, None, plan
            if plan.step != step:
                return plan.language, None, f"the claim is released after {days} days, before any reminder"
            marker = gfi_messages.claim_marker(plan.step, NEWCOMER, OPENED_AT.isoformat())
            body = gfi_messages.render_claim_step(plan, claim.repository, NEWCOMER, marker, section, url)
            return plan.language, body, ""

        found.append(Message(gfi_messages.CLAIM_STEPS[step], GFI, _each_language(claim_step)))
    return found


def _thanks(ctx: Context, config: RepoConfig, repository: Mapping[str, Any]) -> list[Message]:
    section = config.typed(thanks.ThanksConfig, thanks.NAME)

    def render(lang: str) -> tuple[str, str | None, str]:
        title, body = WRITTEN[lang]
        pull = {"number": NUMBER, "merged": True, "title": title, "body": body, "user": {"login": NEWCOMER}}
        plan = thanks.decide(pull, repository, section, REVIEWERS)
        if isinstance(plan, str):
            return answer_in(section.language, _text(lang)), None, plan
        return plan.language, thanks.render(plan, section, NEWCOMER), ""

    return [Message(thanks.MESSAGE, thanks.NAME, _each_language(render))]


def _milestones(ctx: Context, config: RepoConfig, repository: Mapping[str, Any]) -> list[Message]:
    section = config.typed(milestones.MilestonesConfig, milestones.NAME)
    first_count = min((n for n in section.merged_prs if n > 0), default=0)
    away = max(section.welcome_back_after_days, 0) + 1

    def situation(event: str, lang: str) -> milestones.Situation:
        return milestones.Situation(
            event,
            str(repository["full_name"]),
            int(repository.get("id") or 0),
            NUMBER,
            NEWCOMER,
            0,
            OPENED_AT,
            bot=False,
            archived=False,
            text=_text(lang),
        )

    facts = {
        milestones.MERGED_PRS: (milestones.MERGED, milestones.Facts(merged_before=max(first_count - 1, 0))),
        milestones.GOOD_FIRST_ISSUE: (milestones.MERGED, milestones.Facts(solved_here=True)),
        milestones.WELCOME_BACK: (milestones.ARRIVED, milestones.Facts(previous_at=OPENED_AT - timedelta(days=away))),
    }
    found = []
    for kind, (event, known) in facts.items():

        def render(lang: str, kind: str = kind, event: str = event, known: milestones.Facts = known) -> Any:
            language = answer_in(section.language, _text(lang))
            if kind == milestones.MERGED_PRS and not section.merged_prs:
                return language, None, "merged_prs is empty: no count is celebrated"
            plan = milestones.decide(situation(event, lang), section, known)
            chosen = [m for m in plan if m.kind == kind] if not isinstance(plan, str) else []
            if not chosen:
                return language, None, plan if isinstance(plan, str) else f"{kind} is turned off"
            return chosen[0].language, milestones.render(chosen[0]), ""

        found.append(Message(milestones.MESSAGES[kind], milestones.NAME, _each_language(render)))
    return found


def _leaderboard(ctx: Context, config: RepoConfig, repository: Mapping[str, Any]) -> list[Message]:
    """The answers to `/leaderboard opt-out` and `opt-in`, in the language of the comment (no setting)."""
    commands = {True: "/leaderboard opt-out", False: "/leaderboard opt-in"}
    found = []
    for opted_out, key in ((True, leaderboard.OPT_OUT_REPLY), (False, leaderboard.OPT_IN_REPLY)):

        def render(lang: str, opted_out: bool = opted_out) -> tuple[str, str | None, str]:
            language = detect(f"{commands[opted_out]}\n{WRITTEN[lang][1]}")
            return language, leaderboard.render(opted_out, NEWCOMER, language, COMMENT_ID), ""

        found.append(Message(key, leaderboard.NAME, _each_language(render)))
    return found


def _response_watch(ctx: Context, config: RepoConfig, repository: Mapping[str, Any]) -> list[Message]:
    section = config.typed(response_watch.ResponseWatchConfig, response_watch.NAME)
    due, escalate_at = response_watch.deadlines(OPENED_AT, section)

    def item(lang: str, nudged: bool) -> WatchedItem:
        return WatchedItem(
            int(repository.get("id") or 0),
            NUMBER,
            str(repository["full_name"]),
            0,
            is_pull=False,
            title=WRITTEN[lang][0],
            html_url=f"{repository.get('html_url')}/issues/{NUMBER}",
            author=NEWCOMER,
            newcomer=True,
            opened_at=OPENED_AT,
            state="open",
            labels=(),
            on_hold=False,
            due_at=due,
            escalate_at=escalate_at,
            nudged_at=due if nudged else None,
            escalated_at=None,
            responded_at=None,
        )

    # A private repository's items never go to a chat: the bot comments there instead.
    to_chat = bool(section.chat) and not repository.get("private")
    found = []
    for stage, at in ((response_watch.NUDGE, due), (response_watch.ESCALATE, escalate_at)):

        def render(lang: str, stage: str = stage, at: datetime | None = at) -> tuple[str, str | None, str]:
            watched = item(lang, stage == response_watch.ESCALATE)
            language = answer_in(section.language, watched.title)
            if at is None:
                return language, None, "escalate_after_hours is 0: no second nudge"
            plan = response_watch.decide(watched, section, at)
            if isinstance(plan, str):
                return language, None, plan
            if to_chat:  # a message to the operator's chat destination instead of a comment
                return language, response_watch.chat_text(plan, watched, section, at), ""
            return language, response_watch.render(plan, watched, section, at), ""

        key = (response_watch.CHAT_TEXTS if to_chat else response_watch.TEXTS)[stage]
        found.append(Message(key, response_watch.NAME, _each_language(render)))
    return found


# (value, mean of the weeks before, anomaly) per headline figure, in the digest's order.
SAMPLE_FIGURES = (
    (12, 9, True),
    (3, 2.5, False),
    (8, 7.25, False),
    (5.5, 9, False),
    (14, 12, False),
    (0.8, 0.75, False),
    (None, None, False),
)


def sample_digest(repo: str, html_url: str) -> digest_content.Digest:
    """A week with something in each part of the digest, so that every line of it shows."""
    figures = tuple(
        digest_content.Figure(name, unit, value, mean, anomaly)
        for (name, (unit, _, _)), (value, mean, anomaly) in zip(
            digest_content.FIGURES.items(),
            SAMPLE_FIGURES,
            strict=True,
        )
    )
    return digest_content.Digest(
        name=repo,
        scope="repo:0",
        week=date(2025, 12, 29),
        newcomers=(NEWCOMER,),
        unnamed_newcomers=1,
        first_merges=(digest_content.FirstMerge(NEWCOMER, repo, NUMBER + 1, f"{html_url}/pull/{NUMBER + 1}"),),
        top_contributors=(digest_content.TopContributor(REVIEWERS[0], 31), digest_content.TopContributor(NEWCOMER, 12)),
        figures=figures,
        good_first_issues_open=4,
        good_first_issues_claimed=1,
        good_first_issues_released=1,
    )


def _digest(ctx: Context, config: RepoConfig, repository: Mapping[str, Any]) -> list[Message]:
    section = config.typed(digest_posting.DigestConfig, digest_posting.NAME)
    languages = section.languages
    if not section.enabled:
        rendered = Rendered("", languages, None, "the digest is off (digest.enabled: false)")
    else:
        value = sample_digest(str(repository["full_name"]), str(repository.get("html_url") or ""))
        body = f"{digest_posting.issue_title(value, languages)}\n\n{digest_content.render(value, languages)}"
        rendered = Rendered("", languages, body)
    return [Message("digest.issue_title", digest_posting.NAME, (rendered,))]


def _config_check(config: RepoConfig) -> list[Message]:
    """What the bot says on a pull request that brings this file: its problems, or nothing."""
    problems: Sequence[Problem] = config.problems
    if problems:
        rendered = Rendered("", config_check.LANGUAGE, config_check.message(problems))
    else:
        rendered = Rendered("", config_check.LANGUAGE, None, "the file has no problems: nothing to say")
    return [Message(config_check.PROBLEMS, config_check.NAME, (rendered,))]
