"""Per-repository configuration: `.github/engage.yml`, the org's `.github` repository, built-in defaults.

Parsing and checking are pure (`parse`); `load` does the two reads. A broken file never stops a
behaviour: what is wrong is reported with its line and key, and defaults stand in for it. A behaviour
declares its section as a frozen dataclass (its DEFAULTS, which the file is checked against, come from
it: `defaults_of`) and reads it as one (`RepoConfig.typed`).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import yaml

import catalogs

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

log = logging.getLogger(__name__)

CONFIG_PATH = ".github/engage.yml"

# Any pull request author can make the app parse a file (the config check reads the head's), so what a
# file may cost is bounded: its size, its nesting (PyYAML composes recursively) and no aliases, which
# let a few hundred bytes stand for millions of nodes ("billion laughs").
MAX_FILE_BYTES = 64 * 1024
MAX_DEPTH = 10  # the deepest setting (`leaderboard.points.comment`) is at 3
MAX_NUMBER = 1000  # points and caps are whole numbers from 0 to this
MAX_TEXT = 4000  # characters in a text setting (a custom message)
MAX_ENTRIES = 50  # entries in a list setting
MAX_ENTRY = 50  # characters in a list entry (GitHub's own cap on a label name)
# Lists whose every entry costs writes to GitHub: each of `labels` is created and added to the issue.
ENTRY_CAPS = {"good_first_issues.labels": 5}
LOGGED_PROBLEMS = 10
AUTO = "auto"  # a `language:` that follows the text being answered


class Behaviour(Protocol):
    """A section's owner. It may also have CHECKS, {key: check}: a check of a key's value beyond its type
    (a cron expression, a name the operator defined) that says what is wrong, or None; or, for a section
    that is not settings with defaults, `parse_section(value, path, lines) -> (section, problems)`."""

    NAME: str
    DEFAULTS: dict[str, Any]


Check = Callable[[Any], str | None]


Schema = TypeVar("Schema", bound="DataclassInstance")


def defaults_of(schema: type[DataclassInstance]) -> dict[str, Any]:
    """A section's schema as the plain defaults that validation, the README and SETTINGS_HELP read:
    nested dataclasses as mappings, tuples as lists (the YAML a file would hold)."""
    return plain(dataclasses.asdict(schema()))


def plain(values: dict[str, Any]) -> dict[str, Any]:
    """`dataclasses.asdict`'s answer with its tuples as lists, as YAML and JSON hold them."""

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: convert(item) for key, item in value.items()}
        return [convert(item) for item in value] if isinstance(value, tuple | list) else value

    return {key: convert(value) for key, value in values.items()}


def build(schema: type[Schema], values: Mapping[str, Any]) -> Schema:
    """The typed section from plain values, nested sections too; lists become tuples. A key the schema
    lacks is ignored and a missing one keeps its default, so settings stored by an older version load."""
    hints = _hints(schema)
    given: dict[str, Any] = {}
    for spec in dataclasses.fields(schema):
        if spec.name not in values:
            continue
        value, hint = values[spec.name], hints[spec.name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, Mapping):
                continue
            value = build(typing.cast("type[DataclassInstance]", hint), value)
        elif isinstance(value, list):
            value = tuple(value)
        given[spec.name] = value
    return schema(**given)


