"""Record contributions from webhooks into the ledger, exactly once (see `storage.ledger`).

Runs for every delivery about issues, pull requests, reviews and comments, whatever the other
behaviours decide, and also for deliveries without an installation (recorded payloads, replays).
Bots never reach it: the router ignores deliveries sent by bots, and `domain.contributions`
credits no bot account.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain import contributions as build
from domain.contributions import Contribution, Repo
from engagement import leaderboard
from engagement.common import config as repo_config
from engagement.good_first_issues.linked_pulls import closing_references
from githubapp.errors import Forbidden, NotFound
from storage.rollups import org_scope, repo_scope
from webhooks.context import Context
from webhooks.router import Router

NAME = "ledger"
HELP = """Records every contribution in the ledger behind the leaderboard and the insights pages: issues
opened and closed (with their reactions), pull requests opened, merged or closed, reviews, comments,
review comments, and good first issues solved (a merged pull request that closes one). Each is
recorded once, at the time it happened on GitHub, however often GitHub delivers it; bots are never
credited. A repository made private disappears from every page at once. Past history is imported
in the background (`history`), or at once with `flask --app app backfill OWNER/REPO`."""

router = Router()

RECORDED = (
    "issues.opened",
    "issues.closed",
    "pull_request.opened",
    "pull_request.closed",
    "pull_request_review.submitted",
    "issue_comment.created",
    "pull_request_review_comment.created",
)


def leaderboard_settings(ctx: Context) -> leaderboard.LeaderboardConfig:
    """The repository's `leaderboard` section; defaults when there is no installation to read it with.
    Kept for the pages, with the owner-wide scope's when it came from the owner's `.github` repository."""
    if ctx.event.installation_id is None:
        return leaderboard.settings_of(None)
    config = repo_config.for_event(ctx)
    settings = config.typed(leaderboard.LeaderboardConfig, leaderboard.NAME)
    repository = ctx.payload["repository"]
    owner = str(repository["full_name"]).split("/", 1)[0]
    scopes = [repo_scope(int(repository["id"]))]
    if config.source.startswith(f"{owner}/.github/"):
        scopes.append(org_scope(owner))
    ctx.stores.ledger.set_scoring(scopes, leaderboard.for_storage(settings))
    return settings


def pull_reactions(ctx: Context, repo: str, number: int) -> tuple[int, int]:
    """A pull request's reactions: its webhook payload has none, its issue view (issues/get) has them."""
    if ctx.event.installation_id is None:
        return 0, 0
    if not ctx.github.can_spare("reactions"):
        ctx.log.info("skipped the reactions lookup: the installation's GitHub budget is low")
        return 0, 0
    try:
        return build.reactions(ctx.github.get_issue(repo, number))
    except (NotFound, Forbidden) as exc:
        ctx.log.info("no reactions for the pull request", extra={"error": str(exc)})
        return 0, 0


def solved_good_first_issues(ctx: Context, repo: Repo, pull: Mapping[str, Any]) -> list[Contribution | None]:
    """Credit for each good first issue the merged pull request says it closes."""
    store = ctx.stores.good_first_issues
    solved = []
    for number in sorted(closing_references(str(pull.get("body") or ""))):
        issue = store.get(repo.id, number)
        if issue is not None and issue.labelled:
            solved.append(build.solved_good_first_issue(repo, pull, number))
    return solved


def contributions_of(ctx: Context, repo: Repo) -> list[Contribution | None]:
    payload, key = ctx.payload, ctx.event.key
    sender = payload.get("sender")
    if key == "issues.opened":
        return [build.opened_issue(repo, payload["issue"])]
    if key == "issues.closed":
        return [build.closed_issue(repo, payload["issue"], sender)]
    if key == "pull_request.opened":
        return [build.opened_pull(repo, payload["pull_request"])]
    if key == "pull_request.closed":
        pull = payload["pull_request"]
        found = [build.closed_pull(repo, pull, sender, pull_reactions(ctx, repo.full_name, int(pull["number"])))]
        return found + (solved_good_first_issues(ctx, repo, pull) if pull.get("merged") else [])
    if key == "pull_request_review.submitted":
        return [build.submitted_review(repo, payload["pull_request"], payload["review"])]
    if key == "issue_comment.created":
        return [build.created_comment(repo, payload["issue"], payload["comment"])]
    if key == "pull_request_review_comment.created":
        return [build.created_review_comment(repo, payload["pull_request"], payload["comment"])]
    return []


@router.on(*RECORDED, name="ledger.record", needs_installation=False)
def record(ctx: Context) -> None:
    repo = build.repo_from(ctx.payload["repository"], ctx.event.installation_id)
    settings = leaderboard_settings(ctx)
    items = contributions_of(ctx, repo)
    new = ctx.stores.ledger.record(items, cap=settings.daily_comment_cap)
    ctx.log.debug("recorded %d contribution(s)", new, extra={"contributions": new})


@router.on(
    "repository.privatized",
    "repository.publicized",
    "repository.renamed",
    name="ledger.repository",
    needs_installation=False,
)
def repository_changed(ctx: Context) -> None:
    """A repository made private leaves every page at once; one made public appears."""
    ctx.stores.ledger.observe_repository(build.repo_from(ctx.payload["repository"], ctx.event.installation_id))
