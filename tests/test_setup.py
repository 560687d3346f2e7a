"""Registering the GitHub App from app.yml (the manifest flow) over real HTTP, against the fake GitHub.

An app without any App starts, sends `/` to `/setup` and refuses webhooks it cannot verify; the manifest
is app.yml with this installation's addresses; the callback takes its `state` once, within the hour, from
the browser that started; a failed exchange or a bad state writes nothing; `.env` keeps what it held
(different values as comments, with a warning) and ends readable by its owner only; once configured the
setup routes are gone.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
import yaml
from cryptography.hazmat.primitives import serialization
from dotenv import dotenv_values

import settings as settings_module
from settings import load_private_key
from tests.conftest import LiveServer, MakeApp
from tests.support.fake_github import FakeGitHub
from web import setup
from web.setup import EnvFileError, StateStore, build_manifest, env_line, write_env
from web.shell import english

APP_YML = yaml.safe_load(setup.APP_YML.read_text())
BAD_ORGANISATION = english(setup.BAD_ORGANISATION)
BAD_STATE = english(setup.BAD_STATE)
WRITTEN = ("APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET", "GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET", "APP_SLUG")


# --- reading pages as a browser would


@dataclass
class Form:
    id: str
    action: str
    method: str
    inputs: dict[str, str] = field(default_factory=dict)


class FormParser(HTMLParser):
    """The forms of a page, with their fields' values (unescaped, as a browser submits them)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(Form(found.get("id", ""), found.get("action", ""), found.get("method", "get").lower()))
        elif tag == "input" and self.forms and "name" in found:
            self.forms[-1].inputs[found["name"]] = found.get("value", "")


def forms(html: str) -> list[Form]:
    parser = FormParser()
    parser.feed(html)
    return parser.forms


def form(html: str, form_id: str) -> Form:
    return next(f for f in forms(html) if f.id == form_id)


# --- fixtures


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    return tmp_path / "app" / ".env"


Unregistered = Callable[..., LiveServer]


@pytest.fixture
def unregistered(
    make_app: MakeApp, serve: Callable[..., LiveServer], github: FakeGitHub, env_file: Path, tmp_path: Path
) -> Unregistered:
    """Start apps the way a first run does: no APP_ID, no key, no secret, not in testing mode."""
    env_file.parent.mkdir(exist_ok=True)

    def start(**overrides: Any) -> LiveServer:
        settings = dict(
            app_id=None,
            private_key=None,
            webhook_secret=None,
            testing=False,
            github_url=github.url,
            env_file=str(env_file),
        )
        app = make_app(**{**settings, **overrides})
        app.config["SETUP_STATE_FOLDER"] = str(tmp_path / "setup-states")
        return serve(app)

    return start


