"""Credit for work that is not code: `/credit @login CATEGORY [note]` and `/uncredit`, decided as a table,
the store against a rebuild, then real comment payloads (the recorded examples, edited) through the app
against the fake GitHub, and the contributors page and Markdown over HTTP."""

from __future__ import annotations

import random
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa

import catalogs
from domain.contributions import Repo
from domain.credits import CATEGORIES, Credit, category_of, login_of
from engagement import credit
from engagement.common.commands import Command
from readmodels import contributors
from readmodels.leaderboard import NotVisible
from storage import db
from storage.credits import ALREADY, GIVEN, CreditStore
from storage.ledger import LedgerStore
from tests.conftest import INSTALLATION_ID, REPO, example, installed, services
from tests.test_ledger_store import snapshot

REPO_ID = 186853002  # as in the recorded payloads
MAINTAINER, TRANSLATOR, READER = "maint-mei", "tran-lator", "just-reading"
SECRET_REPO, SECRET_ID = "Codertocat/secret-plans", 777000111


# --- deciding, from the command's words alone


@pytest.mark.parametrize(
    "case, args, expected",
    [
        (
            "a credit with a note",
            ("@tran-lator", "translation", "the", "zh", "docs"),
            ("tran-lator", "translation", "the zh docs"),
        ),
        ("the @ is optional", ("tran-lator", "doc"), ("tran-lator", "doc", "")),
        ("categories ignore case", ("@tran-lator", "EventOrganizing"), ("tran-lator", "eventOrganizing", "")),
        ("event stands for eventOrganizing", ("@tran-lator", "event"), ("tran-lator", "eventOrganizing", "")),
        ("an unknown category lists the known ones", ("@tran-lator", "vibes"), credit.UNKNOWN),
        ("no category says how", ("@tran-lator",), credit.USAGE),
        ("no login says how", (), credit.USAGE),
        ("something that is no login says how", ("@@nope!", "doc"), credit.USAGE),
        ("bots are not credited", ("@dependabot[bot]", "code"), credit.BOT),
        ("nobody credits themselves", ("@Maint-Mei", "talk"), credit.SELF),
    ],
)
def test_decide_credit(case, args, expected):
    decided = credit.decide(Command("credit", args), MAINTAINER)
    if isinstance(expected, str):
        assert isinstance(decided, credit.Line) and decided.key == expected, case
    else:
        assert decided == credit.Request("credit", *expected), case


def test_taking_back_ones_own_credit_is_fine_and_has_no_note():
    assert credit.decide(Command("uncredit", ("@maint-mei", "talk", "oops")), MAINTAINER) == credit.Request(
        "uncredit", "maint-mei", "talk", ""
    )


def test_an_unknown_category_is_quoted_harmlessly_with_the_valid_ones():
    line = credit.decide(Command("credit", ("@tran-lator", "`@everyone**")), MAINTAINER)
    assert isinstance(line, credit.Line)
    text = line.text("en")
    assert "`everyone`" in text and "@everyone" not in text
    assert all(name in text for name in CATEGORIES)


def test_the_emoji_key_is_the_all_contributors_one():
    assert len(CATEGORIES) == 33 and CATEGORIES["doc"] == "📖" and CATEGORIES["translation"] == "🌍"
    assert category_of("DOCS") == "doc" and category_of("nope") is None
    assert login_of("@octo-cat") == "octo-cat" and login_of("-bad") is None


# --- the store: once per person, category and repository; taking back equals a rebuild


def test_credits_given_and_taken_back_in_any_order_equal_a_rebuild(engine):
    today = date(2026, 11, 29)
    ledger = LedgerStore(engine)
    store = CreditStore(ledger)
    ledger.advance(today - timedelta(days=3))
    rng = random.Random(7)
    repos = [Repo(REPO_ID, REPO, False, installation_id=INSTALLATION_ID), Repo(SECRET_ID, SECRET_REPO, True)]
    given: set[tuple[int, int, str]] = set()
    for n in range(120):
        repo, person, category = rng.choice(repos), rng.randrange(1, 6), rng.choice(["doc", "talk", "design"])
        key = (repo.id, person, category)
        if rng.random() < 0.3:
            assert store.take_back(repo.id, person, category) == (key in given)
            given.discard(key)
        else:
            at = datetime(2026, 11, 29) - timedelta(hours=rng.randrange(0, 24 * 60))
            item = Credit(repo, person, f"person-{person}", category, "maint-mei", 1000 + n, 1, "", at)
            assert store.give(item) == (ALREADY if key in given else GIVEN)
            given.add(key)
        if n == 60:
            ledger.advance(today - timedelta(days=1))
    ledger.advance(today)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(db.contributions.c.key).where(db.contributions.c.kind == "credit")).scalars()
        assert len(list(rows)) == len(given)
    incremental = snapshot(engine)
    assert incremental["window_totals"]
    ledger.rebuild(today)
    assert snapshot(engine) == incremental


