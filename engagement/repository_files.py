"""Keep the app's copies of repository files current: a push that changes one forgets it at once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engagement.common.config import CONFIG_PATH
from engagement.common.links import CODE_OF_CONDUCT_FILES, CONTRIBUTING_FILES
from webhooks.context import Context
from webhooks.event import Event
from webhooks.router import Router

NAME = "repository_files"
HELP = """Keeps what the app knows of a repository's files current. The app reads `.github/engage.yml`,
the contributing guide and the code of conduct once and keeps them (15 minutes at most; deliveries
processed at once that find no copy share one read); a push to a branch that changes one of them, or
a change of the default branch, makes the app read it again on the next event. No GitHub call: this is
what lets most deliveries cost none."""

# Every file a behaviour reads through `read_file`.
CACHED_PATHS = (CONFIG_PATH, *CONTRIBUTING_FILES, *CODE_OF_CONDUCT_FILES)
# GitHub lists at most this many commits in a push; past it the payload cannot say every changed file.
MAX_LISTED_COMMITS = 2048

router = Router()


def changed_paths(push: Mapping[str, Any]) -> set[str] | None:
    """The files the push changed, or None when its payload cannot tell (forced, or too many commits)."""
    commits = push.get("commits")
    if push.get("forced") or not isinstance(commits, list) or len(commits) >= MAX_LISTED_COMMITS:
        return None
    changed: set[str] = set()
    for commit in [*commits, push.get("head_commit") or {}]:
        if not isinstance(commit, Mapping):
            return None
        for field in ("added", "modified", "removed"):
            changed.update(str(path) for path in commit.get(field) or [])
    return changed


def changes_a_file_read(event: Event) -> bool:
    """A push to a branch that changes a file the app keeps a copy of, or may have (its payload cannot tell). Most
    pushes change none: the intake stores those as ignored, and they are never processed."""
    changed = changed_paths(event.payload)
    return str(event.payload.get("ref") or "").startswith("refs/heads/") and (
        changed is None or not changed.isdisjoint(CACHED_PATHS)
    )


@router.on("push", name="repository_files.push", needs_installation=False, wants=changes_a_file_read)
def pushed(ctx: Context) -> None:
    ref, repository = str(ctx.payload.get("ref") or ""), ctx.payload["repository"]
    branch = ref.removeprefix("refs/heads/")
    changed = changed_paths(ctx.payload)
    paths = [path for path in CACHED_PATHS if changed is None or path in changed]
    default = branch == repository.get("default_branch")
    ctx.files.forget(str(repository["full_name"]), [branch, None] if default else [branch], paths)
    ctx.log.info("forgot the copies of %d file(s) on %s", len(paths), branch, extra={"reason": "push"})


@router.on("repository.edited", name="repository_files.default_branch", needs_installation=False)
def default_branch_changed(ctx: Context) -> None:
    if "default_branch" not in (ctx.payload.get("changes") or {}):
        return
    ctx.files.forget(str(ctx.payload["repository"]["full_name"]), [None], CACHED_PATHS)
    ctx.log.info("forgot the default branch's files: it changed")
