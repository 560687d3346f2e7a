"""The webhook endpoints: verify, store, dispatch, answer. No GitHub call happens here.

Answers, as GitHub's delivery log shows them: 202 accepted, 200 for ping and redeliveries,
401 bad signature, 400 malformed, 413 too large, 415 wrong content type, 503 database down.

GitHub's endpoint is the app's busiest by far (every push, check run and comment of every installed
repository), so it is a plain WSGI app in front of Flask (`GitHubWebhooks`): Flask's request context,
routing and response objects cost as much as verifying, parsing and storing the delivery. The forum's
and the chats' endpoints see a fraction of that traffic and stay Flask views; all share `_store`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from flask import Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import get_input_stream

from domain.contributions import Forum
from ops import metrics
from services import Services
from settings import MAX_WEBHOOK_BYTES
from storage.deliveries import IGNORED, PENDING
from storage.group_commit import DATABASE_UNAVAILABLE
from web.security import HEADERS as SECURITY_HEADERS
from webhooks import discourse, rocketchat, signature, telegram
from webhooks.event import Event, MalformedEvent, parse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """What an endpoint says: the status code and the JSON body GitHub's delivery log shows."""

    code: int
    body: Mapping[str, object]

    def flask(self) -> tuple[Response, int]:
        return jsonify(self.body), self.code


def _answer(code: int, message: str, **more: object) -> Answer:
    return Answer(code, {"message": message, **more})


def _count(services: Services, event: str | None, outcome: str) -> None:
    services.metrics.inc(metrics.RECEIVED, {"event": metrics.event_label(event), "outcome": outcome})


def accept(services: Services, event: Event, payload_text: str) -> tuple[bool, str]:
    """Store the delivery and dispatch it; returns (new, status). Shared by the endpoint and `replay`."""
    _, reason = services.router.route(event)
    status = IGNORED if reason else PENDING
    new = services.store.insert(
        id=event.delivery_id,
        event=event.name,
        action=event.action,
        installation_id=event.installation_id,
        repository=event.repository,
        sender=event.sender_login,
        payload_text=payload_text,
        status=status,
        last_error=reason,
    )
    return new, status


def receive_github(services: Services, environ: Mapping[str, Any]) -> Answer:
    """GitHub's delivery, from the WSGI environ as the server hands it over."""
    secret = services.settings.webhook_secret or ""
    try:
        body = _body(environ)
    except RequestEntityTooLarge:
        _count(services, None, "too_large")
        return _answer(413, f"body too large: GitHub sends at most {MAX_WEBHOOK_BYTES} bytes")
    except ShortBody as exc:
        _count(services, None, "malformed")
        return _answer(400, str(exc))
    delivery_id, event_name = environ.get("HTTP_X_GITHUB_DELIVERY"), environ.get("HTTP_X_GITHUB_EVENT")
    try:
        signature.verify(secret, body, environ.get("HTTP_X_HUB_SIGNATURE_256"))
    except signature.SignatureError as exc:
        _count(services, None, "rejected_signature")  # the event header is unverified: not a label
        log.warning("webhook refused: %s", exc, extra={"delivery_id": delivery_id})
        return _answer(401, str(exc))
    if str(environ.get("CONTENT_TYPE", "")).split(";", 1)[0].strip().lower() != "application/json":
        _count(services, event_name, "unsupported_media_type")
        return _answer(
            415, "webhook content type must be application/json: change it in the GitHub App's webhook settings"
        )
    try:
        event = parse(delivery_id, event_name, body)
    except MalformedEvent as exc:
        _count(services, event_name, "malformed")
        return _answer(400, str(exc))
    answer = _store(services, event, body.decode("utf-8"))
    if event.name == "ping" and answer.code == 202:
        return _answer(200, "pong", delivery_id=event.delivery_id)
    return answer


class ShortBody(ValueError):
    """The sender stopped before the end of the body it announced."""


