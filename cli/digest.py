"""`digest OWNER[/REPO]`: preview or post the weekly digest."""

from __future__ import annotations

import logging
from datetime import date

import click
from flask.cli import with_appcontext

from cli.common import services_of, when
from engagement import digest as digest_posting
from githubapp.errors import TransientError
from readmodels import digest
from readmodels.leaderboard import NotVisible
from services import Services

log = logging.getLogger(__name__)


@click.command("digest")
@click.argument("target", metavar="OWNER[/REPO]")
@click.option("--preview", is_flag=True, help="Print the digest as it would be posted.")
@click.option("--post", "post", is_flag=True, help="Post it now to its destinations, once (as the schedule would).")
@click.option("--lang", type=click.Choice(["en", "zh", "both"]), default="en", show_default=True)
@click.option(
    "--week", default=None, metavar="YYYY-Www", help="An ISO week (UTC) that has ended; default: the last one."
)
@with_appcontext
def digest_command(target: str, preview: bool, post: bool, lang: str, week: str | None) -> None:
    """The weekly digest of a public repository, or of an owner's public repositories together: newcomers,
    first merged pull requests, top contributors, health figures against the 12 weeks before, good first issues."""
    if preview == post:
        raise click.ClickException("pass --preview to print the digest or --post to post it")
    repo, org = (target, None) if "/" in target else (None, target)
    services = services_of()
    try:
        monday = digest.parse_week(week) if week else None
        if post:
            _post_digest(services, target, monday)
            return
        value = digest.build(services.store.engine, repo=repo, org=org, week=monday)
    except (NotVisible, digest.BadWeek) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(digest.render(value, lang), nl=False)


def _post_digest(services: Services, target: str, week: date | None) -> None:
    """Through the task's own once-only path: a destination that already has this period's digest is skipped."""
    found = digest_posting.target_for(services.store.engine, target)
    if found is None:
        raise click.ClickException(
            f"{target} is not a listed repository (an owner's digest needs its .github repository)"
        )
    try:
        done = digest_posting.post_now(services, found, week, services.tasks.clock())
    except TransientError as exc:
        raise click.ClickException(f"not posted everywhere yet: {exc}; run it again later") from None
    if done is None:
        raise click.ClickException(
            f"the digest is not turned on in {found.post_to}'s .github/engage.yml (digest: enabled)"
        )
    period, posted = done
    for one in posted:
        click.echo(f"{one.destination}: {one.outcome} (period {when(period)})")
