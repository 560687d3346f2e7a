"""Good first issues' config section (`good_first_issues:` in `.github/engage.yml`) and its defaults."""

from __future__ import annotations

from dataclasses import dataclass

from engagement.common.config import defaults_of

NAME = "good_first_issues"


@dataclass(frozen=True)
class ClaimsConfig:
    """`claims:` inside the section: when a quiet claim is nudged, then given back (0: that step is off)."""

    remind_after_days: int = 7
    release_after_days: int = 14


@dataclass(frozen=True)
class GoodFirstIssuesConfig:
    enabled: bool = True
    language: str = "auto"  # auto, or a language the bot speaks (en, zh)
    labels: tuple[str, ...] = ("good first issue", "help wanted")  # the first one marks a good first issue
    label_colour: str = "7057ff"  # for labels the app creates (six hex digits)
    label_description: str = "Good for newcomers"
    synonyms: tuple[str, ...] = (
        "easy",
        "beginner",
        "starter",
        "E-easy",
        "low hanging fruit",
        "good-first-issue",
        "新手",
        "入门",
    )
    keywords: tuple[str, ...] = ()  # words in a new issue's title or text that make it a good first issue; empty: off
    claim_cap: int = 2  # open claims per person in a repository; 0: no limit
    contributing_url: str = ""  # empty: CONTRIBUTING.md if the repository has one
    forum_url: str = ""
    chat_url: str = ""
    claims: ClaimsConfig = ClaimsConfig()


DEFAULTS = defaults_of(GoodFirstIssuesConfig)
