"""Engagement behaviours, one module each; `engagement.registry` lists them in the order they run.

A behaviour module reads top to bottom: a docstring, NAME, HELP, its section of `.github/engage.yml`
as a frozen dataclass (`GreetingConfig`) with DEFAULTS derived from it, its messages, then decide
(pure) / gather (reads) / apply (idempotent writes), and its `router` (webhook handlers) and, if it
has periodic work, its `schedule`. What behaviours share lives in `engagement.common`.
"""