@pytest.fixture
def environment_restored() -> Iterator[None]:
    """Loading a .env writes into os.environ; put it back as it was."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


# --- the flow, step by step


def begin(server: LiveServer, browser: requests.Session, organisation: str = "") -> Form:
    """Press "Register the GitHub App": the self-submitting form that posts the manifest to GitHub."""
    page = browser.post(server.url + "/setup", data={"organisation": organisation}, timeout=30)
    assert page.status_code == 200, page.text
    return form(page.text, "to-github")


def confirm_on_github(github: FakeGitHub, browser: requests.Session, to_github: Form) -> str:
    """What the browser does on GitHub: post the manifest, press "Create GitHub App"; the callback URL."""
    page = browser.post(to_github.action, data=to_github.inputs, timeout=30)
    assert page.status_code == 200, page.text
    create = forms(page.text)[0]
    created = browser.post(github.url + create.action, data=create.inputs, allow_redirects=False, timeout=30)
    assert created.status_code == 302
    return str(created.headers["Location"])


def register(server: LiveServer, github: FakeGitHub, organisation: str = "") -> tuple[requests.Session, str]:
    browser = requests.Session()
    return browser, confirm_on_github(github, browser, begin(server, browser, organisation))


def with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    query.update(changes)
    return parts._replace(query=urlencode({k: v for k, v in query.items() if v is not None})).geturl()


def registered_app(github: FakeGitHub) -> dict[str, Any]:
    [app] = github.registered_apps.values()
    return app


# --- starting without an App


def test_an_app_without_any_app_starts_sends_home_to_setup_and_takes_no_webhooks(unregistered):
    server = unregistered()
    home = requests.get(server.url + "/", allow_redirects=False, timeout=30)
    assert (home.status_code, home.headers["Location"]) == (302, "/setup")
    page = requests.get(server.url + "/setup", timeout=30)
    assert page.status_code == 200
    assert "No GitHub App is configured yet" in page.text and "Register the GitHub App" in page.text
    assert requests.get(server.url + "/healthz", timeout=30).status_code == 200
    answer = server.deliver("issues", {"action": "opened"}, secret="")
    assert answer.status_code == 503 and "/setup" in answer.json()["message"]


def test_with_the_secret_scripts_run_wrote_but_no_app_it_still_offers_setup(unregistered):
    server = unregistered(webhook_secret="a-secret-scripts-run-wrote")
    assert requests.get(server.url + "/", allow_redirects=False, timeout=30).headers["Location"] == "/setup"
    assert server.deliver("issues", {"action": "opened"}, secret="wrong").status_code == 401


HALF_CONFIGURED = [
    ("APP_ID without WEBHOOK_SECRET", {"APP_ID": "12"}, "WEBHOOK_SECRET is not set"),
    ("a key without APP_ID", {"PRIVATE_KEY": "x", "WEBHOOK_SECRET": "s"}, "APP_ID is not"),
    ("BASE_URL without a scheme", {"BASE_URL": "engage.example.org"}, "BASE_URL must be an http(s) address"),
    ("GITHUB_URL without a scheme", {"GITHUB_URL": "ghe.example.org"}, "GITHUB_URL must be an http(s) address"),
]


@pytest.mark.parametrize("env, message", [c[1:] for c in HALF_CONFIGURED], ids=[c[0] for c in HALF_CONFIGURED])
def test_a_half_configured_app_still_refuses_to_start_and_names_the_fix(env, message):
    with pytest.raises(settings_module.ConfigError, match=re.escape(message)):
        settings_module.check(settings_module.from_environment(env))


def test_settings_read_the_new_variables():
    env = {
        "BASE_URL": "https://engage.example.org/",
        "GHE_HOST": "ghe.example.org",
        "ADMIN_TOKEN": "t",
        "ENV_FILE": "x",
    }
    config = settings_module.from_environment(env)
    assert (config.base_url, config.github_url, config.admin_token, config.env_file) == (
        "https://engage.example.org",
        "https://ghe.example.org",
        "t",
        "x",
    )
    assert settings_module.from_environment({}).github_url == "https://github.com"
    assert settings_module.from_environment({}).needs_registration


# --- the manifest


def test_the_manifest_is_app_yml_with_this_installations_addresses(unregistered, github):
    server = unregistered()
    to_github = begin(server, requests.Session())
    manifest = json.loads(to_github.inputs["manifest"])
    assert manifest["default_events"] == APP_YML["default_events"]
    assert manifest["default_permissions"] == APP_YML["default_permissions"]
    assert (manifest["name"], manifest["url"], manifest["public"]) == (APP_YML["name"], APP_YML["url"], False)
    assert manifest["hook_attributes"] == {"url": server.webhook_url, "active": True}
    assert manifest["redirect_url"] == server.url + "/setup/callback"
    assert manifest["setup_url"] == server.url + "/" and manifest["callback_urls"] == [server.url + "/auth/callback"]
    assert github.manifest_problems(manifest) == []
    assert to_github.method == "post"
    assert to_github.action.startswith(f"{github.url}/settings/apps/new?state=")


def test_base_url_and_an_organisation_decide_where_it_goes(unregistered, github):
    server = unregistered(base_url="https://engage.example.org")
    to_github = begin(server, requests.Session(), organisation="llmasos")
    manifest = json.loads(to_github.inputs["manifest"])
    assert manifest["hook_attributes"]["url"] == "https://engage.example.org/api/github/webhooks"
    assert manifest["redirect_url"] == "https://engage.example.org/setup/callback"
    assert to_github.action.startswith(f"{github.url}/organizations/llmasos/settings/apps/new?state=")


def test_the_setup_page_warns_when_github_cannot_reach_the_address(unregistered):
    server = unregistered()  # 127.0.0.1
    assert 'data-warning="local"' in requests.get(server.url + "/setup", timeout=30).text
    quiet = unregistered(base_url="https://engage.example.org")
    assert 'data-warning="local"' not in requests.get(quiet.url + "/setup", timeout=30).text


def test_the_redirect_page_posts_only_to_github_and_runs_only_its_own_script(unregistered, github):
    server = unregistered()
    page = requests.post(server.url + "/setup", data={"organisation": ""}, timeout=30)
    policy = page.headers["Content-Security-Policy"]
    assert f"form-action 'self' {github.url};" in policy
    nonce = policy.split("'nonce-", 1)[1].split("'", 1)[0]
    assert f'<script nonce="{nonce}">' in page.text
    assert "data-continue" in page.text, "a visible button for browsers without script"
    assert page.headers["Cache-Control"] == "no-store"


def test_an_organisation_name_github_cannot_have_is_refused(unregistered, tmp_path):
    server = unregistered()
    page = requests.post(server.url + "/setup", data={"organisation": "-not valid<"}, timeout=30)
    assert page.status_code == 400
    assert BAD_ORGANISATION in page.text and "-not valid&lt;" in page.text
    assert not (tmp_path / "setup-states").exists() or not any((tmp_path / "setup-states").iterdir())


# --- the way back


def test_registering_writes_the_credentials_to_env_and_shows_the_install_link(unregistered, github, env_file, caplog):
    caplog.set_level(logging.DEBUG)
    server = unregistered()
    browser, callback = register(server, github, organisation="llmasos")
    done = browser.get(callback, timeout=30)
    assert done.status_code == 200, done.text
    app = registered_app(github)
    assert f'href="{github.url}/apps/{app["slug"]}/installations/new"' in done.text
    assert f'href="{github.url}/organizations/llmasos/settings/apps/{app["slug"]}"' in done.text
    assert "data-warning" not in done.text

    values = dotenv_values(env_file)
    assert values == {
        "APP_ID": str(app["id"]),
        "PRIVATE_KEY": app["pem"],
        "WEBHOOK_SECRET": app["webhook_secret"],
        "GITHUB_CLIENT_ID": app["client_id"],
        "GITHUB_CLIENT_SECRET": app["client_secret"],
        "APP_SLUG": app["slug"],
    }
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert 'PRIVATE_KEY="-----BEGIN RSA PRIVATE KEY-----\\n' in env_file.read_text(), "one line, \\n escaped"

    config = settings_module.from_environment({k: v for k, v in values.items() if v is not None})
    settings_module.check(config)
    assert (config.app_id, config.webhook_secret, config.needs_registration) == (
        app["id"],
        app["webhook_secret"],
        False,
    )
    public = load_private_key(config.private_key).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert pem == app["public_key_pem"], "the key written is the App's"

    secrets_seen = [app["pem"].splitlines()[1], app["webhook_secret"], app["client_secret"]]
    assert not [s for s in secrets_seen if s in done.text], "the page shows no secret"
    code = parse_qs(urlsplit(callback).query)["code"][0]
    # The HTTP server's access log (logger `werkzeug`; gunicorn's own in production) records the callback's
    # address; the app's own log lines never carry the code, the key or a secret.
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "werkzeug")
    assert [s for s in [*secrets_seen, code] if s in ours] == []
    assert "registered GitHub App" in ours


def test_until_a_restart_setup_says_registered_instead_of_offering_a_second_app(unregistered, github):
    server = unregistered()
    browser, callback = register(server, github)
    assert browser.get(callback, timeout=30).status_code == 200
    again = browser.get(server.url + "/setup", timeout=30)
    assert "registered: restart the app" in again.text and 'id="register"' not in again.text
    slug = registered_app(github)["slug"]
    assert f"{github.url}/apps/{slug}/installations/new" in again.text
    pressed = browser.post(server.url + "/setup", data={"organisation": ""}, timeout=30)
    assert 'id="to-github"' not in pressed.text


def test_a_used_state_is_refused_and_env_is_left_as_it_is(unregistered, github, env_file):
    server = unregistered()
    browser, callback = register(server, github)
    assert browser.get(callback, timeout=30).status_code == 200
    written = env_file.read_text()
    browser.cookies.set("engage_setup_state", parse_qs(urlsplit(callback).query)["state"][0], path="/setup")
    again = browser.get(callback, timeout=30)
    assert again.status_code == 400 and BAD_STATE in again.text
    assert env_file.read_text() == written
    assert len(github.calls("POST", "/app-manifests/")) == 1


BAD_STATES = [
    ("no state", lambda browser, url: (browser, with_query(url, state=None))),
    ("a state this app never issued", lambda browser, url: (browser, with_query(url, state="x" * 43))),
    ("another browser (no cookie)", lambda browser, url: (requests.Session(), url)),
]


@pytest.mark.parametrize("tamper", [c[1] for c in BAD_STATES], ids=[c[0] for c in BAD_STATES])
def test_a_bad_state_is_refused_and_nothing_is_written(unregistered, github, env_file, tamper):
    server = unregistered()
    browser, callback = register(server, github)
    who, url = tamper(browser, callback)
    page = who.get(url, timeout=30)
    assert page.status_code == 400 and BAD_STATE in page.text
    assert not env_file.exists()
    assert github.calls("POST", "/app-manifests/") == [], "the code was not exchanged"


def test_a_state_older_than_an_hour_is_refused(unregistered, github, env_file, monkeypatch):
    server = unregistered()
    browser, callback = register(server, github)
    later = setup.clock() + setup.STATE_TTL_SECONDS + 1
    monkeypatch.setattr(setup, "clock", lambda: later)
    page = browser.get(callback, timeout=30)
    assert page.status_code == 400 and BAD_STATE in page.text
    assert not env_file.exists()


def test_a_state_is_taken_once_even_after_a_failed_attempt(unregistered, github, env_file):
    server = unregistered()
    browser, callback = register(server, github)
    assert browser.get(with_query(callback, code=None), timeout=30).status_code == 400
    browser.cookies.set("engage_setup_state", parse_qs(urlsplit(callback).query)["state"][0], path="/setup")
    assert browser.get(callback, timeout=30).status_code == 400
    assert not env_file.exists()


CONVERSION_FAILURES = [
    ("GitHub refuses (422)", 422, {"message": "Validation Failed"}, "GitHub refused it (Validation Failed)"),
    ("GitHub is down (502)", 502, {"message": "Bad Gateway"}, "GitHub answered 502"),
]


@pytest.mark.parametrize(
    "status, body, words", [c[1:] for c in CONVERSION_FAILURES], ids=[c[0] for c in CONVERSION_FAILURES]
)
def test_a_failed_exchange_says_why_and_writes_nothing(unregistered, github, env_file, status, body, words):
    server = unregistered()
    browser, callback = register(server, github)
    github.fail_next("POST", r"^/app-manifests/[^/]+/conversions$", status, body=body)
    page = browser.get(callback, timeout=30)
    assert page.status_code == 502 and words in page.text and "Nothing was written" in page.text
    assert not env_file.exists()


def test_a_code_used_already_is_a_404_from_github_and_writes_nothing(unregistered, github, env_file):
    server = unregistered()
    browser, callback = register(server, github)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    first = requests.post(f"{github.url}/app-manifests/{code}/conversions", headers={"User-Agent": "test"}, timeout=30)
    assert first.status_code == 201
    page = browser.get(callback, timeout=30)
    assert page.status_code == 502 and "used already or is more than an hour old" in page.text
    assert not env_file.exists()


def test_values_already_in_env_are_kept_as_comments_and_the_page_says_so(unregistered, github, env_file):
    env_file.write_text(
        "# written by hand\n"
        "WEBHOOK_SECRET=a-secret-scripts-run-wrote\n"
        "LOG_LEVEL=DEBUG\n"
        'export APP_SLUG="an-older-app"\n'
        "APP_ID=\n"
    )
    env_file.chmod(0o644)
    server = unregistered(webhook_secret="a-secret-scripts-run-wrote")
    browser, callback = register(server, github)
    done = browser.get(callback, timeout=30)
    assert done.status_code == 200
    app = registered_app(github)
    warning = done.text.split('data-warning="replaced"', 1)[1].split("</div>", 1)[0]
    assert "WEBHOOK_SECRET, APP_SLUG" in warning and "APP_ID" not in warning
    values = dotenv_values(env_file)
    assert (values["WEBHOOK_SECRET"], values["APP_SLUG"], values["LOG_LEVEL"]) == (
        app["webhook_secret"],
        app["slug"],
        "DEBUG",
    )
    text = env_file.read_text()
    assert text.startswith("# written by hand\n")
    assert "# WEBHOOK_SECRET=a-secret-scripts-run-wrote\n" in text
    assert '# export APP_SLUG="an-older-app"\n' in text
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


def test_a_value_also_set_in_the_environment_is_named(unregistered, github, env_file, monkeypatch):
    monkeypatch.setenv("WEBHOOK_SECRET", "from-the-service-manager")
    server = unregistered()
    browser, callback = register(server, github)
    done = browser.get(callback, timeout=30)
    assert 'data-warning="environment"' in done.text and "WEBHOOK_SECRET" in done.text


def test_once_configured_the_setup_routes_are_gone(make_app, serve):
    server = serve(make_app())
    for method, path in (("GET", "/setup"), ("POST", "/setup"), ("GET", "/setup/callback?code=abc&state=def")):
        assert requests.request(method, server.url + path, timeout=30).status_code == 404, (method, path)
    assert requests.get(server.url + "/", allow_redirects=False, timeout=30).status_code == 200


# --- the .env writer


def test_env_values_read_back_exactly_as_written(tmp_path):
    path = tmp_path / ".env"
    tricky = {
        "A": "quotes \" and ' and a backslash \\ and \\n as text",
        "B": "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n",
        "C": "#not-a-comment",
        "D": "spaces  around ",
    }
    assert write_env(path, tricky, "note") == []
    assert dotenv_values(path) == tricky
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text().splitlines()) == 1 + len(tricky), "each value on one line"


def test_env_same_values_stay_and_a_multiline_old_value_is_commented_whole(tmp_path):
    path = tmp_path / ".env"
    path.write_text('KEEP=1\nAPP_ID=7\nPRIVATE_KEY="-----BEGIN OLD-----\nabc\n-----END OLD-----"\nLAST=x')
    replaced = write_env(path, {"APP_ID": "7", "PRIVATE_KEY": "new"}, "replaced today")
    assert replaced == ["PRIVATE_KEY"]
    text = path.read_text()
    assert "APP_ID=7\n" in text and "# replaced today; PRIVATE_KEY was:\n" in text
    assert '# PRIVATE_KEY="-----BEGIN OLD-----\n# abc\n# -----END OLD-----"\n' in text
    assert dotenv_values(path) == {"KEEP": "1", "APP_ID": "7", "PRIVATE_KEY": "new", "LAST": "x"}


def test_env_a_value_dotenv_would_expand_is_refused_and_the_file_left_alone(tmp_path):
    path = tmp_path / ".env"
    path.write_text("KEEP=1\n")
    with pytest.raises(EnvFileError):
        write_env(path, {"X": "${HOME}"}, "note")
    assert path.read_text() == "KEEP=1\n" and [p.name for p in tmp_path.iterdir()] == [".env"]


def test_env_a_symlinked_file_is_written_through_the_link(tmp_path):
    real = tmp_path / "real.env"
    real.write_text("KEEP=1\n")
    link = tmp_path / ".env"
    link.symlink_to(real)
    write_env(link, {"APP_ID": "9"}, "note")
    assert link.is_symlink() and dotenv_values(real) == {"KEEP": "1", "APP_ID": "9"}


def test_env_line_escapes_what_dotenv_unescapes():
    assert env_line("K", 'a"b\\c\nd') == 'K="a\\"b\\\\c\\nd"\n'


# --- the state store and the fake's side


def test_the_state_store_keeps_few_states_and_each_only_once(tmp_path):
    store = StateStore(tmp_path / "states")
    states = [store.issue() for _ in range(setup.MAX_PENDING_STATES + 5)]
    assert len(list((tmp_path / "states").iterdir())) <= setup.MAX_PENDING_STATES
    assert store.take(states[-1]) and not store.take(states[-1])
    assert not store.take(states[0]), "the oldest made room"
    assert not store.take("../../etc/passwd")


def test_the_fake_conversion_answers_in_githubs_documented_shape_once(github):
    manifest = build_manifest(APP_YML, "https://engage.example.org", "/api/github/webhooks")
    code = github.register_app_from_manifest(manifest, org="llmasos")
    url = f"{github.url}/app-manifests/{code}/conversions"
    answer = requests.post(url, headers={"User-Agent": "test", "X-GitHub-Api-Version": "2022-11-28"}, timeout=30)
    assert answer.status_code == 201
    body = answer.json()
    assert github.contract.operations[("GET", "/app")].response_errors(200, body) == []
    assert all(isinstance(body[k], str) and body[k] for k in ("client_id", "client_secret", "webhook_secret", "pem"))
    assert body["owner"]["login"] == "llmasos" and body["events"] == APP_YML["default_events"]
    assert requests.post(url, headers={"User-Agent": "test"}, timeout=30).status_code == 404, "one use"


def test_the_fake_refuses_a_manifest_github_would_refuse(github):
    page = requests.post(
        f"{github.url}/settings/apps/new", data={"manifest": json.dumps({"name": "x", "colour": "red"})}, timeout=30
    )
    assert page.status_code == 422 and "unknown manifest key" in page.text
    assert any("url (the App's homepage) is required" in v for v in github.violations)
    github.violations.clear()


# --- in Chinese


def test_setup_in_chinese_by_query_and_by_accept_language(unregistered, github):
    server = unregistered()
    page = requests.get(server.url + "/setup?lang=zh", timeout=30)
    assert page.status_code == 200 and '<html lang="zh-CN">' in page.text
    assert "尚未配置 GitHub App" in page.text and "注册 GitHub App" in page.text and "组织（可选）" in page.text
    assert "No GitHub App is configured yet" not in page.text and "Register the GitHub App" not in page.text
    assert 'href="/setup?lang=en"' in page.text, "the language switch leads back to English"

    browser = requests.Session()
    browser.headers["Accept-Language"] = "zh-CN,zh;q=0.9"
    refused = browser.post(server.url + "/setup", data={"organisation": "-not valid"}, timeout=30)
    assert refused.status_code == 400 and "这不是 GitHub 上可用的组织名" in refused.text
    to_github = browser.post(server.url + "/setup", data={"organisation": ""}, timeout=30)
    assert "正在前往 GitHub" in to_github.text and "继续前往 GitHub" in to_github.text
    done = browser.get(confirm_on_github(github, browser, form(to_github.text, "to-github")), timeout=30)
    assert done.status_code == 200 and "已注册" in done.text and "安装 App" in done.text
    assert f"data-app-id>{registered_app(github)['id']}</strong>" in done.text
    used = browser.get(server.url + "/setup/callback?state=x" + "y" * 30 + "&code=abc", timeout=30)
    assert used.status_code == 400 and "设置没有完成" in used.text and "没有写入任何内容" in used.text


# --- a person's App or an organisation's


def test_the_form_warns_that_a_persons_private_app_installs_only_on_their_account(unregistered, github):
    page = requests.get(unregistered().url + "/setup", timeout=30).text
    warning = re.search(r'<p class="ops-box warning" id="personal-warning" data-warning="personal">(.*?)</p>', page)
    assert warning, "the warning stands above the organisation field"
    assert "only on the account that owns it" in warning.group(1) and "organisation" in warning.group(1)
    assert 'aria-describedby="personal-warning"' in page
    assert page.index('data-warning="personal"') < page.index('id="organisation"')
    chinese = requests.get(unregistered().url + "/setup?lang=zh", timeout=30).text
    assert "只允许把私有 App 安装到拥有它的账号上" in chinese


def test_registered_for_a_person_the_done_page_says_where_it_installs_and_how_to_move_it(unregistered, github):
    server = unregistered()
    browser, callback = register(server, github)  # no organisation
    done = browser.get(callback, timeout=30)
    assert done.status_code == 200, done.text
    owner = registered_app(github)["owner"]
    warning = re.search(r'data-warning="personal">\s*<p>(.*?)</p>', done.text, re.S)
    assert warning and f"<strong>{owner}</strong> owns this private App" in warning.group(1)
    assert "Transfer ownership" in warning.group(1)


def test_an_organisations_app_has_no_warning_once_registered(unregistered, github):
    server = unregistered()
    browser = requests.Session()
    to_github = begin(server, browser, organisation="llmasos")
    assert to_github.action.startswith(f"{github.url}/organizations/llmasos/settings/apps/new?state=")
    callback = confirm_on_github(github, browser, to_github)
    done = browser.get(callback, timeout=30)
    assert registered_app(github)["owner"] == "llmasos"
    assert 'data-warning="personal"' not in done.text
