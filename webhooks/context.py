"""What a handler receives: the event, a logger bound to the delivery, and GitHub as the installation."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from githubapp.errors import NoInstallation
from webhooks.event import Event

if TYPE_CHECKING:
    from githubapp.client import InstallationClient
    from services import Services


class DeliveryLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def log_fields(event: Event, **more: Any) -> dict[str, Any]:
    return {
        "delivery_id": event.delivery_id,
        "event": event.name,
        "action": event.action,
        "repo": event.repository,
        "installation_id": event.installation_id,
        **more,
    }


@dataclass
class Context:
    event: Event
    services: Services
    log: DeliveryLogger
    # Shared by the handlers of one delivery (e.g. the repository's configuration, read once).
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def payload(self) -> Any:
        return self.event.payload

    @property
    def github(self) -> InstallationClient:
        installation_id = self.event.installation_id
        if installation_id is None:
            raise NoInstallation(f"delivery {self.event.delivery_id} has no installation")
        return self.services.github.installation(installation_id)
