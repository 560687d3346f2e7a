"""`backfill OWNER/REPO`: import a repository's history into the ledger, with a progress line."""

from __future__ import annotations

import logging
from datetime import datetime

import click
from flask.cli import with_appcontext

from cli.common import services_of
from jobs.backfill import BackfillError, backfill

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
@click.argument("full_name", metavar="OWNER/REPO")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    metavar="YYYY-MM-DD",
    help="Only what happened from this day (UTC) on; default: the whole history.",
)
@with_appcontext  # as under `flask`, also when invoked from app.test_cli_runner()
def backfill_command(full_name: str, since: datetime | None) -> None:
    """Import a repository's history (issues, pull requests, reviews, comments) into the ledger.

    Safe to run again: what the ledger holds is not counted twice, and an interrupted run continues.
    """
    line = ProgressLine()
    try:
        result = backfill(services_of(), full_name, since, line.update, say=line.say)
    except BackfillError as exc:
        line.finish()
        raise click.ClickException(str(exc)) from exc
    line.finish()
    click.echo(result.summary())


# --- doctor: the configuration checked end to end, each finding saying what to fix.
