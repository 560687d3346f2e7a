"""GitHub's failure answers as a small family of typed exceptions.

Expected answers (404, 422) are handled by the caller where they mean something; transient ones
(5xx, rate limits, timeouts) are `TransientError`s, which the job layer retries with backoff.
"""

from __future__ import annotations


class TransientError(Exception):
    """Worth retrying later; `retry_after` (seconds) is GitHub's hint when it gave one."""

    retry_after: float | None = None


class GitHubError(Exception):
    def __init__(self, message: str, status: int = 0, method: str = "", path: str = ""):
        super().__init__(f"{method} {path}: {status} {message}".strip() if method else message)
        self.status = status
        self.message = message
        self.method = method
        self.path = path


class NotFound(GitHubError):
    """404: missing, or invisible to this installation (GitHub answers 404 rather than 403 for private things)."""


class ValidationFailed(GitHubError):
    """422: GitHub understood the request and refused it (already exists, bad field)."""


class Unauthorized(GitHubError):
    """401: the JWT or token was refused; usually a wrong APP_ID or PRIVATE_KEY."""


class Forbidden(GitHubError):
    """403 that is not a rate limit: the app lacks a permission on this repository."""


class RateLimited(GitHubError, TransientError):
    def __init__(self, message: str, status: int, method: str, path: str, retry_after: float):
        super().__init__(message, status, method, path)
        self.retry_after = retry_after


class ServerError(GitHubError, TransientError):
    """5xx from GitHub."""


class Unavailable(GitHubError, TransientError):
    """No answer at all: timeout or connection failure."""


class WritesThrottled(TransientError):
    """This installation has more writes queued than the pacing allows now; try the job again later."""

    def __init__(self, installation_id: int | str, retry_after: float):
        who = f"installation {installation_id}" if isinstance(installation_id, int) else installation_id
        super().__init__(f"writes for {who} paced; next slot in {retry_after:.1f}s")
        self.retry_after = retry_after


class NoInstallation(Exception):
    """The delivery carries no installation, so there is no token to call GitHub with."""