# --- through the app, against the fake GitHub


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def server(app, serve):
    return serve(app)


def recently(hours: int = 1) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def commented(github, login: str, body: str, association: str = "MEMBER", number: int = 1, repo: str = REPO) -> dict:
    """issue_comment.created (the recorded example, edited): `login` comments `body` on issue `number`."""
    at = recently()
    comment_id = github.add_comment(repo, number, login, body, author_association=association, created_at=at)
    payload = installed(example("issue_comment.created.1"))
    user = {**payload["comment"]["user"], "login": login, "id": github.user_id(login), "type": "User"}
    payload["comment"].update(
        id=comment_id,
        body=body,
        user=user,
        author_association=association,
        created_at=at,
        updated_at=at,
        html_url=f"https://github.com/{repo}/issues/{number}#issuecomment-{comment_id}",
    )
    payload["sender"] = user
    issue = github.issue(repo, number)
    payload["issue"].update({key: issue[key] for key in ("number", "title", "body", "html_url", "updated_at")})
    if repo != REPO:
        payload["repository"].update(
            id=SECRET_ID, full_name=repo, name=repo.split("/")[1], private=True, html_url=f"https://github.com/{repo}"
        )
    return payload


def deliver(server, payload: dict, delivery_id: str | None = None) -> None:
    assert server.deliver("issue_comment", payload, delivery_id=delivery_id).status_code in (200, 202)
    services(server.app).dispatcher.wait_idle()


def answers(github, number: int = 1, repo: str = REPO) -> list[str]:
    return [c["body"] for c in github.comments(repo, number) if "<!-- engage:credit:" in c["body"]]


def credits_in(server) -> list[tuple[str, str, str]]:
    with services(server.app).store.engine.connect() as conn:
        rows = conn.execute(sa.select(db.credits.c.login, db.credits.c.category, db.credits.c.note))
        return sorted((r.login, r.category, r.note) for r in rows)


def board(server, window: str = "30d") -> dict[str, Any]:
    answer = server.session.get(f"{server.url}/api/leaderboard", params={"repo": REPO, "window": window})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_credit_is_recorded_and_answered_once_however_often_it_is_delivered(server, github):
    github.set_permission(REPO, MAINTAINER, "triage")
    payload = commented(github, MAINTAINER, "Thanks for this!\n/credit @tran-lator translation the whole zh guide")
    started = time.perf_counter()
    deliver(server, payload, delivery_id="credit-1")
    took = time.perf_counter() - started
    calls = len(github.calls())
    deliver(server, payload, delivery_id="credit-1")  # the same delivery again
    deliver(server, payload)  # GitHub redelivered it with a new id
    [answer] = answers(github)
    assert answer.endswith(
        catalogs.text("en", "credit.given", login=TRANSLATOR, emoji="🌍", category="translation", repo=REPO)
    )
    assert credits_in(server) == [(TRANSLATOR, "translation", "the whole zh guide")]
    with services(server.app).store.engine.connect() as conn:
        kinds = conn.execute(sa.select(db.contributions.c.kind, db.contributions.c.actor_login)).all()
    assert sorted(kinds) == [("comment", MAINTAINER), ("credit", TRANSLATOR)]
    # What the credit cost: one permission check, one look-up of a person the ledger did not know, one
    # answer; the redelivery checked the permission again and found the person in the ledger.
    assert len(github.calls("GET", f"/repos/{REPO}/collaborators/{MAINTAINER}/permission")) == 2
    assert len(github.calls("GET", f"/users/{TRANSLATOR}")) == 1
    assert len(github.calls("POST", f"/repos/{REPO}/issues/1/comments")) == 1
    print(f"\n/credit: {calls} GitHub calls in all for the first delivery, {took * 1000:.0f} ms to process")


