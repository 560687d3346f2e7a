"""Credit for work that is not code, by the all-contributors specification's categories: pure values.

A credit is a ledger contribution of kind `credit` (`domain.contributions.CREDIT`), one per person, category
and repository, like a line of an all-contributors list: crediting the same person for the same category
again changes nothing, and `/uncredit` takes it back. Its key names exactly that, never the comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from domain.contributions import CREDIT, Contribution, Repo

# The all-contributors emoji key (https://allcontributors.org/docs/en/emoji-key), in its order.
CATEGORIES: dict[str, str] = {
    "audio": "🔊",
    "a11y": "♿️",
    "bug": "🐛",
    "blog": "📝",
    "business": "💼",
    "code": "💻",
    "content": "🖋",
    "data": "🔣",
    "doc": "📖",
    "design": "🎨",
    "example": "💡",
    "eventOrganizing": "📋",
    "financial": "💵",
    "fundingFinding": "🔍",
    "ideas": "🤔",
    "infra": "🚇",
    "maintenance": "🚧",
    "mentoring": "🧑‍🏫",
    "platform": "📦",
    "plugin": "🔌",
    "projectManagement": "📆",
    "promotion": "📣",
    "question": "💬",
    "research": "🔬",
    "review": "👀",
    "security": "🛡️",
    "tool": "🔧",
    "translation": "🌍",
    "test": "⚠️",
    "tutorial": "✅",
    "talk": "📢",
    "userTesting": "📓",
    "video": "📹",
}
# Words people write for a category that the key spells otherwise.
ALIASES = {"event": "eventOrganizing", "docs": "doc", "documentation": "doc", "translations": "translation"}
_BY_LOWER = {name.lower(): name for name in CATEGORIES} | ALIASES
# GitHub's rule for logins: alphanumerics and single hyphens, not at either end, up to 39.
LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
NOTE_CHARACTERS = 200  # a note is kept (and shown on the contributors page) up to this length


def category_of(word: str) -> str | None:
    """The category a word names (any case, or an alias), or None."""
    return _BY_LOWER.get(word.lower())


def login_of(word: str) -> str | None:
    """The GitHub login in `@login` (or a bare `login`), or None when it cannot be one."""
    login = word.removeprefix("@")
    return login if LOGIN.fullmatch(login) else None


def is_bot_login(login: str) -> bool:
    return login.lower().endswith("[bot]")


@dataclass(frozen=True)
class Credit:
    """`person` credited for `category` in `repo`, by `given_by` in comment `comment_id` (at `at`, GitHub's
    time of that comment), with an optional note."""

    repo: Repo
    person_id: int
    login: str
    category: str
    given_by: str
    comment_id: int
    number: int
    url: str
    at: datetime
    note: str = ""

    @property
    def key(self) -> str:
        return credit_key(self.repo.id, self.person_id, self.category)

    def contribution(self) -> Contribution:
        """The ledger's contribution: the person's, at the time of the comment, about its issue or pull request."""
        return Contribution(
            key=self.key,
            kind=CREDIT,
            repo=self.repo,
            actor_id=self.person_id,
            actor_login=self.login,
            occurred_at=self.at,
            number=self.number,
            url=self.url,
        )


def credit_key(repo_id: int, person_id: int, category: str) -> str:
    return f"{CREDIT}:{repo_id}:{person_id}:{category}"
