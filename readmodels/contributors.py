"""A repository's contributors, all-contributors style: each person with the categories of the emoji key
they have, from the ledger (merged pull requests and solved good first issues are `code`, reviews are
`review`) and from the credits given with `/credit` (`storage.credits`). As a page and as Markdown.

A private repository is there only for a viewer whose `readable` has it (`storage.db.listed_on_pages`);
for anyone else it does not exist. People who left the leaderboard (`/leaderboard opt-out`) are left out.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

import sqlalchemy as sa
from markupsafe import escape
from sqlalchemy.engine import Engine

from domain import contributions as kinds
from domain.credits import CATEGORIES
from readmodels.leaderboard import NotVisible
from settings import DEFAULT_GITHUB_URL
from storage.db import contributions, contributors, credits, listed_on_pages, repositories

# What the ledger's own kinds stand for in the emoji key.
LEDGER_CATEGORIES = {
    kinds.PR_MERGED: "code",
    kinds.GFI_SOLVED: "code",
    kinds.REVIEW_APPROVED: "review",
    kinds.REVIEW_CHANGES_REQUESTED: "review",
    kinds.REVIEW_COMMENTED: "review",
}
PER_ROW = 7  # people per row of the Markdown table, as the all-contributors CLI lays it out
EMOJI_KEY = "https://allcontributors.org/docs/en/emoji-key"


@dataclass(frozen=True)
class Category:
    name: str
    emoji: str
    url: str = ""  # where it shows: the `/credit` comment, or the person's pull requests or reviews
    note: str = ""


@dataclass
class Person:
    login: str
    since: datetime
    categories: list[Category] = field(default_factory=list)
    github_url: str = DEFAULT_GITHUB_URL  # GITHUB_URL: where profiles are

    @property
    def profile_url(self) -> str:
        return f"{self.github_url}/{quote(self.login)}"


@dataclass(frozen=True)
class Contributors:
    repository: str
    html_url: str
    people: list[Person]


def of_repository(
    engine: Engine, repo: str, readable: Collection[int] = (), github_url: str = DEFAULT_GITHUB_URL
) -> Contributors:
    """The contributors of `owner/name`, earliest first; raises NotVisible for a repository the pages do
    not list for this viewer. Links go to `github_url` (GITHUB_URL)."""
    r, c, k, p = repositories.c, contributions.c, credits.c, contributors.c
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(r.id, r.full_name, r.html_url)
            .where(sa.func.lower(r.full_name) == repo.lower(), listed_on_pages(readable))
            .limit(1)
        ).first()
        if found is None:
            raise NotVisible(f"no repository {repo} to show")
        repo_id = int(found.id)
        ledger = conn.execute(
            sa.select(c.actor_id, c.kind, sa.func.min(c.occurred_at))
            .where(c.repo_id == repo_id, c.kind.in_(list(LEDGER_CATEGORIES)), c.actor_id > 0)
            .group_by(c.actor_id, c.kind)
        ).all()
        given = conn.execute(
            sa.select(k.person_id, k.category, k.note, k.url, k.given_at).where(k.repo_id == repo_id)
        ).all()
        ids = sorted({int(row[0]) for row in (*ledger, *given)})
        people = conn.execute(sa.select(p.id, p.login).where(p.id.in_(ids), p.opted_out == sa.false())).all()
    logins = {int(row.id): str(row.login) for row in people}
    full_name = str(found.full_name)
    found_in: dict[int, dict[str, Category]] = {}
    since: dict[int, datetime] = {}
    for actor_id, kind, first in ledger:
        name = LEDGER_CATEGORIES[kind]
        login = logins.get(int(actor_id), "")
        found_in.setdefault(int(actor_id), {})[name] = Category(
            name, CATEGORIES[name], _ledger_url(f"{github_url}/{full_name}", name, login)
        )
        since[int(actor_id)] = min(first, since.get(int(actor_id), first))
    for row in given:
        if row.category in CATEGORIES:  # a credit given wins over what the ledger says (it has a note)
            found_in.setdefault(int(row.person_id), {})[row.category] = Category(
                row.category, CATEGORIES[row.category], row.url, row.note
            )
            since[int(row.person_id)] = min(row.given_at, since.get(int(row.person_id), row.given_at))
    order = list(CATEGORIES)
    listed = [
        Person(
            logins[actor_id], since[actor_id], sorted(cats.values(), key=lambda cat: order.index(cat.name)), github_url
        )
        for actor_id, cats in found_in.items()
        if actor_id in logins
    ]
    listed.sort(key=lambda person: (person.since, person.login.lower()))
    return Contributors(full_name, str(found.html_url or f"{github_url}/{full_name}"), listed)


def _ledger_url(repo_url: str, category: str, login: str) -> str:
    """Where GitHub shows the person's code or reviews in the repository (as the all-contributors CLI links)."""
    if category == "code":
        return f"{repo_url}/commits?author={quote(login)}"
    return f"{repo_url}/pulls?q=is%3Apr+reviewed-by%3A{quote(login)}"


def markdown(found: Contributors) -> str:
    """A CONTRIBUTORS.md: the all-contributors table (HTML inside Markdown, as its CLI writes it), every
    value escaped, each emoji linking to where the contribution shows."""
    lines = [
        f"# Contributors to {escape(found.repository)}",
        "",
        f"Thanks go to these people ([emoji key]({EMOJI_KEY})):",
        "",
        "<!-- ALL-CONTRIBUTORS-LIST:START - generated by LLMasOS Engage -->",
        "<table>",
        "  <tbody>",
    ]
    width = f"{100 / PER_ROW:.2f}%"
    for start in range(0, len(found.people), PER_ROW):
        lines.append("    <tr>")
        for person in found.people[start : start + PER_ROW]:
            emojis = " ".join(
                f'<a href="{escape(cat.url)}" title="{escape(cat.name)}">{cat.emoji}</a>'
                if cat.url.startswith("https://")
                else f'<span title="{escape(cat.name)}">{cat.emoji}</span>'
                for cat in person.categories
            )
            lines.append(
                f'      <td align="center" valign="top" width="{width}"><a href="{escape(person.profile_url)}">'
                f"<sub><b>{escape(person.login)}</b></sub></a><br />{emojis}</td>"
            )
        lines.append("    </tr>")
    lines += ["  </tbody>", "</table>", "<!-- ALL-CONTRIBUTORS-LIST:END -->", ""]
    return "\n".join(lines)
