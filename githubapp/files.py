"""Repository files as the app last read them, shared by every process: a file the app holds costs no call.

A file changes only by a push, and a push delivery says which files it changed, so the
`repository_files` behaviour forgets those copies at once. FILE_TTL_SECONDS bounds how stale a copy can
get when no push arrives to say so (the app is not installed on the organisation's `.github`
repository, or the push delivery failed). Files that do not exist are remembered too: most
repositories have no `.github/engage.yml`, and asking again each time would cost two calls a delivery.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable

import redis

from githubapp.cache import Cache

log = logging.getLogger(__name__)

FILE_TTL_SECONDS = 15 * 60


class FileCache:
    def __init__(self, cache: Cache, ttl_seconds: float = FILE_TTL_SECONDS):
        self.cache = cache
        self.ttl_seconds = ttl_seconds

    @staticmethod
    def key(repo: str, ref: str | None, path: str) -> str:
        """`ref` None is the default branch. GitHub's names are case-insensitive."""
        return f"file:{repo.lower()}:{ref or ''}:{path}"

    def read(self, repo: str, path: str, ref: str | None, fetch: Callable[[], str | None]) -> str | None:
        """The file's text (None: no such file), from the cache or else from `fetch`, which is remembered.
        The cache being down costs a call, never the answer."""
        key = self.key(repo, ref, path)
        try:
            stored = self.cache.get(key)
        except redis.RedisError as exc:
            log.debug("file cache unavailable: %s", exc)
            return fetch()
        if stored is not None:
            text: str | None = json.loads(stored)["text"]
            return text
        text = fetch()
        try:
            self.cache.set(key, json.dumps({"text": text}), self.ttl_seconds)
        except redis.RedisError as exc:
            log.debug("file cache unavailable: %s", exc)
        return text

    def forget(self, repo: str, refs: Iterable[str | None], paths: Iterable[str]) -> None:
        """Drop the copies of `paths` on each of `refs`; the next read asks GitHub."""
        for ref in list(refs):
            for path in paths:
                self.cache.delete(self.key(repo, ref, path))
