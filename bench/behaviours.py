"""The benchmark's behaviour: one GitHub write per delivery (a reaction), or none without an installation."""

from webhooks.context import Context
from webhooks.router import Router

router = Router()


@router.on("issues.opened", name="bench.react")
def react(ctx: Context) -> None:
    assert ctx.event.repository
    ctx.github.react_to_issue(ctx.event.repository, ctx.payload["issue"]["number"], "heart")


@router.on("issues.opened", name="bench.read", needs_installation=False)
def read(ctx: Context) -> None:
    ctx.log.debug("read %s", ctx.payload["issue"]["title"])
