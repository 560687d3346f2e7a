"""What the public pages show follows what GitHub says now, whatever order deliveries arrive in.

GitHub does not order deliveries, and a redelivery carries its old payload: a repository's visibility
only moves forward in GitHub's time, and a repository taken out of the installation leaves every page
and API. Driven over real HTTP with recorded payloads (Codertocat/Hello-World, May 2019: a comment at
15:19, `repository.privatized` at 15:21:02, `repository.publicized` at 15:21:03).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from domain.contributions import visibility_time
from storage import db
from storage.repositories import visibility
from tests.conftest import REPO, example, installed, run_rq_worker
from tests.test_installations import HELLO, lifecycle

GOOD_FIRST_TITLE = "Spelling error in the README file"
# Every anonymous address that shows Hello-World's name, a contributor or an issue title when it is listed.
ADDRESSES = (
    "/",
    "/good-first-issues",
    f"/leaderboard?repo={REPO}&window=all",
    "/leaderboard?org=Codertocat&window=all",
    f"/api/leaderboard?repo={REPO}&window=all",
    "/api/leaderboard?org=Codertocat&window=all",
    f"/leaderboard.csv?repo={REPO}&window=all",
    f"/insights?repo={REPO}",
    f"/api/insights?repo={REPO}",
)


@pytest.fixture
def server(make_app, serve, redis_url):
    return serve(make_app(redis_url=redis_url, behaviours=()))


def deliver(server, event: str, payload: dict[str, Any]) -> None:
    assert server.deliver(event, payload).status_code == 202
    run_rq_worker(server.app)


def person(login: str, user_id: int) -> dict[str, Any]:
    return {"login": login, "id": user_id, "type": "User", "node_id": "x", "site_admin": False}


def comment(comment_id: int) -> dict[str, Any]:
    """The recorded comment (its repository as of 15:19, public), by mei."""
    payload = installed(example("issue_comment.created.1"))
    payload["comment"].update(id=comment_id, body="Thanks, this helps!", user=person("mei", 501))
    payload["sender"] = person("mei", 501)
    return payload


def labelled_good_first_issue() -> dict[str, Any]:
    """The recorded `issues.labeled` (its repository as of 15:19, public), with the good-first-issue label."""
    payload = installed(example("issues.labeled.1"))
    label = {**payload["label"], "name": "good first issue", "default": False}
    payload["label"] = label
    payload["issue"].update(labels=[label], assignees=[], assignee=None, state="open")
    return payload


def shown(server) -> dict[str, bool]:
    """For each address: whether it answers 200 and shows the repository, mei or the issue's title."""
    found = {}
    for path in ADDRESSES:
        response = server.session.get(server.url + path, timeout=30)
        assert response.status_code in (200, 404), (path, response.status_code)
        words = ("hello-world", "mei", GOOD_FIRST_TITLE.lower())
        found[path] = response.status_code == 200 and any(word in response.text.lower() for word in words)
    return found


def everywhere(server) -> bool:
    found = shown(server)
    assert all(found.values()), found
    return True


def nowhere(server) -> bool:
    found = shown(server)
    assert not any(found.values()), found
    return True


def test_a_late_delivery_never_makes_a_private_repository_public_again(server, github):
    deliver(server, "installation", lifecycle("installation.created.1", repositories=[{**HELLO, "private": False}]))
    deliver(server, "issues", labelled_good_first_issue())
    deliver(server, "issue_comment", comment(7001))
    assert everywhere(server)

    deliver(server, "repository", installed(example("repository.privatized.1")))
    assert nowhere(server)

    # Older payloads, delivered late (or redelivered): each says the repository is public.
    deliver(server, "issue_comment", comment(7002))
    deliver(server, "issues", labelled_good_first_issue())
    added = lifecycle("installation_repositories.added.1", repositories_added=[{**HELLO, "private": False}])
    deliver(server, "installation_repositories", added)
    assert nowhere(server)

    # Made public again: back on every page; the comment that arrived while private counts too.
    deliver(server, "repository", installed(example("repository.publicized.1")))
    assert everywhere(server)
    board = server.session.get(f"{server.url}/api/leaderboard?org=Codertocat&window=all", timeout=30).json()
    assert [(e["login"], e["counts"]["comments"]) for e in board["entries"]] == [("mei", 2)]

    # The privatization delivered once more, after the publication it preceded: it changes nothing.
    deliver(server, "repository", installed(example("repository.privatized.1")))
    assert everywhere(server)


