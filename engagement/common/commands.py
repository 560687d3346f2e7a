"""Slash commands in comments, such as `/claim`: pure parsing, no GitHub.

A command is `/name` at the start of a line (up to three spaces of indentation, as Markdown allows),
optionally followed by arguments on the same line. What GitHub does not show as text of its own is never
a command: code (fenced blocks, also in a list item; indented blocks; inline code, even when it spans
lines; HTML `<pre>` and `<code>`), `>` quotes (with the lines Markdown continues them onto) and HTML
comments. For an edited comment, `added` finds the commands the edit brought in, so that fixing a typo
does not run a command again.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from webhooks.event import Event

# A fence opens a code block on its own line, or after list markers ("- ```"), as CommonMark has it. The
# markers are matched possessively (*+): "-  -  -  ..." could otherwise be split in exponentially many ways.
_FENCE = re.compile(r"^(?P<item>(?: {0,3}(?:[-+*]|[0-9]{1,9}[.)]) {1,4})*+) {0,3}(?P<run>`{3,}|~{3,})(?P<info>.*)$")
_CLOSING_FENCE = re.compile(r"^(?P<indent> *)(?P<run>`{3,}|~{3,})[ \t]*$")
_COMMAND = re.compile(r"^ {0,3}/([A-Za-z][A-Za-z0-9_-]*)(?:[ \t]+(.*))?$")
_QUOTE = re.compile(r"^ {0,3}>")
_INDENTED = re.compile(r"^(?: {4}| {0,3}\t)")
# Text GitHub shows as code or not at all, whichever starts first: inline code (a run of backticks up to
# the next run of the same length, within one paragraph), an HTML comment, an HTML <pre> or <code>
# element (to its end tag; unclosed, to the end of the comment, as an unclosed fence).
_HIDDEN_TEXT = re.compile(
    r"(?<!`)(?P<ticks>`+)(?!`)(?:(?!\n[ \t]*\n).)*?(?<!`)(?P=ticks)(?!`)"
    r"|<!--.*?(?:-->|\Z)"
    r"|<(?P<tag>pre|code)(?=[\s/>])[^>]*>.*?(?:</(?P=tag)\s*>|\Z)",
    re.S | re.I,
)
_HIDDEN = "\x00"  # stands in for hidden text: not blank, never a command


@dataclass(frozen=True)
class Command:
    """`/name args...` on line `line` (1-based) of the comment; `name` is lower case, without the slash."""

    name: str
    args: tuple[str, ...] = ()
    line: int = 0


class _Fence(NamedTuple):
    run: str  # the opening backticks or tildes
    column: int  # where the list item's content starts (0 outside lists)

    def closed_by(self, line: str) -> bool:
        """A run of the same character at least as long, alone on its line, indented up to 3 spaces."""
        match = _CLOSING_FENCE.match(line)
        return bool(
            match
            and match["run"][0] == self.run[0]
            and len(match["run"]) >= len(self.run)
            and 0 <= len(match["indent"]) - self.column <= 3
        )

    def ended_by(self, line: str) -> bool:
        """A line less indented than its list item's content ends the item, and the code block in it."""
        return bool(line.strip()) and len(line) - len(line.lstrip(" ")) < self.column


def _hide(match: re.Match[str]) -> str:
    """The matched text with every character but line breaks hidden, so line numbers stay."""
    return re.sub(r"[^\n]", _HIDDEN, match.group(0))


def _without_fences(lines: list[str]) -> tuple[list[str], set[int]]:
    """The lines with fenced code blocks emptied, and the indexes of the emptied lines."""
    out: list[str] = []
    fenced: set[int] = set()
    fence: _Fence | None = None
    for index, line in enumerate(lines):
        if fence is not None and fence.ended_by(line):
            fence = None  # and the line is read as any other
        if fence is not None:
            if fence.closed_by(line):
                fence = None
        elif (match := _FENCE.match(line)) and not (match["run"][0] == "`" and "`" in match["info"]):
            fence = _Fence(match["run"], len(match["item"]))
        else:
            out.append(line)
            continue
        out.append("")
        fenced.add(index)
    return out, fenced


def parse(body: str | None) -> list[Command]:
    """The commands in a comment body, in order."""
    lines = (body or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines, fenced = _without_fences(lines)
    text = _HIDDEN_TEXT.sub(_hide, "\n".join(lines))
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


def of_comment(payload: Mapping[str, Any], action: str | None) -> list[Command]:
    """An `issue_comment` delivery's commands: a new comment's, or those an edit added to its text (none when the
    edit left the text alone)."""
    body = (payload.get("comment") or {}).get("body")
    if action != "edited":
        return parse(body)
    before = (payload.get("changes") or {}).get("body")
    return added(before["from"], body) if isinstance(before, Mapping) and "from" in before else []


def edit_adding(names: Collection[str]) -> Callable[[Event], bool]:
    """For `router.on(..., wants=...)`: every new comment, and an edit only when it adds one of these commands.
    Most edits fix a typo: the intake stores them as ignored and they are never processed. Only an edit's text is
    parsed in the webhook's answer; a new comment's commands are read by the handlers, as before."""

    def wants(event: Event) -> bool:
        return event.action != "edited" or any(command.name in names for command in of_comment(event.payload, "edited"))

    return wants
