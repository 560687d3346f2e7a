"""Keep the installations and their repositories current, so pages list only what is installed now.

GitHub tells every GitHub App when it is installed, uninstalled, suspended or unsuspended
(`installation`) and when repositories join or leave an installation (`installation_repositories`);
these events need no subscription. Nothing here calls GitHub: the payloads say everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from domain.contributions import Repo, github_time
from storage.db import utcnow
from storage.installations import REMOVED, Installation
from webhooks.context import Context
from webhooks.router import Router

NAME = "installations"
HELP = """Keeps the list of installations and installed repositories current. Installing the app, or
adding repositories to an installation, lists those repositories; removing them, or uninstalling the
app, takes them off every page at once (their recorded history stays in the ledger). While an
installation is suspended the app does nothing for it and its repositories are marked as such; work
still queued for an installation that was removed or suspended is dropped as `ignored`, without
errors. What happens in a repository meanwhile never reaches the app, so from then on its ledger no
longer counts as complete: the greeting asks GitHub again whether someone is new, and the `history`
import fills the gap once the app is back."""


def installation_of(payload: Mapping[str, Any]) -> Installation:
    """The installation as the payload describes it now (`suspended_at` included)."""
    installation = payload["installation"]
    account = installation.get("account") or {}
    return Installation(
        id=int(installation["id"]),
        account_login=str(account.get("login") or account.get("slug") or ""),
        account_type=str(installation.get("target_type") or account.get("type") or ""),
        suspended_at=github_time(installation.get("suspended_at")),
    )


def repos_of(payload: Mapping[str, Any], key: str) -> list[Repo]:
    """The repositories listed under `key`; these short entries carry no URL, so it is built from the
    installation's own (github.com or a GitHub Enterprise host), and no time, so their `private` can
    only make a repository private (`storage.ledger.visibility`)."""
    installation = payload["installation"]
    parts = urlsplit(str(installation.get("html_url") or (installation.get("account") or {}).get("html_url") or ""))
    web = f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""
    items: Iterable[Mapping[str, Any]] = payload.get(key) or []
    return [
        Repo(
            id=int(item["id"]),
            full_name=str(item["full_name"]),
            private=bool(item.get("private")),
            html_url=f"{web}/{item['full_name']}" if web else "",
            installation_id=int(installation["id"]),
        )
        for item in items
    ]


router = Router()


def _list(ctx: Context, installation: Installation, repos: list[Repo]) -> bool:
    """Record the repositories as installed, then the installation (whose suspension they follow)."""
    store = ctx.stores.installations
    if store.state(installation.id) == REMOVED:
        ctx.log.info("skipped: installation %d was deleted before this event was processed", installation.id)
        return False
    ledger = ctx.stores.ledger
    for repo in repos:
        ledger.observe_repository(repo, installs=True)
    return store.observe(installation)


@router.on("installation.created", name="installations.created", needs_installation=False)
def installed(ctx: Context) -> None:
    installation = installation_of(ctx.payload)
    repos = repos_of(ctx.payload, "repositories")
    if _list(ctx, installation, repos):
        ctx.log.info("app installed for %s with %d repositories", installation.account_login, len(repos))


@router.on("installation.deleted", name="installations.deleted", needs_installation=False)
def uninstalled(ctx: Context) -> None:
    installation = installation_of(ctx.payload)
    left = ctx.stores.installations.delete(installation)
    ctx.log.info("app uninstalled for %s; %d repositories no longer listed", installation.account_login, left)


@router.on("installation.suspend", "installation.unsuspend", name="installations.suspension", needs_installation=False)
def suspension(ctx: Context) -> None:
    """Suspended: the app may not act there until unsuspended; nothing of the installation is forgotten."""
    installation = installation_of(ctx.payload)
    since = (installation.suspended_at or utcnow()) if ctx.event.action == "suspend" else None
    if _list(ctx, replace(installation, suspended_at=since), []):
        ctx.log.info("installation for %s %s", installation.account_login, "suspended" if since else "unsuspended")


@router.on(
    "installation_repositories.added",
    "installation_repositories.removed",
    name="installations.repositories",
    needs_installation=False,
)
def repositories_changed(ctx: Context) -> None:
    installation = installation_of(ctx.payload)
    added = repos_of(ctx.payload, "repositories_added")
    removed = [repo.id for repo in repos_of(ctx.payload, "repositories_removed")]
    if added:
        _list(ctx, installation, added)
    left = ctx.stores.installations.remove_repositories(installation.id, removed)
    ctx.log.info("repositories of installation %d: %d added, %d removed", installation.id, len(added), left)
