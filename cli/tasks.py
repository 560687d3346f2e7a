"""`tasks` (scheduled tasks: list, run one now) and `notify test` (a chat destination, end to end)."""

from __future__ import annotations

import logging
import sys
import uuid

import click
from flask.cli import AppGroup

from cli.common import drain, services_of, when
from notify.notifier import Message, NotifyError

log = logging.getLogger(__name__)


tasks_cli = AppGroup("tasks", help="Scheduled tasks: what runs when, and running one now.")


@tasks_cli.command("list")
def tasks_list() -> None:
    """Each task's schedule, its last run (period, outcome, error) and its next run, in UTC."""
    services = services_of()
    click.echo(f"{'task':<24} {'schedule':<32} {'last run':<21} {'outcome':<8} next run")
    for status in services.tasks.status():
        state = status.state
        last = when(state.period) if state and state.period else "never"
        outcome = state.status if state and state.period else "-"
        click.echo(f"{status.task.name:<24} {status.task.schedule:<32} {last:<21} {outcome:<8} {when(status.next_run)}")
        if state and state.error and state.status == "failed":
            click.echo(f"  error: {state.error}")


@tasks_cli.command("run")
@click.argument("name")
def tasks_run(name: str) -> None:
    """Run one task now, once: this counts as its current period's run (another worker will not repeat it)."""
    services = services_of()
    if services.tasks.schedule.get(name) is None:
        known = ", ".join(task.name for task in services.tasks.schedule.tasks)
        raise click.ClickException(f"no task named {name!r} (known: {known})")
    outcome = services.tasks.run_now(name)
    click.echo(f"{name}: {outcome.result}" + (f" ({outcome.error})" if outcome.error else ""))
    drain(services)
    if outcome.result == "failed":
        sys.exit(1)


notify_cli = AppGroup("notify", help="Chat destinations (DESTINATION_<NAME>_*): send a test message.")
TEST_MESSAGE = "A test message from LLMasOS Engage: the destination {name} works."


@notify_cli.command("test")
@click.argument("name")
def notify_test(name: str) -> None:
    """Post one short test message to destination NAME through the real path (pacing, retries, DRY_RUN)."""
    services = services_of()
    if name not in services.notifier.destinations:
        known = ", ".join(sorted(services.notifier.destinations)) or "none: set DESTINATION_<NAME>_KIND"
        raise click.ClickException(f"no destination named {name!r} (known: {known})")
    run = f"notify-test-{uuid.uuid4()}"
    try:
        outcome = services.notifier.send(name, Message(run, TEST_MESSAGE.format(name=name)), run)
    except NotifyError as exc:
        raise click.ClickException(f"not sent: {exc}") from None
    click.echo(f"{name}: {outcome}" + (" (DRY_RUN is on: nothing was posted)" if outcome == "dry_run" else ""))
