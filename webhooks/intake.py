"""The webhook endpoint: verify, store, dispatch, answer. No GitHub call happens here.

Answers, as GitHub's delivery log shows them: 202 accepted, 200 for ping and redeliveries,
401 bad signature, 400 malformed, 413 too large, 415 wrong content type, 503 database down.
"""

from __future__ import annotations

import logging

from flask import Response, current_app, jsonify, request
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import RequestEntityTooLarge

from domain.contributions import Forum
from ops import metrics
from services import Services
from storage.deliveries import IGNORED, PENDING
from webhooks import discourse, rocketchat, signature, telegram
from webhooks.event import Event, MalformedEvent, parse

log = logging.getLogger(__name__)

# The errors that mean the database cannot be reached or is overloaded now, which a redelivery may get
# past. Any other database error is a bug: it answers 500 with a traceback, not a false "unavailable".
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)


def _answer(code: int, message: str, **more: object) -> tuple[Response, int]:
    return jsonify({"message": message, **more}), code


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


def receive() -> tuple[Response, int]:
    services: Services = current_app.extensions["engage"]
    secret = services.settings.webhook_secret or ""
    try:
        body = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH (GitHub's 25 MB cap)
    except RequestEntityTooLarge:
        _count(services, None, "too_large")
        raise
    try:
        signature.verify(secret, body, request.headers.get("X-Hub-Signature-256"))
    except signature.SignatureError as exc:
        _count(services, None, "rejected_signature")  # the event header is unverified: not a label
        log.warning("webhook refused: %s", exc, extra={"delivery_id": request.headers.get("X-GitHub-Delivery")})
        return _answer(401, str(exc))
    if request.mimetype != "application/json":
        _count(services, request.headers.get("X-GitHub-Event"), "unsupported_media_type")
        return _answer(
            415, "webhook content type must be application/json: change it in the GitHub App's webhook settings"
        )
    try:
        event = parse(request.headers.get("X-GitHub-Delivery"), request.headers.get("X-GitHub-Event"), body)
    except MalformedEvent as exc:
        _count(services, request.headers.get("X-GitHub-Event"), "malformed")
        return _answer(400, str(exc))
    answer = _store(services, event, body.decode("utf-8"))
    if event.name == "ping" and answer[1] == 202:
        return _answer(200, "pong", delivery_id=event.delivery_id)
    return answer


def receive_discourse() -> tuple[Response, int]:
    """The forum's webhooks: the same answers and guarantees as GitHub's, 404 while the forum is not set."""
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


def _store(services: Services, event: Event, payload_text: str) -> tuple[Response, int]:
    """A verified, parsed delivery of any platform: stored, dispatched, answered."""
    try:
        new, status = accept(services, event, payload_text)
    except DATABASE_UNAVAILABLE as exc:
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
        services.dispatcher.submit(event.delivery_id)
    log.info("delivery accepted", extra={**fields, "outcome": status})
    _count(services, event.name, "accepted" if status == PENDING else "ignored")
    return _answer(202, "accepted", delivery_id=event.delivery_id, outcome=status)


def receive_telegram() -> tuple[Response, int]:
    """The bot's webhook: the secret token checked first (nothing is stored without it), then the update
    stored with only the fields the ledger uses; 404 while the bot's token or the secret is not set."""
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
