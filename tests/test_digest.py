"""The weekly digest (issue 11, section 4) against a history computed by hand.

The digest week is 2026-W48 (Monday 11-23 to Sunday 11-29, UTC), built on Wednesday 2026-12-02; its
12 baseline weeks start on Mondays 08-31 (k = 0) to 11-16 (k = 11). Owner `llmasos` has two public
repositories, kernel and docs, and a private one, secret, which must never show.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from domain import contributions as build
from domain import contributions as kinds
from domain.contributions import Contribution, Repo, Subject
from engagement.good_first_issues.claims import step_intent_prefix
from engagement.good_first_issues.decide import RELEASE
from readmodels.digest import BadWeek, Digest, Figure, FirstMerge, TopContributor, parse_week, render
from readmodels.digest import build as digest_of
from readmodels.leaderboard import NotVisible
from storage.db import intents
from storage.good_first_issues import GoodFirstIssueStore, Snapshot
from storage.ledger import LedgerStore

TODAY = date(2026, 12, 2)
W48 = date(2026, 11, 23)
KERNEL = Repo(42, "llmasos/kernel", private=False, installation_id=7)
DOCS = Repo(43, "llmasos/docs", private=False, installation_id=7)
SECRET = Repo(44, "llmasos/secret", private=True, installation_id=7)
ALICE, BOB, CAROL, DAVE, ERIN, FRANK = range(1, 7)
LOGINS = {ALICE: "alice", BOB: "bob", CAROL: "carol", DAVE: "dave", ERIN: "erin", FRANK: "frank"}


def baseline(k: int, weekday: int, hour: int) -> datetime:
    return datetime(2026, 8, 31, hour) + timedelta(weeks=k, days=weekday)


def in_w48(weekday: int, hour: int) -> datetime:
    return datetime.combine(W48, datetime.min.time()) + timedelta(days=weekday, hours=hour)


def subject(number: int, is_pull: bool, author: int, opened: datetime) -> Subject:
    return Subject(number, is_pull, author, opened)


def event(kind: str, actor: int, at: datetime, about: Subject, repo: Repo = KERNEL, positive: int = 0) -> Contribution:
    key = f"{repo.id}:{kind}:{actor}:{at.isoformat()}"
    url = f"https://github.com/{repo.full_name}/{'pull' if about.is_pull else 'issues'}/{about.number}"
    return Contribution(key, kind, repo, actor, LOGINS[actor], at, about.number, url, about, positive, 0)


ISSUE_1 = subject(1, False, ALICE, datetime(2026, 6, 1, 9))
PULL_5 = subject(5, True, ALICE, baseline(2, 0, 9))
ISSUE_25 = subject(25, False, ALICE, baseline(11, 0, 9))
ISSUE_30 = subject(30, False, BOB, in_w48(0, 9))
PULL_10 = subject(10, True, CAROL, in_w48(0, 10))
PULL_11 = subject(11, True, DAVE, in_w48(3, 8))
PULL_12 = subject(12, True, ALICE, in_w48(2, 8))
PULL_31 = subject(31, True, BOB, in_w48(3, 9))
DOCS_20 = subject(20, False, ERIN, in_w48(1, 9))
SECRET_50 = subject(50, False, FRANK, in_w48(1, 9))

HISTORY = [
    # June: alice and bob arrive (before the span: neither is new in it).
    event(kinds.ISSUE_OPENED, ALICE, datetime(2026, 6, 1, 9), ISSUE_1),
    event(kinds.COMMENT, BOB, datetime(2026, 6, 2, 9), ISSUE_1),
    # Baseline: alice comments every week, bob in weeks 0-4 and 11, so active = [2]*5 + [1]*6 + [2], mean 1.5.
    *(event(kinds.COMMENT, ALICE, baseline(k, 1, 10), ISSUE_1) for k in range(12)),
    *(event(kinds.COMMENT, BOB, baseline(k, 2, 10), ISSUE_1) for k in range(5)),
    # Week 2: alice's pull request 5 is merged (1 positive reaction): merged [0,0,1,0...], acceptance and
    # satisfaction 100% that week only.
    event(kinds.PR_MERGED, ALICE, baseline(2, 1, 9), PULL_5, positive=1),
    # Week 11: alice opens issue 25, bob answers in 1 h: the only baseline issue response.
    event(kinds.ISSUE_OPENED, ALICE, baseline(11, 0, 9), ISSUE_25),
    event(kinds.COMMENT, BOB, baseline(11, 0, 10), ISSUE_25),
    # W48 in kernel. alice: 2 comments (1 each), a review (3), her 2nd merge (10) = 15 points.
    event(kinds.COMMENT, ALICE, in_w48(1, 10), ISSUE_1),
    event(kinds.ISSUE_OPENED, BOB, in_w48(0, 9), ISSUE_30),  # bob: issue (2) + comment (1) = 3
    event(kinds.COMMENT, ALICE, in_w48(0, 12), ISSUE_30),  # answered in 3 h
    event(kinds.PR_OPENED, CAROL, in_w48(0, 10), PULL_10),  # carol, new: her first merge (10)
    event(kinds.REVIEW_APPROVED, ALICE, in_w48(1, 10), PULL_10),  # answered in 24 h
    event(kinds.PR_MERGED, CAROL, in_w48(2, 10), PULL_10, positive=4),
    event(kinds.PR_OPENED, DAVE, in_w48(3, 8), PULL_11),  # dave, new, opted out: counted, never named
    event(kinds.COMMENT, BOB, in_w48(3, 10), PULL_11),  # answered in 2 h: pull requests' median 13 h
    event(kinds.PR_MERGED, DAVE, in_w48(4, 8), PULL_11),
    event(kinds.PR_MERGED, ALICE, in_w48(2, 9), PULL_12),  # not a first merge: pull request 5 was hers
    event(kinds.PR_OPENED, BOB, in_w48(3, 9), PULL_31),
    event(kinds.PR_CLOSED, ALICE, in_w48(4, 9), PULL_31),  # closed unmerged, its reactions: 1 negative
    # W48 elsewhere: erin is new in docs (the owner's digest only); frank acts only in the private repository.
    event(kinds.ISSUE_OPENED, ERIN, in_w48(1, 9), DOCS_20, repo=DOCS),
    event(kinds.ISSUE_OPENED, FRANK, in_w48(1, 9), SECRET_50, repo=SECRET),
    event(kinds.COMMENT, FRANK, in_w48(1, 10), SECRET_50, repo=SECRET),
]


def record(engine: Engine) -> None:
    ledger = LedgerStore(engine)
    closed_31 = HISTORY[-4]
    ledger.record(item for item in HISTORY if item is not closed_31)
    ledger.record([Contribution(**{**closed_31.__dict__, "negative": 1})])
    # A bot's comment is never a contribution: the builder gives nothing to record.
    bot = {"login": "ci[bot]", "id": 99, "type": "Bot"}
    issue = {"number": 30, "user": {"login": "bob", "id": BOB, "type": "User"}, "created_at": "2026-11-23T09:00:00Z"}
    ledger.record([build.created_comment(KERNEL, issue, {"id": 5, "user": bot, "created_at": "2026-11-24T10:00:00Z"})])
    ledger.set_opted_out(DAVE, "dave", True)
    issues = GoodFirstIssueStore(engine)
    for repo, number in ((KERNEL, 40), (KERNEL, 41), (SECRET, 50)):
        url = f"https://github.com/{repo.full_name}/issues/{number}"
        snapshot = Snapshot(
            repo.id, repo.full_name, number, f"Task {number}", url, "open", ("good first issue",), (), None
        )
        issues.observe(snapshot, "good first issue")
    issues.claim(KERNEL.id, 41, "carol")
    # Claims the claims task released: one in W48 in kernel; one the week before; one still under way;
    # one in the private repository.
    releases = [
        (KERNEL, 40, in_w48(2, 3), in_w48(2, 3)),
        (KERNEL, 40, in_w48(0, 0) - timedelta(days=2), in_w48(0, 0) - timedelta(days=2)),
        (KERNEL, 41, in_w48(3, 3), None),
        (SECRET, 50, in_w48(2, 3), in_w48(2, 3)),
    ]
    with engine.begin() as conn:
        for n, (repo, number, begun, done) in enumerate(releases):
            key = f"{step_intent_prefix(RELEASE, repo.id)}{number}:ana{n}:2026-11-01T00:00:00"
            conn.execute(intents.insert().values(key=key, delivery_id="task", created_at=begun, done_at=done))


@pytest.fixture
def history(engine: Engine) -> Engine:
    record(engine)
    return engine


def test_a_repository_digest_equals_the_hand_computed_values(history: Engine) -> None:
    digest = digest_of(history, repo="LLMasOS/Kernel", today=TODAY)
    assert (digest.name, digest.scope, digest.week, digest.iso_week) == ("llmasos/kernel", "repo:42", W48, "2026-W48")
    assert digest.newcomers == ("carol",) and digest.unnamed_newcomers == 1, "dave opted out: counted, not named"
    assert digest.first_merges == (
        FirstMerge("carol", "llmasos/kernel", 10, "https://github.com/llmasos/kernel/pull/10"),
    )
    assert digest.top_contributors == (
        TopContributor("alice", 15),
        TopContributor("carol", 10),
        TopContributor("bob", 3),
    )
    assert digest.figures == (
        # [2]*5 + [1]*6 + [2] before, mean 1.5; over those and W48's 4: mean 23/13, σ 0.80, 4 is beyond 2σ.
        Figure("active_contributors", "count", 4, 1.5, anomaly=True),
        Figure("new_contributors", "count", 2, 0.0, anomaly=True),  # carol and dave; none in the baseline
        Figure("prs_merged", "count", 3, 1 / 12, anomaly=True),
        Figure("first_response_issues_hours", "hours", 3.0, 1.0, anomaly=False),
        Figure("first_response_pulls_hours", "hours", 13.0, None, anomaly=False),  # median of 24 h and 2 h
        Figure("pr_acceptance", "ratio", 0.75, 1.0, anomaly=False),  # 3 merged, 1 closed unmerged
        Figure("satisfaction", "ratio", 0.8, 1.0, anomaly=False),  # 4 positive, 1 negative
    )
    assert digest.figures[0].change == 2.5 and digest.figures[4].change is None
    assert (digest.good_first_issues_open, digest.good_first_issues_claimed) == (1, 1)
    assert digest.good_first_issues_released == 1, "W48's finished release in kernel only"
    assert digest.waiting_for_response == (), "filled by the response watch, once it exists"


def test_an_owner_digest_counts_its_public_repositories_together_and_never_the_private_one(history: Engine) -> None:
    digest = digest_of(history, org="LLMASOS", week=date(2026, 11, 26), today=TODAY)
    assert (digest.name, digest.scope, digest.week) == ("llmasos", "org:llmasos", W48)
    assert digest.newcomers == ("carol", "erin") and digest.unnamed_newcomers == 1  # erin in docs; not frank
    figures = {figure.name: figure for figure in digest.figures}
    assert figures["active_contributors"].value == 5, "alice, bob, carol, dave, erin: frank is private"
    assert figures["new_contributors"].value == 3
    assert figures["first_response_issues_hours"].value == 3.0, "erin's unanswered issue is left out"
    assert [top.login for top in digest.top_contributors] == ["alice", "carol", "bob", "erin"]
    assert (digest.good_first_issues_open, digest.good_first_issues_claimed) == (1, 1), "not secret's issue 50"
    text = render(digest, "both")
    assert "frank" not in text and "secret" not in text


def test_the_english_digest_reads_as_expected(history: Engine) -> None:
    text = render(digest_of(history, repo="llmasos/kernel", today=TODAY), "en")
    lines = text.splitlines()
    assert lines[0] == "### Weekly digest of ` llmasos/kernel `: 2026-W48 (2026-11-23 to 2026-11-29, UTC)"
    for line in (
        "` carol `, and 1 more not named here",
        "- ` carol `: [llmasos/kernel#10](https://github.com/llmasos/kernel/pull/10)",
        "- ` alice `: 15",
        "- 4 active contributors (+2.5 vs the 12-week mean of 1.5; unusually high)",
        "- 2 new contributors (+2 vs the 12-week mean of 0; unusually high)",
        "- 3 pull requests merged (+2.92 vs the 12-week mean of 0.08; unusually high)",
        "- median time to first response on issues: 3 h (+2 h vs the 12-week mean of 1 h)",
        "- median time to first response on pull requests: 13 h (nothing to compare with in the weeks before)",
        "- pull request acceptance: 75% (-25% vs the 12-week mean of 100%)",
        "- satisfaction: 80% (-20% vs the 12-week mean of 100%)",
        "Open for newcomers now: 1; claimed: 1; released this week after a quiet claim: 1.",
    ):
        assert line in lines, line
    assert "dave" not in text, "opted out: never named"
    assert "@" not in text, "a digest mentions nobody"


def test_the_chinese_digest_and_both_languages(history: Engine) -> None:
    digest = digest_of(history, repo="llmasos/kernel", today=TODAY)
    zh = render(digest, "zh")
    assert zh.splitlines()[0] == "### ` llmasos/kernel ` 每周简报：2026-W48（2026-11-23 至 2026-11-29，UTC）"
    assert "- 活跃贡献者 4 人（较前 12 周均值 1.5 +2.5；异常偏高）" in zh.splitlines()
    assert "- issue 首次响应时间中位数：3 小时（较前 12 周均值 1 小时 +2 小时）" in zh.splitlines()
    both = render(digest, "both")
    assert both == render(digest, "en") + "\n---\n\n" + zh


def test_user_text_is_inert_and_logins_are_no_mentions() -> None:
    digest = Digest(
        name="o/r",
        scope="repo:1",
        week=W48,
        newcomers=("x`y", "@team"),
        unnamed_newcomers=0,
        first_merges=(FirstMerge("z", "o/r", 1, "javascript:alert(1)"),),
        top_contributors=(),
        figures=(Figure("satisfaction", "ratio", None, None, anomaly=False),),
        good_first_issues_open=0,
        good_first_issues_claimed=0,
    )
    text = render(digest)
    assert "`` x`y ``, ` @team `" in text, "a login is a code span: GitHub mentions nobody inside one"
    assert "- ` z `: o/r#1" in text.splitlines(), "no link to anything but https"
    assert "- satisfaction: — (nothing to measure this week)" in text.splitlines()


@pytest.mark.parametrize(
    ("week", "message"),
    [
        (date(2026, 11, 30), "2026-W49 has not ended"),  # the running week
        (date(2026, 12, 9), "2026-W50 has not ended"),
    ],
)
def test_a_week_that_has_not_ended_is_refused(history: Engine, week: date, message: str) -> None:
    with pytest.raises(BadWeek, match=message):
        digest_of(history, repo="llmasos/kernel", week=week, today=TODAY)
    assert digest_of(history, repo="llmasos/kernel", today=date(2026, 11, 30)).week == W48, "Monday: W48 has ended"


def test_weeks_are_parsed_and_private_or_unknown_names_refused(history: Engine) -> None:
    assert parse_week("2026-W48") == W48 and parse_week("2026-W01") == date(2025, 12, 29)
    for bad in ("2026-48", "2026-W54", "W48"):
        with pytest.raises(BadWeek):
            parse_week(bad)
    for repo, org in (("llmasos/secret", None), ("llmasos/nothing", None), (None, "nobody")):
        with pytest.raises(NotVisible):
            digest_of(history, repo=repo, org=org, today=TODAY)


def test_the_cli_previews_the_digest(make_app, database_url) -> None:
    app = make_app()
    from tests.conftest import services

    record(services(app).store.engine)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["digest", "llmasos/kernel", "--preview", "--week", "2026-W48", "--lang", "zh"])
    assert result.exit_code == 0, result.output
    assert "- 活跃贡献者 4 人（较前 12 周均值 1.5 +2.5；异常偏高）" in result.output.splitlines()
    owner = runner.invoke(args=["digest", "llmasos", "--preview", "--week", "2026-W48"])
    assert owner.exit_code == 0 and "- 5 active contributors" in owner.output

    year, number, _ = datetime.now(UTC).date().isocalendar()
    running = runner.invoke(args=["digest", "llmasos/kernel", "--preview", "--week", f"{year}-W{number:02d}"])
    assert running.exit_code != 0 and "has not ended" in running.output
    private = runner.invoke(args=["digest", "llmasos/secret", "--preview", "--week", "2026-W48"])
    assert private.exit_code != 0 and "no public repository llmasos/secret" in private.output
    posting = runner.invoke(args=["digest", "llmasos/kernel"])
    assert posting.exit_code != 0 and "--preview to print the digest or --post" in posting.output
