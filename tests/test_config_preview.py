"""What will the bot say? The config page and `flask config check` against what the bot then posts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from typing import Any

import pytest
import requests
from markupsafe import escape

from engagement import preview
from tests.conftest import APP_ID, INSTALLATION_ID, REPO, ROOT, example, installed, run_rq_worker, services

OTHER = "Codertocat/Hello-Chinese"  # a second repository of the installation, for the Chinese greeting
OTHER_ID = 186853999
PRIVATE = "Codertocat/Secret-Plans"
PRIVATE_ID = 186853777
ORG_REPO = "Codertocat/.github"
CONFIG = """\
greeting:
  forum_url: https://forum.llmasos.org
  chat_url: https://t.me/llmasos
good_first_issues:
  claim_cap: 3
"""


def issue_opened(full_name: str, repo_id: int, lang: str, private: bool = False) -> dict[str, Any]:
    """The preview's sample newcomer opening issue #1, written in `lang`, as GitHub delivers it."""
    title, body = preview.WRITTEN[lang]
    payload = installed(example("issues.opened.1"))
    payload["repository"].update(
        id=repo_id,
        name=full_name.split("/", 1)[1],
        full_name=full_name,
        private=private,
        html_url=f"https://github.com/{full_name}",
    )
    payload["issue"].update(number=preview.NUMBER, title=title, body=body, author_association="NONE")
    payload["issue"]["user"].update(login=preview.NEWCOMER, type="User")
    payload["sender"].update(login=preview.NEWCOMER, type="User")
    return payload


def greetings(github, full_name: str) -> list[str]:
    return [c["body"] for c in github.comments(full_name, preview.NUMBER) if "engage:greeting:issue" in c["body"]]


@pytest.fixture
def github(github):
    github.add_repo(OTHER, default_branch="master", repo_id=OTHER_ID)
    github.add_repo(PRIVATE, private=True, default_branch="master", repo_id=PRIVATE_ID)
    github.add_repo(ORG_REPO, default_branch="main")
    github.add_installation(INSTALLATION_ID, "Codertocat", [REPO, OTHER, PRIVATE, ORG_REPO])
    for full_name in (REPO, OTHER, PRIVATE):
        github.add_issue(full_name, preview.NUMBER, preview.NEWCOMER)
    return github


@pytest.fixture
def server(make_app, serve, redis_url):
    return serve(make_app(redis_url=redis_url, behaviours=()))


def page(server, path: str) -> requests.Response:
    return server.session.get(server.url + path, timeout=30)


def deliver(server, payload: dict[str, Any]) -> None:
    assert server.deliver("issues", payload).status_code == 202
    run_rq_worker(server.app)


