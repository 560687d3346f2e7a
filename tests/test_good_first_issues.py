"""Good first issues: commands parsed as a table, decisions as a table, the state store directly, then
real payloads through the app and an RQ worker against the fake GitHub."""

from __future__ import annotations

import copy
import threading
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

import catalogs
from engagement.common import commands
from engagement.good_first_issues import GoodFirstIssuesConfig
from engagement.good_first_issues.actions import label_specs
from engagement.good_first_issues.decide import (
    ACKNOWLEDGE,
    ASSIGN,
    CAP_REACHED,
    CLAIM,
    CLOSED,
    HELD,
    LABEL,
    MARK,
    NOT_ALLOWED,
    NOT_GOOD_FIRST,
    NOT_YOURS,
    OPEN_CLAIMS,
    REPLY,
    ROLE,
    UNASSIGN,
    UNCLAIM,
    UNLABEL,
    UNMARK,
    AddLabel,
    Facts,
    Issue,
    Lookup,
    Plan,
    decide,
    decide_keywords,
    decide_synonym,
    role_from,
)
from engagement.good_first_issues.messages import GUIDE_MARKER, REPLIES, render_guide
from storage import db
from storage.good_first_issues import GoodFirstIssueStore, Snapshot
from tests.conftest import REPO, example, installed, pushed, run_rq_worker, services
from webhooks.jobs import process

REPO_ID = 186853002  # as in the recorded payloads
NEWCOMER, OTHER, MAINTAINER = "li-newcomer", "sam-second", "octo-maintainer"
GFI = "good first issue"

# --- commands in a comment


@pytest.mark.parametrize(
    "case, body, expected",
    [
        ("a command on its own line", "/claim", [("claim", ())]),
        ("a command with arguments", "/claim please, it looks fun", [("claim", ("please,", "it", "looks", "fun"))]),
        ("names ignore case", "/Good-First-Issue", [("good-first-issue", ())]),
        ("up to three spaces may lead", "   /claim", [("claim", ())]),
        ("four spaces make it code", "    /claim", []),
        ("a tab makes it code", "\t/claim", []),
        ("several commands run in order", "/good-first-issue\nthanks!\n/claim", [(MARK, ()), (CLAIM, ())]),
        ("Windows line ends", "/claim\r\n/unclaim\r\n", [(CLAIM, ()), (UNCLAIM, ())]),
        ("a slash inside a sentence is no command", "I would like to /claim this", []),
        ("paths are no commands", "/usr/bin/llmasos crashes on start", []),
        ("a fenced code block hides commands", "```\n/claim\n```", []),
        ("a tilde fence hides commands", "~~~\n/claim\n~~~", []),
        ("a fence with an info string", "```console\n$ ls\n/claim\n```\n/unclaim", [(UNCLAIM, ())]),
        ("a fence closes only with a fence as long", "````\n```\n/claim\n````\n/unclaim", [(UNCLAIM, ())]),
        ("an unclosed fence hides the rest", "text\n```\n/claim", []),
        ("inline code hides a command", "`/claim`", []),
        ("inline code can span lines", "run `make\n/claim` first", []),
        ("a quote hides a command", "> /claim", []),
        ("a quote continues onto the next line", "> could I take this?\n/claim", []),
        ("a blank line ends the quote", "> could I take this?\n\n/claim", [(CLAIM, ())]),
        ("a command after a code block counts", "```\nlog\n```\n/claim", [(CLAIM, ())]),
        ("an HTML comment hides commands", "<!-- /claim -->\n<!--\n/claim\n-->\n/unclaim", [(UNCLAIM, ())]),
        ("an empty comment has none", "", []),
    ],
)
def test_commands_in_a_comment(case, body, expected):
    assert [(c.name, c.args) for c in commands.parse(body)] == expected, case


def test_commands_know_their_line():
    assert commands.parse("hello\n\n/claim") == [commands.Command("claim", (), 3)]
    assert commands.parse(None) == []


@pytest.mark.parametrize(
    "case, before, after, expected",
    [
        ("a command the edit added runs", "I would like this one", "I would like this one\n/claim", [CLAIM]),
        ("a kept command does not run again", "/claim\nthx", "/claim\nthanks a lot", []),
        ("fixing a typo in a command runs it", "/cliam", "/claim", [CLAIM]),
        ("a command taken out of code runs", "```\n/claim\n```", "/claim", [CLAIM]),
        ("a command put into code does not run", "/claim", "```\n/claim\n```", []),
        ("a command unquoted runs", "> /claim", "/claim", [CLAIM]),
        ("repeating a command adds one", "/claim", "/claim\n/claim", [CLAIM]),
        ("removing a command adds nothing", "/claim\n/unclaim", "/unclaim", []),
    ],
)
def test_commands_an_edit_added(case, before, after, expected):
    assert [c.name for c in commands.added(before, after)] == expected, case


# --- decisions


def issue(
    labels=(GFI,), assignees=(), state="open", pull_request=False, archived=False, title="Fix a typo", body=""
) -> Issue:
    return Issue(
        REPO, REPO_ID, 7, title, body, f"https://github.com/{REPO}/issues/7", tuple(labels), tuple(assignees), state,
        pull_request, archived,
    )  # fmt: skip


