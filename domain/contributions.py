"""Contributions: what a webhook payload or an API object says someone did, as typed ledger events.

Pure functions, shared by the live webhook handler (`engagement.ledger`) and the backfill
(`jobs.backfill`), so that both produce the same events with the same keys: a key names the
thing that happened (a comment's id, an issue's number), never the delivery, which is what makes
redelivery, retries and backfill count each contribution once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# Kinds. Activity kinds make someone an active contributor; outcome kinds (closing) only feed metrics.
ISSUE_OPENED = "issue_opened"
ISSUE_CLOSED = "issue_closed"
PR_OPENED = "pr_opened"
PR_MERGED = "pr_merged"
PR_CLOSED = "pr_closed"  # closed without merging
REVIEW_APPROVED = "review_approved"
REVIEW_CHANGES_REQUESTED = "review_changes_requested"
REVIEW_COMMENTED = "review_commented"
COMMENT = "comment"  # on an issue or a pull request's conversation
REVIEW_COMMENT = "review_comment"  # on a pull request's diff
GFI_SOLVED = "good_first_issue_solved"  # a merged pull request that closes a good first issue
# The community's forum (Discourse): each in the forum's place (`Forum.place`), by its people's forum ids.
FORUM_TOPIC = "forum_topic"  # a topic opened
FORUM_REPLY = "forum_reply"  # a post other than a topic's first
FORUM_SOLUTION = "forum_solution"  # a reply accepted as the topic's solution, credited to its author
FORUM_LIKE = "forum_like"  # a like received, credited to the post's author
# The community's chats (Telegram, Rocket.Chat): each in the chat's place (`Chat.place`), by its people's chat ids.
CHAT_MESSAGE = "chat_message"  # a message in a group, channel or forum topic, not a reply
CHAT_REPLY = "chat_reply"  # a reply to someone's message (the subject's author: whom it answers)
CHAT_MEMBER_JOINED = "chat_member_joined"  # someone joined the group, credited to them, once per group
CREDIT = "credit"  # work that is not code, credited by a maintainer with `/credit` (domain.credits)

REVIEW_KINDS = {
    "APPROVED": REVIEW_APPROVED,
    "CHANGES_REQUESTED": REVIEW_CHANGES_REQUESTED,
    "COMMENTED": REVIEW_COMMENTED,
}
KINDS = (
    ISSUE_OPENED,
    ISSUE_CLOSED,
    PR_OPENED,
    PR_MERGED,
    PR_CLOSED,
    REVIEW_APPROVED,
    REVIEW_CHANGES_REQUESTED,
    REVIEW_COMMENTED,
    COMMENT,
    REVIEW_COMMENT,
    GFI_SOLVED,
    FORUM_TOPIC,
    FORUM_REPLY,
    FORUM_SOLUTION,
    FORUM_LIKE,
    CHAT_MESSAGE,
    CHAT_REPLY,
    CHAT_MEMBER_JOINED,
    CREDIT,
)
FORUM_KINDS = (FORUM_TOPIC, FORUM_REPLY, FORUM_SOLUTION, FORUM_LIKE)
CHAT_KINDS = (CHAT_MESSAGE, CHAT_REPLY, CHAT_MEMBER_JOINED)
OUTCOME_KINDS = {ISSUE_CLOSED, PR_CLOSED}
# Responses to someone else's issue or pull request: what "time to first response" waits for.
RESPONSE_KINDS = {COMMENT, REVIEW_COMMENT, REVIEW_APPROVED, REVIEW_CHANGES_REQUESTED, REVIEW_COMMENTED}
POSITIVE_REACTIONS = ("+1", "laugh", "hooray", "heart", "rocket")
NEGATIVE_REACTIONS = ("-1", "confused")


@dataclass(frozen=True)
class Repo:
    id: int
    full_name: str
    private: bool
    html_url: str = ""
    installation_id: int | None = None
    # GitHub's time as of which `private` is known (None: unknown); an older claim never overrides a newer one.
    visibility_at: datetime | None = None


@dataclass(frozen=True)
class Subject:
    """The issue or pull request a contribution is about, for response times."""

    number: int
    is_pull: bool
    author_id: int | None
    opened_at: datetime | None


@dataclass(frozen=True)
class Contribution:
    key: str
    kind: str
    repo: Repo
    actor_id: int
    actor_login: str
    occurred_at: datetime  # on GitHub, naive UTC
    number: int | None
    url: str
    subject: Subject | None = None
    positive: int = 0  # reaction summary, for closing events
    negative: int = 0


def github_time(value: Any) -> datetime | None:
    """GitHub's ISO 8601 time as naive UTC, like every stored time."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)
    except ValueError:
        return None


