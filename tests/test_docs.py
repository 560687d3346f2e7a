"""The README's behaviour reference is the behaviours' own HELP and DEFAULTS."""

from engagement.common.config import parse
from engagement.docs import END, START, reference
from engagement.registry import BEHAVIOURS
from tests.conftest import ROOT


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
