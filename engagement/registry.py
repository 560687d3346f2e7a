"""Which behaviours the app runs, in the order they run (services loads them; ENGAGE_BEHAVIOURS adds more)."""

from __future__ import annotations

from types import ModuleType

from engagement import (
    chat,
    config_check,
    credit,
    digest,
    events,
    forum,
    good_first_issues,
    greeting,
    history,
    identity,
    identity_map,
    installations,
    leaderboard,
    ledger,
    milestones,
    repository_files,
    response_watch,
    thanks,
)

BEHAVIOURS: list[ModuleType] = [
    installations,
    repository_files,
    ledger,
    forum,
    chat,
    identity,
    identity_map,
    greeting,
    good_first_issues,
    thanks,
    leaderboard,
    milestones,
    response_watch,
    history,
    digest,
    credit,
    events,
    config_check,
]