def _body(environ: Mapping[str, Any]) -> bytes:
    """The request's body; RequestEntityTooLarge past GitHub's 25 MB cap, ShortBody when it ends early.

    GitHub announces each body's length: past the cap it is refused before anything is read, and otherwise
    read in one call (werkzeug's limited stream took 13 µs of a 280 µs answer for the same). A chunked body
    is read one byte past the cap, to know it went past.
    """
    declared = environ.get("CONTENT_LENGTH")
    if not declared or not declared.isdigit() or environ.get("HTTP_TRANSFER_ENCODING"):
        streamed: bytes = get_input_stream(environ).read(MAX_WEBHOOK_BYTES + 1)  # type: ignore[arg-type]
        if len(streamed) > MAX_WEBHOOK_BYTES:
            raise RequestEntityTooLarge()
        return streamed
    length = int(declared)
    if length > MAX_WEBHOOK_BYTES:
        raise RequestEntityTooLarge()
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    if len(body) < length:
        raise ShortBody(f"the body ended after {len(body)} of the {length} bytes its Content-Length announced")
    return body


StartResponse = Callable[..., Any]


class GitHubWebhooks:
    """GitHub's webhook path served before Flask sees the request; every other path goes on to Flask.

    The answer carries the same security headers as every Flask response (web/security.py). An
    unexpected error is logged with its traceback and answered 500, so GitHub shows the delivery as
    failed and it can be redelivered.
    """

    def __init__(
        self,
        services: Services,
        path: str,
        flask_app: Callable[..., Iterable[bytes]],
        on_request: Callable[[], object] | None = None,
    ) -> None:
        self.services, self.path, self.flask_app = services, path, flask_app
        self.on_request = on_request  # what Flask's before_request hook does for its own paths

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if (
            environ.get("PATH_INFO") != self.path
            or environ.get("REQUEST_METHOD") != "POST"
            or not self.services.settings.webhook_secret  # no App registered yet: web/setup.py answers 503
        ):
            return self.flask_app(environ, start_response)  # and Flask's route answers other methods with 405
        if self.on_request is not None:
            self.on_request()
        try:
            with self.services.in_flight.answering():
                answer = receive_github(self.services, environ)
        except Exception:
            log.exception("webhook failed", extra={"delivery_id": environ.get("HTTP_X_GITHUB_DELIVERY")})
            answer = _answer(500, "internal error; redeliver later")
        body = json.dumps(answer.body).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *SECURITY_HEADERS.items()]
        start_response(f"{answer.code} {HTTPStatus(answer.code).phrase}", headers)
        return [body]


def receive() -> tuple[Response, int]:
    """The same endpoint as a Flask view: `flask routes` lists it, and it answers wherever the WSGI app in
    front is not (GitHubWebhooks takes every POST to the path first)."""
    return receive_github(current_app.extensions["engage"], request.environ).flask()


def receive_discourse() -> tuple[Response, int]:
    """The forum's webhooks: the same answers and guarantees as GitHub's, 404 while the forum is not set."""
    return _discourse().flask()


def _discourse() -> Answer:
    services: Services = current_app.extensions["engage"]
    config = services.settings
    if not config.records_discourse:
        return _answer(404, "no forum here: set DISCOURSE_URL and DISCOURSE_WEBHOOK_SECRET")
    body = request.get_data(cache=True)
    try:
        discourse.verify(config.discourse_webhook_secret or "", body, request.headers.get(discourse.SIGNATURE_HEADER))
    except discourse.SignatureError as exc:
        _count(services, None, "rejected_signature")
        log.warning("forum webhook refused: %s", exc, extra={"event_id": request.headers.get("X-Discourse-Event-Id")})
        return _answer(401, str(exc))
    forum = Forum(config.discourse_url or "", config.community_org or "", config.discourse_public_categories)
    try:
        event, payload_text = discourse.parse_delivery(
            request.headers.get("X-Discourse-Event-Id"), request.headers.get("X-Discourse-Event"), body, forum
        )
    except MalformedEvent as exc:
        _count(services, None, "malformed")
        return _answer(400, str(exc))
    return _store(services, event, payload_text)