def is_bot(user: Mapping[str, Any] | None) -> bool:
    if not isinstance(user, Mapping):
        return True  # a deleted account ("ghost") or no user: nobody to credit
    login = str(user.get("login") or "")
    return user.get("type") == "Bot" or login.endswith("[bot]") or not login or not isinstance(user.get("id"), int)


def repo_from(repository: Mapping[str, Any], installation_id: int | None = None) -> Repo:
    return Repo(
        id=int(repository["id"]),
        full_name=str(repository["full_name"]),
        private=bool(repository.get("private")),
        html_url=str(repository.get("html_url") or ""),
        installation_id=installation_id,
        visibility_at=visibility_time(repository),
    )


def visibility_time(repository: Mapping[str, Any]) -> datetime | None:
    """A time the payload's `private` was surely true at: its `updated_at` or `pushed_at`, the later one.

    A payload is a snapshot taken when its event happened, which is no earlier than either time, and
    GitHub moves `updated_at` when a repository changes visibility. Push payloads give `pushed_at` as
    Unix seconds, the others as ISO 8601 text (GitHub's webhook schemas)."""
    times = [_any_time(repository.get(name)) for name in ("updated_at", "pushed_at")]
    return max((at for at in times if at is not None), default=None)


def _any_time(value: Any) -> datetime | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**33:
        return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
    return github_time(value)


def reactions(item: Mapping[str, Any]) -> tuple[int, int]:
    """(positive, negative) reactions in an issue's reaction summary; eyes count as neither."""
    summary = item.get("reactions")
    if not isinstance(summary, Mapping):
        return 0, 0
    positive = sum(int(summary.get(name) or 0) for name in POSITIVE_REACTIONS)
    negative = sum(int(summary.get(name) or 0) for name in NEGATIVE_REACTIONS)
    return positive, negative


def subject_of(item: Mapping[str, Any], is_pull: bool | None = None) -> Subject:
    user = item.get("user")
    return Subject(
        number=int(item["number"]),
        is_pull=bool(item.get("pull_request")) or "merged_at" in item if is_pull is None else is_pull,
        author_id=None if is_bot(user) else int(user["id"]),  # type: ignore[index]
        opened_at=github_time(item.get("created_at")),
    )


def _make(
    key: str,
    kind: str,
    repo: Repo,
    user: Any,
    at: Any,
    item: Mapping[str, Any],
    url: Any,
    subject: Subject | None,
    positive: int = 0,
    negative: int = 0,
) -> Contribution | None:
    occurred_at = github_time(at)
    if is_bot(user) or occurred_at is None:
        return None
    return Contribution(
        key=key,
        kind=kind,
        repo=repo,
        actor_id=int(user["id"]),
        actor_login=str(user["login"]),
        occurred_at=occurred_at,
        number=int(item["number"]) if isinstance(item.get("number"), int) else None,
        url=str(url or ""),
        subject=subject,
        positive=positive,
        negative=negative,
    )


def opened_issue(repo: Repo, issue: Mapping[str, Any]) -> Contribution | None:
    subject = subject_of(issue, is_pull=False)
    return _make(
        f"{ISSUE_OPENED}:{repo.id}:{issue['number']}",
        ISSUE_OPENED,
        repo,
        issue.get("user"),
        issue.get("created_at"),
        issue,
        issue.get("html_url"),
        subject,
    )


