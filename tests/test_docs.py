"""The README says what the code does: its behaviour reference is the behaviours' own HELP and
DEFAULTS, and its "Writing a behaviour" example runs."""

import dataclasses
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from engagement.common.config import parse
from engagement.docs import END, START, reference
from engagement.registry import BEHAVIOURS
from tests.conftest import ROOT, services


def test_readme_reference_equals_the_behaviours_help_and_defaults():
    readme = (ROOT / "README.md").read_text()
    section = readme.split(START, 1)[1].split(END, 1)[0].strip()
    assert section == reference(BEHAVIOURS).strip(), "run: .venv/bin/python -m engagement.docs README.md"


def test_every_behaviour_documents_itself():
    for module in BEHAVIOURS:
        assert module.NAME and len(module.HELP.split()) > 15, module.__name__
        for key in getattr(module, "DEFAULTS", {}):
            assert key in getattr(module, "SETTINGS_HELP", {}), f"{module.NAME}.{key} has no explanation"


def test_the_readme_example_config_is_valid():
    readme = (ROOT / "README.md").read_text()
    example = readme.split("```yaml\n# .github/engage.yml example", 1)[1].split("```", 1)[0]
    assert parse(example, [m for m in BEHAVIOURS if hasattr(m, "DEFAULTS")]).problems == ()


def readme_behaviour(folder: Path) -> str:
    """The README's "Writing a behaviour" example, written out as a module in `folder` (on sys.path)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Writing a behaviour", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    (folder / "readme_crash_reports.py").write_text(code)
    return "readme_crash_reports"


@pytest.fixture
def example_module(tmp_path, monkeypatch) -> Iterator[ModuleType]:
    monkeypatch.syspath_prepend(str(tmp_path))
    name = readme_behaviour(tmp_path)
    yield importlib.import_module(name)
    sys.modules.pop(name, None)


@pytest.mark.parametrize(
    ("case", "title", "config", "label"),
    [
        ("a crash", "Installer crashes on boot", {}, "crash"),
        ("a panic, another label", "Kernel PANIC at start", {"label": "bug: crash"}, "bug: crash"),
        ("not a crash", "Add a dark theme", {}, None),
        ("turned off", "Installer crashes", {"enabled": False}, None),
    ],
)
def test_the_readme_behaviour_decides(example_module, case, title, config, label):
    settings = dataclasses.replace(example_module.CrashReportsConfig(), **config)
    assert example_module.decide(title, settings) == label, case


def test_the_readme_behaviour_runs_in_the_app_and_comments_once(example_module, make_app, serve, github):
    from tests.conftest import REPO
    from tests.test_greeting import NEWCOMER, issue_opened

    server = serve(make_app(behaviours=(example_module.__name__,)))
    github.add_issue(REPO, 7, NEWCOMER, title="Installer crashes")
    for _ in range(2):  # the same issue in two deliveries (GitHub's, and one replayed by hand)
        assert server.deliver("issues", issue_opened(7, title="Installer crashes")).status_code == 202
    services(server.app).dispatcher.wait_idle()
    assert "crash" in github.issue_labels(REPO, 7)
    thanks = [c["body"] for c in github.comments(REPO, 7) if example_module.MARKER in c["body"]]
    assert len(thanks) == 1 and "Thanks for the crash report, @" in thanks[0]
