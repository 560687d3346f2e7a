"""Each behaviour's section of `.github/engage.yml` is a typed schema: a frozen dataclass named after the
section, whose defaults are the DEFAULTS the file is checked against, and which a parsed file fills in,
nested settings included."""

from __future__ import annotations

import dataclasses

import pytest

from engagement.common.config import build, defaults_of, parse
from engagement.greeting import GreetingConfig
from engagement.leaderboard import LeaderboardConfig, Points, settings_of
from engagement.registry import BEHAVIOURS

CONFIGURABLE = [module for module in BEHAVIOURS if hasattr(module, "DEFAULTS")]


def schema_of(module):
    """The schema of a behaviour's section: `greeting` → `GreetingConfig`, `good_first_issues` →
    `GoodFirstIssuesConfig`."""
    return getattr(module, "".join(part.capitalize() for part in module.NAME.split("_")) + "Config")


@pytest.mark.parametrize("module", CONFIGURABLE, ids=lambda module: module.NAME)
def test_every_section_is_a_frozen_dataclass_whose_defaults_are_DEFAULTS(module):
    schema = schema_of(module)
    assert dataclasses.is_dataclass(schema) and schema.__dataclass_params__.frozen
    assert defaults_of(schema) == module.DEFAULTS
    assert build(schema, module.DEFAULTS) == schema(), "the defaults read back as the schema's own"
    fields = {spec.name for spec in dataclasses.fields(schema)}
    assert set(module.SETTINGS_HELP) <= fields, "every documented setting is a field"
    assert set(module.DEFAULTS) == fields


def test_a_parsed_file_arrives_in_the_dataclass_nested_settings_too():
    text = (
        "leaderboard:\n  points:\n    comment: 3\n  exclude: [sam]\n"
        "greeting:\n  language: zh\n  messages:\n    issue: 'Hi @{login}'\n"
    )
    loaded = parse(text, CONFIGURABLE)
    assert loaded.problems == ()
    leaderboard = loaded.typed(LeaderboardConfig, "leaderboard")
    assert leaderboard.points == dataclasses.replace(Points(), comment=3), "the other points keep their defaults"
    assert leaderboard.exclude == ("sam",) and leaderboard.daily_comment_cap == 5
    greeting = loaded.typed(GreetingConfig, "greeting")
    assert (
        greeting.language == "zh" and greeting.messages.issue == "Hi @{login}" and greeting.messages.pull_request == ""
    )


def test_a_wrong_nested_setting_is_named_by_line_and_key_and_its_default_stands():
    loaded = parse("leaderboard:\n  points:\n    review: 4\n    comment: many\n", CONFIGURABLE)
    assert [str(problem) for problem in loaded.problems] == [
        "line 4: leaderboard.points.comment: must be a number, got text"
    ]
    points = loaded.typed(LeaderboardConfig, "leaderboard").points
    assert points.review == 4 and points.comment == 1


def test_settings_stored_by_an_older_version_load_with_defaults_for_what_they_lack():
    stored = {"enabled": False, "points": {"comment": 2, "retired_kind": 7}, "retired_setting": True}
    settings = settings_of(stored)
    assert not settings.enabled and settings.points == dataclasses.replace(Points(), comment=2)
    assert settings_of(None) == LeaderboardConfig()


def test_a_section_is_built_once_per_parsed_file():
    """A parsed file is shared by every delivery of its repository (issue 14: building a section per
    handler and delivery cost more than a ledger write); a section is frozen, so one copy serves all."""
    loaded = parse("leaderboard:\n  points:\n    comment: 3\n", CONFIGURABLE)
    first = loaded.typed(LeaderboardConfig, "leaderboard")
    assert loaded.typed(LeaderboardConfig, "leaderboard") is first and first.points.comment == 3
    assert loaded == parse("leaderboard:\n  points:\n    comment: 3\n", CONFIGURABLE), "still equal by content"