def config(**changes):
    """The section with these settings changed (lists given as a YAML file would hold them)."""
    return replace(GoodFirstIssuesConfig(), **{k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()})


@pytest.mark.parametrize(
    "case, command, situation, settings, facts, expected",
    [
        ("marking needs the commenter's role first", MARK, {}, {}, Facts(), Lookup(ROLE)),
        ("triage may mark", MARK, {"labels": ()}, {}, Facts(role="triage"), LABEL),
        ("maintain may mark", MARK, {}, {}, Facts(role="maintain"), LABEL),
        ("write may mark", MARK, {}, {}, Facts(role="write"), LABEL),
        ("admin may remove", UNMARK, {}, {}, Facts(role="admin"), UNLABEL),
        ("read may not mark", MARK, {}, {}, Facts(role="read"), NOT_ALLOWED),
        ("no access may not remove", UNMARK, {}, {}, Facts(role="none"), NOT_ALLOWED),
        ("a failed permission lookup means silence", MARK, {}, {}, Facts(role=""), "could not check"),
        ("claiming a free good first issue needs the count", CLAIM, {}, {}, Facts(), Lookup(OPEN_CLAIMS)),
        ("claiming under the cap assigns", CLAIM, {}, {}, Facts(open_claims=1), ASSIGN),
        ("claiming at the cap is refused", CLAIM, {}, {}, Facts(open_claims=2), CAP_REACHED),
        ("the cap is configurable", CLAIM, {}, {"claim_cap": 3}, Facts(open_claims=2), ASSIGN),
        ("a cap of 0 means no limit and no count", CLAIM, {}, {"claim_cap": 0}, Facts(), ASSIGN),
        ("claiming a held issue names the holder", CLAIM, {"assignees": (OTHER,)}, {}, Facts(), HELD),
        ("claiming your own issue is acknowledged", CLAIM, {"assignees": (NEWCOMER,)}, {}, Facts(), ACKNOWLEDGE),
        ("claiming needs the good first issue label", CLAIM, {"labels": ("bug",)}, {}, Facts(), NOT_GOOD_FIRST),
        ("labels match whatever their case", CLAIM, {"labels": ("Good First Issue",)}, {}, Facts(open_claims=0),
         ASSIGN),
        ("the canonical label is the first configured", CLAIM, {"labels": ("easy",)}, {"labels": ["easy"]},
         Facts(open_claims=0), ASSIGN),
        ("claiming a closed issue is explained", CLAIM, {"state": "closed"}, {}, Facts(), CLOSED),
        ("the holder may unclaim", UNCLAIM, {"assignees": (NEWCOMER,)}, {}, Facts(), UNASSIGN),
        ("others cannot unclaim", UNCLAIM, {"assignees": (OTHER,)}, {}, Facts(), NOT_YOURS),
        ("commands on pull requests are ignored", CLAIM, {"pull_request": True}, {}, Facts(), "pull requests"),
        ("archived repositories get nothing", MARK, {"archived": True}, {}, Facts(role="admin"), "archived"),
        ("the behaviour can be turned off", CLAIM, {}, {"enabled": False}, Facts(), "turned off"),
        ("no labels configured: nothing to do", MARK, {}, {"labels": []}, Facts(role="admin"), "no labels"),
    ],
)  # fmt: skip
def test_decide(case, command, situation, settings, facts, expected):
    result = decide(command, issue(**situation), NEWCOMER, config(**settings), facts)
    if isinstance(expected, Lookup):
        assert result == expected, case
    elif isinstance(result, Plan):
        assert expected in (result.action, result.reply), case
        assert (result.action == REPLY) == bool(result.reply), case
    else:
        assert isinstance(result, str) and expected in result, case


def test_refusals_carry_what_the_reply_names():
    held = decide(CLAIM, issue(assignees=(OTHER, "third")), NEWCOMER, config(), Facts())
    assert isinstance(held, Plan) and held.holder == OTHER
    capped = decide(CLAIM, issue(), NEWCOMER, config(), Facts(open_claims=5))
    assert isinstance(capped, Plan) and capped.count == 5


@pytest.mark.parametrize(
    "case, text, settings, language",
    [
        ("an English issue is answered in English", "The installer crashes", {}, "en"),
        ("a Chinese issue is answered in Chinese", "安装程序在树莓派上崩溃了", {}, "zh"),
        ("the language can be forced", "The installer crashes", {"language": "zh"}, "zh"),
    ],
)
def test_language_follows_the_issue(case, text, settings, language):
    plan = decide(MARK, issue(title=text), MAINTAINER, config(**settings), Facts(role="triage"))
    assert isinstance(plan, Plan) and plan.language == language, case


@pytest.mark.parametrize(
    "case, label, labels, settings, expected",
    [
        ("a synonym brings the canonical label", "easy", ("easy",), {}, GFI),
        ("synonyms ignore case", "Beginner", ("Beginner",), {}, GFI),
        ("Chinese synonyms work", "新手", ("新手",), {}, GFI),
        ("other labels bring nothing", "bug", ("bug",), {}, "not a synonym"),
        ("the canonical label itself brings nothing", GFI, (GFI,), {}, "canonical"),
        ("an issue labelled already is left alone", "easy", ("easy", "Good First Issue"), {}, "already"),
        ("synonyms are configurable", "trivial", ("trivial",), {"synonyms": ["trivial"]}, GFI),
        ("turned off", "easy", ("easy",), {"enabled": False}, "turned off"),
    ],
)
def test_decide_synonym(case, label, labels, settings, expected):
    result = decide_synonym(issue(labels=labels), label, config(**settings))
    assert (result.label if isinstance(result, AddLabel) else result).count(expected) == 1, case


