"""Per-repository configuration: `.github/engage.yml`, the org's `.github` repository, built-in defaults.

Parsing and checking are pure (`parse`); `load` does the two reads. A broken file never stops a
behaviour: what is wrong is reported with its line and key, and defaults stand in for it.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml

log = logging.getLogger(__name__)

CONFIG_PATH = ".github/engage.yml"


class Behaviour(Protocol):
    NAME: str
    DEFAULTS: dict[str, Any]


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a config file, where a maintainer can find it."""

    key: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.key}: {self.message}" if self.key else f"{where}{self.message}"


@dataclass(frozen=True)
class RepoConfig:
    sections: dict[str, dict[str, Any]]
    problems: tuple[Problem, ...] = ()
    source: str = "defaults"

    def section(self, name: str) -> dict[str, Any]:
        return self.sections[name]

    def enabled(self, name: str) -> bool:
        return bool(self.sections[name].get("enabled", True))


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


def defaults(behaviours: list[Behaviour]) -> dict[str, dict[str, Any]]:
    return {b.NAME: copy.deepcopy(b.DEFAULTS) for b in behaviours}


def parse(text: str | None, behaviours: list[Behaviour], source: str = CONFIG_PATH) -> RepoConfig:
    """The file's settings merged over the behaviours' defaults, and what is wrong with it."""
    merged = defaults(behaviours)
    if text is None or not text.strip():
        return RepoConfig(merged, (), "defaults" if text is None else source)
    try:
        document = yaml.safe_load(text)
        lines = _Lines()
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            lines.walk(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = Problem(
            "",
            f"not valid YAML ({getattr(exc, 'problem', None) or exc}); using the defaults",
            mark.line + 1 if mark else None,
        )
        return RepoConfig(merged, (problem,), source)
    if document is None:
        return RepoConfig(merged, (), source)
    if not isinstance(document, dict):
        return RepoConfig(merged, (Problem("", "must be a mapping of sections, e.g. `greeting:`", 1),), source)
    problems: list[Problem] = []
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
        if not isinstance(value, dict):
            problems.append(Problem(str(name), "must be a mapping of settings", lines.by_path.get(str(name))))
            continue
        _merge(merged[name], value, str(name), lines, problems)
    return RepoConfig(merged, tuple(problems), source)


def _merge(target: dict[str, Any], given: Mapping[str, Any], path: str, lines: _Lines, problems: list[Problem]) -> None:
    """Deep-merge `given` into `target`, keeping the default for every key that is unknown or mistyped."""
    for key, value in given.items():
        key_path = f"{path}.{key}"
        line = lines.by_path.get(key_path)
        if key not in target:
            problems.append(Problem(key_path, f"unknown setting (known: {', '.join(sorted(target))})", line))
        elif isinstance(target[key], dict):
            if isinstance(value, dict):
                _merge(target[key], value, key_path, lines, problems)
            else:
                problems.append(Problem(key_path, "must be a mapping", line))
        elif not _same_type(target[key], value):
            problems.append(Problem(key_path, f"must be {_type_name(target[key])}, got {_type_name(value)}", line))
        else:
            target[key] = value


def _same_type(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, list):
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _type_name(value: Any) -> str:
    return {
        bool: "true or false",
        int: "a number",
        float: "a number",
        str: "text",
        list: "a list of text",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


class ConfigReader(Protocol):
    def read_file(self, repo: str, path: str, ref: str | None = None) -> str | None: ...


def load(github: ConfigReader, repository: Mapping[str, Any], behaviours: list[Behaviour]) -> RepoConfig:
    """Read the repository's file from its default branch, else the org's `.github` repository's."""
    full_name = str(repository["full_name"])
    text = github.read_file(full_name, CONFIG_PATH, ref=repository.get("default_branch"))
    source = f"{full_name}/{CONFIG_PATH}"
    if text is None:
        owner = full_name.split("/", 1)[0]
        text = github.read_file(f"{owner}/.github", CONFIG_PATH)
        source = f"{owner}/.github/{CONFIG_PATH}"
    config = parse(text, behaviours, source)
    for problem in config.problems:
        log.warning("config problem in %s: %s", config.source, problem, extra={"repo": full_name})
    return config


def configurable(modules: list[Any]) -> list[Behaviour]:
    """The behaviour modules that own a section of the file (those with DEFAULTS)."""
    return [module for module in modules if hasattr(module, "DEFAULTS")]


def for_event(ctx: Any) -> RepoConfig:
    """The configuration for this delivery's repository, read once per delivery and shared by its handlers."""
    if "config" not in ctx.shared:
        ctx.shared["config"] = load(ctx.github, ctx.payload["repository"], configurable(ctx.services.behaviours))
    config: RepoConfig = ctx.shared["config"]
    return config
