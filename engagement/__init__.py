"""Engagement behaviours. Each module owns a `router`; BEHAVIOURS lists them in the order they run.

A behaviour module reads top to bottom: a docstring, NAME, HELP, DEFAULTS (its section of
`.github/engage.yml`), its messages, then decide (pure) / gather (reads) / apply (idempotent writes).
"""

from __future__ import annotations

from types import ModuleType

from engagement import config_check, good_first_issues, greeting, installations, leaderboard, ledger, thanks

BEHAVIOURS: list[ModuleType] = [installations, ledger, greeting, good_first_issues, thanks, leaderboard, config_check]