@pytest.mark.parametrize(
    "case, title, body, keywords, expected",
    [
        ("keyword rules are off by default", "Fix a typo", "", [], "off"),
        ("a keyword in the title labels", "Fix a typo in the README", "", ["typo"], GFI),
        ("a keyword in the text labels", "README", "There is a Typo here", ["typo"], GFI),
        ("keywords are whole words", "Typography is off", "", ["typo"], "no keyword"),
        ("Chinese keywords match inside a sentence", "文档里有一个错别字", "", ["错别字"], GFI),
        ("phrases work", "A good first task", "", ["first task"], GFI),
    ],
)
def test_decide_keywords(case, title, body, keywords, expected):
    result = decide_keywords(issue(labels=(), title=title, body=body), config(keywords=keywords))
    assert (result.label if isinstance(result, AddLabel) else result).count(expected) == 1, case


@pytest.mark.parametrize(
    "case, answer, role",
    [
        ("role_name tells triage apart from read", {"permission": "read", "role_name": "triage"}, "triage"),
        ("role_name tells maintain apart from write", {"permission": "write", "role_name": "maintain"}, "maintain"),
        ("an older answer without role_name", {"permission": "write"}, "write"),
        ("a custom role falls back to its base permission", {"permission": "write", "role_name": "docs-lead"}, "write"),
        ("an unknown user has no role", None, "none"),
    ],
)
def test_role_from_the_permission_answer(case, answer, role):
    assert role_from(answer) == role, case


def test_labels_are_created_with_colours_and_descriptions():
    assert label_specs(config()) == [
        (GFI, "7057ff", "Good for newcomers"),
        ("help wanted", "008672", "Extra attention is needed"),
    ]
    custom = label_specs(config(labels=["starter", "mentored"], label_colour="#00FF00", label_description="Easy"))
    assert custom == [("starter", "00ff00", "Easy"), ("mentored", "00ff00", "")]
    assert label_specs(config(label_colour="green"))[0][1] == "7057ff", "a bad colour falls back to the default"


def test_the_guide_says_how_to_claim_ask_and_submit():
    settings = config(forum_url="https://forum.llmasos.org", chat_url="https://chat.llmasos.org")
    text = render_guide(issue(), settings, "en", f"https://github.com/{REPO}/blob/master/CONTRIBUTING.md")
    assert text.startswith(GUIDE_MARKER)
    assert "comment `/claim`" in text and "(each person can hold 2 at a time)" in text and "`/unclaim`" in text
    assert "or on [the forum](https://forum.llmasos.org) or in [the chat](https://chat.llmasos.org)" in text
    assert "`Fixes #7`" in text and "[contributing guide](https://github.com/" in text
    chinese = render_guide(issue(), config(claim_cap=0), "zh", "")
    assert "这是一个适合新手的 issue" in chinese and "每人同时最多" not in chinese and "贡献指南" not in chinese
    assert {"en", "zh"} <= set(catalogs.languages(catalogs.BOT))


# --- the state store


@pytest.fixture
def store(database_url):
    engine = db.make_engine(database_url)
    db.migrate(engine)
    yield GoodFirstIssueStore(engine)
    engine.dispose()


T0 = datetime(2026, 1, 5, 12, 0, 0)


def seen(number, labels=(GFI,), assignees=(), state="open", at=T0, repository=REPO, repo_id=REPO_ID) -> Snapshot:
    url = f"https://github.com/{repository}/issues/{number}"
    return Snapshot(repo_id, repository, number, f"Issue {number}", url, state, labels, assignees, at)


def test_open_for_newcomers_lists_labelled_open_issues_nobody_holds(store):
    store.observe(seen(1), GFI)
    store.observe(seen(2, assignees=(OTHER,)), GFI)
    store.observe(seen(3, state="closed"), GFI)
    store.observe(seen(4, labels=("bug",)), GFI)  # never a good first issue: not even tracked
    store.observe(seen(5, labels=("Good First Issue", "docs")), GFI)
    store.observe(seen(6), GFI)
    store.reserve(REPO_ID, 6, NEWCOMER)  # being claimed
    store.observe(seen(1, repository="Octo/Other", repo_id=99), GFI)
    assert [i.number for i in store.open_for_newcomers(REPO)] == [1, 5]
    assert [i.number for i in store.open_for_newcomers(REPO.upper())] == [1, 5], "names ignore case"
    assert store.get(REPO_ID, 4) is None
    first = store.open_for_newcomers(REPO)[0]
    assert (first.title, first.html_url, first.open_for_newcomers) == (
        "Issue 1",
        f"https://github.com/{REPO}/issues/1",
        True,
    )


