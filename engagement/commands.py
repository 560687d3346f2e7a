"""Slash commands in comments, such as `/claim`: pure parsing, no GitHub.

A command is `/name` at the start of a line (up to three spaces of indentation, as Markdown allows),
optionally followed by arguments on the same line. What the comment does not show as text of its
own is never a command: fenced and indented code blocks, inline code (even when it spans lines),
`>` quotes (with the lines Markdown continues them onto) and HTML comments. For an edited comment,
`added` finds the commands the edit brought in, so that fixing a typo does not run a command again.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_COMMAND = re.compile(r"^ {0,3}/([A-Za-z][A-Za-z0-9_-]*)(?:[ \t]+(.*))?$")
_QUOTE = re.compile(r"^ {0,3}>")
_INDENTED = re.compile(r"^(?: {4}| {0,3}\t)")
# Inline code: a run of backticks up to the next run of the same length, within one paragraph.
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(?:(?!\n[ \t]*\n).)*?(?<!`)\1(?!`)", re.S)
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_HIDDEN = "\x00"  # stands in for hidden text: not blank, never a command


@dataclass(frozen=True)
class Command:
    """`/name args...` on line `line` (1-based) of the comment; `name` is lower case, without the slash."""

    name: str
    args: tuple[str, ...] = ()
    line: int = 0


def _hide(match: re.Match[str]) -> str:
    """The matched text with every character but line breaks hidden, so line numbers stay."""
    return re.sub(r"[^\n]", _HIDDEN, match.group(0))


def _without_fences(lines: list[str]) -> tuple[list[str], set[int]]:
    """The lines with fenced code blocks emptied, and the indexes of the emptied lines."""
    out: list[str] = []
    fenced: set[int] = set()
    fence: str | None = None
    for index, line in enumerate(lines):
        match = _FENCE.match(line)
        if fence is None and match and not (match.group(1)[0] == "`" and "`" in match.group(2)):
            fence = match.group(1)
        elif fence is not None and match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
            if not match.group(2).strip():
                fence = None
        elif fence is None:
            out.append(line)
            continue
        out.append("")
        fenced.add(index)
    return out, fenced


def parse(body: str | None) -> list[Command]:
    """The commands in a comment body, in order."""
    lines = (body or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines, fenced = _without_fences(lines)
    text = _CODE_SPAN.sub(_hide, _HTML_COMMENT.sub(_hide, "\n".join(lines)))
    commands: list[Command] = []
    in_quote = False
    for index, line in enumerate(text.split("\n")):
        if index in fenced or not line.strip():
            in_quote = False  # a code block or a blank line ends a quote
            continue
        if _QUOTE.match(line):
            in_quote = True
            continue
        if in_quote or _INDENTED.match(line):
            continue  # Markdown continues the quote onto this line, or it is code
        match = _COMMAND.match(line)
        if match:
            args = tuple((match.group(2) or "").split())
            commands.append(Command(match.group(1).lower(), args, index + 1))
    return commands


def added(before: str | None, after: str | None) -> list[Command]:
    """The commands in `after` that `before` did not have (an edit that repeats a command adds one)."""
    remaining = Counter((c.name, c.args) for c in parse(before))
    new: list[Command] = []
    for command in parse(after):
        key = (command.name, command.args)
        if remaining[key] > 0:
            remaining[key] -= 1
        else:
            new.append(command)
    return new
