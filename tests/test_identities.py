"""People across platforms, in the ledger: a chat or forum account linked to a GitHub account counts as
one person (its contributions move to the GitHub id, every rollup as a rebuild makes it), unlinking
gives back exactly what was there before, and codes work once, for the login they were asked for.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain import contributions as kinds
from domain.contributions import TELEGRAM, TELEGRAM_HOST, Chat, Contribution, Repo, Subject
from readmodels.leaderboard import board
from storage import db, identities
from storage.identities import Account, IdentityStore
from storage.ledger import LedgerStore
from storage.rollups import org_scope
from tests.test_ledger_store import contribution, snapshot

ORG = "llmasos"
KERNEL = Repo(1, f"{ORG}/kernel", private=False, installation_id=7)
CHAT = Chat(TELEGRAM, TELEGRAM_HOST, ORG, url="https://t.me")
TODAY = date(2026, 12, 4)
OCTOCAT = 583231  # a GitHub id
ALICE, BOB = 412345678, 598765432  # Telegram user ids


def account(user: int, name: str) -> Account:
    return Account(CHAT.person(user), TELEGRAM, CHAT.place, name)


def chat_message(user: int, at: datetime, n: int, answers: int | None = None) -> Contribution:
    kind = kinds.CHAT_REPLY if answers else kinds.CHAT_MESSAGE
    subject = Subject(0, False, CHAT.person(answers), None) if answers else None
    return Contribution(
        key=f"{kind}:telegram:-100:{n}",
        kind=kind,
        repo=CHAT.place,
        actor_id=CHAT.person(user),
        actor_login=f"tg{user}",
        occurred_at=at,
        number=None,
        url="",
        subject=subject,
    )


def history(ledger: LedgerStore) -> None:
    """octocat on GitHub for months; alice and bob in the chat, answering each other."""
    start = datetime(2026, 9, 1, 12)
    items = [
        contribution(kinds.COMMENT, KERNEL, OCTOCAT, start + timedelta(days=d), number=d + 1) for d in range(0, 90, 3)
    ]
    items += [contribution(kinds.PR_MERGED, KERNEL, OCTOCAT, start + timedelta(days=40), number=7)]
    for n in range(40):
        who, other = (ALICE, BOB) if n % 3 else (BOB, ALICE)
        items.append(chat_message(who, start + timedelta(days=n * 2, hours=n % 5), n, answers=other if n % 2 else None))
    ledger.record(items)


def org_row(engine: Engine, actor: int) -> int:
    """The person's chat messages on the owner-wide all-time board (0: no row)."""
    with engine.connect() as conn:
        value = conn.execute(
            sa.select(db.window_totals.c.chat_messages + db.window_totals.c.chat_replies).where(
                db.window_totals.c.scope == org_scope(ORG),
                db.window_totals.c.window == "all",
                db.window_totals.c.actor_id == actor,
            )
        ).scalar()
    return int(value or 0)


