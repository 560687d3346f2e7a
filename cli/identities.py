"""`identities list | sync | unlink LOGIN`: the forum and chat accounts linked to GitHub accounts."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from cli.common import services_of
from engagement import identity_map


@click.group("identities")
def identities_cli() -> None:
    """Forum and chat accounts linked to GitHub accounts (by `/link` codes, or IDENTITY_MAP_FILE)."""


@identities_cli.command("list")
@with_appcontext
def list_command() -> None:
    """Every link: GitHub login, platform, account there, and who made it (self or operator)."""
    links = services_of().stores.identities.all_links()
    for link in links:
        click.echo(f"@{link.github_login}\t{link.platform}\t{link.username}\t{link.source}")
    click.echo(f"{len(links)} linked account(s)", err=True)


@identities_cli.command("sync")
@with_appcontext
def sync_command() -> None:
    """Link what IDENTITY_MAP_FILE lists, unlink operator links it no longer lists (as the hourly task does)."""
    services = services_of()
    if not services.settings.identity_map_file:
        raise click.ClickException("IDENTITY_MAP_FILE is not set: nothing to sync")
    try:
        report = identity_map.sync(services)
    except identity_map.MapError as exc:
        raise click.ClickException(f"{services.settings.identity_map_file}: {exc}; nothing changed") from None
    for line in report.lines():
        click.echo(line)


@identities_cli.command("unlink")
@click.argument("login")
@click.option(
    "--platform", type=click.Choice(identity_map.PLATFORMS), default=None, help="Only this platform's account."
)
@with_appcontext
def unlink_command(login: str, platform: str | None) -> None:
    """Unlink every account (or one platform's) linked to GitHub LOGIN, e.g. at the person's request."""
    store = services_of().stores.identities
    found = [link for link in store.all_links() if link.github_login.lower() == login.lower().removeprefix("@")]
    if not found:
        raise click.ClickException(f"no account is linked to @{login.removeprefix('@')}")
    let_go = store.unlink_github(found[0].github_id, platform)
    for link in let_go:
        click.echo(f"unlinked {link.platform} {link.username} from @{link.github_login}")
