"""`backfill OWNER/REPO` and `backfill --forum`: import a repository's or the forum's history into the ledger,
with a progress line."""

from __future__ import annotations

import logging
from datetime import datetime

import click
from flask.cli import with_appcontext

from cli.common import services_of
from jobs.backfill import BackfillError, backfill
from jobs.forum_backfill import TELEGRAM_NOT_BACKFILLED, ForumBackfillError, backfill_forum

log = logging.getLogger(__name__)


class ProgressLine:
    """One line on stderr, rewritten in place (`issues: 300/1200`); a new line per stage and per message."""

    def __init__(self) -> None:
        self.stage: str | None = None
        self.width = 0

    def update(self, stage: str, done: int, total: int | None) -> None:
        if self.stage is not None and stage != self.stage:
            click.echo(err=True)
            self.width = 0
        self.stage = stage
        text = f"{stage}: {done}" + (f"/{total}" if total else "")
        self.width = max(self.width, len(text))  # a shorter text must cover the longer one before it
        click.echo(f"\r{text.ljust(self.width)}", err=True, nl=False)

    def say(self, message: str) -> None:
        self.finish()
        click.echo(message, err=True)

    def finish(self) -> None:
        if self.stage is not None:
            click.echo(err=True)
        self.stage = None


@click.command("backfill")
@click.argument("full_name", metavar="[OWNER/REPO]", required=False)
@click.option(
    "--forum", is_flag=True, help="Import the Discourse forum's public posts (DISCOURSE_URL, DISCOURSE_API_KEY)."
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    metavar="YYYY-MM-DD",
    help="Only what happened from this day (UTC) on; default: the whole history.",
)
@with_appcontext  # as under `flask`, also when invoked from app.test_cli_runner()
def backfill_command(full_name: str | None, forum: bool, since: datetime | None) -> None:
    """Import a repository's history (issues, pull requests, reviews, comments), or with --forum the
    forum's (topics, replies, accepted solutions), into the ledger.

    Safe to run again: what the ledger holds is not counted twice, and an interrupted run continues.
    """
    if bool(full_name) == forum:
        raise click.UsageError("give OWNER/REPO, or --forum for the Discourse forum")
    line = ProgressLine()
    try:
        if forum:
            forum_result = backfill_forum(services_of(), naive(since), line.update, say=line.say)
            line.finish()
            click.echo(forum_result.summary())
            click.echo(TELEGRAM_NOT_BACKFILLED)
            return
        result = backfill(services_of(), str(full_name), since, line.update, say=line.say)
    except (BackfillError, ForumBackfillError) as exc:
        line.finish()
        raise click.ClickException(str(exc)) from exc
    line.finish()
    click.echo(result.summary())


def naive(moment: datetime | None) -> datetime | None:
    """click's dates are naive already: the day at 00:00, taken as UTC like every stored time."""
    return moment.replace(tzinfo=None) if moment is not None else None


# --- doctor: the configuration checked end to end, each finding saying what to fix.
