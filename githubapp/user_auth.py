"""GitHub as a signed-in person sees it: the App's user authorization (web flow with PKCE) and the few
calls made with their user access token (issue 13).

Why a user token at all: only GitHub knows which private repositories a person may read, and GitHub App
user tokens answer exactly that (`GET /user/installations/{id}/repositories` lists the repositories of
our installations the person has explicit access to, with their permissions), and nothing else the App
could not see itself. Tokens expire after 8 hours and are refreshed with the refresh token (6 months);
the token exchange lives on GitHub's web host (GITHUB_URL), the rest on the API.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests

from githubapp.client import API_VERSION, USER_AGENT, error_for, next_link, session_for
from githubapp.errors import GitHubError, Unauthorized, Unavailable

log = logging.getLogger(__name__)

ROLES = ("read", "triage", "write", "maintain", "admin")  # GitHub's repository roles, weakest first
MAX_REPOSITORIES = 3000  # per installation: past that, a person sees the first ones (and the log says so)


class Refused(Exception):
    """GitHub refused a code or refresh token (expired, used, or not ours): sign in again."""


@dataclass(frozen=True)
class Grant:
    """A token GitHub gave: the access token, and the refresh token when the App's tokens expire."""

    access: str
    access_expires_at: datetime | None
    refresh: str | None
    refresh_expires_at: datetime | None


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge), RFC 7636."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def role_of(permissions: dict[str, Any]) -> str:
    """The strongest role in a repository's `permissions` ({admin, maintain, push, triage, pull})."""
    for role, flag in (("admin", "admin"), ("maintain", "maintain"), ("write", "push"), ("triage", "triage")):
        if permissions.get(flag):
            return role
    return "read"


class UserAuth:
    def __init__(self, client_id: str, client_secret: str, web_url: str, api_url: str, timeout: float = 10.0) -> None:
        self.client_id, self._secret = client_id, client_secret
        self.web_url, self.api_url, self.timeout = web_url.rstrip("/"), api_url.rstrip("/"), timeout
        self.http = session_for(self.api_url)
        self.http.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})

    def authorize_url(self, redirect_uri: str, state: str, challenge: str) -> str:
        query = {
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return f"{self.web_url}/login/oauth/authorize?{urlencode(query)}"

    def exchange(self, code: str, verifier: str, redirect_uri: str, now: datetime) -> Grant:
        return self._token({"code": code, "code_verifier": verifier, "redirect_uri": redirect_uri}, now)

    def refresh(self, refresh_token: str, now: datetime) -> Grant:
        return self._token({"grant_type": "refresh_token", "refresh_token": refresh_token}, now)

    def _token(self, fields: dict[str, str], now: datetime) -> Grant:
        body = {"client_id": self.client_id, "client_secret": self._secret, **fields}
        try:
            answer = self.http.post(f"{self.web_url}/login/oauth/access_token", json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise Unavailable(f"GitHub's token exchange did not answer: {type(exc).__name__}") from exc
        data = _json(answer)
        if answer.status_code != 200 or not isinstance(data, dict):
            raise error_for(answer.status_code, answer.headers, data, "POST", "/login/oauth/access_token")
        if "error" in data or not data.get("access_token"):
            # GitHub answers a refused code or refresh token with 200 and an error object.
            raise Refused(str(data.get("error") or "no access_token in the answer"))

        def later(seconds: Any) -> datetime | None:
            return now + timedelta(seconds=int(seconds)) if isinstance(seconds, int) and seconds > 0 else None

        return Grant(
            str(data["access_token"]),
            later(data.get("expires_in")),
            data.get("refresh_token") or None,
            later(data.get("refresh_token_expires_in")),
        )

    # --- with the person's token

    def _get(self, token: str, url: str, params: dict[str, Any] | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", "X-GitHub-Api-Version": API_VERSION}
        try:
            answer = self.http.get(url, params=params, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise Unavailable(f"GitHub did not answer: {type(exc).__name__}") from exc
        if answer.status_code != 200:
            raise error_for(answer.status_code, answer.headers, _json(answer), "GET", url.removeprefix(self.api_url))
        return answer

    def user(self, token: str) -> tuple[int, str]:
        """(id, login) of the person the token is for."""
        data = _json(self._get(token, f"{self.api_url}/user"))
        return int(data["id"]), str(data["login"])

    def _pages(self, token: str, path: str, key: str, limit: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        url: str | None = f"{self.api_url}{path}"
        params: dict[str, Any] | None = {"per_page": 100}
        while url and len(found) < limit:
            answer = self._get(token, url, params)
            found.extend(_json(answer).get(key) or [])
            url, params = next_link(answer.headers.get("Link")), None
        return found[:limit]

    def grants(self, token: str, installation_ids: set[int]) -> dict[int, str]:
        """Repository id -> the person's role, for every repository of our installations (`installation_ids`)
        they have explicit access to. 1 call, plus 1 per installation of ours they can reach (per 100)."""
        grants: dict[int, str] = {}
        for installation in self._pages(token, "/user/installations", "installations", 1000):
            installation_id = int(installation["id"])
            if installation_id not in installation_ids:
                continue  # another App's view of GitHub is none of ours
            path = f"/user/installations/{installation_id}/repositories"
            repositories = self._pages(token, path, "repositories", MAX_REPOSITORIES)
            if len(repositories) >= MAX_REPOSITORIES:
                log.warning("sign-in: more than %d repositories in installation %d", MAX_REPOSITORIES, installation_id)
            for repository in repositories:
                grants[int(repository["id"])] = role_of(repository.get("permissions") or {})
        return grants


def _json(answer: requests.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None


__all__ = ["ROLES", "GitHubError", "Grant", "Refused", "Unauthorized", "UserAuth", "pkce_pair", "role_of"]