@functools.cache
def _hints(schema: type[DataclassInstance]) -> dict[str, Any]:
    """A schema's resolved type hints: resolving them costs more than building the section."""
    return typing.get_type_hints(schema)


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a config file, where a maintainer can find it."""

    key: str
    message: str
    line: int | None = None
    detail: str = ""  # the YAML parser's own words, which may quote the file

    def __str__(self) -> str:
        return self.render()

    def render(self, quote: Callable[[str], str] = str) -> str:
        """The problem in words; `quote` marks the text that comes from the file (key and detail)."""
        where = f"line {self.line}: " if self.line else ""
        key = f"{quote(self.key)}: " if self.key else ""
        detail = f" ({quote(self.detail)})" if self.detail else ""
        return f"{where}{key}{self.message}{detail}"


@dataclass(frozen=True)
class RepoConfig:
    sections: dict[str, dict[str, Any]]
    problems: tuple[Problem, ...] = ()
    source: str = "defaults"
    # The dotted keys (`greeting.language`) whose value is the file's; every other one is the default.
    given: frozenset[str] = frozenset()
    # Sections built by `typed`, by schema and name: a parsed config is shared by every delivery of the
    # same file (`_parse_once`), and schemas are frozen, so each is built once per file and process.
    _typed: dict[tuple[type, str], Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def section(self, name: str) -> dict[str, Any]:
        return self.sections[name]

    def typed(self, schema: type[Schema], name: str) -> Schema:
        """Section `name` as its schema (validated and merged over the defaults already); the defaults
        when no behaviour of that name is loaded."""
        key = (schema, name)
        if key not in self._typed:
            self._typed[key] = build(schema, self.sections.get(name, {}))
        built: Schema = self._typed[key]
        return built


class _TooCostly(Exception):
    def __init__(self, message: str, mark: yaml.Mark | None):
        super().__init__(message)
        self.message, self.line = message, mark.line + 1 if mark else None


class _Loader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no types
    """PyYAML's safe loader, refusing aliases and deep nesting while it composes the node tree, so
    that parsing costs at most in proportion to the file's size."""

    def __init__(self, text: str):
        super().__init__(text)
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            raise _TooCostly(
                "aliases (`*name`) are not supported; write the settings out in full", self.peek_event().start_mark
            )
        if self.depth >= MAX_DEPTH:
            raise _TooCostly(f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _load_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """The document and its node tree (for line numbers), composed once."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


@dataclass
class _Lines:
    """Line numbers of the keys in a YAML document, by dotted path."""

    by_path: dict[str, int] = field(default_factory=dict)

    def walk(self, node: yaml.Node, prefix: str = "") -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                path = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
                self.by_path[path] = key_node.start_mark.line + 1
                self.walk(value_node, path)


def defaults(behaviours: Sequence[Behaviour]) -> dict[str, dict[str, Any]]:
    return {b.NAME: copy.deepcopy(b.DEFAULTS) for b in behaviours}


def parse(text: str | None, behaviours: Sequence[Behaviour], source: str = CONFIG_PATH) -> RepoConfig:
    """The file's settings merged over the behaviours' defaults, and what is wrong with it."""
    merged = defaults(behaviours)
    if text is None or not text.strip():
        return RepoConfig(merged, (), "defaults" if text is None else source)
    if len(text.encode()) > MAX_FILE_BYTES:
        return RepoConfig(
            merged, (Problem("", f"larger than {MAX_FILE_BYTES // 1024} KiB; using the defaults"),), source
        )
    lines = _Lines()
    try:
        document, node = _load_yaml(text)
        if node is not None:
            lines.walk(node)
    except _TooCostly as exc:
        return RepoConfig(merged, (Problem("", f"{exc.message}; using the defaults", exc.line),), source)
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: an integer of more than 4,300 digits
        mark = getattr(exc, "problem_mark", None)
        problem = Problem(
            "",
            "not valid YAML; using the defaults",
            mark.line + 1 if mark else None,
            str(getattr(exc, "problem", None) or exc),
        )
        return RepoConfig(merged, (problem,), source)
    if document is None:
        return RepoConfig(merged, (), source)
    if not isinstance(document, dict):
        return RepoConfig(merged, (Problem("", "must be a mapping of sections, e.g. `greeting:`", 1),), source)
    problems: list[Problem] = []
    given: list[str] = []
    checks: dict[str, Check] = {
        f"{b.NAME}.{key}": check for b in behaviours for key, check in getattr(b, "CHECKS", {}).items()
    }
    # A section that is not settings with defaults (the events, by slug) is read by its own `parse_section`.
    readers = {b.NAME: reader for b in behaviours if (reader := getattr(b, "parse_section", None)) is not None}
    for name, value in document.items():
        if name not in merged:
            problems.append(
                Problem(
                    str(name), f"unknown section (known: {', '.join(sorted(merged))})", lines.by_path.get(str(name))
                )
            )
            continue
        if value is None:
            continue
        if name in readers:
            merged[name], found = readers[name](value, str(name), lines.by_path)
            problems += found
            continue
        if not isinstance(value, dict):
            problems.append(Problem(str(name), "must be a mapping of settings", lines.by_path.get(str(name))))
            continue
        _merge(merged[name], value, str(name), lines, problems, checks, given)
    return RepoConfig(merged, tuple(problems), source, frozenset(given))


def _merge(
    target: dict[str, Any],
    given: Mapping[str, Any],
    path: str,
    lines: _Lines,
    problems: list[Problem],
    checks: Mapping[str, Check],
    taken: list[str],
) -> None:
    """Deep-merge `given` into `target`, keeping the default for every key that is unknown or mistyped
    or that its behaviour's check refuses; the dotted keys of the values taken are added to `taken`."""
    for key, value in given.items():
        key_path = f"{path}.{key}"
        line = lines.by_path.get(key_path)
        if key not in target:
            problems.append(Problem(key_path, f"unknown setting (known: {', '.join(sorted(target))})", line))
        elif isinstance(target[key], dict):
            if isinstance(value, dict):
                _merge(target[key], value, key_path, lines, problems, checks, taken)
            else:
                problems.append(Problem(key_path, "must be a mapping", line))
        elif wrong := _wrong(key_path, target[key], value) or _refused(checks.get(key_path), value):
            problems.append(Problem(key_path, wrong, line))
        else:
            target[key] = value
            taken.append(key_path)


def _wrong(path: str, default: Any, value: Any) -> str | None:
    """What is wrong with `value` in place of `default`, or None when it can stand."""
    if isinstance(default, bool) or isinstance(value, bool):
        return None if isinstance(default, bool) and isinstance(value, bool) else _expected(default, value)
    if isinstance(default, int) and isinstance(value, int | float):
        # Whole numbers only: int() of .inf raises, and .nan compares false, on every page that shows them.
        in_range = isinstance(value, int) and 0 <= value <= MAX_NUMBER
        return None if in_range else f"must be a whole number from 0 to {MAX_NUMBER}"
    if isinstance(default, list):
        if default and all(isinstance(v, int) for v in default):  # numbers, as `milestones.merged_prs`
            if not isinstance(value, list) or any(_wrong(path, 0, v) for v in value):
                return f"must be a list of whole numbers from 0 to {MAX_NUMBER}"
        elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return _expected(default, value)
        most = ENTRY_CAPS.get(path, MAX_ENTRIES)
        if len(value) > most:
            return f"must have at most {most} entries, not {len(value)}"
        if any(isinstance(v, str) and len(v) > MAX_ENTRY for v in value):
            return f"entries must be at most {MAX_ENTRY} characters long"
        return None
    if not isinstance(value, type(default)):
        return _expected(default, value)
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return f"must be at most {MAX_TEXT} characters long"
    if path.endswith(".language") and value != AUTO and value not in catalogs.languages(catalogs.BOT):
        # The bot speaks every language with a catalog, translations/<lang>/LC_MESSAGES/bot.po.
        return f"must be {AUTO} or one of {', '.join(catalogs.languages(catalogs.BOT))}"
    return None


def _refused(check: Check | None, value: Any) -> str | None:
    return check(value) if check is not None else None


def _expected(default: Any, value: Any) -> str:
    return f"must be {_type_name(default)}, got {_type_name(value)}"


def _type_name(value: Any) -> str:
    return {
        bool: "true or false",
        int: "a number",
        float: "a number",
        str: "text",
        list: "a list of text",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


@functools.lru_cache(maxsize=256)
def _parse_once(text: str | None, behaviours: tuple[Behaviour, ...], source: str) -> RepoConfig:
    """`parse`, once per text in a process: parsing and checking cost about 0.5 ms of CPU, on every
    delivery, and the same file always parses the same. The result is shared, so nobody changes it."""
    return parse(text, behaviours, source)


class ConfigReader(Protocol):
    def read_file(self, repo: str, path: str, ref: str | None = None) -> str | None: ...


def load(github: ConfigReader, repository: Mapping[str, Any], behaviours: Sequence[Behaviour]) -> RepoConfig:
    """Read the repository's file from its default branch, else the org's `.github` repository's.

    No `ref`: GitHub's default branch, which is what the payload names. Every reader then shares one copy
    (the scheduled tasks know a repository by its name only), where a ref named by the payload and none at
    all were two copies of the same file, each read from GitHub."""
    full_name = str(repository["full_name"])
    text = github.read_file(full_name, CONFIG_PATH)
    source = f"{full_name}/{CONFIG_PATH}"
    if text is None:
        owner = full_name.split("/", 1)[0]
        text = github.read_file(f"{owner}/.github", CONFIG_PATH)
        source = f"{owner}/.github/{CONFIG_PATH}"
    config = _parse_once(text, tuple(behaviours), source)
    for problem in config.problems[:LOGGED_PROBLEMS]:
        log.warning("config problem in %s: %s", config.source, problem, extra={"repo": full_name})
    if len(config.problems) > LOGGED_PROBLEMS:
        log.warning(
            "config problems in %s: %d more",
            config.source,
            len(config.problems) - LOGGED_PROBLEMS,
            extra={"repo": full_name},
        )
    return config


def for_event(ctx: Any) -> RepoConfig:
    """The configuration for this delivery's repository, read once per delivery and shared by its handlers."""
    if "config" not in ctx.shared:
        ctx.shared["config"] = load(ctx.github, ctx.payload["repository"], ctx.configurable)
    config: RepoConfig = ctx.shared["config"]
    return config