def closed_issue(repo: Repo, issue: Mapping[str, Any], closer: Any) -> Contribution | None:
    """The issue's first close, with its reactions then; `closer` is who closed it (else its author)."""
    positive, negative = reactions(issue)
    return _make(
        f"{ISSUE_CLOSED}:{repo.id}:{issue['number']}",
        ISSUE_CLOSED,
        repo,
        closer if isinstance(closer, Mapping) else issue.get("user"),
        issue.get("closed_at"),
        issue,
        issue.get("html_url"),
        subject_of(issue, is_pull=False),
        positive,
        negative,
    )


def opened_pull(repo: Repo, pull: Mapping[str, Any]) -> Contribution | None:
    return _make(
        f"{PR_OPENED}:{repo.id}:{pull['number']}",
        PR_OPENED,
        repo,
        pull.get("user"),
        pull.get("created_at"),
        pull,
        pull.get("html_url"),
        subject_of(pull, is_pull=True),
    )


def closed_pull(
    repo: Repo, pull: Mapping[str, Any], closer: Any, reaction_summary: tuple[int, int] = (0, 0)
) -> Contribution | None:
    """Merged: code credit to its author. Closed unmerged: an outcome, for the acceptance ratio."""
    positive, negative = reaction_summary
    if pull.get("merged") or pull.get("merged_at"):
        return _make(
            f"{PR_MERGED}:{repo.id}:{pull['number']}",
            PR_MERGED,
            repo,
            pull.get("user"),
            pull.get("merged_at"),
            pull,
            pull.get("html_url"),
            subject_of(pull, is_pull=True),
            positive,
            negative,
        )
    return _make(
        f"{PR_CLOSED}:{repo.id}:{pull['number']}",
        PR_CLOSED,
        repo,
        closer if isinstance(closer, Mapping) else pull.get("user"),
        pull.get("closed_at"),
        pull,
        pull.get("html_url"),
        subject_of(pull, is_pull=True),
        positive,
        negative,
    )


def solved_good_first_issue(repo: Repo, pull: Mapping[str, Any], issue_number: int) -> Contribution | None:
    """Credit for the good first issue a merged pull request closes (once per issue)."""
    return _make(
        f"{GFI_SOLVED}:{repo.id}:{issue_number}",
        GFI_SOLVED,
        repo,
        pull.get("user"),
        pull.get("merged_at"),
        pull,
        pull.get("html_url"),
        subject_of(pull, is_pull=True),
    )


def submitted_review(repo: Repo, pull: Mapping[str, Any], review: Mapping[str, Any]) -> Contribution | None:
    kind = REVIEW_KINDS.get(str(review.get("state") or "").upper())
    if kind is None or review.get("id") is None:
        return None  # pending or dismissed reviews are not contributions
    return _make(
        f"review:{review['id']}",
        kind,
        repo,
        review.get("user"),
        review.get("submitted_at"),
        pull,
        review.get("html_url"),
        subject_of(pull, is_pull=True),
    )


def created_comment(repo: Repo, issue: Mapping[str, Any], comment: Mapping[str, Any]) -> Contribution | None:
    """A comment on an issue or on a pull request's conversation (GitHub treats both as issue comments)."""
    return _make(
        f"{COMMENT}:{comment['id']}",
        COMMENT,
        repo,
        comment.get("user"),
        comment.get("created_at"),
        issue,
        comment.get("html_url"),
        subject_of(issue),
    )


def created_review_comment(repo: Repo, pull: Mapping[str, Any], comment: Mapping[str, Any]) -> Contribution | None:
    return _make(
        f"{REVIEW_COMMENT}:{comment['id']}",
        REVIEW_COMMENT,
        repo,
        comment.get("user"),
        comment.get("created_at"),
        pull,
        comment.get("html_url"),
        subject_of(pull, is_pull=True),
    )


# --- the community's forum (Discourse)

# Discourse's own accounts (system -1, discobot -2, other bots below 0) are never credited.
FORUM_SYSTEM_USERNAMES = frozenset({"system", "discobot"})
REGULAR_POST = 1  # post_type: 2 moderator action, 3 small action, 4 whisper (staff only) are not posts
PRIVATE_MESSAGE = "private_message"


