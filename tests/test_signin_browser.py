"""Signing in with GitHub in a real headless Chromium, against the fake GitHub: a private repository's
board appears once GitHub says the person may read it, another organisation's private board never
does, and after signing out it is gone again; in English and Chinese. The world is test_signin's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.test_pages_browser import CHROMIUM, chromium  # noqa: F401 (a fixture)
from tests.test_signin import PRIVATE_A, PRIVATE_B, recheck_seconds, world  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (scripts/services installs it)"
)


@pytest.fixture
def page_in(chromium: Any) -> Iterator[Any]:  # noqa: F811
    contexts: list[Any] = []

    def open_page(locale: str) -> tuple[Any, list[str]]:
        context = chromium.new_context(locale=locale, viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page, errors

    yield open_page
    for context in contexts:
        context.close()


@pytest.mark.parametrize(
    ("locale", "sign_in", "signed_in_as", "sign_out"),
    [
        ("en-US", "Sign in with GitHub", "Signed in as ana", "Sign out"),
        ("zh-CN", "使用 GitHub 登录", "已登录：ana", "退出登录"),
    ],
)
def test_sign_in_see_the_private_board_sign_out_and_it_is_gone(
    world,  # noqa: F811
    github,
    page_in,
    locale,
    sign_in,
    signed_in_as,
    sign_out,
):
    github.sign_in_browser("ana")  # signed in to GitHub in this browser; may read Hello-World only
    page, errors = page_in(locale)
    board = f"{world.url}/leaderboard?{PRIVATE_A}&window=all"
    assert page.goto(board).status == 404
    page.get_by_role("link", name=sign_in).click()  # to GitHub and straight back here
    page.wait_for_url(board)
    assert page.locator("tr[data-login]").evaluate_all("rows => rows.map(r => r.dataset.login)") == ["mei"]
    assert signed_in_as in page.locator(".signed-in-as").inner_text()
    other = page.goto(f"{world.url}/leaderboard?{PRIVATE_B}&window=all")  # another organisation's private board
    assert other.status == 404 and page.locator("tr[data-login]").count() == 0
    page.goto(board)
    page.get_by_role("button", name=sign_out).click()
    page.wait_for_load_state()
    assert page.locator(".signed-in-as").count() == 0
    assert page.get_by_role("link", name=sign_in).is_visible()
    assert page.goto(board).status == 404 and page.locator("tr[data-login]").count() == 0
    assert errors == []
