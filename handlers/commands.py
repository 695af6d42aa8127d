"""`/clarity` slash commands in an issue or pull-request comment, parsed without I/O.

A line is a command only when a reader of the rendered comment sees it as one: lines
in code (fenced, indented or inline), in quotes and in HTML comments are ignored, so
quoting someone else's comment, or hiding text from readers, never runs anything.
"""

from __future__ import annotations

import bisect
import html
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from itertools import islice
from typing import Any

PREFIX = "/clarity"
MAX_COMMANDS = 10  # per comment; one comment should not be able to queue a pile of work
_SHOWN_WORD_LENGTH = 60  # an unknown word is echoed back no longer than this


class CommandName(StrEnum):
    HELP = "help"
    STATUS = "status"
    DEEP_SCAN = "deep-scan"
    ABORT = "abort"
    RETRY = "retry"
    FIX = "fix"
    IGNORE = "ignore"
    APPROVE = "approve"


@dataclass(frozen=True, slots=True)
class Command:
    name: CommandName
    args: tuple[str, ...]
    line: int  # 1-based, in the comment body
    raw: str  # the command's line as readers see it (HTML comments removed), stripped


HELP_TEXT = """\
**Clarity Check commands.** Comment one per line, for example `/clarity status`:

- `/clarity help`: show this list.
- `/clarity status`: where the latest build for this pull request has got to.
- `/clarity deep-scan [confirm]`: a deeper scan of this pull request; it counts against \
the deep-scan quota, so it starts only with `confirm`.
- `/clarity abort`: stop this pull request's running build.
- `/clarity retry`: retry this pull request's failed build.
- `/clarity fix <finding-id>|all-new-critical`: propose a fix for one finding \
(its `CC-…` id), or for every new critical finding.
- `/clarity ignore <finding-id> <reason> [until YYYY-MM-DD]`: ignore a finding, \
for a reason, optionally until a date.
- `/clarity approve <fix-id>`: approve a proposed fix so that it is committed.

Commands in code, quotes or HTML comments are ignored, and at most 10 are read per comment.
"""


def parse_commands(body: str) -> list[Command]:
    """The `/clarity` commands in a comment body, in order, at most `MAX_COMMANDS`.

    An unknown command word parses as `help` with args `("unknown", word)`; `/clarity`
    alone and `/clarity help ...` parse as `help` with no args.
    """
    return list(islice(_commands(body), MAX_COMMANDS))


def confirmed(command: Command) -> bool:
    """Is this `/clarity deep-scan confirm`, the form that starts a deep scan?"""
    return (
        command.name is CommandName.DEEP_SCAN
        and bool(command.args)
        and command.args[0].lower() == "confirm"
    )


def help_reply(unknown: str | None = None) -> str:
    """The help comment; when `unknown` is given, it opens by saying that word was not understood."""
    if unknown is None:
        return HELP_TEXT
    return f"I did not understand <code>{PREFIX} {_escape(unknown)}</code>.\n\n{HELP_TEXT}"


# Command words are matched ignoring case, hyphens and underscores: deep_scan, deepscan.
_NAMES = {name.value.replace("-", ""): name for name in CommandName}


def _commands(body: str) -> Iterator[Command]:
    for paragraph in _paragraphs(_lines(body)):
        for number, text in _visible_lines(paragraph):
            command = _command(number, text)
            if command is not None:
                yield command


def _command(number: int, text: str) -> Command | None:
    raw = text.strip()
    if raw[: len(PREFIX)].lower() != PREFIX or raw[len(PREFIX) : len(PREFIX) + 1].strip():
        return None  # not `/clarity` followed by a space or the end: `/clarityfoo`
    rest = raw[len(PREFIX) :]
    try:
        words = shlex.split(rest)
    except ValueError:  # unbalanced quotes, as in `ignore CC-1 it's fine`
        words = rest.split()
    if not words:
        return Command(CommandName.HELP, (), number, raw)
    name = _NAMES.get(words[0].strip().lower().replace("-", "").replace("_", ""))
    if name is None:
        return Command(CommandName.HELP, ("unknown", words[0]), number, raw)
    # help takes no arguments, so ("unknown", word) can only come from an unknown word.
    args = () if name is CommandName.HELP else tuple(words[1:])
    return Command(name, args, number, raw)


def _lines(body: str) -> list[str]:
    # Split on line endings only: str.splitlines() also breaks on form feeds and
    # U+2028, which would put line numbers out of step with what GitHub shows.
    return body.replace("\r\n", "\n").replace("\r", "\n").split("\n")


# Fences and HTML blocks are recognised at any indentation and after list markers:
# without tracking lists, that keeps a fence inside a list item from being read as text.
_BLOCK_PREFIX = r"[ \t]*(?:(?:[-+*]|\d{1,9}[.)])[ \t]+)*"
_FENCE = re.compile(_BLOCK_PREFIX + r"(?P<fence>`{3,}|~{3,})(?P<info>.*)")
_RAW_HTML = re.compile(
    _BLOCK_PREFIX + r"<(?P<tag>pre|script|style|textarea)(?:[\s>]|$)", re.IGNORECASE
)
_COMMENT_START = re.compile(_BLOCK_PREFIX + r"<!--")