def platform_id(*parts: object) -> int:
    """A stable id for a person or place outside GitHub (`"discourse", host, user id`): negative, so it
    never meets a GitHub id in the same column; 48 bits of SHA-256, so two never collide in practice."""
    digest = hashlib.sha256(":".join(str(part) for part in parts).encode()).digest()
    return -(int.from_bytes(digest[:6], "big") + 1)


def is_community_place(repo_id: int) -> bool:
    """A forum or chat's place in the ledger (a negative id): counted in its community's owner-wide
    scope, never listed as a repository."""
    return repo_id < 0


@dataclass(frozen=True)
class Forum:
    """The Discourse forum a delivery came from, and what of it is recorded."""

    url: str  # https://forum.example.org
    community_org: str  # the GitHub organisation whose community it is
    public_categories: tuple[int, ...] = ()  # recorded categories; empty: every one the webhook sends

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[-1].split("/", 1)[0].lower()

    @property
    def place(self) -> Repo:
        """The forum as the ledger's "repository": the community's, public, never installed or listed."""
        return Repo(
            id=platform_id("discourse", self.host),
            full_name=f"{self.community_org}/discourse:{self.host}",  # ':' is in no GitHub repository name
            private=False,
            html_url=self.url,
        )

    def person(self, user_id: int) -> int:
        return platform_id("discourse", self.host, user_id)


def forum_post(forum: Forum, post: Mapping[str, Any]) -> Contribution | None:
    """`post_created`: a topic's first post opens it (the same key as `topic_created`, whichever comes
    first), any later regular post is a reply."""
    if not _public_post(forum, post):
        return None
    if post.get("post_number") == 1:
        return _forum_item(forum, FORUM_TOPIC, f"{post.get('topic_id')}", post, post.get("created_at"))
    return _forum_item(forum, FORUM_REPLY, f"{post.get('id')}", post, post.get("created_at"))


def forum_topic(forum: Forum, topic: Mapping[str, Any]) -> Contribution | None:
    """`topic_created`: the topic's author is its `created_by` (the payload has no post)."""
    if topic.get("archetype") == PRIVATE_MESSAGE or not _public_category(forum, topic.get("category_id")):
        return None
    author: Mapping[str, Any] = topic["created_by"] if isinstance(topic.get("created_by"), Mapping) else {}
    item = {"user_id": author.get("id"), "username": author.get("username"), "topic_id": topic.get("id")}
    return _forum_item(forum, FORUM_TOPIC, f"{topic.get('id')}", item, topic.get("created_at"))


def forum_solution(forum: Forum, post: Mapping[str, Any]) -> Contribution | None:
    """`accepted_solution`: the answer post; credit to its author, once per post (who accepted it and
    when are not in the payload, so the answer's own time stands for it)."""
    if not _public_post(forum, post):
        return None
    return _forum_item(forum, FORUM_SOLUTION, f"{post.get('id')}", post, post.get("created_at"))


def forum_like(forum: Forum, like: Mapping[str, Any], received_at: datetime) -> Contribution | None:
    """`post_liked`: a like the post's author received, once per liker and post. Discourse sends no time
    for a like, so the time it arrived stands for it."""
    post, liker = like.get("post"), like.get("user")
    if not isinstance(post, Mapping) or not isinstance(liker, Mapping) or not _public_post(forum, post):
        return None
    if not _forum_human(liker.get("id"), liker.get("username")):
        return None
    key = f"{post.get('id')}:{forum.person(int(liker['id']))}"
    return _forum_item(forum, FORUM_LIKE, key, post, received_at.isoformat())


# What a forum contribution stands on, so that deleting it on the forum takes the contribution out of
# the ledger (`storage.ledger_removal`): its topic, its post, and (a solution) the acceptance itself.
TOPIC_ITEM, POST_ITEM, SOLUTION_ITEM = "topic", "post", "solution"


