"""Text from repositories is untrusted: templates substitute named fields only, and quoted text is inert."""

from __future__ import annotations

import re
from collections.abc import Mapping

_FIELD = re.compile(r"\{([a-z_]+)\}")


def fill(template: str, fields: Mapping[str, str]) -> str:
    """Replace `{name}` for the given names only; anything else stays as written. (str.format would
    allow `{login.__class__}`, indexing and format specs on whatever a repository writes.)"""
    return _FIELD.sub(lambda m: fields.get(m.group(1), m.group(0)), template)


_RUN = re.compile(r"`+")
_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def inline_code(text: str, limit: int = 80) -> str:
    """Someone else's text, shown as a Markdown code span so that nothing in it takes effect: no
    mention, link, HTML or line break. Cut to `limit` characters; line breaks are shown as `\\n`."""
    text = _BREAKS.sub(lambda m: repr(m.group())[1:-1], text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    if not text.strip():
        text = repr(text)  # an empty code span is not one; '' shows that the key is empty
    # The fence is one backtick longer than any run inside; CommonMark strips one space on each side.
    fence = "`" * (max((len(run) for run in _RUN.findall(text)), default=0) + 1)
    return f"{fence} {text} {fence}"
