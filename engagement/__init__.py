"""Engagement behaviours. Each module owns a `router`; BEHAVIOURS lists them in the order they run."""

from __future__ import annotations

from types import ModuleType

BEHAVIOURS: list[ModuleType] = []
