"""Pull requests that close good first issues: which issues a pull request names with GitHub's closing
keywords. The ledger credits a merged one, and a good first issue with an open one leaves the
newcomers' list."""

from __future__ import annotations

import re

from engagement.common.language import strip_code

# GitHub's closing keywords ("Linking a pull request to an issue"): close, fix, resolve and their forms.
_CLOSES = re.compile(r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s*:?\s+#(\d+)\b", re.I)


def closing_references(text: str) -> set[int]:
    """Issue numbers a pull request says it closes (`Fixes #12`), ignoring code."""
    return {int(n) for n in _CLOSES.findall(strip_code(text or ""))}
