"""Installation lifecycle: the installed repositories stay current, and work for a removed or
suspended installation is dropped as `ignored`, without errors and without writing to GitHub."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from engagement.installations import installation_of, repos_of
from storage import db
from storage.db import repositories
from storage.installations import InstallationStore
from tests.conftest import INSTALLATION_ID, REPO, example, installed, run_rq_worker, services, wait_for
from tests.support import behaviours

HELLO = {"id": 186853002, "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=", "name": "Hello-World", "full_name": REPO}
SPACE = {
    "id": 186853007,
    "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDc=",
    "name": "Space",
    "full_name": "Codertocat/Space",
}


def lifecycle(name: str, **changes: object) -> dict:
    """A recorded installation event, moved to our installation of Codertocat's repositories."""
    payload = example(name)
    payload["installation"]["id"] = INSTALLATION_ID
    payload["installation"]["account"]["login"] = "Codertocat"
    payload.update(changes)
    return payload


def created(*repos: dict) -> dict:
    return lifecycle("installation.created.1", repositories=[{**r, "private": False} for r in repos or (HELLO,)])


def suspension(action: str) -> dict:
    """No `installation.suspend` example is recorded: the unsuspend one, as GitHub sends it for a suspension."""
    payload = lifecycle("installation.unsuspend.1", action=action)
    if action == "suspend":
        payload["installation"].update(suspended_at="2024-05-06T07:08:09Z", suspended_by=payload["sender"])
    return payload


def opened(number: int = 1) -> dict:
    payload = installed(example("issues.opened.1"))
    payload["issue"]["number"] = number
    return payload


@pytest.fixture
def server(make_app, serve, redis_url):
    return serve(make_app(redis_url=redis_url))


def deliver(server, event: str, payload: dict, delivery_id: str | None = None) -> None:
    assert server.deliver(event, payload, delivery_id=delivery_id).status_code == 202
    run_rq_worker(server.app)


def listed(server) -> list[str]:
    return InstallationStore(services(server.app).store.engine).installed_repositories(INSTALLATION_ID)


def status(server, delivery_id: str) -> tuple[str, str | None]:
    delivery = services(server.app).store.get(delivery_id)
    return delivery.status, delivery.last_error


def token_requests(github) -> int:
    return len(github.calls("POST", f"/app/installations/{INSTALLATION_ID}/access_tokens"))


@pytest.mark.parametrize(
    "case, installation, expected",
    [
        ("github.com", {"html_url": "https://github.com/settings/installations/1"}, "https://github.com/o/r"),
        (
            "enterprise server",
            {"html_url": "https://ghe.example.org/settings/installations/1"},
            "https://ghe.example.org/o/r",
        ),
        (
            "no installation url: the account's",
            {"account": {"html_url": "https://github.com/o"}},
            "https://github.com/o/r",
        ),
        ("no url at all", {}, ""),
    ],
)
def test_repositories_are_linked_on_the_installations_host(case, installation, expected):
    payload = {"installation": {"id": 7, **installation}, "repositories": [{"id": 1, "full_name": "o/r"}]}
    [repo] = repos_of(payload, "repositories")
    assert (repo.html_url, repo.installation_id, repo.private) == (expected, 7, False), case


def test_the_installation_is_read_from_the_payload():
    found = installation_of(suspension("suspend"))
    assert (found.id, found.account_login, found.account_type) == (INSTALLATION_ID, "Codertocat", "Organization")
    assert found.suspended_at is not None and found.suspended_at.isoformat() == "2024-05-06T07:08:09"


def test_installing_lists_the_repositories_once(server, github):
    for delivery_id in ("install-1", "install-1", "install-2"):  # a redelivery, and GitHub sending it twice
        server.deliver("installation", created(HELLO, SPACE), delivery_id=delivery_id)
    run_rq_worker(server.app)
    assert listed(server) == ["Codertocat/Hello-World", "Codertocat/Space"]
    with services(server.app).store.engine.connect() as conn:
        row = conn.execute(sa.select(repositories).where(repositories.c.full_name == REPO)).one()
    assert (row.owner, row.html_url, row.private) == ("Codertocat", f"https://github.com/{REPO}", False)
    stored = InstallationStore(services(server.app).store.engine).get(INSTALLATION_ID)
    assert stored is not None and (stored.account_login, stored.account_type) == ("Codertocat", "User")
    assert status(server, "install-2") == ("done", None)
    assert github.requests == [], "the payloads say everything: no GitHub call"


def test_repositories_removed_are_no_longer_installed_and_come_back_when_added(server):
    deliver(server, "installation", created(HELLO, SPACE))
    removed = lifecycle("installation_repositories.removed.1", repositories_removed=[{**SPACE, "private": False}])
    deliver(server, "installation_repositories", removed)
    assert listed(server) == [REPO]
    with services(server.app).store.engine.connect() as conn:
        kept = conn.execute(sa.select(repositories.c.installation_id).where(repositories.c.id == SPACE["id"])).one()
    assert kept.installation_id is None, "the repository stays known (its history is in the ledger), not installed"
    added = lifecycle("installation_repositories.added.1", repositories_added=[{**SPACE, "private": False}])
    deliver(server, "installation_repositories", added)
    assert listed(server) == [REPO, "Codertocat/Space"]


