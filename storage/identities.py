"""People across platforms: a forum or chat account linked to a GitHub account (issue 12).

A link moves the account's contributions in its place (the forum, a chat) to the GitHub id and
rebuilds both people's rollups from the ledger, in one transaction, so that the leaderboard, active
users and the forum-and-chat-to-GitHub funnel count one person once; unlinking moves them back. A
GitHub account has at most one account per place, so a place's own counts never change on a link.

Recording resolves links in its own transaction (`resolve`) after taking the account's
`contributors` row, which linking takes first: a message recorded while its author links ends up on
the right side either way. Codes are stored as their SHA-256 only, used once, and bound to the GitHub
login the account named: a code seen by someone else is of no use to them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from domain.contributions import Contribution, Repo, is_community_place
from storage import db, windows
from storage.db import contributions, contributors, identity_links, link_codes, repositories, utcnow
from storage.ledger_rebuild import rebuild_people
from storage.repositories import upsert_repository
from storage.upsert import dialect_insert

CODE_LIFETIME = timedelta(minutes=30)
# No 0/O, 1/I/L: a code is read off one screen and typed into another.
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_CODE_LENGTH = 8

# What linking can come to.
LINKED, ALREADY, UNKNOWN_CODE, EXPIRED, WRONG_LOGIN, ELSEWHERE, TAKEN = (
    "linked",  # done
    "already",  # the account was linked to this GitHub account already
    "unknown_code",  # no such code, or used already
    "expired",
    "wrong_login",  # the code was asked for another GitHub login
    "elsewhere",  # the account is linked to another GitHub account: unlink it first
    "taken",  # the GitHub account has another account in that place: unlink that first
)

_l = identity_links.c
_k = link_codes.c
_c = contributions.c


@dataclass(frozen=True)
class Account:
    """A forum or chat account: its person id in the ledger, its platform and place, its name there."""

    person_id: int
    platform: str  # discourse | telegram | rocketchat
    place: Repo
    username: str


@dataclass(frozen=True)
class Link:
    person_id: int
    platform: str
    place_id: int
    username: str
    github_id: int
    github_login: str
    source: str


@dataclass(frozen=True)
class Outcome:
    """What came of a link or a code: `status` (above), the link, and where to confirm it on the platform."""

    status: str
    link: Link | None = None
    reply_to: str = ""


def normalise_code(text: str) -> str:
    """The code as stored: upper case, without the dash and spaces people copy along."""
    return "".join(ch for ch in text.upper() if ch.isalnum())


def _hash(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


class IdentityStore:
    def __init__(self, engine: Engine, code_lifetime: timedelta = CODE_LIFETIME):
        self.engine = engine
        self.code_lifetime = code_lifetime

    def new_code(self, account: Account, github_login: str, reply_to: str, now: datetime | None = None) -> str:
        """A one-time code for `account` to post on GitHub as `github_login`; earlier unused ones end."""
        now = now or utcnow()
        code = "".join(secrets.choice(_ALPHABET) for _ in range(_CODE_LENGTH))
        with db.begin(self.engine) as conn:
            conn.execute(link_codes.delete().where(_k.person_id == account.person_id, _k.used_at.is_(None)))
            conn.execute(
                link_codes.insert().values(
                    code_hash=_hash(code),
                    person_id=account.person_id,
                    platform=account.platform,
                    place_id=account.place.id,
                    username=account.username[:255],
                    reply_to=reply_to[:255],
                    github_login=github_login.lower()[:255],
                    created_at=now,
                    expires_at=now + self.code_lifetime,
                )
            )
        return f"{code[:4]}-{code[4:]}"

    def redeem(self, code: str, github_id: int, github_login: str, now: datetime | None = None) -> Outcome:
        """GitHub user `github_login` posted `code`: link the account that asked for it, once."""
        now = now or utcnow()
        with db.begin(self.engine) as conn:
            row = conn.execute(sa.select(link_codes).where(_k.code_hash == _hash(code)).with_for_update()).first()
            if row is None:
                return Outcome(UNKNOWN_CODE)
            if row.used_at is not None:  # a retry of the comment that used it finds its own link
                link = _link_of(conn, row.person_id)
                if link is not None and link.github_id == github_id:
                    return Outcome(ALREADY, link, row.reply_to)
                return Outcome(UNKNOWN_CODE)
            if row.expires_at <= now:
                return Outcome(EXPIRED, reply_to=row.reply_to)
            if row.github_login != github_login.lower():
                return Outcome(WRONG_LOGIN, reply_to=row.reply_to)
            account = Account(row.person_id, row.platform, _place(conn, row.place_id), row.username)
            outcome = _link(conn, account, github_id, github_login, "self", now)
            if outcome.status in (LINKED, ALREADY):
                conn.execute(link_codes.update().where(_k.code_hash == row.code_hash).values(used_at=now))
        return dataclasses.replace(outcome, reply_to=row.reply_to)

    def link(self, account: Account, github_id: int, github_login: str, source: str = "operator") -> Outcome:
        """Link without a code: the operator's mapping file, which the operator vouches for."""
        try:
            with db.begin(self.engine) as conn:
                upsert_repository(conn, account.place)
                return _link(conn, account, github_id, github_login, source, utcnow())
        except IntegrityError:  # another worker linked the GitHub account in that place meanwhile
            return Outcome(TAKEN)

    def unlink_account(self, person_id: int) -> Link | None:
        """The account's owner asked on its platform: its contributions are its own again."""
        with db.begin(self.engine) as conn:
            link = _link_of(conn, person_id, lock=True)
            if link is not None:
                _unlink(conn, link)
        return link

    def unlink_github(self, github_id: int, platform: str | None = None) -> list[Link]:
        """The GitHub account's owner asked on GitHub: every linked account (of one platform) is let go."""
        with db.begin(self.engine) as conn:
            query = sa.select(_l.person_id).where(_l.github_id == github_id)
            if platform is not None:
                query = query.where(_l.platform == platform)
            found = [_link_of(conn, person_id, lock=True) for person_id in conn.execute(query).scalars().all()]
            for link in filter(None, found):
                _unlink(conn, link)
        return [link for link in found if link is not None]

    def link_of(self, person_id: int) -> Link | None:
        with db.connect(self.engine) as conn:
            return _link_of(conn, person_id)

    def links_of(self, github_id: int) -> list[Link]:
        with db.connect(self.engine) as conn:
            rows = conn.execute(sa.select(identity_links).where(_l.github_id == github_id).order_by(_l.platform))
            return [_as_link(row) for row in rows]

    def all_links(self) -> list[Link]:
        with db.connect(self.engine) as conn:
            return [_as_link(row) for row in conn.execute(sa.select(identity_links).order_by(_l.github_login))]