def test_the_owner_needs_no_permission_check_and_a_known_person_no_look_up(server, github):
    github.add_comment(REPO, 1, TRANSLATOR, "I translated the guide", created_at=recently(3))
    earlier = commented(github, TRANSLATOR, "I translated the guide", association="NONE")
    deliver(server, earlier)  # the ledger now knows tran-lator
    before = len(github.calls())
    deliver(server, commented(github, "Codertocat", "/credit @tran-lator doc", association="OWNER"))
    made = [(c.method, c.path) for c in github.calls()[before:]]
    assert not [m for m in made if "/permission" in m[1] or m[1].startswith("/users/")]
    assert ("POST", f"/repos/{REPO}/issues/1/comments") in made
    assert credits_in(server) == [(TRANSLATOR, "doc", "")]


def test_people_without_triage_access_get_one_polite_no(server, github):
    github.set_permission(REPO, READER, "read")
    payload = commented(
        github, READER, "/credit @tran-lator design\n/credit @someone-else talk", association="CONTRIBUTOR"
    )
    deliver(server, payload)
    deliver(server, payload)
    [answer] = answers(github)
    assert answer.endswith(catalogs.text("en", "credit.not_allowed", login=READER, repo=REPO))
    assert credits_in(server) == []
    assert github.calls("GET", "/users/") == []


def test_unknown_categories_bots_and_oneself_are_explained_without_asking_github(server, github):
    github.set_permission(REPO, MAINTAINER, "maintain")
    body = "/credit @tran-lator vibes\n/credit @dependabot[bot] code\n/credit @maint-mei talk"
    deliver(server, commented(github, MAINTAINER, body))
    [answer] = answers(github)
    assert "`vibes` is not a category I know. Use one of: audio, a11y, bug," in answer
    assert "`dependabot[bot]` is a bot" in answer and "ask another maintainer" in answer
    assert credits_in(server) == []
    assert github.calls("GET", f"/repos/{REPO}/collaborators/") == [] and github.calls("GET", "/users/") == []


def test_uncredit_takes_it_back_and_the_leaderboard_drops_it(server, github):
    github.set_file(REPO, ".github/engage.yml", "leaderboard:\n  points:\n    credit: 4\n")
    github.set_permission(REPO, MAINTAINER, "write")
    deliver(server, commented(github, MAINTAINER, "/credit @tran-lator question answered everyone on the forum"))
    data = board(server)
    [entry] = [e for e in data["entries"] if e["login"] == TRANSLATOR]
    assert entry["points"] == 4 and data["formula"]["points"]["credit"] == 4
    assert "4 × credit given with /credit" in data["formula"]["text"]

    deliver(server, commented(github, MAINTAINER, "/uncredit @tran-lator question"))
    assert answers(github)[-1].endswith(
        catalogs.text("en", "credit.taken", login=TRANSLATOR, emoji="💬", category="question")
    )
    assert credits_in(server) == []
    assert [e["login"] for e in board(server)["entries"]] == [MAINTAINER]
    assert [e["login"] for e in board(server, "all")["entries"]] == [MAINTAINER]

    deliver(server, commented(github, MAINTAINER, "/uncredit @tran-lator question"))
    assert "has no `question` credit here" in answers(github)[-1]


def test_the_persons_page_shows_their_credits_until_taken_back(server, github):
    github.set_permission(REPO, MAINTAINER, "write")
    deliver(server, commented(github, MAINTAINER, "/credit @tran-lator translation <b>zh</b> guide"))
    person = requests.get(server.url + f"/api/people/{TRANSLATOR}", timeout=30).json()
    [credit] = person["credits"]
    assert (credit["repo"], credit["category"], credit["emoji"], credit["note"], credit["given_by"]) == (
        REPO,
        "translation",
        "🌍",
        "<b>zh</b> guide",
        MAINTAINER,
    )
    page = requests.get(server.url + f"/people/{TRANSLATOR}?lang=zh", timeout=30).text
    assert f'data-credit="{REPO}:translation"' in page and "&lt;b&gt;zh&lt;/b&gt; guide" in page
    assert f"由 {MAINTAINER} 致谢" in page
    deliver(server, commented(github, MAINTAINER, "/uncredit @tran-lator translation"))
    answer = requests.get(server.url + f"/api/people/{TRANSLATOR}", timeout=30)
    assert answer.status_code == 404 or answer.json()["credits"] == []  # nothing else of theirs to show


def test_credits_earn_nothing_by_default(server, github):
    github.set_permission(REPO, MAINTAINER, "admin")
    deliver(server, commented(github, MAINTAINER, "/credit @tran-lator talk"))
    data = board(server)
    assert data["formula"]["points"]["credit"] == 0
    assert TRANSLATOR not in [e["login"] for e in data["entries"]]


