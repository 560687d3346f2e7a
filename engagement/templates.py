"""Message templates from repositories are untrusted: only named fields are substituted."""

from __future__ import annotations

import re
from collections.abc import Mapping

_FIELD = re.compile(r"\{([a-z_]+)\}")


def fill(template: str, fields: Mapping[str, str]) -> str:
    """Replace `{name}` for the given names only; anything else stays as written. (str.format would
    allow `{login.__class__}`, indexing and format specs on whatever a repository writes.)"""
    return _FIELD.sub(lambda m: fields.get(m.group(1), m.group(0)), template)
