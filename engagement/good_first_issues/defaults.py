"""Good first issues' config section as it is when the repository says nothing (`.github/engage.yml`)."""

from __future__ import annotations

from typing import Any

DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "language": "auto",  # auto | en | zh
    "labels": ["good first issue", "help wanted"],  # the first one marks a good first issue
    "label_colour": "7057ff",  # for labels the app creates (six hex digits)
    "label_description": "Good for newcomers",
    "synonyms": ["easy", "beginner", "starter", "E-easy", "low hanging fruit", "good-first-issue", "新手", "入门"],
    "keywords": [],  # words in a new issue's title or text that make it a good first issue; empty: off
    "claim_cap": 2,  # open claims per person in a repository; 0: no limit
    "contributing_url": "",  # empty: CONTRIBUTING.md if the repository has one
    "forum_url": "",
    "chat_url": "",
}