def _store(services: Services, event: Event, payload_text: str) -> Answer:
    """A verified, parsed delivery of any platform: stored, dispatched, answered."""
    try:
        new, status = accept(services, event, payload_text)
    except DATABASE_UNAVAILABLE as exc:  # a redelivery may get past it; any other error is a bug, answered 500
        _count(services, event.name, "database_unavailable")
        log.error(
            "database unavailable; the sender will show the delivery as failed for redelivery",
            extra={"delivery_id": event.delivery_id, "error": type(exc).__name__},
        )
        return _answer(503, "database unavailable; redeliver later")
    fields = {
        "delivery_id": event.delivery_id,
        "event": event.name,
        "action": event.action,
        "repo": event.repository,
        "installation_id": event.installation_id,
    }
    if not new:
        _count(services, event.name, "duplicate")
        log.info("redelivery acknowledged, not processed again", extra=fields)
        return _answer(200, "already received", delivery_id=event.delivery_id)
    if status == PENDING:
        services.dispatcher.submit(event.delivery_id, event.lane)
    log.info("delivery accepted", extra={**fields, "outcome": status})
    _count(services, event.name, "accepted" if status == PENDING else "ignored")
    return _answer(202, "accepted", delivery_id=event.delivery_id, outcome=status)


def receive_telegram() -> tuple[Response, int]:
    """The bot's webhook: the secret token checked first (nothing is stored without it), then the update
    stored with only the fields the ledger uses; 404 while the bot's token or the secret is not set."""
    return _telegram().flask()


def _telegram() -> Answer:
    services: Services = current_app.extensions["engage"]
    config = services.settings
    if not config.records_telegram:
        return _answer(404, "no Telegram bot here: set TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET")
    try:
        telegram.verify(config.telegram_webhook_secret or "", request.headers.get(telegram.SECRET_HEADER))
    except telegram.SecretError as exc:
        _count(services, None, "rejected_signature")
        log.warning("Telegram webhook refused: %s", exc)
        return _answer(401, str(exc))
    try:
        event, payload_text = telegram.parse_delivery(
            request.get_data(cache=True), telegram.chat_of(config.community_org or "")
        )
    except MalformedEvent as exc:
        _count(services, None, "malformed")
        return _answer(400, str(exc))
    return _store(services, event, payload_text)


def receive_rocketchat() -> tuple[Response, int]:
    """Rocket.Chat's outgoing webhook: the token in the body checked first (nothing is stored without
    it); 404 while ROCKETCHAT_URL or ROCKETCHAT_WEBHOOK_TOKEN is not set."""
    return _rocketchat().flask()


def _rocketchat() -> Answer:
    services: Services = current_app.extensions["engage"]
    config = services.settings
    if not config.records_rocketchat:
        return _answer(404, "no Rocket.Chat here: set ROCKETCHAT_URL and ROCKETCHAT_WEBHOOK_TOKEN")
    try:
        body = rocketchat.read(request.get_data(cache=True))
        rocketchat.verify(config.rocketchat_webhook_token or "", body)
    except (MalformedEvent, rocketchat.TokenError) as exc:
        # Unread or without our token, the body is nobody's: refused alike, nothing stored.
        _count(services, None, "rejected_signature")
        log.warning("Rocket.Chat webhook refused: %s", exc)
        return _answer(401, str(exc))
    chat = rocketchat.chat_of(config.rocketchat_url or "", config.community_org or "", config.rocketchat_channels)
    try:
        event, payload_text = rocketchat.parse_delivery(body, chat)
    except MalformedEvent as exc:
        _count(services, None, "malformed")
        return _answer(400, str(exc))
    return _store(services, event, payload_text)