def people_active(engine: Engine) -> int:
    """Distinct people in the owner-wide scope (GitHub and chat together)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(db.scope_members)
                .where(db.scope_members.c.scope == org_scope(ORG))
            ).scalar_one()
        )


def rebuilt(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """What a rebuild from the ledger makes of it (the incremental state is put back afterwards by the caller)."""
    LedgerStore(engine).rebuild(TODAY)
    return snapshot(engine)


def test_a_linked_chat_account_counts_as_its_github_person_everywhere_and_unlinking_restores_it(engine: Engine) -> None:
    ledger, store = LedgerStore(engine), IdentityStore(engine)
    ledger.advance(TODAY)
    history(ledger)
    before = snapshot(engine)
    alice_messages = org_row(engine, CHAT.person(ALICE))
    assert alice_messages > 0 and org_row(engine, OCTOCAT) == 0
    assert people_active(engine) == 3

    code = store.new_code(account(ALICE, "alice"), "Octocat", reply_to=str(ALICE))
    outcome = store.redeem(code.lower(), OCTOCAT, "octocat")
    assert outcome.status == identities.LINKED and outcome.reply_to == str(ALICE)

    assert org_row(engine, OCTOCAT) == alice_messages and org_row(engine, CHAT.person(ALICE)) == 0
    assert people_active(engine) == 2, "alice and octocat are one person now"
    linked = snapshot(engine)
    assert rebuilt(engine) == linked, "what linking keeps is what a rebuild makes of the moved ledger"
    logins = [entry["login"] for entry in board(engine, org=ORG, window="all", today=TODAY)["entries"]]
    assert "octocat" in logins and "alice" not in logins

    # Later messages from the linked account are recorded under the GitHub id, replies to it too.
    ledger.record(
        [chat_message(ALICE, datetime(2026, 12, 1, 9), 100), chat_message(BOB, datetime(2026, 12, 1, 10), 101, ALICE)]
    )
    assert org_row(engine, OCTOCAT) == alice_messages + 1
    with engine.connect() as conn:
        answered = conn.execute(
            sa.select(db.contributions.c.subject_author_id).where(
                db.contributions.c.key == "chat_reply:telegram:-100:101"
            )
        ).scalar_one()
    assert answered == OCTOCAT
    assert rebuilt(engine) == snapshot(engine)

    let_go = store.unlink_github(OCTOCAT)
    assert [link.person_id for link in let_go] == [CHAT.person(ALICE)]
    assert org_row(engine, OCTOCAT) == 0 and org_row(engine, CHAT.person(ALICE)) == alice_messages + 1
    assert rebuilt(engine) == snapshot(engine)
    ledger.rebuild(TODAY)
    with engine.begin() as conn:  # take the two late messages out again: the state is the first one
        conn.execute(
            db.contributions.delete().where(
                db.contributions.c.key.in_(["chat_message:telegram:-100:100", "chat_reply:telegram:-100:101"])
            )
        )
    assert rebuilt(engine) == before


def test_codes_work_once_for_the_login_they_name_and_not_after_they_expire(engine: Engine) -> None:
    store = IdentityStore(engine)
    alice = account(ALICE, "alice")
    now = datetime(2026, 12, 4, 10)
    code = store.new_code(alice, "octocat", reply_to="1", now=now)
    assert store.redeem(code, 999, "mallory", now=now).status == identities.WRONG_LOGIN
    assert store.redeem("ZZZZ-ZZZZ", OCTOCAT, "octocat", now=now).status == identities.UNKNOWN_CODE
    assert store.redeem(code, OCTOCAT, "octocat", now=now + timedelta(minutes=31)).status == identities.EXPIRED
    code = store.new_code(alice, "octocat", reply_to="1", now=now)
    assert store.redeem(f" {code} ", OCTOCAT, "OctoCat", now=now).status == identities.LINKED
    assert store.redeem(code, OCTOCAT, "octocat", now=now).status == identities.ALREADY, "a retry finds its link"
    assert store.redeem(code, 4, "octocat", now=now).status == identities.UNKNOWN_CODE, "used once"

    # One account per place per GitHub person.
    bob = account(BOB, "bob")
    code = store.new_code(bob, "octocat", reply_to="2", now=now)
    assert store.redeem(code, OCTOCAT, "octocat", now=now).status == identities.TAKEN
    # A new code ends the earlier unused one; an account linked elsewhere must be unlinked first.
    first = store.new_code(bob, "hubot", reply_to="2", now=now)
    second = store.new_code(bob, "hubot", reply_to="2", now=now)
    assert store.redeem(first, 2, "hubot", now=now).status == identities.UNKNOWN_CODE
    assert store.redeem(second, 2, "hubot", now=now).status == identities.LINKED
    assert store.link(bob, 3, "someone").status == identities.ELSEWHERE
    assert store.link(bob, 2, "hubot").status == identities.ALREADY
    with engine.connect() as conn:
        stored = conn.execute(sa.select(db.link_codes.c.code_hash)).scalars().all()
    assert all(identities.normalise_code(code) not in value for value in stored), "codes are kept hashed"


def test_an_account_that_opted_out_keeps_its_person_out_once_linked(engine: Engine) -> None:
    ledger, store = LedgerStore(engine), IdentityStore(engine)
    ledger.advance(TODAY)
    history(ledger)
    alice = account(ALICE, "alice")
    ledger.set_opted_out(alice.person_id, "alice", True)
    assert store.link(alice, OCTOCAT, "octocat").status == identities.LINKED
    with engine.connect() as conn:
        assert conn.execute(sa.select(db.contributors.c.opted_out).where(db.contributors.c.id == OCTOCAT)).scalar_one()
    assert "octocat" not in [entry["login"] for entry in board(engine, org=ORG, window="all", today=TODAY)["entries"]]