def test_issues_come_and_go_as_events_say(store):
    store.observe(seen(1, at=T0), GFI)
    store.observe(seen(1, assignees=(NEWCOMER,), at=T0 + timedelta(minutes=1)), GFI)
    assert store.open_for_newcomers(REPO) == []
    store.observe(seen(1, at=T0 + timedelta(minutes=2)), GFI)  # unassigned
    assert [i.number for i in store.open_for_newcomers(REPO)] == [1]
    store.observe(seen(1, labels=(), at=T0 + timedelta(minutes=3)), GFI)  # label removed
    assert store.open_for_newcomers(REPO) == [] and store.get(REPO_ID, 1).labelled is False
    store.observe(seen(1, at=T0 + timedelta(minutes=4)), GFI)
    store.observe(seen(1, state="closed", at=T0 + timedelta(minutes=5)), GFI)
    assert store.open_for_newcomers(REPO) == []
    store.observe(seen(1, at=T0 + timedelta(minutes=6)), GFI)  # reopened
    assert [i.number for i in store.open_for_newcomers(REPO)] == [1]
    store.forget(REPO_ID, 1)  # deleted or transferred
    assert store.open_for_newcomers(REPO) == []


def test_an_event_delivered_late_does_not_undo_a_newer_one(store):
    store.observe(seen(1, assignees=(NEWCOMER,), at=T0 + timedelta(minutes=1)), GFI)
    assert store.observe(seen(1, at=T0), GFI) is False
    assert store.get(REPO_ID, 1).assignees == (NEWCOMER,)


def test_claims_are_counted_reserved_and_released(store):
    for number in (1, 2, 3):
        store.observe(seen(number), GFI)
    assert store.reserve(REPO_ID, 1, NEWCOMER) is None
    assert store.reserve(REPO_ID, 1, NEWCOMER.upper()) is None, "the holder may reserve again"
    assert store.reserve(REPO_ID, 1, OTHER) == NEWCOMER, "two claims at once: the second hears who holds it"
    store.observe(seen(1, assignees=(NEWCOMER,), at=T0 + timedelta(minutes=1)), GFI)
    store.claim(REPO_ID, 2, NEWCOMER)
    store.observe(seen(2, assignees=(NEWCOMER,), at=T0 + timedelta(minutes=1)), GFI)
    assert store.open_claims(REPO_ID, NEWCOMER) == 2
    assert store.open_claims(REPO_ID, NEWCOMER, excluding=2) == 1
    store.observe(seen(2, assignees=(NEWCOMER,), state="closed", at=T0 + timedelta(minutes=2)), GFI)
    assert store.open_claims(REPO_ID, NEWCOMER) == 1, "closed issues are no open claims"
    assert store.release(REPO_ID, 1, OTHER) is False
    assert store.release(REPO_ID, 1, NEWCOMER) is True
    assert store.open_claims(REPO_ID, NEWCOMER) == 0
    store.claim(REPO_ID, 3, NEWCOMER)
    store.observe(seen(3, assignees=(NEWCOMER,), at=T0 + timedelta(minutes=1)), GFI)
    store.observe(seen(3, at=T0 + timedelta(minutes=2)), GFI)
    assert store.get(REPO_ID, 3).claimant == NEWCOMER, "a state without them may predate the assignment"
    store.observe(seen(3, at=T0 + timedelta(minutes=2)), GFI, unassigned=NEWCOMER)  # a maintainer unassigned them
    assert store.get(REPO_ID, 3).claimant is None and store.open_claims(REPO_ID, NEWCOMER) == 0


def test_a_claim_that_never_became_an_assignment_lapses(store):
    store.observe(seen(1), GFI)
    store.reserve(REPO_ID, 1, NEWCOMER)
    claimed_at = store.get(REPO_ID, 1).claimed_at
    store.observe(seen(1, at=claimed_at + timedelta(minutes=1)), GFI)
    assert store.get(REPO_ID, 1).claimant == NEWCOMER
    store.observe(seen(1, at=claimed_at + timedelta(hours=1)), GFI)
    assert store.get(REPO_ID, 1).claimant is None


def test_the_guide_round_moves_on_after_a_removal(store):
    assert store.guide_round(REPO_ID, 1) == 0
    store.observe(seen(1), GFI)
    store.next_guide_round(REPO_ID, 1)
    assert store.guide_round(REPO_ID, 1) == 1


# --- through the app, against the fake GitHub


@pytest.fixture
def app(make_app, redis_url):
    return make_app(redis_url=redis_url, behaviours=("engagement.good_first_issues",))


@pytest.fixture
def server(app, serve):
    return serve(app)


def store_of(server) -> GoodFirstIssueStore:
    return GoodFirstIssueStore(services(server.app).store.engine)


def as_now(payload: dict, github, number: int) -> dict:
    """The payload's issue as the fake GitHub has it now (labels, assignees, state, times)."""
    current = github.issue(REPO, number)
    keys = ("number", "title", "body", "labels", "assignee", "assignees", "state", "updated_at", "html_url")
    payload["issue"].update({key: current[key] for key in keys})
    return payload


def commented(github, number: int, login: str, body: str) -> dict:
    """issue_comment.created by `login`; the comment exists in the fake, so it can get reactions."""
    comment_id = github.add_comment(REPO, number, login, body)
    payload = as_now(installed(example("issue_comment.created.1")), github, number)
    payload["comment"].update(id=comment_id, body=body, author_association="NONE")
    payload["comment"]["user"].update(login=login, type="User")
    payload["sender"].update(login=login, type="User")
    return payload


