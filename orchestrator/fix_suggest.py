"""A small patch as GitHub suggested changes: one review comment per hunk, on the head's lines.

A fork's pull request cannot receive a branch of ours, but its author can apply a
```suggestion block with one click. Each hunk becomes one comment over the head lines
it changes (the lines it only inserts after are anchored on the line before). A patch
that adds, deletes or renames a file, or is too large to read as comments, gets None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.git_patch import PatchDoesNotApply, apply_patch, parse_patch

MAX_HUNKS = 5
MAX_LINES = 30  # of new text in one suggestion


@dataclass(frozen=True)
class Suggestion:
    """Replace lines `start_line`..`line` of `path` at the head with `lines`."""

    path: str
    start_line: int
    line: int
    lines: tuple[str, ...]

    def comment(self) -> dict[str, Any]:
        """The review comment GitHub takes (`start_line` only for several lines)."""
        comment: dict[str, Any] = {
            "path": self.path,
            "line": self.line,
            "side": "RIGHT",
            "body": suggestion_block(self.lines),
        }
        if self.start_line < self.line:
            comment |= {"start_line": self.start_line, "start_side": "RIGHT"}
        return comment


def suggestion_block(lines: tuple[str, ...]) -> str:
    """A ```suggestion block; a longer fence when the text holds one (empty: delete the lines)."""
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}suggestion\n" + "".join(f"{line}\n" for line in lines) + fence


def suggestions(patch: str, base_files: Mapping[str, bytes]) -> list[Suggestion] | None:
    """The patch as suggestions on `base_files` (the head it applies to), or None if unfit."""
    try:
        apply_patch(base_files, patch)
        sections = parse_patch(patch)
    except PatchDoesNotApply:
        return None
    found: list[Suggestion] = []
    for fp in sections:
        if fp.old_path is None or fp.new_path != fp.old_path or not fp.hunks:
            return None  # a new, deleted or renamed file, or a mode change alone
        if not base_files[fp.old_path]:
            return None  # an empty file has no line to comment on
        head = base_files[fp.old_path].decode("utf-8", "surrogateescape").split("\n")
        for hunk in fp.hunks:
            if hunk.old_cut != hunk.new_cut:
                return None  # a suggestion cannot add or remove the final newline
            found.append(_suggestion(fp.old_path, hunk, head))
    if not found or len(found) > MAX_HUNKS or any(len(s.lines) > MAX_LINES for s in found):
        return None
    if any(_not_text(line) for s in found for line in s.lines):
        return None
    return found


def _suggestion(path: str, hunk: Any, head: list[str]) -> Suggestion:
    """The hunk's changed lines, without the context it shares before and after."""
    old, new = hunk.old, hunk.new
    same = 0
    while same < min(len(old), len(new)) and old[same] == new[same]:
        same += 1
    tail = 0
    while tail < min(len(old), len(new)) - same and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    first = hunk.old_start + (hunk.old_len == 0) + same  # first changed head line
    replaced, lines = old[same : len(old) - tail], new[same : len(new) - tail]
    if replaced:
        return Suggestion(path, first, first + len(replaced) - 1, tuple(lines))
    if first > 1:  # a pure insertion: keep the line before and add after it
        return Suggestion(path, first - 1, first - 1, (head[first - 2], *lines))
    return Suggestion(path, 1, 1, (*lines, head[0]))  # at the very top: before line 1


def _not_text(line: str) -> bool:
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return "\r" in line
