"""What a handler receives: the event, a logger bound to the delivery, and GitHub as the installation."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from githubapp.api import GitHub
from githubapp.errors import NoInstallation
from githubapp.files import FileCache
from notify.direct import DirectMessages
from storage.good_first_issues import GoodFirstIssueStore
from storage.identities import IdentityStore
from storage.installations import InstallationStore
from storage.intents import IntentStore
from storage.ledger import LedgerStore
from storage.people import PeopleStore
from webhooks.event import Event


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


@dataclass(frozen=True)
class Stores:
    """The stores handlers use, built once per process, and where they may write to one person."""

    ledger: LedgerStore
    good_first_issues: GoodFirstIssueStore
    installations: InstallationStore
    intents: IntentStore
    people: PeopleStore
    identities: IdentityStore
    # Messages to one person on the forum or chat (the answers to `/link`): not a store, but built
    # once per process like them.
    messages: DirectMessages


@dataclass
class Context:
    """What a handler sees: the event, its logger, GitHub as the installation, the stores, and which
    behaviours own a section of the repository's configuration file. Nothing else of the app."""

    event: Event
    log: DeliveryLogger
    stores: Stores
    installation: Callable[[int], GitHub]
    # The copies of repository files the app holds (forgotten when a push changes them).
    files: FileCache
    # The behaviour modules with DEFAULTS: the sections `.github/engage.yml` may have.
    configurable: Sequence[Any] = ()
    dry_run: bool = False
    # Shared by the handlers of one delivery (e.g. the repository's configuration, read once).
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def payload(self) -> Any:
        return self.event.payload

    @property
    def github(self) -> GitHub:
        installation_id = self.event.installation_id
        if installation_id is None:
            raise NoInstallation(f"delivery {self.event.delivery_id} has no installation")
        return self.installation(installation_id)