def edited(github, number: int, login: str, before: str, after: str) -> dict:
    comment_id = github.add_comment(REPO, number, login, after)
    payload = as_now(installed(example("issue_comment.edited.2")), github, number)
    payload["changes"] = {"body": {"from": before}}
    payload["comment"].update(id=comment_id, body=after, author_association="NONE")
    payload["comment"]["user"].update(login=login, type="User")
    payload["sender"].update(login=login, type="User")
    return payload


def issue_event(github, action: str, number: int, login: str = MAINTAINER, **extra) -> dict:
    name = {"labeled": "issues.labeled.1", "unassigned": "issues.unassigned.1", "assigned": "issues.assigned.1"}
    payload = as_now(installed(example(name.get(action, "issues.reopened.1"))), github, number)
    payload["action"] = action
    payload["sender"].update(login=login, type="User")
    payload.update(extra)
    return payload


def label(name: str) -> dict:
    found = copy.deepcopy(example("issues.labeled.1")["label"])
    found.update(name=name, url=f"https://api.github.com/repos/{REPO}/labels/{name}")
    return found


def guides(github, number: int) -> list[str]:
    return [c["body"] for c in github.comments(REPO, number) if GUIDE_MARKER in c["body"]]


def replies(github, number: int, kind: str) -> list[str]:
    return [c["body"] for c in github.comments(REPO, number) if f"engage:good-first-issues:{kind}:" in c["body"]]


def comment_reactions(github, number: int, login: str) -> list[str]:
    [comment] = [c for c in github.comments(REPO, number) if c["user"]["login"] == login]
    return github.reactions(REPO, comment_id=comment["id"])


def good_first_issue(github, number: int, **kwargs) -> None:
    github.add_issue(REPO, number, "Codertocat", title="Fix a typo in the README", labels=[GFI], **kwargs)


def test_a_maintainer_marks_a_good_first_issue_once_however_often_it_is_delivered(server, github):
    github.add_issue(REPO, 3, "Codertocat", title="Fix a typo in the README")
    github.set_permission(REPO, MAINTAINER, "triage")  # its `permission` says read: role_name says triage
    github.set_file(REPO, "CONTRIBUTING.md", "# Contributing\n")
    payload = commented(github, 3, MAINTAINER, "Nice and small.\n/good-first-issue")
    for _ in range(2):
        server.deliver("issue_comment", payload, delivery_id="mark-3")
    server.deliver("issue_comment", payload, delivery_id="github-retried-with-a-new-id")
    run_rq_worker(server.app)
    assert github.issue_labels(REPO, 3) == [GFI, "help wanted"]
    labels = github.repo_labels(REPO)
    assert (labels[GFI]["color"], labels[GFI]["description"]) == ("7057ff", "Good for newcomers")
    assert (labels["help wanted"]["color"], labels["help wanted"]["description"]) == (
        "008672",
        "Extra attention is needed",
    )
    [guide] = guides(github, 3)
    assert "**This is a good first issue**" in guide and "comment `/claim`" in guide
    assert f"[contributing guide](https://github.com/{REPO}/blob/master/CONTRIBUTING.md)" in guide
    assert comment_reactions(github, 3, MAINTAINER) == ["+1"]
    assert [i.number for i in store_of(server).open_for_newcomers(REPO)] == [3]

    again = commented(github, 3, "second-maintainer", "/good-first-issue")
    github.set_permission(REPO, "second-maintainer", "maintain")
    server.deliver("issue_comment", again)
    run_rq_worker(server.app)
    assert len(guides(github, 3)) == 1, "a second marking does not guide twice"


def test_existing_labels_are_used_as_they_are(server, github):
    github.add_issue(REPO, 9, "Codertocat", labels=["help wanted"])  # the repository has the label (colour ededed)
    github.add_issue(REPO, 3, "Codertocat")
    github.set_permission(REPO, MAINTAINER, "write")
    server.deliver("issue_comment", commented(github, 3, MAINTAINER, "/good-first-issue"))
    run_rq_worker(server.app)
    assert github.repo_labels(REPO)["help wanted"]["color"] == "ededed"
    assert [r.json["name"] for r in github.calls("POST", f"/repos/{REPO}/labels")] == [GFI]


def test_a_label_created_meanwhile_is_fine(server, github):
    """get-label said 404, then create-label answers 422 already_exists (someone was quicker)."""
    github.add_issue(REPO, 9, "Codertocat", labels=[GFI, "help wanted"])
    github.add_issue(REPO, 3, "Codertocat")
    github.set_permission(REPO, MAINTAINER, "admin")
    github.fail_next("GET", rf"^/repos/{REPO}/labels/good first issue$", 404, body={"message": "Not Found"})
    server.deliver("issue_comment", commented(github, 3, MAINTAINER, "/good-first-issue"), delivery_id="quick")
    run_rq_worker(server.app)
    assert [r.status for r in github.calls("POST", f"/repos/{REPO}/labels")] == [422]
    assert github.issue_labels(REPO, 3) == [GFI, "help wanted"] and len(guides(github, 3)) == 1
    assert services(server.app).store.get("quick").status == "done"


