"""One person across platforms: people link their forum or chat account to their GitHub account
themselves, provably on both sides (issue 12).

On the chat or forum, privately, the account asks: `/link LOGIN` to the Telegram bot, or in a private
message to the app's forum user. The app answers there with a one-time code bound to that GitHub login
(`storage.identities`). Signed in to GitHub as LOGIN, the person posts `/engage link CODE` in a comment on
any issue or pull request of an installed repository: the account is then theirs, its activity counts
under their GitHub id, and the chat or forum hears of it. `/unlink` on the platform, or `/engage unlink
[telegram|discourse|rocketchat]` on GitHub, undoes it. `/leaderboard opt-out` (and `opt-in`) works in
the private chat too; for a linked account it is the GitHub person's choice, so it holds everywhere.
Operators may also map accounts in IDENTITY_MAP_FILE (`engagement.identity_map`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import catalogs
from domain.contributions import FORUM_SYSTEM_USERNAMES, TELEGRAM, Forum
from engagement.common import commands
from engagement.common.comments import comment_once
from engagement.common.language import detect
from githubapp.errors import NotFound
from notify.notifier import Message
from storage import identities
from storage.identities import Account, Outcome
from webhooks import discourse, telegram
from webhooks.context import Context
from webhooks.router import Router

NAME = "identity"
HELP = """Links a person's forum and chat accounts to their GitHub account, proved on both sides: they send
`/link LOGIN` privately to the Telegram bot (or in a private message to the app's forum user), get a
one-time code there, and post `/engage link CODE` in a comment on GitHub signed in as LOGIN. Their forum
and chat activity then counts under their GitHub account (one person on the boards and in active users),
and the chat or forum confirms it. `/unlink` there, or `/engage unlink [telegram|discourse|rocketchat]` on
GitHub, undoes it. A link never joins two GitHub accounts; a person who opted out stays out everywhere.
Codes are kept hashed, work once, for 30 minutes, and only for the login that asked."""

router = Router()

PLATFORM_NAMES = {TELEGRAM: "Telegram", discourse.PLATFORM: "forum", "rocketchat": "Rocket.Chat"}
# GitHub's rule for logins: alphanumerics and single hyphens, not at either end, up to 39.
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
# The answers on GitHub to a code that did not link (keys in bot.po).
REFUSED = {
    identities.UNKNOWN_CODE: "identity.github.unknown_code",
    identities.EXPIRED: "identity.github.expired",
    identities.WRONG_LOGIN: "identity.github.wrong_login",
    identities.TAKEN: "identity.github.taken",
    identities.ELSEWHERE: "identity.github.elsewhere",
}


# --- the private side: Telegram's private chat with the bot, the forum's private messages


@router.on(telegram.event_name(telegram.PRIVATE_MESSAGE), name="identity.telegram", needs_installation=False)
def telegram_command(ctx: Context) -> None:
    message = ctx.payload.get("message") or {}
    sender = message.get("from") or {}
    if not isinstance(sender.get("id"), int) or sender.get("is_bot"):
        return
    chat = telegram.chat_from(ctx.payload)
    name = str(sender.get("username") or sender.get("first_name") or sender["id"])
    account = Account(chat.person(sender["id"]), TELEGRAM, chat.place, name)
    language = "zh" if str(sender.get("language_code") or "").startswith("zh") else "en"
    answer = _answer(ctx, account, str(message.get("text") or ""), str(sender["id"]), chat.community_org, language)
    if answer is not None:
        key = f"identity:{ctx.event.delivery_id}"
        ctx.stores.messages.telegram(int(sender["id"]), Message(key, answer), ctx.event.delivery_id)


@router.on(discourse.event_name("post_created"), name="identity.forum", needs_installation=False)
def forum_command(ctx: Context) -> None:
    post = ctx.payload.get("post") or {}
    username = str(post.get("username") or "")
    if post.get("topic_archetype") != discourse.PRIVATE_MESSAGE or not isinstance(post.get("user_id"), int):
        return
    own = (ctx.stores.messages.discourse_api_username or "").lower()
    if not username or username.lower() in FORUM_SYSTEM_USERNAMES | {own} or post["user_id"] <= 0:
        return
    forum: Forum = discourse.forum_of(ctx.payload)
    account = Account(forum.person(post["user_id"]), discourse.PLATFORM, forum.place, username)
    raw = str(post.get("raw") or "")
    answer = _answer(ctx, account, raw, username, forum.community_org, detect(raw))
    if answer is not None:
        title = catalogs.text(detect(raw), "identity.title")
        message = Message(f"identity:{ctx.event.delivery_id}", answer, title=title)
        ctx.stores.messages.discourse(username, message, ctx.event.delivery_id)


def _answer(ctx: Context, account: Account, text: str, reply_to: str, org: str, language: str) -> str | None:
    """The answer to a command sent privately (None: not a command for us)."""
    words = text.split()
    if not words:
        return None
    command = words[0].split("@", 1)[0].lower()
    platform = PLATFORM_NAMES.get(account.platform, account.platform)
    if command == "/link":
        login = " ".join(words[1:]).removeprefix("@")  # one word: a login has no spaces
        if not _LOGIN.fullmatch(login):
            return catalogs.text(language, "identity.bad_login", text=login[:40] or "/link")
        code = ctx.stores.identities.new_code(account, login, reply_to)
        minutes = str(int(ctx.stores.identities.code_lifetime.total_seconds() // 60))
        ctx.log.info("link code sent", extra={"platform": account.platform})
        fields = {"platform": platform, "login": login, "org": org, "code": code, "minutes": minutes}
        return catalogs.text(language, "identity.code", **fields)
    if command == "/unlink":
        link = ctx.stores.identities.unlink_account(account.person_id)
        if link is None:
            return catalogs.text(language, "identity.not_linked", platform=platform)
        ctx.log.info("unlinked", extra={"platform": account.platform})
        return catalogs.text(language, "identity.unlinked", platform=platform, login=link.github_login)
    if command == "/leaderboard" and len(words) > 1 and words[1].lower() in ("opt-out", "opt-in"):
        wanted = words[1].lower() == "opt-out"
        link = ctx.stores.identities.link_of(account.person_id)
        person, login = (link.github_id, link.github_login) if link else (account.person_id, account.username)
        ctx.stores.ledger.set_opted_out(person, login, wanted)
        return catalogs.text(language, "identity.opted_out" if wanted else "identity.opted_in", org=org)
    return catalogs.text(language, "identity.help", platform=platform, org=org)


# --- the GitHub side


@router.on("issue_comment.created", name="identity.github")
def github_command(ctx: Context) -> None:
    """`/engage link CODE` and `/engage unlink [platform]`, by the person commenting, for themselves."""
    comment = ctx.payload["comment"]
    user = comment.get("user") or {}
    if not isinstance(user.get("id"), int) or user.get("type") == "Bot":
        return
    for command in commands.parse(comment.get("body")):
        if command.name != "engage" or not command.args:
            continue
        verb = command.args[0].lower()
        if verb == "link" and len(command.args) > 1:
            _redeem(ctx, comment, user, command.args[1])
        elif verb == "unlink":
            _unlink(ctx, comment, user, command.args[1].lower() if len(command.args) > 1 else None)
        return  # one command per comment


def _redeem(ctx: Context, comment: Mapping[str, Any], user: Mapping[str, Any], code: str) -> None:
    login = str(user["login"])
    outcome = ctx.stores.identities.redeem(code, int(user["id"]), login)
    ctx.log.info("link code posted", extra={"outcome": outcome.status, "login": login})
    if outcome.status in (identities.LINKED, identities.ALREADY):
        _acknowledge(ctx, comment)
        _confirm(ctx, outcome, f"identity:linked:{comment['id']}", login)
        return
    platform = ""
    if outcome.link is not None:
        platform = PLATFORM_NAMES.get(outcome.link.platform, outcome.link.platform)
    language = detect(str(comment.get("body") or ""))
    _reply(ctx, comment, catalogs.text(language, REFUSED[outcome.status], login=login, platform=platform))


def _unlink(ctx: Context, comment: Mapping[str, Any], user: Mapping[str, Any], platform: str | None) -> None:
    login = str(user["login"])
    language = detect(str(comment.get("body") or ""))
    if platform is not None and platform not in PLATFORM_NAMES:
        names = ", ".join(PLATFORM_NAMES)
        _reply(ctx, comment, catalogs.text(language, "identity.github.which", login=login, platforms=names))
        return
    let_go = ctx.stores.identities.unlink_github(int(user["id"]), platform)
    ctx.log.info("unlinked on GitHub", extra={"count": len(let_go), "login": login})
    if not let_go:
        _reply(ctx, comment, catalogs.text(language, "identity.github.nothing", login=login))
        return
    _acknowledge(ctx, comment)


def _acknowledge(ctx: Context, comment: Mapping[str, Any]) -> None:
    """A 👍 on the comment: done, quietly (a comment deleted meanwhile needs none)."""
    try:
        ctx.github.react_to_comment(str(ctx.payload["repository"]["full_name"]), int(comment["id"]), "+1")
    except NotFound:
        ctx.log.info("skipped: the comment is gone", extra={"reason": "comment deleted"})


def _confirm(ctx: Context, outcome: Outcome, key: str, login: str) -> None:
    """Tell the linked account, where it asked for the code, that it is linked now."""
    link = outcome.link
    if link is None or not outcome.reply_to:
        return
    platform = PLATFORM_NAMES.get(link.platform, link.platform)
    # The language the account asked in is not kept with its code: both, English first.
    text = "\n\n".join(catalogs.text(lang, "identity.linked", platform=platform, login=login) for lang in ("en", "zh"))
    if link.platform == TELEGRAM and ctx.stores.messages.can_telegram and outcome.reply_to.isdigit():
        ctx.stores.messages.telegram(int(outcome.reply_to), Message(key, text), ctx.event.delivery_id)
    elif link.platform == discourse.PLATFORM and ctx.stores.messages.can_discourse:
        title = catalogs.text("en", "identity.title")
        ctx.stores.messages.discourse(outcome.reply_to, Message(key, text, title=title), ctx.event.delivery_id)


def _reply(ctx: Context, comment: Mapping[str, Any], text: str) -> None:
    repo, number = str(ctx.payload["repository"]["full_name"]), int(ctx.payload["issue"]["number"])
    marker = f"<!-- engage:identity:{comment['id']} -->"
    comment_once(ctx, repo, number, f"identity:{comment['id']}", marker, f"{marker}\n{text}")