@dataclass(frozen=True)
class ForumChange:
    """A deletion, a recovery or an acceptance withdrawn, as the ledger sees it: `item` removed (or its
    removal lifted), in topic `topic` (every forum contribution's `number`)."""

    topic: int
    item: str
    removes: bool


def forum_item(forum: Forum, what: str, item_id: object) -> str:
    return f"discourse:{forum.host}:{what}:{item_id}"


def forum_items_of(forum: Forum, kind: str, key: str, topic: int | None) -> tuple[str, ...]:
    """The items a forum contribution (its kind, key and topic) stands on: all must be there for it to
    count. A topic's own contribution stands on its topic (deleting its first post deletes the topic);
    a reply, a like and a solution on their topic and post; a solution also on its acceptance."""
    items: tuple[str, ...] = (forum_item(forum, TOPIC_ITEM, topic),)
    if kind == FORUM_TOPIC:
        return items
    post = key.removeprefix(f"{kind}:{forum.host}:").split(":", 1)[0]  # a like's key ends in its liker
    items += (forum_item(forum, POST_ITEM, post),)
    return items + ((forum_item(forum, SOLUTION_ITEM, post),) if kind == FORUM_SOLUTION else ())


def forum_change(forum: Forum, event: str, payload: Mapping[str, Any]) -> ForumChange | None:
    """`post_destroyed`/`post_recovered` (the first post: its topic), `topic_destroyed`/`topic_recovered`,
    `unaccepted_solution`/`accepted_solution` (discourse-solved): what they remove or bring back.
    Private messages are never recorded, so neither are their deletions."""
    removes = event in ("post_destroyed", "topic_destroyed", "unaccepted_solution")
    if event in ("topic_destroyed", "topic_recovered"):
        topic = payload.get("topic")
        if not isinstance(topic, Mapping) or topic.get("archetype") == PRIVATE_MESSAGE:
            return None
        return _change(forum, topic.get("id"), TOPIC_ITEM, topic.get("id"), removes)
    post = payload.get("solved" if event.endswith("accepted_solution") else "post")
    if event not in ("post_destroyed", "post_recovered", "unaccepted_solution", "accepted_solution"):
        return None
    if not isinstance(post, Mapping) or post.get("topic_archetype") == PRIVATE_MESSAGE:
        return None
    if event.endswith("accepted_solution"):
        return _change(forum, post.get("topic_id"), SOLUTION_ITEM, post.get("id"), removes)
    if post.get("post_number") == 1:
        return _change(forum, post.get("topic_id"), TOPIC_ITEM, post.get("topic_id"), removes)
    return _change(forum, post.get("topic_id"), POST_ITEM, post.get("id"), removes)


def _change(forum: Forum, topic: Any, what: str, item_id: Any, removes: bool) -> ForumChange | None:
    if not isinstance(topic, int) or not isinstance(item_id, int):
        return None
    return ForumChange(topic, forum_item(forum, what, item_id), removes)


def _public_post(forum: Forum, post: Mapping[str, Any]) -> bool:
    """Only what everyone can read is recorded: no private message, no whisper or small action, no post
    deleted or hidden, none in a category the operator did not mark public."""
    return (
        post.get("topic_archetype") != PRIVATE_MESSAGE
        and post.get("post_type", REGULAR_POST) == REGULAR_POST
        and not post.get("deleted_at")
        and not post.get("hidden")
        and _public_category(forum, post.get("category_id"))
    )


def _public_category(forum: Forum, category_id: Any) -> bool:
    if not isinstance(category_id, int):
        return False  # private messages have none
    return not forum.public_categories or category_id in forum.public_categories


def _forum_human(user_id: Any, username: Any) -> bool:
    return (
        isinstance(user_id, int)
        and not isinstance(user_id, bool)
        and user_id > 0
        and isinstance(username, str)
        and bool(username)
        and username.lower() not in FORUM_SYSTEM_USERNAMES
    )