def test_a_chinese_issue_gets_a_chinese_guide(server, github):
    github.add_issue(REPO, 3, "Codertocat", title="文档中有错别字", body="安装说明第二段有一个错别字。")
    github.set_permission(REPO, MAINTAINER, "maintain")
    server.deliver("issue_comment", commented(github, 3, MAINTAINER, "/good-first-issue"))
    run_rq_worker(server.app)
    [guide] = guides(github, 3)
    assert "这是一个适合新手的 issue" in guide and "How to take part" not in guide


def test_removal_takes_labels_and_guide_away_and_marking_again_guides_again(server, github):
    github.add_issue(REPO, 3, "Codertocat")
    github.set_permission(REPO, MAINTAINER, "write")
    server.deliver("issue_comment", commented(github, 3, MAINTAINER, "/good-first-issue"))
    run_rq_worker(server.app)
    assert len(guides(github, 3)) == 1
    server.deliver("issue_comment", commented(github, 3, MAINTAINER, "/remove-good-first-issue"))
    run_rq_worker(server.app)
    assert github.issue_labels(REPO, 3) == [] and guides(github, 3) == []
    assert store_of(server).open_for_newcomers(REPO) == []
    assert len(github.calls("DELETE", f"/repos/{REPO}/issues/comments/")) == 1

    server.deliver("issue_comment", commented(github, 3, MAINTAINER, "/good-first-issue"))
    run_rq_worker(server.app)
    assert len(guides(github, 3)) == 1 and github.issue_labels(REPO, 3) == [GFI, "help wanted"]


def test_removing_labels_that_are_gone_already_is_fine(server, github):
    github.add_issue(REPO, 3, "Codertocat", labels=[GFI])
    github.set_permission(REPO, MAINTAINER, "write")
    server.deliver("issue_comment", commented(github, 3, MAINTAINER, "/remove-good-first-issue"), delivery_id="rm")
    run_rq_worker(server.app)
    assert github.issue_labels(REPO, 3) == []
    assert [r.status for r in github.calls("DELETE", f"/repos/{REPO}/issues/3/labels/")] == [200, 404]
    assert services(server.app).store.get("rm").status == "done"


@pytest.mark.parametrize("command", ["/good-first-issue", "/remove-good-first-issue"])
def test_people_without_triage_access_get_one_polite_no(server, github, command):
    good_first_issue(github, 3)
    github.set_permission(REPO, NEWCOMER, "read")
    payload = commented(github, 3, NEWCOMER, f"{command}\n{command}")
    server.deliver("issue_comment", payload)
    server.deliver("issue_comment", payload)  # GitHub retried with a new id
    run_rq_worker(server.app)
    assert github.issue_labels(REPO, 3) == [GFI] and guides(github, 3) == []
    [answer] = replies(github, 3, NOT_ALLOWED)
    expected = catalogs.text("en", REPLIES[NOT_ALLOWED], login=NEWCOMER, repo=REPO, command=command[1:])
    assert answer.endswith(expected)


def test_commands_in_code_or_quotes_do_nothing(server, github):
    github.add_issue(REPO, 3, "Codertocat")
    github.set_permission(REPO, MAINTAINER, "admin")
    bodies = [
        "To mark it, a maintainer writes:\n```\n/good-first-issue\n```",
        "> /good-first-issue\n\nthat is what the docs say",
        "Type `/good-first-issue` to mark it",
        "    /good-first-issue",
    ]
    for body in bodies:
        server.deliver("issue_comment", commented(github, 3, MAINTAINER, body))
    run_rq_worker(server.app)
    assert github.writes() == [] and github.calls("GET", f"/repos/{REPO}/collaborators") == []


def test_synonyms_bring_the_canonical_label(server, github):
    github.add_issue(REPO, 3, "Codertocat", labels=["easy"])
    github.add_issue(REPO, 4, "Codertocat", labels=["bug"])
    server.deliver("issues", issue_event(github, "labeled", 3, label=label("easy")))
    server.deliver("issues", issue_event(github, "labeled", 4, label=label("bug")))
    run_rq_worker(server.app)
    assert github.issue_labels(REPO, 3) == ["easy", GFI]
    assert github.repo_labels(REPO)[GFI]["color"] == "7057ff"
    assert github.issue_labels(REPO, 4) == ["bug"]
    assert [i.number for i in store_of(server).open_for_newcomers(REPO)] == [3]
    assert guides(github, 3) == [], "only the command posts a guide"


def test_keyword_rules_label_new_issues_when_configured(server, github):
    github.add_issue(REPO, 3, NEWCOMER, title="Fix a typo in the README")
    github.add_issue(REPO, 4, NEWCOMER, title="Crash on start")
    for number in (3, 4):
        payload = as_now(installed(example("issues.opened.1")), github, number)
        payload["issue"]["user"].update(login=NEWCOMER)
        payload["sender"].update(login=NEWCOMER)
        server.deliver("issues", payload, delivery_id=f"opened-{number}-default")
    run_rq_worker(server.app)
    assert github.issue_labels(REPO, 3) == [], "off by default"

    github.set_file(REPO, ".github/engage.yml", "good_first_issues:\n  keywords: [typo, 错别字]\n")
    server.deliver("push", pushed([".github/engage.yml"]))  # what tells the app the file changed
    run_rq_worker(server.app)
    for number in (3, 4):
        payload = as_now(installed(example("issues.opened.1")), github, number)
        server.deliver("issues", payload, delivery_id=f"opened-{number}-configured")
    run_rq_worker(server.app)
    assert github.issue_labels(REPO, 3) == [GFI] and github.issue_labels(REPO, 4) == []


