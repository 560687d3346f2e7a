"""The app factory: `flask --app app run`, `gunicorn 'app:create_app()'`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, jsonify
from werkzeug.middleware.proxy_fix import ProxyFix

import logs
import services as services_module
import settings as settings_module
import web.metrics
import web.security
import web.signin
from settings import MAX_WEBHOOK_BYTES


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the environment (and `.env`); `overrides` replace Settings fields (tests)."""
    app = Flask(__name__, instance_relative_config=True)
    config = settings_module.with_overrides(
        settings_module.from_environment(instance_path=app.instance_path), overrides
    )
    settings_module.check(config)
    logs.configure(config.log_level, config.log_format)
    app.config["MAX_CONTENT_LENGTH"] = MAX_WEBHOOK_BYTES
    app.config["TESTING"] = config.testing
    if config.trusted_proxies:
        # Behind a proxy that terminates TLS: its X-Forwarded-* headers say the scheme, host and address,
        # so cookies are Secure and the rate limits count people rather than the proxy.
        n = config.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    services = services_module.build(config)
    services_module.install(services)
    app.extensions["engage"] = services

    from webhooks.intake import GitHubWebhooks, receive, receive_discourse, receive_rocketchat, receive_telegram

    app.add_url_rule(config.webhook_path, "webhook", receive, methods=["POST"])
    app.add_url_rule("/api/discourse/webhooks", "discourse_webhook", receive_discourse, methods=["POST"])
    app.add_url_rule("/api/telegram/webhook", "telegram_webhook", receive_telegram, methods=["POST"])
    app.add_url_rule("/api/rocketchat/webhook", "rocketchat_webhook", receive_rocketchat, methods=["POST"])
    app.add_url_rule("/healthz", "healthz", healthz)
    web.metrics.init_app(app)
    from web.admin import bp as admin
    from web.badges import bp as badges
    from web.config_page import bp as config_page
    from web.contributors import bp as contributors
    from web.events import bp as events
    from web.pages import bp as pages
    from web.people import bp as people
    from web.setup import bp as setup
    from web.signin import bp as signin

    web.signin.init_app(app)
    app.register_blueprint(pages)
    app.register_blueprint(setup)
    app.register_blueprint(admin)
    app.register_blueprint(signin)
    app.register_blueprint(people)
    app.register_blueprint(contributors)
    app.register_blueprint(events)
    app.register_blueprint(badges)
    app.register_blueprint(config_page)
    web.security.init_app(app)  # every response, /static/* and Flask's own error pages included
    start = getattr(services.dispatcher, "start", None)
    if start is not None:
        # The embedded worker and its sweeper start with the first request a serving process gets
        # (not at import, not in CLI commands), so stranded deliveries are picked up after a restart.
        app.before_request(start)
    # GitHub's webhooks are answered before Flask sees them (see webhooks/intake.py).
    app.wsgi_app = GitHubWebhooks(services, config.webhook_path, app.wsgi_app, start)  # type: ignore[method-assign]

    import cli

    cli.init_app(app)
    return app


def healthz() -> Any:
    """200 when the database and the queue both answer, 503 otherwise (for load balancers)."""
    services: services_module.Services = current_app.extensions["engage"]
    try:
        services.store.ping()
        database_ok, database = True, "ok"
    except Exception as exc:
        database_ok, database = False, f"unreachable: {type(exc).__name__}"
    queue_ok, queue = services.dispatcher.health()
    ok = database_ok and queue_ok
    return jsonify({"status": "ok" if ok else "degraded", "database": database, "queue": queue}), 200 if ok else 503