def test_an_edited_comment_runs_only_the_command_the_edit_added(server, github):
    github.set_permission(REPO, MAINTAINER, "triage")
    created = commented(github, MAINTAINER, "/credit @tran-lator doc")
    deliver(server, created)
    edited = installed(example("issue_comment.edited.2"))
    edited["comment"] = {
        **created["comment"],
        "body": "/credit @tran-lator doc\n/credit @tran-lator review",
        "updated_at": recently(0),
    }
    edited.update(
        issue=created["issue"], sender=created["sender"], changes={"body": {"from": "/credit @tran-lator doc"}}
    )
    deliver(server, edited)
    assert credits_in(server) == [(TRANSLATOR, "doc", ""), (TRANSLATOR, "review", "")]
    assert len(answers(github)) == 2 and "👀 `review`" in answers(github)[1] and "📖" not in answers(github)[1]


def test_a_chinese_issue_gets_a_chinese_answer(server, github):
    github.add_issue(REPO, 5, "Codertocat", title="中文文档翻译", body="请帮忙把安装指南翻译成中文。")
    github.set_permission(REPO, MAINTAINER, "triage")
    deliver(server, commented(github, MAINTAINER, "/credit @tran-lator translation", number=5))
    [answer] = answers(github, 5)
    assert answer.endswith(
        catalogs.text("zh", "credit.given", login=TRANSLATOR, emoji="🌍", category="translation", repo=REPO)
    )


def test_the_contributors_page_and_markdown_list_credits_with_code_and_reviews(server, github):
    github.set_permission(REPO, MAINTAINER, "triage")
    deliver(server, commented(github, MAINTAINER, "/credit @tran-lator translation <script>alert(1)</script>"))
    deliver(server, commented(github, MAINTAINER, "/credit @Codertocat design"))
    page = server.session.get(f"{server.url}/contributors/{REPO}")
    assert page.status_code == 200
    assert 'data-login="tran-lator"' in page.text and 'data-category="translation"' in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>" not in page.text
    assert 'data-login="Codertocat"' in page.text and "🎨" in page.text
    zh = server.session.get(f"{server.url}/contributors/{REPO}", params={"lang": "zh"})
    assert f"{REPO} 的贡献者" in zh.text

    markdown = server.session.get(f"{server.url}/contributors/{REPO}.md")
    assert markdown.status_code == 200 and markdown.headers["Content-Type"].startswith("text/markdown")
    text = markdown.text
    assert text.startswith(f"# Contributors to {REPO}") and "<!-- ALL-CONTRIBUTORS-LIST:START" in text
    assert '<a href="https://github.com/tran-lator"><sub><b>tran-lator</b></sub></a><br />' in text
    assert 'title="translation">🌍</a>' in text and 'title="design">🎨</a>' in text
    assert "<script>" not in text
    # The repository's leaderboard leads there (and to what the bot will say).
    board_page = server.session.get(f"{server.url}/leaderboard", params={"repo": REPO, "window": "all"}).text
    assert f'href="/contributors/{REPO}" data-related="contributors"' in board_page
    assert f'href="/config/{REPO}" data-related="config"' in board_page


def test_a_private_repository_is_hidden_from_anonymous_visitors(server, github, app):
    github.add_repo(SECRET_REPO, private=True, repo_id=SECRET_ID)
    github.add_installation(INSTALLATION_ID, "Codertocat", [REPO, SECRET_REPO])
    github.add_issue(SECRET_REPO, 1, "Codertocat", title="Plans")
    github.set_permission(SECRET_REPO, MAINTAINER, "triage")
    deliver(server, commented(github, MAINTAINER, "/credit @tran-lator ideas", repo=SECRET_REPO))
    assert answers(github, repo=SECRET_REPO), "credited there"
    for path in (f"/contributors/{SECRET_REPO}", f"/contributors/{SECRET_REPO}.md", "/contributors/nobody/nothing"):
        assert server.session.get(server.url + path).status_code == 404, path
    engine = services(app).store.engine
    with pytest.raises(NotVisible):
        contributors.of_repository(engine, SECRET_REPO)
    found = contributors.of_repository(engine, SECRET_REPO, readable={SECRET_ID})
    assert [(p.login, [c.name for c in p.categories]) for p in found.people] == [(TRANSLATOR, ["ideas"])]
    store = CreditStore(LedgerStore(engine))
    assert store.of_person(TRANSLATOR) == []
    assert [g.repository for g in store.of_person(TRANSLATOR, readable={SECRET_ID})] == [SECRET_REPO]