def _forum_item(forum: Forum, kind: str, key: str, item: Mapping[str, Any], at: Any) -> Contribution | None:
    user_id, username, occurred_at = item.get("user_id"), item.get("username"), github_time(at)
    if not _forum_human(user_id, username) or occurred_at is None or not isinstance(user_id, int):
        return None
    topic = item.get("topic_id")
    number = item.get("post_number") if kind != FORUM_TOPIC else None
    path = f"/t/{topic}" + (f"/{number}" if isinstance(number, int) else "")
    return Contribution(
        key=f"{kind}:{forum.host}:{key}",
        kind=kind,
        repo=forum.place,
        actor_id=forum.person(int(user_id)),
        actor_login=str(username),
        occurred_at=occurred_at,
        number=int(topic) if isinstance(topic, int) else None,
        url=forum.url + path if isinstance(topic, int) else forum.url,
    )


# --- the community's chats (Telegram, Rocket.Chat)

TELEGRAM, ROCKETCHAT = "telegram", "rocketchat"
TELEGRAM_HOST = "t.me"  # Telegram's user ids are global: one place and one id per person, whichever bot
# Telegram's service messages (a title changed, a message pinned, a topic opened): nobody said anything.
TELEGRAM_SERVICE_FIELDS = frozenset(
    {
        "new_chat_title",
        "new_chat_photo",
        "delete_chat_photo",
        "group_chat_created",
        "supergroup_chat_created",
        "migrate_to_chat_id",
        "migrate_from_chat_id",
        "pinned_message",
        "forum_topic_created",
        "forum_topic_edited",
        "forum_topic_closed",
        "forum_topic_reopened",
        "left_chat_member",
    }
)
COMMUNITY_CHAT_TYPES = ("group", "supergroup")  # a private chat with the bot is not community activity


@dataclass(frozen=True)
class Chat:
    """The community chat a delivery came from: Telegram (host `t.me`) or a Rocket.Chat server."""

    platform: str  # TELEGRAM | ROCKETCHAT
    host: str  # t.me, or the Rocket.Chat server's host
    community_org: str  # the GitHub organisation whose community it is
    url: str = ""  # the server's address (Rocket.Chat), for links
    channels: tuple[str, ...] = ()  # Rocket.Chat channel names recorded; empty: every one the webhook sends

    @property
    def place(self) -> Repo:
        """The chat as the ledger's "repository", like the forum's (`Forum.place`)."""
        return Repo(
            id=platform_id(self.platform, self.host),
            full_name=f"{self.community_org}/{self.platform}:{self.host}",
            private=False,
            html_url=self.url or f"https://{self.host}",
        )

    def person(self, user_id: object) -> int:
        return platform_id(self.platform, self.host, user_id)


def telegram_contributions(chat: Chat, message: Mapping[str, Any]) -> list[Contribution | None]:
    """A Telegram `message` in a group or supergroup (a forum topic's too): a chat message, a reply (to
    whom: the replied message's author), or members joining (`new_chat_members`, each once per group).
    Keys are the chat's id and the message's (or the member's) id; bots and private chats are never
    credited. Only who, when, where and to whom are read: never the text."""
    where, sender = message.get("chat"), message.get("from")
    if not isinstance(where, Mapping) or where.get("type") not in COMMUNITY_CHAT_TYPES:
        return []
    at = _unix_time(message.get("date"))
    members = message.get("new_chat_members")
    if isinstance(members, list):
        key = f"{CHAT_MEMBER_JOINED}:{TELEGRAM}:{where.get('id')}"
        return [_chat_item(chat, CHAT_MEMBER_JOINED, f"{key}:{m.get('id')}", m, at, "") for m in members]
    if any(name in message for name in TELEGRAM_SERVICE_FIELDS) or message.get("sender_chat"):
        return []  # a service message, or one posted as the group or a channel (an anonymous admin)
    if answers_someone(message):
        to = message["reply_to_message"].get("from")
        subject = _reply_subject(None if _telegram_bot(to) else chat.person(to["id"]))
        key = f"{CHAT_REPLY}:{TELEGRAM}:{where.get('id')}:{message.get('message_id')}"
        return [_chat_item(chat, CHAT_REPLY, key, sender, at, _telegram_link(message), subject)]
    key = f"{CHAT_MESSAGE}:{TELEGRAM}:{where.get('id')}:{message.get('message_id')}"
    return [_chat_item(chat, CHAT_MESSAGE, key, sender, at, _telegram_link(message))]