def test_a_push_payloads_unix_times_date_its_visibility_too(server, github):
    """Push payloads give `pushed_at` as Unix seconds: still a time the payload's visibility held."""
    deliver(server, "installation", lifecycle("installation.created.1", repositories=[{**HELLO, "private": False}]))
    deliver(server, "issue_comment", comment(7001))
    deliver(server, "repository", installed(example("repository.privatized.1")))
    late = comment(7002)
    late["repository"].update(updated_at=1557933565, pushed_at=1557933657)  # push.none.1's: 15:19:25, 15:20:57
    deliver(server, "issue_comment", late)
    assert nowhere(server)


def test_a_repository_removed_from_the_installation_leaves_every_page_and_api(server, github):
    deliver(server, "installation", lifecycle("installation.created.1", repositories=[{**HELLO, "private": False}]))
    deliver(server, "issues", labelled_good_first_issue())
    deliver(server, "issue_comment", comment(7001))
    assert everywhere(server)

    removed = lifecycle("installation_repositories.removed.1", repositories_removed=[{**HELLO, "private": False}])
    deliver(server, "installation_repositories", removed)
    assert nowhere(server)
    for path in (f"/api/leaderboard?repo={REPO}", f"/api/insights?repo={REPO}", "/api/leaderboard?org=Codertocat"):
        response = server.session.get(server.url + path, timeout=30)
        assert response.status_code == 404, path

    deliver(server, "issue_comment", comment(7002))  # a late delivery does not bring it back
    assert nowhere(server)
    added = lifecycle("installation_repositories.added.1", repositories_added=[{**HELLO, "private": False}])
    deliver(server, "installation_repositories", added)
    assert everywhere(server)


MAY_15 = datetime(2019, 5, 15, 15, 21, 2)
EARLIER, LATER = MAY_15 - timedelta(seconds=1), MAY_15 + timedelta(seconds=1)


@pytest.mark.parametrize(
    "case, held, claim, expected",
    [
        ("a newer claim wins", (True, MAY_15), (False, LATER), (False, LATER)),
        ("an older claim changes nothing", (True, MAY_15), (False, EARLIER), (True, MAY_15)),
        ("an older private claim changes nothing either", (False, MAY_15), (True, EARLIER), (False, MAY_15)),
        ("at the same time private wins", (False, MAY_15), (True, MAY_15), (True, MAY_15)),
        ("at the same time public does not win", (True, MAY_15), (False, MAY_15), (True, MAY_15)),
        ("an undated private claim wins", (False, MAY_15), (True, None), (True, MAY_15)),
        ("an undated public claim changes nothing", (True, MAY_15), (False, None), (True, MAY_15)),
        ("an undated public claim leaves an undated private one", (True, None), (False, None), (True, None)),
        ("any dated claim beats an undated one", (True, None), (False, EARLIER), (False, EARLIER)),
    ],
)
def test_visibility_only_moves_forward_in_github_time(case, held, claim, expected):
    assert visibility(*held, *claim) == expected, case


@pytest.mark.parametrize(
    "case, repository, expected",
    [
        ("ISO text", {"updated_at": "2019-05-15T15:21:02Z", "pushed_at": "2019-05-15T15:20:57Z"}, MAY_15),
        ("push payloads' Unix seconds", {"updated_at": "2019-05-15T15:20:41Z", "pushed_at": 1557933662}, MAY_15),
        ("no time at all", {}, None),
        ("garbage", {"updated_at": "yesterday", "pushed_at": True}, None),
    ],
)
def test_a_payloads_visibility_is_dated_by_its_repositorys_times(case, repository, expected):
    assert visibility_time(repository) == expected, case


def test_migration_8_upgrades_a_database_made_before_it(database_url):
    engine = db.make_engine(database_url)
    try:
        db.migrate(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE repositories DROP COLUMN visibility_at"))
            conn.execute(sa.text("DELETE FROM schema_version WHERE version >= 8"))
        assert db.migrate(engine)[:1] == [8], "and the later ones, which find their work done"
        with engine.connect() as conn:
            assert "visibility_at" in {c["name"] for c in sa.inspect(conn).get_columns("repositories")}
    finally:
        db.metadata.drop_all(engine)
        engine.dispose()
