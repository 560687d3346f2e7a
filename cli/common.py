"""What every command needs: the app's Services, and letting the embedded worker finish before exit."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import current_app

from services import Services

log = logging.getLogger(__name__)


def services_of() -> Services:
    services: Services = current_app.extensions["engage"]
    return services


def drain(services: Services) -> None:
    """Let this process finish what it dispatched (the embedded worker lives in it) before exiting."""
    services.dispatcher.wait_idle(timeout=60)


def when(moment: datetime) -> str:
    """A time as the commands print it: UTC, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
