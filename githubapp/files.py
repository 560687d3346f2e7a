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
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext

import redis

from githubapp.cache import Cache

log = logging.getLogger(__name__)

FILE_TTL_SECONDS = 15 * 60


class FileCache:
    def __init__(self, cache: Cache, ttl_seconds: float = FILE_TTL_SECONDS):
        self.cache = cache
        self.ttl_seconds = ttl_seconds
        self._fetching: dict[str, threading.Lock] = {}  # file -> held while this process reads it from GitHub

    @staticmethod
    def key(repo: str, ref: str | None, path: str) -> str:
        """`ref` None is the default branch. GitHub's names are case-insensitive."""
        return f"file:{repo.lower()}:{ref or ''}:{path}"

    def read(
        self,
        repo: str,
        path: str,
        ref: str | None,
        fetch: Callable[[], str | None],
        waiting: Callable[[], AbstractContextManager[None]] = nullcontext,
    ) -> str | None:
        """The file's text (None: no such file), from the cache or else from `fetch`, which is remembered.
        The cache being down costs a call, never the answer.

        Threads of this process that find no copy at once (a burst of greetings after a start, or after a
        push changed the file) ask GitHub once: one reads it, the others wait for its copy, `waiting()`
        around the wait (the worker's processing turn goes on meanwhile, as around a call)."""
        key = self.key(repo, ref, path)
        if (found := self._held(key, fetch)) is not None:
            return found[0]
        fetching = self._fetching.setdefault(key, threading.Lock())
        with waiting():
            fetching.acquire()
        try:
            if (found := self._held(key, fetch)) is not None:
                return found[0]
            text = fetch()
            try:
                self.cache.set(key, json.dumps({"text": text}), self.ttl_seconds)
            except redis.RedisError as exc:
                log.debug("file cache unavailable: %s", exc)
            return text
        finally:
            fetching.release()

    def _held(self, key: str, fetch: Callable[[], str | None]) -> tuple[str | None] | None:
        """The copy held, as a 1-tuple (its text is None for a file that does not exist), or `fetch()`'s answer
        when the cache is down; None: no copy."""
        try:
            stored = self.cache.get(key)
        except redis.RedisError as exc:
            log.debug("file cache unavailable: %s", exc)
            return (fetch(),)
        return None if stored is None else (json.loads(stored)["text"],)

    def forget(self, repo: str, refs: Iterable[str | None], paths: Iterable[str]) -> None:
        """Drop the copies of `paths` on each of `refs`; the next read asks GitHub."""
        for ref in list(refs):
            for path in paths:
                self.cache.delete(self.key(repo, ref, path))
