"""The README's behaviour reference, generated from each behaviour's HELP and DEFAULTS so the two
never drift apart (tests/test_docs.py checks it). Regenerate with `python -m engagement.docs README.md`."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from types import ModuleType

import yaml

START, END = "<!-- behaviours:start -->", "<!-- behaviours:end -->"


def reference(behaviours: list[ModuleType]) -> str:
    """Markdown: a section per behaviour, then the whole `.github/engage.yml` with its defaults."""
    parts = []
    for module in behaviours:
        title = module.NAME.replace("_", " ").capitalize()
        events = sorted({key for handler in module.router.handlers for key in handler.keys})
        reacts = (
            f"Reacts to: {', '.join(f'`{e}`' for e in events)}." if events else "Reacts to no event: a scheduled task."
        )
        parts.append(
            f"### {title} (`{module.NAME}`)\n\n{' '.join(module.HELP.split())}\n\n{reacts}" + _settings_table(module)
        )
    sections = {m.NAME: m.DEFAULTS for m in behaviours if hasattr(m, "DEFAULTS")}
    example = yaml.safe_dump(sections, sort_keys=False, allow_unicode=True, default_flow_style=False)
    parts.append(
        "### `.github/engage.yml`: every setting, with its default\n\n"
        "Put the file in a repository's default branch, or in the organisation's `.github` repository "
        "for every repository at once. Each section is merged over these defaults, so a file only "
        "needs what it changes; `enabled: false` turns a behaviour off.\n\n"
        f"```yaml\n{example}```"
    )
    return "\n\n".join(parts)


def _settings_table(module: ModuleType) -> str:
    defaults = getattr(module, "DEFAULTS", None)
    if not defaults:
        return ""
    meaning = getattr(module, "SETTINGS_HELP", {})
    rows = [
        f"| `{key}` | `{json.dumps(value, ensure_ascii=False)}` | {meaning.get(key, '')} |"
        for key, value in defaults.items()
    ]
    return f"\n\nIn `{module.NAME}:`\n\n| setting | default | meaning |\n| --- | --- | --- |\n" + "\n".join(rows)


def replace_section(readme: str, text: str) -> str:
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    return pattern.sub(lambda _: f"{START}\n{text}\n{END}", readme)


if __name__ == "__main__":
    from engagement.registry import BEHAVIOURS

    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    path.write_text(replace_section(path.read_text(), reference(BEHAVIOURS)))