def test_a_newcomer_claims_and_unclaims(server, github):
    good_first_issue(github, 3)
    server.deliver("issue_comment", commented(github, 3, NEWCOMER, "I'd love to try!\n/claim"))
    run_rq_worker(server.app)
    assert github.assignees(REPO, 3) == [NEWCOMER]
    assert comment_reactions(github, 3, NEWCOMER) == ["+1"]
    store = store_of(server)
    assert store.get(REPO_ID, 3).claimant == NEWCOMER and store.open_for_newcomers(REPO) == []

    server.deliver("issue_comment", commented(github, 3, OTHER, "/claim"))
    run_rq_worker(server.app)
    assert github.assignees(REPO, 3) == [NEWCOMER]
    [held] = replies(github, 3, HELD)
    assert f"Thanks for your interest, @{OTHER}! @{NEWCOMER} is already working on this issue." in held
    assert "label%3A%22good+first+issue%22+no%3Aassignee" in held

    server.deliver("issue_comment", commented(github, 3, OTHER, "/unclaim"))
    run_rq_worker(server.app)
    assert github.assignees(REPO, 3) == [NEWCOMER] and len(replies(github, 3, NOT_YOURS)) == 1

    unclaim = commented(github, 3, NEWCOMER, "Sorry, no time after all.\n/unclaim")
    server.deliver("issue_comment", unclaim)
    run_rq_worker(server.app)
    assert github.assignees(REPO, 3) == []
    assert github.calls("DELETE", f"/repos/{REPO}/issues/3/assignees")[0].json == {"assignees": [NEWCOMER]}
    assert [i.number for i in store.open_for_newcomers(REPO)] == [3]


def test_claims_are_capped_per_person(server, github):
    for number in (3, 4, 5):
        good_first_issue(github, number)
    for number in (3, 4, 5):
        server.deliver("issue_comment", commented(github, number, NEWCOMER, "/claim"))
        run_rq_worker(server.app)
    assert [github.assignees(REPO, n) for n in (3, 4, 5)] == [[NEWCOMER], [NEWCOMER], []]
    [refusal] = replies(github, 5, CAP_REACHED)
    assert f"You already hold 2 open claimed issues in {REPO}, and the limit is 2." in refusal

    github.set_file(REPO, ".github/engage.yml", "good_first_issues:\n  claim_cap: 3\n")
    server.deliver("push", pushed([".github/engage.yml"]))  # what tells the app the file changed
    run_rq_worker(server.app)
    server.deliver("issue_comment", commented(github, 5, NEWCOMER, "/claim"))
    run_rq_worker(server.app)
    assert github.assignees(REPO, 5) == [NEWCOMER]


def test_claiming_what_is_not_a_good_first_issue_is_explained(server, github):
    github.add_issue(REPO, 3, "Codertocat")
    github.add_issue(REPO, 4, "Codertocat", labels=[GFI], state="closed")
    server.deliver("issue_comment", commented(github, 3, NEWCOMER, "/claim"))
    server.deliver("issue_comment", commented(github, 4, NEWCOMER, "/claim"))
    run_rq_worker(server.app)
    assert github.assignees(REPO, 3) == [] and github.assignees(REPO, 4) == []
    assert "`/claim` works on issues labelled **good first issue**" in replies(github, 3, NOT_GOOD_FIRST)[0]
    assert "this issue is closed" in replies(github, 4, CLOSED)[0]


