"""Accounts the operator links: IDENTITY_MAP_FILE, a YAML list in a file only the operator controls
(never a repository's), for people who cannot or will not use `/link` (Rocket.Chat has no private
chat with the app), or a community that already knows who is who:

    - github: octocat
      telegram: 412345678      # the Telegram user id (numeric; @userinfobot tells people theirs)
      discourse: alice         # the forum username
      rocketchat: alice        # the Rocket.Chat username

The file is the truth for the links it made: `sync` (hourly, and `flask --app app identities sync`)
links what it lists and unlinks operator links it no longer lists; links people made themselves are
theirs and never touched. A GitHub login is known once its person has contributed; a forum or
Rocket.Chat username once its account has written something. Until then the entry waits, and `sync`
says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from domain.contributions import ROCKETCHAT, TELEGRAM, Forum, Repo
from scheduling.tasks import Schedule
from storage import identities
from storage.db import contributions, contributors, identity_links
from storage.identities import Account, IdentityStore
from webhooks import rocketchat, telegram
from webhooks.discourse import PLATFORM as DISCOURSE
from webhooks.router import Router

NAME = "identity_map"
HELP = """Links the forum and chat accounts the operator lists in IDENTITY_MAP_FILE (a YAML list: `github:
LOGIN` with `telegram: USER_ID`, `discourse: USERNAME`, `rocketchat: USERNAME`) to those GitHub accounts,
hourly and by `flask --app app identities sync`, as `/link` would. Links the file made and no longer lists
are undone; links people made themselves are left alone. Entries wait until their accounts have been seen."""
PLATFORMS = (TELEGRAM, DISCOURSE, ROCKETCHAT)
MAX_ENTRIES = 10_000

router = Router()  # no webhook handlers: the hourly task below does the work
schedule = Schedule()


class MapError(ValueError):
    """The file cannot be read as a list of entries; nothing is changed."""


@dataclass(frozen=True)
class Entry:
    github: str
    accounts: tuple[tuple[str, str], ...]  # (platform, the id or username there)
    line: int


@dataclass
class Report:
    linked: list[str] = field(default_factory=list)
    unchanged: int = 0
    unlinked: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # not resolvable yet
    refused: list[str] = field(default_factory=list)  # a conflict: said why

    def lines(self) -> list[str]:
        out = [f"linked {len(self.linked)}, unchanged {self.unchanged}, unlinked {len(self.unlinked)}"]
        out += [f"linked: {text}" for text in self.linked] + [f"unlinked: {text}" for text in self.unlinked]
        out += [f"waiting: {text}" for text in self.waiting] + [f"refused: {text}" for text in self.refused]
        return out


def parse(text: str) -> list[Entry]:
    """The entries of the file (pure); MapError names the line of the first problem."""
    try:
        document = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise MapError(f"not valid YAML: {exc}") from None
    if document is None:
        return []
    if not isinstance(document, yaml.SequenceNode):
        raise MapError("the file must be a list of entries (- github: LOGIN ...)")
    if len(document.value) > MAX_ENTRIES:
        raise MapError(f"more than {MAX_ENTRIES} entries")
    entries = []
    for node in document.value:
        line = node.start_mark.line + 1
        if not isinstance(node, yaml.MappingNode):
            raise MapError(f"line {line}: an entry must be a mapping (github: LOGIN, telegram: ID, ...)")
        values: dict[str, str] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or not isinstance(value, yaml.ScalarNode):
                raise MapError(f"line {key.start_mark.line + 1}: values must be plain text")
            if key.value not in ("github", *PLATFORMS):
                raise MapError(f"line {key.start_mark.line + 1}: unknown key {key.value[:40]!r}")
            values[key.value] = str(value.value).strip().removeprefix("@")
        if not values.get("github"):
            raise MapError(f"line {line}: github: LOGIN is missing")
        if values.get(TELEGRAM) and not values[TELEGRAM].isdigit():
            raise MapError(f"line {line}: telegram must be the numeric user id")
        accounts = tuple((p, values[p]) for p in PLATFORMS if values.get(p))
        entries.append(Entry(values["github"], accounts, line))
    return entries


def places(settings: Any) -> dict[str, Repo]:
    """Each platform's place for COMMUNITY_ORG, where it is configured."""
    org = settings.community_org
    found: dict[str, Repo] = {}
    if org and settings.records_telegram:
        found[TELEGRAM] = telegram.chat_of(org).place
    if org and settings.discourse_url:
        found[DISCOURSE] = Forum(settings.discourse_url, org).place
    if org and settings.rocketchat_url:
        found[ROCKETCHAT] = rocketchat.chat_of(settings.rocketchat_url, org).place
    return found


def sync(services: Any) -> Report:
    """Make the operator's links what IDENTITY_MAP_FILE says; MapError if it cannot be read."""
    path = services.settings.identity_map_file
    entries = parse(Path(path).read_text(encoding="utf-8")) if path else []
    store: IdentityStore = services.stores.identities
    where = places(services.settings)
    report = Report()
    wanted: set[int] = set()
    for entry in entries:
        github = _github_person(store, entry.github)
        for platform, handle in entry.accounts:
            label = f"line {entry.line}: {platform} {handle} -> @{entry.github}"
            place = where.get(platform)
            if place is None:
                report.refused.append(f"{label}: {platform} is not configured")
                continue
            account = _account(store, platform, place, handle, services.settings.community_org)
            if github is None or account is None:
                report.waiting.append(
                    f"{label}: " + ("GitHub login not seen yet" if github is None else "not seen yet")
                )
                continue
            wanted.add(account.person_id)
            outcome = store.link(account, github[0], github[1], source="operator")
            if outcome.status == identities.LINKED:
                report.linked.append(label)
            elif outcome.status == identities.ALREADY:
                report.unchanged += 1
            else:
                report.refused.append(f"{label}: {outcome.status.replace('_', ' ')}")
    for link in store.all_links():
        if link.source == "operator" and link.person_id not in wanted:
            store.unlink_account(link.person_id)
            report.unlinked.append(f"{link.platform} {link.username} -> @{link.github_login}")
    return report


@schedule.every(timedelta(hours=1), name=NAME, description="link the accounts IDENTITY_MAP_FILE lists")
def hourly(services: Any) -> None:
    if services.settings.identity_map_file:
        sync(services)


def _github_person(store: IdentityStore, login: str) -> tuple[int, str] | None:
    """(id, login) of a GitHub person the app has seen (positive ids: forum and chat ids are negative)."""
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(contributors.c.id, contributors.c.login)
            .where(sa.func.lower(contributors.c.login) == login.lower(), contributors.c.id > 0)
            .limit(1)
        ).first()
    return (int(row.id), str(row.login)) if row is not None else None


def _account(store: IdentityStore, platform: str, place: Repo, handle: str, org: str) -> Account | None:
    """The account a Telegram id names, or the one a username is linked as or has written under in its place."""
    if platform == TELEGRAM:
        return Account(telegram.chat_of(org).person(int(handle)), platform, place, handle)
    c, links = contributions.c, identity_links.c
    with store.engine.connect() as conn:
        person = conn.execute(
            sa.select(links.person_id).where(
                links.place_id == place.id, sa.func.lower(links.username) == handle.lower()
            )
        ).scalar()
        if person is None:
            written = sa.select(c.actor_id).where(c.repo_id == place.id, sa.func.lower(c.actor_login) == handle.lower())
            person = conn.execute(written.where(c.actor_id < 0).limit(1)).scalar()
    return Account(int(person), platform, place, handle) if person is not None else None