def resolve(conn: Connection, item: Contribution) -> Contribution:
    """The contribution as the ledger records it: a linked account's under its GitHub id (the person it
    answers too). Takes the account's `contributors` row first, as linking does."""
    if not is_community_place(item.repo.id):
        return item
    _take(conn, item.actor_id, item.actor_login)
    people = [item.actor_id] + ([item.subject.author_id] if item.subject and item.subject.author_id else [])
    links = {row.person_id: row for row in conn.execute(sa.select(identity_links).where(_l.person_id.in_(people)))}
    if not links:
        return item
    actor = links.get(item.actor_id)
    if actor is not None:
        item = dataclasses.replace(item, actor_id=actor.github_id, actor_login=actor.github_login)
    answered = links.get(item.subject.author_id) if item.subject and item.subject.author_id else None
    if answered is not None and item.subject is not None:
        item = dataclasses.replace(item, subject=dataclasses.replace(item.subject, author_id=answered.github_id))
    return item


def _link(conn: Connection, account: Account, github_id: int, github_login: str, source: str, now: datetime) -> Outcome:
    as_of = windows.windows_day(conn, lock="share")
    _take(conn, account.person_id, account.username)
    current = _link_of(conn, account.person_id)
    if current is not None:
        return Outcome(ALREADY if current.github_id == github_id else ELSEWHERE, current)
    other = conn.execute(
        sa.select(identity_links).where(_l.github_id == github_id, _l.place_id == account.place.id)
    ).first()
    if other is not None:
        return Outcome(TAKEN, _as_link(other))
    link = Link(
        account.person_id, account.platform, account.place.id, account.username, github_id, github_login, source
    )
    conn.execute(identity_links.insert().values(**dataclasses.asdict(link), linked_at=now))
    opted_out = conn.execute(sa.select(contributors.c.opted_out).where(contributors.c.id == account.person_id)).scalar()
    _take(conn, github_id, github_login, opted_out=bool(opted_out))
    _move(conn, link.place_id, account.person_id, github_id, github_login)
    rebuild_people(conn, [account.person_id, github_id], [link.place_id], as_of)
    return Outcome(LINKED, link)


def _unlink(conn: Connection, link: Link) -> None:
    as_of = windows.windows_day(conn, lock="share")
    conn.execute(identity_links.delete().where(_l.person_id == link.person_id))
    _move(conn, link.place_id, link.github_id, link.person_id, link.username)
    rebuild_people(conn, [link.person_id, link.github_id], [link.place_id], as_of)


def _move(conn: Connection, place_id: int, from_id: int, to_id: int, login: str) -> None:
    """The place's contributions by `from_id`, and the answers to them, are `to_id`'s."""
    conn.execute(
        contributions.update()
        .where(_c.repo_id == place_id, _c.actor_id == from_id)
        .values(actor_id=to_id, actor_login=login)
    )
    conn.execute(
        contributions.update()
        .where(_c.repo_id == place_id, _c.subject_author_id == from_id)
        .values(subject_author_id=to_id)
    )


def _take(conn: Connection, person_id: int, login: str, opted_out: bool = False) -> None:
    """Write the person's `contributors` row, which locks it until the transaction ends; `opted_out`
    only ever turns their choice on (a linked account that opted out keeps its person out)."""
    statement = dialect_insert(conn.dialect.name, contributors)
    values = {"id": person_id, "login": login[:255], "opted_out": opted_out, "updated_at": utcnow()}
    update = {"login": statement.excluded.login, "updated_at": statement.excluded.updated_at}
    if opted_out:
        update["opted_out"] = sa.true()
    conn.execute(statement.values(**values).on_conflict_do_update(index_elements=["id"], set_=update))


def _link_of(conn: Connection, person_id: int, lock: bool = False) -> Link | None:
    query = sa.select(identity_links).where(_l.person_id == person_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    return _as_link(row) if row is not None else None


def _as_link(row: sa.Row[tuple[object, ...]]) -> Link:
    return Link(
        int(row.person_id),
        str(row.platform),
        int(row.place_id),
        str(row.username),
        int(row.github_id),
        str(row.github_login),
        str(row.source),
    )


def _place(conn: Connection, place_id: int) -> Repo:
    row = conn.execute(sa.select(repositories).where(repositories.c.id == place_id)).first()
    if row is None:
        return Repo(id=place_id, full_name="", private=False, html_url="")
    return Repo(id=place_id, full_name=row.full_name, private=bool(row.private), html_url=row.html_url)
