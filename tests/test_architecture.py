"""The layers of the code: imports point down (or sideways), never up, and never in a circle.

Read from the source (every `import`, including those inside functions and under TYPE_CHECKING), so
a lazy import cannot hide a circle. README's "Architecture" section draws the same layers.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import ROOT

# Lowest first. A module is in the layer of the longest prefix that names it.
LAYERS: list[tuple[str, ...]] = [
    (
        "settings",
        "logs",
        "catalogs",
        "domain",
        "githubapp.errors",
        "githubapp.api",
        "webhooks.signature",
        "ops",
        "readmodels.stats",
    ),
    ("githubapp", "storage", "scheduling.tasks"),
    (
        "webhooks.event",
        "webhooks.discourse",
        "webhooks.telegram",
        "webhooks.rocketchat",
        "webhooks.router",
        "webhooks.context",
        "scheduling",
        "notify",
    ),
    ("engagement", "readmodels", "jobs.backfill"),
    ("webhooks.jobs", "webhooks.dispatch"),
    ("services",),
    ("worker", "cli", "app", "web", "webhooks.intake", "jobs"),
]
SKIPPED = {".venv", ".git", "tests", "bench", "instance", "__pycache__", "translations", "static", "templates"}


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if SKIPPED.intersection(relative.parts):
            continue
        name = ".".join(relative.with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        yield from (name for name in names if name in known)


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: set(imports(path, known)) - {name} for name, path in known.items()}


EMPTY_PACKAGES = {
    name for name, path in modules().items() if path.name == "__init__.py" and not any(imports(path, modules()))
}


def layer(module: str) -> int:
    if module in EMPTY_PACKAGES:
        return 0  # a package's __init__ that imports nothing is below everything
    matches = [
        (len(prefix), number)
        for number, prefixes in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    assert matches, f"{module} is in no layer: add it to LAYERS (and to README's architecture section)"
    return max(matches)[1]


def test_every_import_points_down_or_sideways() -> None:
    upward = [
        f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
        for module, targets in sorted(graph().items())
        for target in sorted(targets)
        if layer(target) > layer(module)
    ]
    assert upward == []


def test_no_import_circles() -> None:
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert circles == []


def test_the_checker_sees_what_it_checks() -> None:
    """The graph holds the modules and the function-level imports it is meant to police."""
    edges = graph()
    assert {"services", "storage.ledger", "engagement.greeting", "webhooks.jobs"} <= set(edges)
    assert "domain.contributions" in edges["storage.ledger"]
    assert layer("engagement.common.config") == 3 and layer("githubapp.errors") == 0