def _paragraphs(lines: list[str]) -> Iterator[list[tuple[int, str]]]:
    """Runs of consecutive paragraph lines, each line with its 1-based number."""
    paragraph: list[tuple[int, str]] = []
    fence = ""  # the open fence's marker, such as "```"
    block_end = ""  # what closes the open HTML block, such as "-->"
    continues = False  # an indented line would continue a paragraph, not start code
    for number, line in enumerate(lines, start=1):
        text = True
        if fence:
            text = False
            closing = line.strip()
            if closing.startswith(fence) and closing == fence[0] * len(closing):
                fence = ""
        elif block_end:
            text = False
            if block_end in line.lower():
                block_end = ""
        elif not line.strip():
            text = False
        elif _indent(line) >= 4 and not continues:
            text = False  # indented code
        elif line.lstrip().startswith(">"):
            # A quote's lazy continuation lines are the author's own words, so only
            # the lines marked `>` are treated as quoted.
            text = False
        elif (match := _FENCE.match(line)) and not (
            match["fence"][0] == "`" and "`" in match["info"]
        ):
            text = False  # a backtick "fence" with a backtick after it is inline code
            fence = match["fence"]
        elif match := _COMMENT_START.match(line):
            text = False
            if "-->" not in line[match.end() - 2 :]:  # `<!-->` is a whole comment
                block_end = "-->"
        elif match := _RAW_HTML.match(line):
            text = False
            end = f"</{match['tag'].lower()}>"
            if end not in line.lower()[match.end() :]:
                block_end = end
        if text:
            paragraph.append((number, line))
        elif paragraph:
            yield paragraph
            paragraph = []
        continues = text or line.lstrip().startswith(">")
    if paragraph:
        yield paragraph


def _indent(line: str) -> int:
    """Columns of leading spaces and tabs; a tab reaches the next multiple of 4."""
    column = 0
    for char in line:
        if char == " ":
            column += 1
        elif char == "\t":
            column += 4 - column % 4
        else:
            break
    return column


class _Kind(IntEnum):
    TEXT = 0
    CODE = 1
    HIDDEN = 2


def _visible_lines(paragraph: list[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """Each line that starts with plain text, as readers see it (HTML comments removed)."""
    text = "\n".join(line for _, line in paragraph)
    kinds = _inline_kinds(text)
    start = 0
    for number, line in paragraph:
        line_kinds = kinds[start : start + len(line)]
        start += len(line) + 1
        if "/" not in line:
            continue
        shown = [(char, kind) for char, kind in zip(line, line_kinds) if kind != _Kind.HIDDEN]
        visible = "".join(char for char, _ in shown)
        first = len(visible) - len(visible.lstrip())
        # `/clarity` inside a code span is an example, not a command.
        if all(kind == _Kind.TEXT for _, kind in shown[first : first + len(PREFIX)]):
            yield number, visible


def _inline_kinds(text: str) -> bytearray:
    """The kind of each character of a paragraph, by CommonMark's rules for code spans
    (a backtick run up to the next run of the same length) and HTML comments (`<!--` up
    to the next `-->`), whichever opens first. An opener with no closer is plain text."""
    kinds = bytearray(len(text))
    runs = [(match.start(), match.end()) for match in re.finditer("`+", text)]
    by_length: dict[int, list[int]] = {}
    for index, (begin, end) in enumerate(runs):
        by_length.setdefault(end - begin, []).append(index)
    position = run = 0
    comment = text.find("<!--")
    while True:
        while run < len(runs) and runs[run][0] < position:
            run += 1
        if comment != -1 and comment < position:
            comment = text.find("<!--", position)
        tick = runs[run][0] if run < len(runs) else len(text)
        if comment != -1 and comment < tick:
            close = text.find("-->", comment + 2)
            if close == -1:
                comment = -1  # no comment can close after this point either
                continue
            kinds[comment : close + 3] = bytes([_Kind.HIDDEN]) * (close + 3 - comment)
            position = close + 3
        elif run < len(runs):
            begin, end = runs[run]
            same = by_length[end - begin]
            after = bisect.bisect_right(same, run)
            if after == len(same):
                position = end  # unmatched: the backticks are literal
                continue
            close = runs[same[after]][1]
            kinds[begin:close] = bytes([_Kind.CODE]) * (close - begin)
            position = close
        else:
            return kinds


def _escape(word: str) -> str:
    """`word` made safe to show inside <code>: no HTML, no Markdown, no control characters."""
    if len(word) > _SHOWN_WORD_LENGTH:
        word = word[:_SHOWN_WORD_LENGTH] + "…"
    shown = []
    for char in word:
        if not char.isprintable():
            shown.append("\N{REPLACEMENT CHARACTER}")
        elif char in "&<>\"'":
            shown.append(html.escape(char))
        elif char.isascii() and not char.isalnum() and char != " ":
            # CommonMark lets a backslash escape any ASCII punctuation, even inside <code>.
            shown.append("\\" + char)
        else:
            shown.append(char)
    return "".join(shown)


def quota_refusal(user: str, what: str, reason: str, resets_at: Any) -> str:
    """The reply when a quota stops a build: whose, which quota, and when it resets."""
    when = (
        f"it resets on {resets_at:%Y-%m-%d %H:%M} UTC"
        if resets_at
        else "it does not reset for this pull request"
    )
    return f"@{user} no {what} was started: {reason}; {when}."
