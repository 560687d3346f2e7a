"""Good first issues, claims that don't go stale: a claim whose claimant has shown no activity on it for
`claims.remind_after_days` gets one friendly reminder, and after `claims.release_after_days` it is
released (unassigned, a kind comment, back on the newcomers' list). Their comment on the issue, a pull
request of theirs that links it, or a push to that pull request starts the clock again.

Ages are GitHub's times (the /claim comment's, each activity's own), so a late or replayed delivery
ages correctly. The `claims` task looks once an hour; each step happens once per claim.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.contributions import github_time, is_bot
from engagement.common import config as repo_config
from engagement.common.comments import comment_once
from engagement.good_first_issues.decide import RELEASE, ClaimStep, canonical, decide_claim, issue_from, snapshot
from engagement.good_first_issues.defaults import NAME, GoodFirstIssuesConfig
from engagement.good_first_issues.linked_pulls import closing_references
from engagement.good_first_issues.messages import claim_marker, list_url, render_claim_step
from githubapp.errors import Forbidden, NotFound
from scheduling.tasks import Schedule
from storage.good_first_issues import GoodFirstIssue
from webhooks.context import Context, DeliveryLogger, log_fields
from webhooks.event import Event

log = logging.getLogger(__name__)
# The shortest wait a repository can set (whole days): claims quiet for less are not even looked at.
SHORTEST_WAIT = timedelta(days=1)

schedule = Schedule()


def note_activity(ctx: Context) -> None:
    """A claimant's comment on their issue, or their pull request that links it (opened, edited, pushed
    to): the claims it touches start their quiet time again. A store write only, no GitHub call."""
    payload = ctx.payload
    if isinstance(payload.get("pull_request"), Mapping):
        pull = payload["pull_request"]
        user, numbers, at = pull.get("user"), closing_references(pull.get("body") or ""), pull.get("updated_at")
    else:
        comment = payload["comment"]
        user, numbers, at = comment.get("user"), {int(payload["issue"]["number"])}, comment.get("created_at")
    when = github_time(at)
    if is_bot(user) or when is None or not numbers:
        return
    repo_id, login = int(payload["repository"]["id"]), str(user["login"])
    if ctx.stores.good_first_issues.claim_active(repo_id, sorted(numbers), login, when):
        ctx.log.debug("a claim showed activity", extra={"reason": f"{login} at {when.isoformat()}"})


@schedule.every(
    timedelta(hours=1), name="claims", description="remind quiet claims of good first issues, then release them"
)
def check_claims(services: Any) -> None:
    """One pass over the claims that have been quiet a day or more (`services`: the app's Services)."""
    now = services.tasks.clock().astimezone(UTC).replace(tzinfo=None)
    for claim, installation_id in services.stores.good_first_issues.quiet_claims(since=now - SHORTEST_WAIT):
        ctx = claim_context(services, claim, installation_id)
        try:
            check(ctx, claim, now)
        except (NotFound, Forbidden) as exc:  # the issue or the app's access to it is gone: the next one
            ctx.log.warning("could not look after a quiet claim", extra={"error": str(exc)})


def claim_context(services: Any, claim: GoodFirstIssue, installation_id: int) -> Context:
    """What a handler would see for this issue: the pass reads the configuration and writes as the
    installation, through the same helpers. The "delivery" names the issue, so a pass that stopped
    half-way resumes its own step on the next pass."""
    repository = {"id": claim.repo_id, "full_name": claim.repository, "html_url": claim.html_url.split("/issues/")[0]}
    event = Event(
        f"claims:{claim.repo_id}:{claim.number}",
        "claims",
        {"repository": repository, "installation": {"id": installation_id}},
    )
    logger = DeliveryLogger(log, log_fields(event, behaviour=NAME, number=claim.number))
    github = services.github
    return Context(
        event, logger, services.stores, github.installation, github.files, services.configurable, github.dry_run
    )


def step_intent_prefix(step: str, repo_id: int) -> str:
    """How the intents of a claim step in a repository begin (the digest counts the releases by it)."""
    return f"good-first-issues:claims:{step}:{repo_id}:"


def check(ctx: Context, claim: GoodFirstIssue, now: datetime) -> None:
    config = repo_config.for_event(ctx).typed(GoodFirstIssuesConfig, NAME)
    plan = decide_claim(claim, config, now)
    if isinstance(plan, str) or claim.claimant is None:
        ctx.log.debug("claim left alone: %s", plan)
        return
    login, claimed = claim.claimant, (claim.claimed_at or claim.quiet_since or now).isoformat()
    intent = f"{step_intent_prefix(plan.step, claim.repo_id)}{claim.number}:{login.lower()}:{claimed}"
    marker = claim_marker(plan.step, login, claimed)

    def body() -> str:
        url = list_url(ctx.payload["repository"], canonical(config))
        return render_claim_step(plan, claim.repository, login, marker, config, url)

    if comment_once(ctx, claim.repository, claim.number, intent, marker, body):
        ctx.log.info("%s a quiet claim", "released" if plan.step == RELEASE else "reminded", extra={"reason": login})
    if plan.step == RELEASE:  # after the comment, so a pass that stops in between releases next time
        release(ctx, claim, login, plan, config)


def release(ctx: Context, claim: GoodFirstIssue, login: str, plan: ClaimStep, config: GoodFirstIssuesConfig) -> None:
    """Unassign the claimant (harmless when they are not assigned) and list the issue for newcomers again."""
    answer = ctx.github.remove_assignees(claim.repository, claim.number, [login])
    if ctx.dry_run:
        return
    store = ctx.stores.good_first_issues
    store.release(claim.repo_id, claim.number, login)
    if isinstance(answer, Mapping):
        store.observe(snapshot(issue_from(ctx.payload["repository"], answer), ours=True), canonical(config))
    ctx.log.debug("claim released after %d quiet days", plan.quiet_days)
