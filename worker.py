"""RQ entry points, beside the composition root: module-level functions that take plain values.

RQ imports them by name in the worker process, which builds its Services from the environment once.
"""

from __future__ import annotations

from datetime import datetime

import services as services_module


def run_task(name: str, period: str) -> str:
    """Run a scheduled task for its period, if no other worker has (see scheduling.runner)."""
    outcome = services_module.current().tasks.run(name, datetime.fromisoformat(period))
    return outcome.result
