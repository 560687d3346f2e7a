"""Registering the GitHub App in a real headless Chromium, the way a maintainer does it the first time.

The app starts with no App at all; `/` leads to the setup page; the organisation is filled in and
"Register" pressed; the page's script posts the manifest to the (fake) GitHub, where "Create GitHub App"
is pressed; GitHub sends the browser back and the install link shows. Then the app is started again from
the `.env` it wrote, as a restart would, and takes a webhook signed with the secret GitHub made. Without
JavaScript the visible button does what the script would. Screenshots land in `artifacts/screenshots/`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from dotenv import dotenv_values

from tests import test_pages_browser, test_setup
from tests.conftest import TEST_BEHAVIOURS, example, services
from tests.test_pages_browser import CHROMIUM, SCREENSHOTS

# Fixtures shared with the pages' browser tests and the HTTP tests of setup.
chromium = test_pages_browser.chromium
env_file, environment_restored, unregistered = (
    test_setup.env_file,
    test_setup.environment_restored,
    test_setup.unregistered,
)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (scripts/services installs it)"
)


class Browser:
    """One browser context that remembers console errors (a Content-Security-Policy violation is one)."""

    def __init__(self, chromium: Any, **options: Any):
        settings = {"viewport": {"width": 1280, "height": 900}, "locale": "en-US", "color_scheme": "light", **options}
        self.context = chromium.new_context(**settings)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def browser(chromium: Any) -> Iterator[Browser]:
    opened = Browser(chromium)
    yield opened
    opened.context.close()


def test_a_maintainer_registers_the_app_and_a_restarted_app_takes_signed_webhooks(
    browser, unregistered, github, env_file, database_url, environment_restored, monkeypatch, serve
):
    server = unregistered()
    page = browser.page
    page.goto(server.url + "/", wait_until="load")
    assert page.url == server.url + "/setup"
    assert page.locator("h1").inner_text() == "No GitHub App is configured yet"
    browser.screenshot("setup-en")

    page.fill("#organisation", "llmasos")
    page.click("button[data-register]")
    page.wait_for_url(f"{github.url}/organizations/llmasos/settings/apps/new?state=*")
    assert page.locator("h1").inner_text() == "Create GitHub App"
    assert page.locator("[data-owner]").inner_text() == "llmasos"
    assert page.locator("[data-name]").inner_text() == "LLMasOS Engage"

    page.click("text=Create GitHub App for llmasos")
    page.wait_for_url(f"{server.url}/setup/callback?*")
    [app] = github.registered_apps.values()
    install = page.locator("a[data-install]")
    assert install.get_attribute("href") == f"{github.url}/apps/{app['slug']}/installations/new"
    assert page.locator("[data-app-id]").inner_text() == str(app["id"])
    browser.screenshot("setup-done-en")
    assert browser.errors == []

    values = dotenv_values(env_file)
    assert (values["APP_ID"], values["WEBHOOK_SECRET"], values["APP_SLUG"]) == (
        str(app["id"]),
        app["webhook_secret"],
        app["slug"],
    )
    assert values["PRIVATE_KEY"] == app["pem"]
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600

    # The restart: a new app reads ENV_FILE as `scripts/run` would, and is configured.
    from app import create_app

    monkeypatch.setenv("ENV_FILE", str(env_file))
    for name in ("APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET"):
        assert name not in os.environ
    restarted = create_app(
        {
            "database_url": database_url,
            "github_api_url": github.url,
            "behaviours": TEST_BEHAVIOURS,
            "log_format": "text",
        }
    )
    try:
        config = services(restarted).settings
        assert (config.app_id, config.needs_registration) == (app["id"], False)
        live = serve(restarted)
        payload = example("issues.opened.1")  # no installation: the test handlers call nobody
        assert live.deliver("issues", payload, secret=app["webhook_secret"]).status_code == 202
        assert live.deliver("issues", payload, secret="test-webhook-secret").status_code == 401
        assert requests.get(live.url + "/setup", timeout=30).status_code == 404
        assert requests.get(live.url + "/", allow_redirects=False, timeout=30).status_code == 200
    finally:
        services(restarted).close()


def test_without_javascript_the_visible_button_posts_the_manifest(chromium, unregistered, github):
    plain = Browser(chromium, java_script_enabled=False)
    try:
        server = unregistered()
        page = plain.page
        page.goto(server.url + "/setup", wait_until="load")
        page.click("button[data-register]")
        page.wait_for_load_state()
        assert page.url == server.url + "/setup"
        assert page.locator("button[data-continue]").is_visible()
        page.click("button[data-continue]")
        page.wait_for_url(f"{github.url}/settings/apps/new?state=*")
        assert page.locator("h1").inner_text() == "Create GitHub App"
        assert plain.errors == []
    finally:
        plain.context.close()