def sources(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-key="([^"]+)" data-source="([^"]+)"', html))


@pytest.fixture
def flask_cli(database_url, github, app_key):
    """`flask --app app ...` as an operator types it, on the test's database and the fake GitHub."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        environment = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        environment.update(
            WEBHOOK_SECRET="s3cret",
            APP_ID=str(APP_ID),
            PRIVATE_KEY=app_key[0].replace("\n", "\\n"),
            GITHUB_API_URL=github.url,
            DATABASE_URL=database_url,
            LOG_FORMAT="json",
            ENV_FILE="/nonexistent/.env",
            FLASK_SKIP_DOTENV="1",
        )
        command = [sys.executable, "-m", "flask", "--app", "app", *args]
        return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)

    return run


# --- the preview is what the bot posts


def test_the_page_shows_byte_for_byte_the_greeting_the_bot_then_posts_in_english_and_chinese(server, github):
    for full_name in (REPO, OTHER):
        github.set_file(full_name, ".github/engage.yml", CONFIG)
        github.set_file(full_name, "CONTRIBUTING.md", "# How to contribute\n")
    deliver(server, issue_opened(REPO, 186853002, "en"))
    deliver(server, issue_opened(OTHER, OTHER_ID, "zh"))
    [english] = greetings(github, REPO)
    [chinese] = greetings(github, OTHER)
    assert "Welcome" in english and "/blob/master/CONTRIBUTING.md" in english and "forum.llmasos.org" in english
    assert "欢迎你" in chinese

    shown = page(server, f"/config/{REPO}")
    assert shown.status_code == 200
    assert str(escape(english)) in shown.text, "the page shows the very comment the bot posted"
    other = page(server, f"/config/{OTHER}")
    assert str(escape(chinese)) in other.text

    before = len(github.calls())
    assert page(server, f"/config/{REPO}").text == shown.text
    assert github.calls()[before:] == [], "a second look costs GitHub nothing: the app holds the files"


def test_the_preview_renders_what_each_behaviour_would_post_or_why_not(server, github):
    github.set_file(REPO, ".github/engage.yml", "thanks:\n  mode: reaction\ngreeting:\n  language: zh\n")
    deliver(server, issue_opened(REPO, 186853002, "en"))
    html = page(server, f"/config/{REPO}").text
    guide = re.search(r'data-message="good_first_issues.guide".*?</article>', html, re.S)
    assert guide and "🌱" in guide.group(0) and "这是一个适合新手的 issue" in guide.group(0)
    thanks = re.search(r'data-message="thanks.merged".*?</article>', html, re.S)
    assert thanks and "thanks on merge are off (mode: reaction)" in thanks.group(0)
    greeting = re.search(r'data-message="greeting.issue".*?</article>', html, re.S)
    assert greeting and "Welcome" not in greeting.group(0), "language: zh answers an English issue in Chinese"
    [posted] = greetings(github, REPO)
    assert "欢迎你" in posted and str(escape(posted)) in greeting.group(0)


# --- where each value comes from


def test_each_value_says_whether_it_is_the_repositorys_the_organisations_or_the_default(server, github):
    github.set_file(REPO, ".github/engage.yml", "greeting:\n  language: zh\n  issues: maybe\n")
    github.set_file(
        ORG_REPO, ".github/engage.yml", "thanks:\n  mode: reaction\ngreeting:\n  forum_url: https://f.org\n"
    )
    deliver(server, issue_opened(REPO, 186853002, "en"))
    deliver(server, issue_opened(OTHER, OTHER_ID, "en"))

    own = page(server, f"/config/{REPO}").text
    found = sources(own)
    assert found["greeting.language"] == "repository"
    assert found["greeting.issues"] == "default", "a refused value is the default's"
    assert found["greeting.forum_url"] == "default", "the organisation's file is not read beside the repository's"
    assert found["thanks.mode"] == "default" and found["digest.enabled"] == "default"
    assert "greeting.issues" in own and "must be true or false, got text" in own

    inherited = sources(page(server, f"/config/{OTHER}").text)
    assert inherited["thanks.mode"] == "organisation" and inherited["greeting.forum_url"] == "organisation"
    assert inherited["greeting.language"] == "default"


def test_without_any_file_every_value_is_the_default(server, github):
    deliver(server, issue_opened(REPO, 186853002, "en"))
    html = page(server, f"/config/{REPO}").text
    assert set(sources(html).values()) == {"default"}
    assert 'data-origin="default"' in html


# --- the command line


def test_a_broken_file_exits_1_naming_path_line_and_key(flask_cli, tmp_path):
    path = tmp_path / "engage.yml"
    path.write_text("greeting:\n  languag: zh\n  issues: yes please\nthanks:\n  mode: on_merge\n")
    result = flask_cli("config", "check", str(path))
    assert result.returncode == 1, result.stderr
    problems = [line for line in result.stderr.splitlines() if line.startswith(str(path))]
    assert problems[0].startswith(f"{path}:2: greeting.languag: unknown setting")
    assert problems[1] == f"{path}:3: greeting.issues: must be true or false, got text"
    assert "thanks.mode" in result.stdout and '"on_merge"  (file)' in result.stdout
    assert "=== greeting.issue (greeting)" in result.stdout and "Welcome, @new-contributor" in result.stdout

    path.write_text("greeting: [unclosed\n")
    broken = flask_cli("config", "check", str(path))
    assert broken.returncode == 1 and f"{path}:2: not valid YAML; using the defaults" in broken.stderr


def test_a_good_file_exits_0_with_the_previews_in_both_languages(flask_cli, tmp_path):
    path = tmp_path / "engage.yml"
    path.write_text("greeting:\n  forum_url: https://forum.llmasos.org\n")
    started = time.monotonic()
    result = flask_cli("config", "check", str(path))
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "Welcome, @new-contributor" in result.stdout and "欢迎你，@new-contributor" in result.stdout
    assert "[论坛](https://forum.llmasos.org)" in result.stdout
    assert elapsed < 30, f"config check took {elapsed:.1f}s"


def test_the_cli_over_a_repository_reads_it_through_the_installation_and_agrees_with_the_bot(server, github, flask_cli):
    github.set_file(REPO, ".github/engage.yml", CONFIG)
    deliver(server, issue_opened(REPO, 186853002, "en"))
    [posted] = greetings(github, REPO)
    before, writes = len(github.calls()), len(github.writes())
    result = flask_cli("config", "check", REPO, "--lang", "en")
    assert result.returncode == 0, result.stderr
    assert f"{REPO}: configuration from {REPO}/.github/engage.yml (the repository's file)" in result.stdout
    assert posted in result.stdout
    assert "欢迎你" not in result.stdout, "--lang en previews answers to English text only"
    paths = [call.path for call in github.calls()[before:]]
    assert f"/repos/{REPO}/contents/.github/engage.yml" in paths
    assert len(github.writes()) == writes, "a preview writes nothing"

    missing = flask_cli("config", "check", "Codertocat/Not-Installed")
    assert missing.returncode == 1 and "no installed repository by that name" in missing.stderr


# --- what the page shows of the file, and to whom


def test_hostile_values_in_the_file_are_text_on_the_page(server, github):
    hostile = (
        'greeting:\n  messages:\n    issue: "<script>alert(1)</script> Hi {login}"\n'
        '  forum_url: "javascript:alert(2)"\n'
        '"<img src=x onerror=alert(3)>": true\n'
    )
    github.set_file(REPO, ".github/engage.yml", hostile)
    deliver(server, issue_opened(REPO, 186853002, "en"))
    html = page(server, f"/config/{REPO}").text
    assert (
        "<script" not in html
        and "<img src=x" not in html
        and "onerror=alert" not in html.replace("&lt;img src=x onerror=alert(3)&gt;", "")
    )
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Hi new-contributor" in html
    assert "&lt;img src=x onerror=alert(3)&gt;" in html, "the unknown section is named, as text"
    assert 'href="javascript' not in html


def test_a_private_repository_is_not_found_for_an_anonymous_visitor(server, github):
    github.set_file(PRIVATE, ".github/engage.yml", "greeting:\n  forum_url: https://secret.example\n")
    deliver(server, issue_opened(PRIVATE, PRIVATE_ID, "en", private=True))
    assert greetings(github, PRIVATE), "the bot works there"
    before = len(github.calls())
    hidden = page(server, f"/config/{PRIVATE}")
    unknown = page(server, "/config/Codertocat/Nothing-Here")
    assert hidden.status_code == unknown.status_code == 404
    assert "secret.example" not in hidden.text
    assert hidden.text.replace(PRIVATE, "NAME") == unknown.text.replace("Codertocat/Nothing-Here", "NAME"), (
        "the same 404 as for a name nobody installed: the page does not tell that it exists"
    )
    assert github.calls()[before:] == [], "nothing is read for a visitor who may not see it"
    assert page(server, "/config/Codertocat/..%2F..").status_code == 404


def test_the_page_speaks_chinese(server, github):
    deliver(server, issue_opened(REPO, 186853002, "en"))
    html = page(server, f"/config/{REPO}?lang=zh").text
    assert "机器人会说什么？" in html and 'data-source="default"' in html


def test_a_private_repository_is_shown_to_a_person_signed_in_who_may_read_it(make_app, serve, redis_url, github):
    github.set_oauth_client("Iv1.config-preview", "preview-client-secret-0123456789")
    github.set_permission(PRIVATE, "reader", "read")
    github.set_file(PRIVATE, ".github/engage.yml", "greeting:\n  forum_url: https://secret.example\n")
    app = make_app(
        redis_url=redis_url,
        behaviours=(),
        github_url=github.url,
        github_client_id="Iv1.config-preview",
        github_client_secret="preview-client-secret-0123456789",
    )
    server = serve(app)
    deliver(server, issue_opened(PRIVATE, PRIVATE_ID, "en", private=True))
    assert page(server, f"/config/{PRIVATE}").status_code == 404, "not before signing in"

    github.sign_in_browser("reader")
    signed_in = server.session.get(f"{server.url}/auth/login", params={"next": f"/config/{PRIVATE}"}, timeout=30)
    assert signed_in.status_code == 200 and signed_in.url == f"{server.url}/config/{PRIVATE}"
    found = sources(signed_in.text)
    assert found["greeting.forum_url"] == "repository" and "https://secret.example" in signed_in.text
    [posted] = greetings(github, PRIVATE)
    assert str(escape(posted)) in signed_in.text


def test_the_good_first_issue_guide_previewed_is_the_one_posted(server, github):
    """Beyond the greeting: a maintainer marks a newcomer's Chinese issue with `/good-first-issue`."""
    github.set_file(REPO, ".github/engage.yml", CONFIG)
    github.set_file(REPO, "CONTRIBUTING.md", "# How to contribute\n")
    title, body = preview.WRITTEN["zh"]
    github.add_issue(REPO, preview.NUMBER, preview.NEWCOMER, title=title, body=body)
    github.set_permission(REPO, "maintainer", "maintain")
    comment_id = github.add_comment(REPO, preview.NUMBER, "maintainer", "/good-first-issue")
    payload = installed(example("issue_comment.created.1"))
    current = github.issue(REPO, preview.NUMBER)
    payload["issue"].update({key: current[key] for key in ("number", "title", "body", "labels", "state", "html_url")})
    payload["comment"].update(id=comment_id, body="/good-first-issue", author_association="MEMBER")
    payload["comment"]["user"].update(login="maintainer", type="User")
    payload["sender"].update(login="maintainer", type="User")
    assert server.deliver("issue_comment", payload).status_code == 202
    run_rq_worker(server.app)
    [guide] = [c["body"] for c in github.comments(REPO, preview.NUMBER) if "good-first-issues:guide" in c["body"]]
    assert "这是一个适合新手的 issue" in guide and "最多认领 3 个" in guide and "/blob/master/CONTRIBUTING.md" in guide

    html = page(server, f"/config/{REPO}").text
    card = re.search(r'data-message="good_first_issues.guide".*?</article>', html, re.S)
    assert card and str(escape(guide)) in card.group(0)


def test_when_github_cannot_be_read_the_page_says_so_and_comes_back(server, github):
    deliver(server, issue_opened(REPO, 186853002, "en"))  # the app knows the repository, and reads its file
    # The copy it read has expired (FILE_TTL_SECONDS) when the page is looked at, and GitHub fails.
    services(server.app).github.files.forget(REPO, [None], [".github/engage.yml"])
    github.fail_next("GET", rf"^/repos/{REPO}/contents/\.github/engage\.yml$", 502)
    down = page(server, f"/config/{REPO}")
    assert down.status_code == 503 and "GitHub did not answer" in down.text
    assert page(server, f"/config/{REPO}").status_code == 200, "the next look reads it"
