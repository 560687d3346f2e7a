"""`proxy`: local development like Probot's. Forwards the deliveries of WEBHOOK_PROXY_URL's channel to
this machine's app; scripts/run starts it beside the server when WEBHOOK_PROXY_URL is set."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from cli.common import services_of
from ops.webhook_proxy import Forwarder, channel_host, local_target


@click.command("proxy")
@click.option("--host", envvar="HOST", default="127.0.0.1", show_default=True, help="Where the app listens (HOST).")
@click.option("--port", envvar="PORT", default=3000, type=int, show_default=True, help="Its port (PORT).")
@with_appcontext
def proxy_command(host: str, port: int) -> None:
    """Forward webhook deliveries from the WEBHOOK_PROXY_URL channel (smee.io) to the app on this machine."""
    settings = services_of().settings
    if not settings.webhook_proxy_url:
        raise click.ClickException(
            "WEBHOOK_PROXY_URL is not set: open https://smee.io/new, set WEBHOOK_PROXY_URL to the channel's "
            "address and make that address the GitHub App's webhook URL"
        )
    try:
        target = local_target(host, port, settings.webhook_path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if not settings.webhook_secret:
        click.echo("WEBHOOK_SECRET is not set: the app will refuse every delivery (401)", err=True)
    forwarder = Forwarder(settings.webhook_proxy_url, target, settings.webhook_secret)
    click.echo(f"Forwarding {channel_host(settings.webhook_proxy_url)} (WEBHOOK_PROXY_URL) to {target}", err=True)
    try:
        forwarder.run()
    except KeyboardInterrupt:
        forwarder.stop()
