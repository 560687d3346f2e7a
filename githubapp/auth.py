"""GitHub App authentication: a short-lived JWT for the app, cached tokens for each installation.

GitHub documents the JWT: RS256, `iat` 60 s in the past against clock drift, `exp` at most
10 minutes ahead, `iss` the App ID ("Generating a JSON Web Token (JWT) for a GitHub App").
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from githubapp.cache import Cache
from settings import load_private_key

log = logging.getLogger(__name__)

JWT_LIFETIME_SECONDS = 9 * 60  # below GitHub's 10-minute cap even with the 60 s backdating
CLOCK_DRIFT_SECONDS = 60
# Refresh an installation token this long before GitHub's `expires_at`, so no call races its expiry.
TOKEN_REFRESH_MARGIN_SECONDS = 5 * 60


def make_jwt(app_id: int, private_key: RSAPrivateKey, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time()) - CLOCK_DRIFT_SECONDS
    claims = {"iat": issued, "exp": issued + CLOCK_DRIFT_SECONDS + JWT_LIFETIME_SECONDS, "iss": str(app_id)}
    return jwt.encode(claims, private_key, algorithm="RS256")


class AppAuth:
    """Issues the app JWT and installation tokens; tokens are cached until shortly before they expire."""

    def __init__(
        self, app_id: int, private_key_pem: str, cache: Cache, create_token: Callable[[int, str], dict[str, str]]
    ):
        self.app_id = app_id
        self._key = load_private_key(private_key_pem)
        self._cache = cache
        # Injected so this module does no HTTP itself: (installation_id, app_jwt) -> GitHub's token JSON.
        self._create_token = create_token
        self._jwt: tuple[float, str] | None = None
        self._fetching: dict[int, threading.Lock] = {}  # installation -> held while its token is fetched

    def app_jwt(self) -> str:
        now = time.time()
        if self._jwt is None or self._jwt[0] - now < 60:
            token = make_jwt(self.app_id, self._key, now)
            self._jwt = (now + JWT_LIFETIME_SECONDS, token)
        return self._jwt[1]

    def installation_token(self, installation_id: int) -> str:
        key = f"token:{self.app_id}:{installation_id}"
        if cached := self._cache.get(key):
            return str(json.loads(cached)["token"])
        # Threads processing deliveries of one installation at once (WORKER_THREADS) find no token together,
        # after a start or an expiry: one asks GitHub, the others wait for its answer in the cache.
        with self._fetching.setdefault(installation_id, threading.Lock()):
            if cached := self._cache.get(key):
                return str(json.loads(cached)["token"])
            return self._new_token(key, installation_id)

    def _new_token(self, key: str, installation_id: int) -> str:
        answer = self._create_token(installation_id, self.app_jwt())
        expires_at = datetime.fromisoformat(answer["expires_at"].replace("Z", "+00:00"))
        ttl = (expires_at - datetime.now(UTC)).total_seconds() - TOKEN_REFRESH_MARGIN_SECONDS
        if ttl > 0:
            self._cache.set(key, json.dumps({"token": answer["token"], "expires_at": answer["expires_at"]}), ttl)
        log.debug("installation token issued", extra={"installation_id": installation_id})
        return answer["token"]

    def forget_token(self, installation_id: int) -> None:
        """Drop a token GitHub refused (revoked, or the installation was re-created)."""
        self._cache.delete(f"token:{self.app_id}:{installation_id}")