def test_two_newcomers_claiming_at_once_one_gets_it(app, server, github):
    good_first_issue(github, 3)
    for delivery_id, login in (("claim-a", NEWCOMER), ("claim-b", OTHER)):
        server.deliver("issue_comment", commented(github, 3, login, "/claim"), delivery_id=delivery_id)
    svc = services(app)
    svc.dispatcher.wait_idle()
    barrier = threading.Barrier(2)

    def work(delivery_id: str) -> None:
        barrier.wait()
        process(svc, delivery_id)

    threads = [threading.Thread(target=work, args=(d,)) for d in ("claim-a", "claim-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    [holder] = github.assignees(REPO, 3)
    loser = OTHER if holder == NEWCOMER else NEWCOMER
    [held] = replies(github, 3, HELD)
    assert f"@{loser}! @{holder} is already working on this issue" in held


def test_an_edited_comment_runs_only_the_commands_the_edit_added(server, github):
    good_first_issue(github, 3)
    github.add_issue(REPO, 4, "Codertocat", labels=[GFI], author_association="OWNER")
    typo = server.deliver("issue_comment", edited(github, 3, NEWCOMER, "/claim", "/claim\n\n(edit: fixed a typo)"))
    assert typo.json()["outcome"] == "ignored", "an edit that adds no command is stored as ignored, never processed"
    run_rq_worker(server.app)
    assert github.assignees(REPO, 3) == [], "the command was there before the edit"

    server.deliver("issue_comment", edited(github, 4, NEWCOMER, "Can I take this?", "Can I take this?\n/claim"))
    run_rq_worker(server.app)
    assert github.assignees(REPO, 4) == [NEWCOMER]


def test_the_state_follows_issue_events(server, github):
    github.add_issue(REPO, 3, "Codertocat")
    store = store_of(server)
    github.add_issue(REPO, 3, "Codertocat", labels=[GFI])  # a maintainer labelled it on GitHub
    server.deliver("issues", issue_event(github, "labeled", 3, label=label(GFI)))
    run_rq_worker(server.app)
    assert [i.number for i in store.open_for_newcomers(REPO)] == [3]

    steps = [("assigned", [OTHER], "open", []), ("unassigned", [], "open", [3]), ("closed", [], "closed", [])]
    for action, assignees, state, expected in [*steps, ("reopened", [], "open", [3])]:
        github.add_issue(REPO, 3, "Codertocat", labels=[GFI], state=state)  # as a person left it on GitHub
        payload = issue_event(github, action, 3)
        payload["issue"]["assignees"] = [{**payload["sender"], "login": login} for login in assignees]
        server.deliver("issues", payload)
        run_rq_worker(server.app)
        assert [i.number for i in store.open_for_newcomers(REPO)] == expected, action

    server.deliver("issues", issue_event(github, "deleted", 3))
    run_rq_worker(server.app)
    assert store.get(REPO_ID, 3) is None


def test_archived_repositories_and_the_off_switch_get_nothing(server, github):
    github.add_issue(REPO, 3, "Codertocat", labels=["easy"])
    github.set_permission(REPO, MAINTAINER, "admin")
    archived = commented(github, 3, MAINTAINER, "/good-first-issue")
    archived["repository"]["archived"] = True
    server.deliver("issue_comment", archived)
    labelled = issue_event(github, "labeled", 3, label=label("easy"))
    labelled["repository"]["archived"] = True
    server.deliver("issues", labelled)
    run_rq_worker(server.app)
    assert github.writes() == []

    github.set_file(REPO, ".github/engage.yml", "good_first_issues:\n  enabled: false\n")
    server.deliver("push", pushed([".github/engage.yml"]))  # what tells the app the file changed
    run_rq_worker(server.app)
    server.deliver("issue_comment", commented(github, 3, MAINTAINER, "/good-first-issue"))
    server.deliver("issue_comment", commented(github, 3, NEWCOMER, "/claim"))
    server.deliver("issues", issue_event(github, "labeled", 3, label=label("easy")))
    run_rq_worker(server.app)
    assert github.writes() == [] and store_of(server).open_for_newcomers(REPO) == []


def test_dry_run_writes_nothing(make_app, serve, redis_url, github):
    server = serve(make_app(redis_url=redis_url, behaviours=("engagement.good_first_issues",), dry_run=True))
    github.add_issue(REPO, 3, "Codertocat")
    good_first_issue(github, 4)
    github.set_permission(REPO, MAINTAINER, "admin")
    server.deliver("issue_comment", commented(github, 3, MAINTAINER, "/good-first-issue"))
    server.deliver("issue_comment", commented(github, 4, NEWCOMER, "/claim"))
    run_rq_worker(server.app)
    assert github.writes() == []
    assert store_of(server).get(REPO_ID, 4).claimant is None


def test_bots_and_deliveries_without_installation_are_ignored(server, github):
    good_first_issue(github, 3)
    bot = commented(github, 3, "renovate[bot]", "/claim")
    bot["comment"]["user"]["type"] = bot["sender"]["type"] = "Bot"
    server.deliver("issue_comment", bot)
    uninstalled = commented(github, 3, NEWCOMER, "/claim")
    del uninstalled["installation"]
    server.deliver("issue_comment", uninstalled)
    run_rq_worker(server.app)
    assert github.writes() == [] and github.assignees(REPO, 3) == []


def test_the_store_keeps_an_issues_labels_and_opening_time_from_its_events(store):
    opened = T0 - timedelta(days=3)
    store.observe(replace(seen(1, labels=(GFI, "area: docs")), created_at=opened), GFI)
    first = store.get(REPO_ID, 1)
    assert first is not None and (first.labels, first.opened_at) == ((GFI, "area: docs"), opened)
    store.observe(seen(1, labels=(GFI,), at=T0 + timedelta(hours=1)), GFI)  # a later event without created_at
    later = store.get(REPO_ID, 1)
    assert later is not None and (later.labels, later.opened_at) == ((GFI,), opened), "the time stays known"
    store.observe(seen(1, labels=(GFI, "stale"), at=T0), GFI)  # older, delivered late: ignored
    assert store.get(REPO_ID, 1).labels == (GFI,)


def test_a_database_from_before_gains_the_labels_and_age_columns(database_url):
    engine = db.make_engine(database_url)
    try:
        db.migrate(engine)
        with engine.begin() as conn:
            for column in ("labels", "opened_at"):
                conn.execute(sa.text(f"ALTER TABLE good_first_issues DROP COLUMN {column}"))
            conn.execute(sa.text("DELETE FROM schema_version WHERE version >= 18"))
        since_18 = [number for number, _, _ in db.MIGRATIONS if number >= 18]
        assert db.pending_migrations(engine) == since_18
        assert db.migrate(engine) == since_18
        store = GoodFirstIssueStore(engine)
        store.observe(seen(1), GFI)
        assert store.get(REPO_ID, 1).labels == (GFI,)
    finally:
        db.metadata.drop_all(engine)
        engine.dispose()
