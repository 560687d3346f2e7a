"""One security-headers policy for every response the app gives: pages, APIs, static files, error pages.

Why one place: headers set by each blueprint missed what no blueprint serves (`/static/*`, Flask's own
404, 405 and 500 pages). The app-level hook runs after the blueprints' own, and only fills in what they
left unset, so a blueprint that needs more (setup's script nonce and GitHub as a form target, the
operator page's `no-store`) sets its stricter value and keeps it.
"""

from __future__ import annotations

from flask import Flask, Response

# No script at all, nothing from another origin. 'unsafe-inline' styles: the charts carry a <style>.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def add_security_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)