def test_a_delivery_waiting_for_a_retry_when_the_app_is_uninstalled_ends_ignored(server, github):
    deliver(server, "installation", created())
    github.fail_next("POST", r"/comments$", 500)
    deliver(server, "issues", opened(), delivery_id="queued-before-uninstall")
    assert status(server, "queued-before-uninstall")[0] == "retrying"
    tokens = token_requests(github)
    deliver(server, "installation", lifecycle("installation.deleted.1"), delivery_id="uninstall")
    store = services(server.app).store
    # The retry runs after the uninstall was processed (FIFO), in this run or, once due, a later one.
    wait_for(
        lambda: run_rq_worker(server.app) or store.get("queued-before-uninstall").status != "retrying",
        message="the retry",
    )
    assert status(server, "queued-before-uninstall") == ("ignored", "installation removed")
    assert status(server, "uninstall") == ("done", None)
    assert token_requests(github) == tokens, "nothing asked GitHub for the removed installation"
    assert github.comments(REPO, 1) == [] and listed(server) == []
    assert "failed" not in {outcome for outcome, _ in store.handler_outcomes("queued-before-uninstall").values()}


@pytest.mark.parametrize(
    "case, answer, message, reason",
    [
        ("uninstalled: GitHub no longer knows the installation", 404, "Not Found", "installation removed"),
        ("suspended", 403, "This installation has been suspended", "installation suspended"),
    ],
)
def test_a_delivery_github_refuses_a_token_for_ends_ignored(server, github, case, answer, message, reason):
    """The delivery was queued before the app was uninstalled or suspended, and is processed before
    the event saying so: GitHub's refusal to issue a token tells the worker."""
    github.fail_next("POST", r"/access_tokens$", answer, body={"message": message}, times=50)
    deliver(server, "issues", opened(), delivery_id="refused")
    found, error = status(server, "refused")
    assert found == "ignored" and error.startswith(reason), case
    assert github.writes() == [] and github.comments(REPO, 1) == []
    outcomes = services(server.app).store.handler_outcomes("refused")
    assert "failed" not in {outcome for outcome, _ in outcomes.values()}


def test_a_403_that_is_not_a_suspension_still_fails(server, github):
    github.fail_next("POST", r"/access_tokens$", 403, body={"message": "Resource not accessible"}, times=50)
    deliver(server, "issues", opened(), delivery_id="forbidden")
    assert status(server, "forbidden")[0] == "failed"


def test_a_suspended_installation_does_nothing_until_unsuspended(server, github):
    deliver(server, "installation", created(HELLO, SPACE))
    deliver(server, "installation", suspension("suspend"))
    engine = services(server.app).store.engine
    assert InstallationStore(engine).state(INSTALLATION_ID) == "suspended"
    with engine.connect() as conn:
        marks = conn.execute(sa.select(repositories.c.installation_suspended_at)).scalars().all()
    assert len(marks) == 2 and all(mark is not None for mark in marks)
    assert listed(server) == [REPO, "Codertocat/Space"], "still installed, only suspended"

    deliver(server, "issues", opened(), delivery_id="while-suspended")
    assert status(server, "while-suspended") == ("ignored", "installation suspended")
    assert github.requests == []

    deliver(server, "installation", suspension("unsuspend"))
    assert InstallationStore(engine).state(INSTALLATION_ID) is None
    with engine.connect() as conn:
        assert conn.execute(sa.select(repositories.c.installation_suspended_at)).scalars().all() == [None, None]
    deliver(server, "issues", opened(), delivery_id="after-unsuspend")
    assert status(server, "after-unsuspend") == ("done", None)
    assert [c["body"] for c in github.comments(REPO, 1)] == [behaviours.ACK.format(login="Codertocat")]


def test_an_installation_deleted_stays_deleted_whatever_arrives_late(server):
    """GitHub never reuses an installation id, so a late `created` or `added` cannot bring it back."""
    deliver(server, "installation", created())
    deliver(server, "installation", lifecycle("installation.deleted.1"))
    deliver(server, "installation", created())
    added = lifecycle("installation_repositories.added.1", repositories_added=[{**SPACE, "private": False}])
    deliver(server, "installation_repositories", added)
    deliver(server, "installation", suspension("unsuspend"))
    assert listed(server) == []
    assert InstallationStore(services(server.app).store.engine).state(INSTALLATION_ID) == "removed"


def test_migration_5_upgrades_a_database_made_before_it(database_url):
    engine = db.make_engine(database_url)
    try:
        db.migrate(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE repositories DROP COLUMN installation_suspended_at"))
            conn.execute(sa.text("DROP TABLE installations"))
            conn.execute(sa.text("DELETE FROM schema_version WHERE version >= 5"))
            conn.execute(
                sa.text(
                    "INSERT INTO repositories (id, full_name, owner, private, html_url, updated_at) "
                    "VALUES (1, 'o/r', 'o', false, '', CURRENT_TIMESTAMP)"
                )
            )
        assert db.migrate(engine)[:1] == [5]
        with engine.connect() as conn:
            assert conn.execute(sa.select(repositories.c.id, repositories.c.installation_suspended_at)).all() == [
                (1, None)
            ]
    finally:
        db.metadata.drop_all(engine)
        engine.dispose()


def test_work_of_other_installations_goes_on(server, github):
    """Only the removed installation's deliveries are dropped."""
    gone = lifecycle("installation.deleted.1")
    gone["installation"]["id"] = 77
    deliver(server, "installation", gone)
    deliver(server, "issues", opened(), delivery_id="other-installation")
    assert status(server, "other-installation") == ("done", None)
