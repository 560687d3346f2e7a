"""Sessions of people signed in with GitHub, kept on the server so they can be revoked (issue 13).

The browser's cookie holds a random value; the table holds only its SHA-256, so a copy of the database
opens no session. The person's GitHub user token and refresh token are stored encrypted (Fernet, with a
key derived from the App's client secret: a new secret signs everyone out). What the person may read is
kept beside the session with the time GitHub said so (`grants_checked_at`); web.signin asks again when
that is older than a few minutes. A sign-in under way keeps its PKCE verifier here, one-time, for ten
minutes, keyed by the hash of its `state`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.engine import Engine

from storage import db
from storage.db import sign_in_requests, utcnow, web_sessions

SIGN_IN_LIFETIME = timedelta(minutes=10)
SESSION_LIFETIME = timedelta(days=30)  # then sign in again, whatever the refresh token's life

_s = web_sessions.c
_r = sign_in_requests.c


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def sealer(secret: str) -> Fernet:
    """The key tokens are encrypted with, derived from the App's client secret."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"llmasos-engage web sessions").derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


@dataclass(frozen=True)
class Tokens:
    """A person's GitHub user access token and refresh token, with their expiry times (naive UTC)."""

    access: str
    access_expires_at: datetime | None
    refresh: str | None
    refresh_expires_at: datetime | None


@dataclass(frozen=True)
class Session:
    session_hash: str
    user_id: int
    login: str
    tokens: Tokens
    grants: dict[int, str]  # repository id -> the person's role there (read, triage, write, maintain, admin)
    grants_checked_at: datetime | None
    expires_at: datetime


class SessionStore:
    def __init__(self, engine: Engine, secret: str):
        self.engine = engine
        self._fernet = sealer(secret)

    def _seal(self, value: str | None) -> str | None:
        return None if value is None else self._fernet.encrypt(value.encode()).decode()

    def _open(self, value: str | None) -> str | None:
        return None if value is None else self._fernet.decrypt(value.encode()).decode()

    # --- sign-ins under way

    def begin(self, state: str, verifier: str, return_to: str) -> None:
        now = utcnow()
        with db.begin(self.engine) as conn:
            conn.execute(sign_in_requests.delete().where(_r.created_at < now - SIGN_IN_LIFETIME))
            conn.execute(
                sign_in_requests.insert().values(
                    state_hash=digest(state), verifier=verifier, return_to=return_to, created_at=now
                )
            )

    def finish(self, state: str) -> tuple[str, str] | None:
        """(PKCE verifier, where to return) of the sign-in with this state, once; None if unknown or late."""
        with db.begin(self.engine) as conn:
            row = conn.execute(
                sa.delete(sign_in_requests)
                .where(_r.state_hash == digest(state))
                .returning(_r.verifier, _r.return_to, _r.created_at)
            ).first()
        if row is None or row.created_at < utcnow() - SIGN_IN_LIFETIME:
            return None
        return str(row.verifier), str(row.return_to)

    # --- sessions

    def create(self, value: str, user_id: int, login: str, tokens: Tokens) -> None:
        now = utcnow()
        expires = now + SESSION_LIFETIME
        if tokens.refresh_expires_at is not None:
            expires = min(expires, tokens.refresh_expires_at)
        with db.begin(self.engine) as conn:
            conn.execute(
                web_sessions.insert().values(
                    session_hash=digest(value),
                    user_id=user_id,
                    login=login,
                    created_at=now,
                    expires_at=expires,
                    **self._token_columns(tokens),
                )
            )

    def _token_columns(self, tokens: Tokens) -> dict[str, object]:
        return {
            "access_token": self._seal(tokens.access),
            "access_expires_at": tokens.access_expires_at,
            "refresh_token": self._seal(tokens.refresh),
            "refresh_expires_at": tokens.refresh_expires_at,
        }

    def get(self, value: str) -> Session | None:
        """The live session this cookie value opens, or None (unknown, revoked, expired, or sealed with
        another secret)."""
        with db.connect(self.engine) as conn:
            row = conn.execute(
                sa.select(web_sessions).where(
                    _s.session_hash == digest(value), _s.revoked_at.is_(None), _s.expires_at > utcnow()
                )
            ).first()
        if row is None:
            return None
        try:
            tokens = Tokens(
                str(self._open(row.access_token)),
                row.access_expires_at,
                self._open(row.refresh_token),
                row.refresh_expires_at,
            )
        except InvalidToken:
            return None
        grants = {int(repo): str(role) for repo, role in json.loads(row.grants or "{}").items()}
        return Session(
            row.session_hash, int(row.user_id), str(row.login), tokens, grants, row.grants_checked_at, row.expires_at
        )

    def replace_tokens(self, session_hash: str, tokens: Tokens) -> None:
        with db.begin(self.engine) as conn:
            conn.execute(
                web_sessions.update().where(_s.session_hash == session_hash).values(**self._token_columns(tokens))
            )

    def set_grants(self, session_hash: str, grants: dict[int, str], checked_at: datetime) -> None:
        with db.begin(self.engine) as conn:
            conn.execute(
                web_sessions.update()
                .where(_s.session_hash == session_hash)
                .values(grants=json.dumps({str(k): v for k, v in sorted(grants.items())}), grants_checked_at=checked_at)
            )

    def revoke(self, session_hash: str) -> None:
        with db.begin(self.engine) as conn:
            conn.execute(web_sessions.update().where(_s.session_hash == session_hash).values(revoked_at=utcnow()))

    def revoke_user(self, user_id: int) -> int:
        """Sign a person out everywhere; how many sessions ended."""
        with db.begin(self.engine) as conn:
            result = conn.execute(
                web_sessions.update().where(_s.user_id == user_id, _s.revoked_at.is_(None)).values(revoked_at=utcnow())
            )
        return int(result.rowcount or 0)


def prune(engine: Engine, older_than: timedelta = timedelta(days=7)) -> int:
    """Forget sessions that ended (expired or revoked) more than `older_than` ago, and sign-ins that were
    started and never finished; how many sessions went. Hourly (services.housekeeping)."""
    now = utcnow()
    cutoff = now - older_than
    with engine.begin() as conn:
        conn.execute(sign_in_requests.delete().where(_r.created_at < now - SIGN_IN_LIFETIME))
        result = conn.execute(web_sessions.delete().where(sa.or_(_s.expires_at < cutoff, _s.revoked_at < cutoff)))
    return int(result.rowcount or 0)
