"""Behaviours used only by the pipeline tests: small, real handlers that call GitHub through the app's
client, so a test can see from the fake GitHub's state whether (and how often) a delivery ran."""

from __future__ import annotations

from webhooks.context import Context
from webhooks.router import Router

router = Router()

MARKER = "<!-- engage:test-ack -->"
ACK = MARKER + "\nThanks for opening this, @{login}."
# Tests flip these to make a handler fail and then recover.
BREAK = {"crash": False}


@router.on("issues.opened", name="test.ack")
def acknowledge(ctx: Context) -> None:
    """Comment once per issue; the marker check makes a re-run harmless."""
    repo, number = ctx.event.repository, ctx.payload["issue"]["number"]
    assert repo
    if any(MARKER in (c.get("body") or "") for c in ctx.github.list_comments(repo, number)):
        ctx.log.debug("skipped: already acknowledged")
        return
    ctx.github.create_comment(repo, number, ACK.format(login=ctx.payload["issue"]["user"]["login"]))


@router.on("issues.opened", name="test.crash", needs_installation=False)
def crash_on_demand(ctx: Context) -> None:
    if BREAK["crash"]:
        raise RuntimeError("handler bug for the test")


@router.on("issue_comment.created", name="test.label")
def label_on_comment(ctx: Context) -> None:
    repo, number = ctx.event.repository, ctx.payload["issue"]["number"]
    assert repo
    ctx.github.add_labels(repo, number, ["triaged"])
