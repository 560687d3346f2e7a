"""Every response carries the site's security headers, including what no blueprint serves: static files
and Flask's own 404, 405 and 500 pages (over real HTTP)."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import REPO
from web.security import CONTENT_SECURITY_POLICY


def assert_protected(answer: requests.Response) -> None:
    assert answer.headers.get("Content-Security-Policy") == CONTENT_SECURITY_POLICY, answer.url
    assert answer.headers.get("X-Content-Type-Options") == "nosniff", answer.url
    assert answer.headers.get("Referrer-Policy") == "same-origin", answer.url


@pytest.fixture
def server(make_app, serve):
    return serve(make_app())


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/static/engage.css", 200),
        ("GET", "/static/favicon.svg", 200),
        ("GET", "/no-such-page", 404),
        ("GET", "/static/no-such-file.css", 404),
        ("GET", "/api/github/webhooks", 405),
        ("GET", "/healthz", 200),
        ("GET", "/", 200),
        ("GET", f"/leaderboard?repo={REPO}", 404),
    ],
)
def test_every_response_carries_the_security_headers(server, method, path, status):
    answer = requests.request(method, server.url + path, timeout=30)
    assert answer.status_code == status
    assert_protected(answer)


def test_flasks_own_500_page_carries_them_too(make_app, serve):
    app = make_app(testing=False)  # in testing mode Flask lets the exception reach the test server instead

    def crash() -> str:
        raise RuntimeError("a bug")

    app.add_url_rule("/crash", "crash", crash)
    answer = requests.get(serve(app).url + "/crash", timeout=30)
    assert answer.status_code == 500 and "a bug" not in answer.text
    assert_protected(answer)


def test_pages_that_need_more_keep_their_stricter_headers(make_app, serve):
    server = serve(make_app(admin_token="x" * 32))
    admin = requests.get(server.url + "/admin", timeout=30)
    assert (admin.headers["Cache-Control"], admin.headers["Referrer-Policy"]) == ("no-store", "no-referrer")
    assert admin.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
