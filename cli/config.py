"""`config check PATH_OR_OWNER/REPO`: what the bot will say with a configuration, before or after it lands."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from cli.common import services_of
from engagement import preview
from engagement.common.config import MAX_FILE_BYTES, Problem
from githubapp.errors import GitHubError, TransientError

# GitHub's names: an account, then a repository (web/pages.py checks the same).
FULL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,38}/[A-Za-z0-9._-]{1,100}")
LANGUAGES = {"en": ("en",), "zh": ("zh",), "both": ("en", "zh")}


@click.group("config")
def config_cli() -> None:
    """A repository's `.github/engage.yml`: its effective values and the messages they make."""


@config_cli.command("check")
@click.argument("target", metavar="PATH_OR_OWNER/REPO")
@click.option(
    "--lang",
    type=click.Choice(sorted(LANGUAGES)),
    default="both",
    show_default=True,
    help="Preview messages answering text written in this language.",
)
@with_appcontext
def check_command(target: str, lang: str) -> None:
    """Validate a configuration and preview every message the bot would post with it.

    PATH: a local `.github/engage.yml` (exit 1, with `path:line: key: problem`, when it has problems).
    OWNER/REPO: an installed repository's, read through its installation as the app reads it (its own
    file, else its organisation's `.github` repository's, else the defaults).
    """
    services = services_of()
    path = Path(target)
    if path.is_file():
        found = preview.for_text(services, _read(path), target)
        where = target
    elif FULL_NAME.fullmatch(target):
        repo = preview.installed(services.store.engine, target)
        if repo is None:
            raise click.ClickException(f"{target}: no such file, and no installed repository by that name")
        try:
            found = preview.preview_installed(services, repo)
        except (GitHubError, TransientError) as exc:
            raise click.ClickException(f"{target}: GitHub did not answer ({exc}); try again later") from None
        where = found.source
    else:
        raise click.ClickException(f"{target}: no such file (or give OWNER/REPO for an installed repository)")
    click.echo(report(found, LANGUAGES[lang]), nl=False)
    if found.problems:
        for problem in found.problems:
            click.echo(located(where, problem), err=True)
        raise SystemExit(1)


def _read(path: Path) -> str:
    """The file's text; what is past the size the app accepts is not read (the parser refuses it anyway)."""
    with path.open("rb") as file:
        raw = file.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        return raw.decode("utf-8", errors="replace")  # too large: the parser says so, whatever it holds
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def located(where: str, problem: Problem) -> str:
    """`path:line: key: problem`, as compilers say it (an editor jumps to the line)."""
    line = f":{problem.line}" if problem.line else ""
    return f"{where}{line}: {problem.render().removeprefix(f'line {problem.line}: ')}"


def shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def report(found: preview.Preview, languages: tuple[str, ...]) -> str:
    """The effective values with their sources, then every message, as plain text."""
    origin = {
        preview.REPOSITORY: "the repository's file",
        preview.ORGANISATION: "the organisation's .github repository (the repository has no file of its own)",
        preview.FILE: "this file",
        preview.DEFAULT: "no file: the built-in defaults",
    }[found.origin]
    lines = [f"{found.repo}: configuration from {found.source} ({origin})", ""]
    if found.problems:
        lines += [f"{len(found.problems)} problem(s); the defaults stand in for these values:"]
        lines += [f"  {problem}" for problem in found.problems] + [""]
    lines.append("settings (value, source):")
    width = max(len(setting.key) for setting in found.settings)
    lines += [f"  {s.key.ljust(width)}  {shown(s.value)}  ({s.source})" for s in found.settings]
    for message in found.messages:
        lines += ["", f"=== {message.name} ({message.behaviour})"]
        for rendered in message.rendered:
            if rendered.written_in and rendered.written_in not in languages:
                continue
            about = f"for text written in {rendered.written_in}, " if rendered.written_in else ""
            if rendered.body is None:
                lines.append(f"--- {about}not posted: {rendered.reason}")
            else:
                lines += [f"--- {about}in {rendered.language}:", rendered.body]
    return "\n".join(lines) + "\n"
