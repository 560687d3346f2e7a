"""What a `.github/engage.yml` may cost and hold: hostile or mistaken files are config problems, reported
with line and key while the defaults stand; never a stall, a crash, a broken page or a flood of writes."""

from __future__ import annotations

import logging
import re

import pytest

from engagement import config_check, good_first_issues, greeting, leaderboard
from engagement.common.config import MAX_FILE_BYTES, parse
from githubapp.cache import MemoryCache
from githubapp.client import COMMENT_LIMIT, CUT_SHORT, GitHubApp
from githubapp.pacing import WritePacer
from tests.conftest import APP_ID, INSTALLATION_ID, REPO, example, installed, pushed, run_rq_worker
from tests.test_config_check import HEAD, pull_request_event
from tests.test_good_first_issues import commented
from tests.test_greeting import NEWCOMER, greetings, issue_opened

MAINTAINER = "maintainer-mo"
BEHAVIOURS = [greeting, good_first_issues, leaderboard]


def laughs(levels: int) -> str:
    """The "billion laughs": each level a mapping of ten aliases to the level below (10**levels nodes)."""
    keys = [f"k{n}" for n in range(10)]
    lines = ["l0: &l0 {" + ", ".join(f"{k}: lol" for k in keys) + "}"]
    lines += [f"l{n}: &l{n} {{" + ", ".join(f"{k}: *l{n - 1}" for k in keys) + "}" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


COSTLY = [
    pytest.param(laughs(6), "line 2: aliases (`*name`) are not supported", id="aliases are refused, not expanded"),
    pytest.param(
        "greeting:\n  messages: " + "[" * 5000 + "]" * 5000 + "\n",
        "line 2: nested more than 10 levels deep",
        id="deep nesting is refused before Python's recursion limit",
    ),
    pytest.param(
        "greeting:\n  language: zh\n" + "# padding\n" * (MAX_FILE_BYTES // 10),
        "larger than 64 KiB",
        id="a file over 64 KiB is not parsed",
    ),
    pytest.param(
        "greeting:\n  chat_url: " + "9" * 5000 + "\n",
        "not valid YAML",
        id="a number of 5000 digits is invalid, not a crash",
    ),
]


# --- the app's own writes, against the fake GitHub


def check_report(server, github, text: str) -> str:
    """The config check's comment on pull request 2, which proposes `text` as the file."""
    github.set_file(REPO, ".github/engage.yml", text, ref=HEAD)
    server.deliver("pull_request", pull_request_event())
    run_rq_worker(server.app)
    [report] = [c["body"] for c in github.comments(REPO, 2) if config_check.MARKER in c["body"]]
    return report


@pytest.fixture
def server(make_app, serve, redis_url, github):
    github.add_issue(REPO, 2, "Codertocat", pull_request=True)
    github.set_file(REPO, ".github/engage.yml", "greeting:\n  language: en\n")
    return serve(make_app(redis_url=redis_url, behaviours=()))


@pytest.mark.parametrize("text, problem", COSTLY)
def test_a_costly_file_is_reported_on_the_pull_request(server, github, text, problem):
    report = check_report(server, github, text)
    assert problem in report and "using the defaults" in report


@pytest.mark.parametrize("text, problem", COSTLY)
def test_a_costly_file_on_the_default_branch_still_greets_with_the_defaults(server, github, caplog, text, problem):
    github.set_file(REPO, ".github/engage.yml", text)
    github.add_issue(REPO, 3, NEWCOMER)
    with caplog.at_level(logging.WARNING):
        server.deliver("issues", issue_opened(3))
        run_rq_worker(server.app)
    [welcome] = greetings(github, 3)
    assert f"Welcome, @{NEWCOMER}" in welcome, "English, the default, though the file says zh"
    assert any(problem in r.getMessage() for r in caplog.records)


def outside_code(markdown: str) -> str:
    """What GitHub renders outside code spans (CommonMark: a run of n backticks up to the next run of n)."""
    return re.sub(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", "", markdown, flags=re.S)


def test_keys_are_quoted_as_code_never_mentions_or_links(server, github):
    keys = ["@user0", "@org/everyone", "[click me](https://evil.example/phish)", "<b>bold</b>", "a``b`", "two\\nlines"]
    text = "greeting:\n" + "".join(f'  "{key}": 1\n' for key in keys)
    report = check_report(server, github, text)
    visible = outside_code(report)
    for dangerous in ("@user0", "@org", "](", "<b>", "two"):
        assert dangerous not in visible, f"{dangerous} is outside code in:\n{report}"
    assert "line 2: ` greeting.@user0 `: unknown setting" in report
    assert "line 6: ``` greeting.a``b` ```: unknown setting" in report
    assert "line 7: ` greeting.two\\nlines `: unknown setting" in report, "a line break is shown, not made"


def test_thousands_of_problems_make_one_short_comment(server, github):
    text = "greeting:\n" + "".join(f"  bad{n}: 1\n" for n in range(3000))
    report = check_report(server, github, text)
    assert len(report.encode()) <= COMMENT_LIMIT
    assert "line 11: ` greeting.bad9 `: unknown setting" in report and "greeting.bad10" not in report
    assert report.endswith("\n- and 2990 more")


def test_every_comment_is_cut_to_githubs_limit_with_a_note(github, app_key):
    client = GitHubApp(github.url, APP_ID, app_key[0], MemoryCache(), WritePacer(0)).installation(INSTALLATION_ID)
    marker = "<!-- engage:test -->"
    github.add_issue(REPO, 3, NEWCOMER)
    story = f"{marker}\nStart of the story.\n```\n{{}}```\nThe end.\n"
    created = client.create_comment(REPO, 3, story.format("新的一行\n" * 30_000))
    client.update_comment(REPO, int(created["id"]), story.format(("x" * 20 + "\n") * 30_000))
    [stored] = github.comments(REPO, 3)
    for body in (created["body"], stored["body"]):
        assert len(body.encode()) <= COMMENT_LIMIT and body.startswith(f"{marker}\nStart of the story.\n```\n")
        assert body.endswith(f"\n```{CUT_SHORT}"), "the open code block is closed, so the note shows"
    assert "x\n```" in stored["body"] and "The end." not in stored["body"]
    github.assert_no_violations()


# --- numbers and lists


@pytest.mark.parametrize(
    "setting, value, line",
    [
        ("leaderboard.points.comment", ".inf", "  points:\n    comment: .inf\n"),
        ("leaderboard.points.review", ".nan", "  points:\n    review: .nan\n"),
        ("leaderboard.points.issue", "2.5", "  points:\n    issue: 2.5\n"),
        ("leaderboard.points.issue", "a bool", "  points:\n    issue: true\n"),
        ("leaderboard.daily_comment_cap", "-5", "  daily_comment_cap: -5\n"),
        ("leaderboard.daily_comment_cap", "10**30", "  daily_comment_cap: 1000000000000000000000000000000\n"),
        ("good_first_issues.claim_cap", "-1", "  claim_cap: -1\n"),
    ],
)
def test_numbers_must_be_whole_and_in_range(setting, value, line):
    section = setting.split(".", 1)[0]
    loaded = parse(f"{section}:\n{line}", BEHAVIOURS)
    [problem] = loaded.problems
    assert problem.key == setting and problem.line == line.count("\n") + 1
    expected = "must be a number, got true or false" if value == "a bool" else "must be a whole number from 0 to 1000"
    assert problem.message == expected
    defaults = {m.NAME: m.DEFAULTS for m in BEHAVIOURS}
    assert loaded.section(section) == defaults[section], "the default stands"


@pytest.mark.parametrize(
    "text, problem",
    [
        ("good_first_issues:\n  labels: [a, b, c, d, e, f]\n", "good_first_issues.labels: must have at most 5 entries"),
        ("leaderboard:\n  exclude: [" + ", ".join(f"bot{n}" for n in range(51)) + "]\n", "at most 50 entries"),
        ("good_first_issues:\n  synonyms: [" + "e" * 51 + "]\n", "entries must be at most 50 characters long"),
        ("greeting:\n  messages:\n    issue: " + "x" * 4001 + "\n", "must be at most 4000 characters long"),
    ],
)
def test_lists_and_texts_have_caps(text, problem):
    [found] = parse(text, BEHAVIOURS).problems
    assert problem in str(found)


def test_an_infinite_point_value_leaves_the_leaderboard_working(server, github):
    github.set_file(REPO, ".github/engage.yml", "leaderboard:\n  points:\n    comment: .inf\n    review: .nan\n")
    payload = installed(example("issue_comment.created.1"))
    payload["comment"]["user"].update(login=NEWCOMER, type="User")
    payload["sender"].update(login=NEWCOMER, type="User")
    server.deliver("issue_comment", payload)
    run_rq_worker(server.app)
    get = server.session.get
    for path in ("/leaderboard", "/api/leaderboard", "/leaderboard.csv"):
        answer = get(f"{server.url}{path}?repo={REPO}&window=all", timeout=30)
        assert answer.status_code == 200, path
    board = get(f"{server.url}/api/leaderboard?repo={REPO}&window=all", timeout=30).json()
    assert board["formula"]["points"]["comment"] == 1 and board["formula"]["points"]["review"] == 3
    assert [(e["login"], e["points"]) for e in board["entries"]] == [(NEWCOMER, 1)]


def test_sixty_labels_in_config_mean_the_default_two(server, github):
    labels = ", ".join(f'"label {n}"' for n in range(60))
    github.set_file(REPO, ".github/engage.yml", f"good_first_issues:\n  labels: [{labels}]\n")
    github.add_issue(REPO, 3, "Codertocat", title="Fix a typo in the README")
    github.set_permission(REPO, MAINTAINER, "write")
    server.deliver("issue_comment", commented(github, 3, MAINTAINER, "/good-first-issue"))
    run_rq_worker(server.app)
    assert github.issue_labels(REPO, 3) == good_first_issues.DEFAULTS["labels"]
    assert len(github.calls("POST", f"/repos/{REPO}/labels")) == 2

    github.set_file(REPO, ".github/engage.yml", "greeting:\n  language: en\n")  # the pull request changes it
    server.deliver("push", pushed([".github/engage.yml"]))  # what tells the app the file changed
    run_rq_worker(server.app)
    report = check_report(server, github, f"good_first_issues:\n  labels: [{labels}]\n")
    assert "line 2: ` good_first_issues.labels `: must have at most 5 entries, not 60" in report
