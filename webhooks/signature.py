"""X-Hub-Signature-256 verification: pure, no I/O, constant-time."""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


class SignatureError(ValueError):
    """The delivery did not come from GitHub with our secret."""


def sign(secret: str, body: bytes) -> str:
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> None:
    """Raise SignatureError unless `header` is the HMAC-SHA256 of `body` under `secret`."""
    if not header:
        raise SignatureError("missing X-Hub-Signature-256 header: set a webhook secret on the GitHub App")
    if not header.startswith(PREFIX):
        raise SignatureError("X-Hub-Signature-256 must start with 'sha256='")
    if not hmac.compare_digest(sign(secret, body).encode(), header.strip().encode()):
        raise SignatureError("signature does not match: check WEBHOOK_SECRET")