def answers_someone(message: Mapping[str, Any]) -> bool:
    """A reply, rather than a message in a forum topic: in a topic every message "replies" to the
    topic's opening service message (`forum_topic_created`), whose id is the topic's `message_thread_id`."""
    replied = message.get("reply_to_message")
    if not isinstance(replied, Mapping):
        return False
    opens_topic = "forum_topic_created" in replied or (
        bool(message.get("is_topic_message")) and replied.get("message_id") == message.get("message_thread_id")
    )
    return not opens_topic


def _telegram_bot(user: Any) -> bool:
    return not isinstance(user, Mapping) or bool(user.get("is_bot")) or not isinstance(user.get("id"), int)


def _telegram_link(message: Mapping[str, Any]) -> str:
    """`https://t.me/<group>/<message>` for a public group (one with a username); none for the others."""
    username = message["chat"].get("username")
    return f"https://{TELEGRAM_HOST}/{username}/{message.get('message_id')}" if username else ""


def _unix_time(value: Any) -> datetime | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**33:
        return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
    return None


def rocketchat_message(chat: Chat, body: Mapping[str, Any], root_author: int | None) -> Contribution | None:
    """A Rocket.Chat outgoing webhook's `sendMessage` body: a message, or a thread reply (`tmid`, to
    `root_author`, the thread's first message's author when the ledger has it). Keyed by the message's
    id, so an edit (same id, `isEdited`) adds nothing. Integrations' messages (`bot`), direct messages
    (no `channel_name`) and channels not in `chat.channels` are never recorded."""
    channel = body.get("channel_name")
    if body.get("bot") is not False or not isinstance(channel, str) or not channel:
        return None
    if chat.channels and channel not in chat.channels:
        return None
    user = {"id": body.get("user_id"), "username": body.get("user_name")}
    at, message_id = github_time(body.get("timestamp")), body.get("message_id")
    link = f"{chat.url}/channel/{channel}?msg={message_id}" if chat.url else ""
    if isinstance(body.get("tmid"), str):
        key = f"{CHAT_REPLY}:{ROCKETCHAT}:{chat.host}:{message_id}"
        return _chat_item(chat, CHAT_REPLY, key, user, at, link, _reply_subject(root_author))
    return _chat_item(chat, CHAT_MESSAGE, f"{CHAT_MESSAGE}:{ROCKETCHAT}:{chat.host}:{message_id}", user, at, link)


def rocketchat_thread_key(chat: Chat, tmid: str) -> str:
    """The key the thread's first message was recorded under, to find whom a reply answers."""
    return f"{CHAT_MESSAGE}:{ROCKETCHAT}:{chat.host}:{tmid}"


def _reply_subject(author_id: int | None) -> Subject:
    """Whom a chat reply answers (`subject_author_id`). No opening time, so it is no issue awaiting a
    first response; chat message ids are not numbers everywhere, so none is kept."""
    return Subject(number=0, is_pull=False, author_id=author_id, opened_at=None)


def _chat_item(
    chat: Chat, kind: str, key: str, user: Any, at: datetime | None, url: str, subject: Subject | None = None
) -> Contribution | None:
    if at is None or not isinstance(user, Mapping) or user.get("is_bot") or user.get("id") in (None, ""):
        return None
    user_id = user["id"]
    if chat.platform == TELEGRAM and not isinstance(user_id, int):
        return None
    # A public name only: the username, else (Telegram, no username) the first name the group sees.
    name = user.get("username") or user.get("first_name")
    if not isinstance(name, str) or not name:
        return None
    return Contribution(
        key=key,
        kind=kind,
        repo=chat.place,
        actor_id=chat.person(user_id),
        actor_login=name,
        occurred_at=at,
        number=None,
        url=url,
        subject=subject,
    )
