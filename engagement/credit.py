"""Credit for work that is not code: `/credit @login CATEGORY [note]` and `/uncredit @login CATEGORY` in a
comment, by people with triage access or more, recorded once in the ledger (`storage.credits`).

Reads top to bottom: the section and its texts, `decide` (a command to a request or a refusal, pure),
`gather` (who the person is and whether the commenter may: what the payload and the ledger know first,
GitHub only for the rest) and `apply` (the store writes and one answer per version of the comment).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import catalogs
from domain.contributions import github_time, is_bot, repo_from
from domain.credits import CATEGORIES, NOTE_CHARACTERS, Credit, category_of, is_bot_login, login_of
from engagement.common import commands
from engagement.common import config as repo_config
from engagement.common.comments import comment_once
from engagement.common.language import answer_in
from engagement.good_first_issues.decide import TRIAGE_OR_MORE, role_from
from githubapp.errors import Forbidden
from storage.credits import GIVEN, CreditStore
from storage.db import utcnow
from webhooks.context import Context
from webhooks.router import Router

NAME = "credit"
HELP = """Credits work that is not code. Someone with triage access or more comments `/credit @login
CATEGORY [note]` on an issue or pull request, with a category of the all-contributors emoji key (`doc`,
`translation`, `design`, `review`, `question`, `talk`, `eventOrganizing` or `event`, `mentoring`, `code`, ...),
and the app records it once in the ledger, per person, category and repository, and answers in the issue's
language; `/uncredit @login CATEGORY` takes it back. Credits count on the leaderboard when
`leaderboard.points.credit` gives them points (0 by default), and are listed with the code and reviews
the ledger holds on `/contributors/OWNER/REPO` and as Markdown, all-contributors style, at
`/contributors/OWNER/REPO.md`. Bots are never credited, and nobody credits themselves (another
maintainer does). Up to 10 commands a comment; an edited comment runs only the commands the edit added."""


@dataclass(frozen=True)
class CreditConfig:
    """The `credit:` section of `.github/engage.yml`."""

    enabled: bool = True
    language: str = "auto"  # auto (the issue's language), or a language the bot speaks (en, zh)


DEFAULTS = repo_config.defaults_of(CreditConfig)

SETTINGS_HELP = {
    "enabled": "turn `/credit` and `/uncredit` on or off",
    "language": "`auto` (follows the issue's text), `en` or `zh` for the answers",
}

CREDIT, UNCREDIT = "credit", "uncredit"
MAX_COMMANDS = 10  # commands run per comment: the rest are left alone (each may cost a GitHub call)
# The answers, keys in the bot's catalogs (bot.po), one line per command in one comment.
GIVEN_TEXT, ALREADY_TEXT = "credit.given", "credit.already"
TAKEN_TEXT, NOTHING_TEXT = "credit.taken", "credit.nothing"
NOT_ALLOWED, USAGE, UNKNOWN = "credit.not_allowed", "credit.usage", "credit.unknown_category"
BOT, SELF, NO_USER = "credit.bot", "credit.self", "credit.no_user"


@dataclass(frozen=True)
class Request:
    """A command that can run: credit (or take back) `login` for `category`."""

    verb: str
    login: str
    category: str
    note: str = ""


@dataclass(frozen=True)
class Line:
    """One line of the answer: a message key and its fields (why a command did not run, or what it did)."""

    key: str
    fields: tuple[tuple[str, str], ...] = ()

    def text(self, language: str) -> str:
        return catalogs.text(language, self.key, **dict(self.fields))


def shown(word: str) -> str:
    """Someone's word as an answer quotes it: letters, digits, `-`, `_` and brackets only (no mention, no
    Markdown), and short."""
    return re.sub(r"[^A-Za-z0-9_\-\[\]]", "", word.removeprefix("@"))[:40]


def decide(command: commands.Command, actor: str) -> Request | Line:
    """What a `/credit` or `/uncredit` command asks, from its words alone."""
    verb = command.name
    if command.args and is_bot_login(command.args[0]):
        return Line(BOT, (("login", shown(command.args[0])),))
    if len(command.args) < 2 or login_of(command.args[0]) is None:
        return Line(USAGE, (("command", verb),))
    login = str(login_of(command.args[0]))
    category = category_of(command.args[1])
    if category is None:
        return Line(UNKNOWN, (("category", shown(command.args[1])), ("categories", ", ".join(CATEGORIES))))
    if verb == CREDIT and login.lower() == actor.lower():
        return Line(SELF, (("login", actor),))
    note = " ".join(command.args[2:])[:NOTE_CHARACTERS] if verb == CREDIT else ""
    return Request(verb, login, category, note)


# --- gathering: what the payload and the ledger know first


def may_credit(ctx: Context, comment: Mapping[str, Any], actor: str) -> bool:
    """Triage access or more. The repository's owner is its admin (the payload says so: no call)."""
    if comment.get("author_association") == "OWNER":
        return True
    repo = str(ctx.payload["repository"]["full_name"])
    try:
        return role_from(ctx.github.collaborator_permission(repo, actor)) in TRIAGE_OR_MORE
    except Forbidden as exc:
        ctx.log.warning("cannot check a commenter's permission", extra={"error": str(exc)})
        return False


