"""Slash commands GitHub shows as code or not at all never run: parsed as a table, then one comment through
the app. (Commands in plain text, edits and quotes: tests/test_good_first_issues.py.)"""

from __future__ import annotations

import pytest

from engagement.common import commands
from tests.conftest import REPO, run_rq_worker
from tests.test_good_first_issues import NEWCOMER, commented, good_first_issue

CLAIM = [("claim", ())]


@pytest.mark.parametrize(
    "case, body, expected",
    [
        # HTML code elements, as GitHub renders them
        ("an HTML pre block hides commands", "<pre>\n/claim\n</pre>", []),
        ("an HTML pre on one line hides it", "<pre>/claim</pre>", []),
        ("an HTML code element hides commands", "see <code>\n/claim\n</code>", []),
        ("HTML tags ignore case", "<PRE>\n/claim\n</Pre>", []),
        ("HTML tags may carry attributes", '<pre lang="sh">\n/claim\n</pre>', []),
        ("a blank line does not end a pre block", "<pre>\nlog\n\n/claim\n</pre>", []),
        ("an unclosed pre hides the rest", "<pre>\n/claim", []),
        ("a command after a pre block counts", "<pre>\nlog\n</pre>\n/claim", CLAIM),
        ("other HTML does not hide commands", "<div>\n/claim\n</div>", CLAIM),
        ("a tag that only starts like pre hides nothing", "<prelude>\n/claim", CLAIM),
        ("a pre tag inside inline code is text", "write `<pre>` for logs\n/claim", CLAIM),
        ("inline code inside a pre block is hidden with it", "<pre>`x`\n/claim\n</pre>", []),
        ("an HTML comment inside inline code is text", "`<!--` starts a comment\n/claim", CLAIM),
        # fences: ``` or ~~~, three or more, closed only by the same character at least as long
        ("a fence of four backticks hides commands", "````\n/claim\n````", []),
        ("a fence of five closes only with five or more", "`````\n````\n/claim\n``````\n/unclaim", [("unclaim", ())]),
        ("a tilde fence ignores backtick lines", "~~~\n```\n/claim\n~~~\n/unclaim", [("unclaim", ())]),
        ("a backtick fence ignores tilde lines", "```\n~~~\n/claim\n```", []),
        ("a tilde fence of four closes only with four or more", "~~~~\n~~~\n/claim\n~~~~\n/unclaim",
         [("unclaim", ())]),
        ("a fence indented three spaces", "   ```\n/claim\n   ```\n/unclaim", [("unclaim", ())]),
        ("a closing fence indented four spaces is code", "```\n/claim\n    ```\n/unclaim", []),
        ("a closing fence with text after it is code", "```\n/claim\n``` and more\n/unclaim", []),
        ("a tilde fence may name a language with backticks", "~~~ `sh`\n/claim\n~~~\n/unclaim", [("unclaim", ())]),
        ("backticks after a backtick run make no fence", "``` `x`\n/claim", CLAIM),
        ("a fence in a list item hides commands", "- ```\n  /claim\n  ```\n/unclaim", [("unclaim", ())]),
        ("a fence in a numbered item hides commands", "1. ~~~\n   /claim\n   ~~~", []),
        ("a line left of its list item ends the fence", "- ```\n  log\n/claim", CLAIM),
        ("a fence left of its list item opens a new one", "- ```\n  log\n```\n/claim", []),
        # inline code, whatever its backtick run
        ("inline code of two backticks", "``/claim``", []),
        ("inline code of two backticks spans lines", "run ``make\n/claim`` first", []),
        ("inline code holds shorter backtick runs", "run `` a ` \n/claim ``", []),
        ("a backtick run without its match is text", "a `` b\n/claim", CLAIM),
        ("inline code ends at a blank line", "a ` b\n\n/claim\n`", CLAIM),
        # indented code, HTML comments and quotes
        ("an indented block hides commands", "text\n\n    /claim", []),
        ("an unclosed HTML comment hides the rest", "<!-- draft\n/claim", []),
        ("a quote hides a command", "> /claim", []),
        ("a nested quote hides a command", "> > /claim", []),
    ],
)  # fmt: skip
def test_commands_in_code_do_not_run(case, body, expected):
    assert [(c.name, c.args) for c in commands.parse(body)] == expected, case


@pytest.fixture
def server(make_app, serve, redis_url):
    return serve(make_app(redis_url=redis_url, behaviours=("engagement.good_first_issues",)))


def test_a_claim_in_code_assigns_nobody(server, github):
    good_first_issue(github, 3)
    for body in ("<pre>\n/claim\n</pre>", "Steps:\n- ```\n  /claim\n  ```"):
        server.deliver("issue_comment", commented(github, 3, NEWCOMER, body))
    run_rq_worker(server.app)
    assert github.assignees(REPO, 3) == [] and github.writes() == []

    server.deliver("issue_comment", commented(github, 3, NEWCOMER, "/claim"))
    run_rq_worker(server.app)
    assert github.assignees(REPO, 3) == [NEWCOMER]