def person(ctx: Context, store: CreditStore, login: str, ask_github: bool) -> tuple[int, str] | Line | None:
    """(GitHub id, login as GitHub spells it) of the person: from the delivery's people, else the ledger,
    else (`ask_github`) GitHub; a Line for a bot; None when nobody has that login."""
    payload = ctx.payload
    issue = payload.get("issue") or {}
    people = [payload["comment"].get("user"), issue.get("user"), payload.get("sender"), *(issue.get("assignees") or [])]
    for user in people:
        if isinstance(user, Mapping) and str(user.get("login") or "").lower() == login.lower():
            return Line(BOT, (("login", login),)) if is_bot(user) else (int(user["id"]), str(user["login"]))
    known = store.person_id(login)
    if known is not None or not ask_github:
        return None if known is None else (known, login)
    found = ctx.github.get_user(login)
    if found is None or not isinstance(found.get("id"), int):
        return None
    if found.get("type") != "User":
        return Line(BOT, (("login", login),))  # a bot or an organisation: nobody to credit
    return int(found["id"]), str(found.get("login") or login)


# --- acting


def apply(ctx: Context, store: CreditStore, request: Request, actor: str) -> Line:
    """Carry out one request (safe to run twice: the store keeps one credit); its line of the answer."""
    payload, comment = ctx.payload, ctx.payload["comment"]
    found = person(ctx, store, request.login, ask_github=request.verb == CREDIT)
    emoji = CATEGORIES[request.category]
    fields = (("login", request.login), ("category", request.category), ("emoji", emoji))
    if isinstance(found, Line):
        return found
    if found is None:
        if request.verb == UNCREDIT:
            return Line(NOTHING_TEXT, fields)
        return Line(NO_USER, (("login", request.login),))
    person_id, login = found
    fields = (("login", login), ("category", request.category), ("emoji", emoji))
    repo = repo_from(payload["repository"], ctx.event.installation_id)
    if request.verb == UNCREDIT:
        taken = ctx.dry_run or store.take_back(repo.id, person_id, request.category)
        return Line(TAKEN_TEXT if taken else NOTHING_TEXT, fields)
    credit = Credit(
        repo=repo,
        person_id=person_id,
        login=login,
        category=request.category,
        given_by=actor,
        comment_id=int(comment["id"]),
        number=int(payload["issue"]["number"]),
        url=str(comment.get("html_url") or ""),
        at=github_time(comment.get("created_at")) or utcnow(),
        note=request.note,
    )
    outcome = GIVEN if ctx.dry_run else store.give(credit)
    return Line(GIVEN_TEXT if outcome == GIVEN else ALREADY_TEXT, (*fields, ("repo", repo.full_name)))


router = Router()


def found_commands(ctx: Context) -> list[commands.Command]:
    """The `/credit` and `/uncredit` commands of the comment (an edit: those the edit added), at most MAX_COMMANDS."""
    found = commands.of_comment(ctx.payload, ctx.event.action)
    wanted = [command for command in found if command.name in (CREDIT, UNCREDIT)]
    if len(wanted) > MAX_COMMANDS:
        ctx.log.info("left %d command(s) alone: %d a comment", len(wanted) - MAX_COMMANDS, MAX_COMMANDS)
    return wanted[:MAX_COMMANDS]


@router.on(
    "issue_comment.created",
    "issue_comment.edited",
    name="credit.commands",
    wants=commands.edit_adding((CREDIT, UNCREDIT)),
)
def commented(ctx: Context) -> None:
    comment, repository, issue = ctx.payload["comment"], ctx.payload["repository"], ctx.payload["issue"]
    if is_bot(comment.get("user")):
        ctx.log.debug("skipped: comment by a bot")
        return
    found = found_commands(ctx)
    if not found or repository.get("archived"):
        return
    config = repo_config.for_event(ctx).typed(CreditConfig, NAME)
    if not config.enabled:
        ctx.log.debug("skipped: credit is turned off")
        return
    actor = str(comment["user"]["login"])
    language = answer_in(config.language, f"{issue.get('title') or ''}\n{issue.get('body') or ''}")
    decided = [decide(command, actor) for command in found]
    requests = [item for item in decided if isinstance(item, Request)]
    if requests and not may_credit(ctx, comment, actor):
        lines = [catalogs.text(language, NOT_ALLOWED, login=actor, repo=str(repository["full_name"]))]
    else:
        store = CreditStore(ctx.stores.ledger)
        lines = [
            _run(ctx, store, item, actor, language) if isinstance(item, Request) else item.text(language)
            for item in decided
        ]
    answer(ctx, comment, lines)


def _run(ctx: Context, store: CreditStore, request: Request, actor: str, language: str) -> str:
    line = apply(ctx, store, request, actor)
    ctx.log.info("ran /%s", request.verb, extra={"reason": f"{request.login} {request.category}: {line.key}"})
    return line.text(language)


def answer(ctx: Context, comment: Mapping[str, Any], lines: list[str]) -> None:
    """One comment per version of the command's comment, however often it is delivered."""
    repo, number = str(ctx.payload["repository"]["full_name"]), int(ctx.payload["issue"]["number"])
    version = f"{comment['id']}:{comment.get('updated_at') or ''}"
    marker = f"<!-- engage:credit:{version} -->"
    body = marker + "\n" + "\n".join(f"- {line}" if len(lines) > 1 else line for line in lines)
    intent = f"credit:{ctx.payload['repository']['id']}:{version}"
    comment_once(ctx, repo, number, intent, marker, body)
