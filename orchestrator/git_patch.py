"""Re-checking a sandbox's git patch: apply it to the base exactly, or refuse and say where.

The sandbox only proposes a `git diff`; the control plane applies it itself, with
whatthepatch, to content it read from GitHub, and commits the result (`git_commit`).
Everything here is pure.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import whatthepatch
from whatthepatch.exceptions import WhatThePatchException

FILE_MODE, EXEC_MODE = "100644", "100755"
_HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_INDEX = re.compile(r"index ([0-9a-f]+)\.\.([0-9a-f]+)(?: (\d{6}))?")
# whatthepatch splits lines with str.splitlines(), which also breaks at these characters;
# they are escaped before it sees a line and restored after
_ESC = "\ue000"
_SPECIAL = _ESC + "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_ESCAPE = str.maketrans({c: f"{_ESC}{i}" for i, c in enumerate(_SPECIAL)})
_UNESCAPE = re.compile(f"{_ESC}([0-9])")
_C_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


class PatchDoesNotApply(Exception):
    """The patch cannot be applied exactly to the base; `path` and `hunk` say where."""

    def __init__(self, path: str | None, reason: str, hunk: int | None = None) -> None:
        where = f"{path or 'patch'}" + (f", hunk {hunk}" if hunk else "")
        super().__init__(f"{where}: {reason}")
        self.path, self.hunk, self.reason = path, hunk, reason


@dataclass
class _Hunk:
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    old: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    # "\ No newline at end of file" after the last old / new line
    old_cut: bool = False
    new_cut: bool = False


@dataclass
class _FilePatch:
    """One `diff --git` section."""

    lines: list[str]
    old_path: str | None = None
    new_path: str | None = None
    old_mode: str | None = None
    new_mode: str | None = None
    copy: bool = False
    index: tuple[str, str] | None = None
    hunks: list[_Hunk] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.new_path or self.old_path or "?"


def apply_patch(base: Mapping[str, bytes], patch: str) -> dict[str, bytes | None]:
    """New content for each path the patch changes (None: deleted), applied to `base` exactly.

    `base` holds the current content of (at least) the files the patch modifies or
    deletes; `patch` is `git diff` text, non-UTF-8 bytes as surrogate escapes. A mode
    change alone changes nothing: existing files keep their mode.
    """
    result: dict[str, bytes | None] = {}
    for fp in _parse(patch):
        for path in {fp.old_path, fp.new_path} - {None}:
            if path in result:
                raise PatchDoesNotApply(path, "the patch changes this path twice")
        if fp.old_path is None:
            if fp.new_path in base:
                raise PatchDoesNotApply(fp.name, "the patch creates a file the base already has")
            before = b""
        elif fp.old_path not in base:
            raise PatchDoesNotApply(fp.old_path, "the file is not in the base")
        else:
            before = base[fp.old_path]
        renamed = fp.old_path is not None and fp.new_path not in (None, fp.old_path)
        if renamed and fp.new_path in base:
            raise PatchDoesNotApply(fp.name, f"renaming {fp.old_path} over an existing file")
        if not fp.hunks and not renamed and fp.old_path and fp.new_path:
            continue  # a mode change only
        after = _apply_file(fp, before)
        if renamed and not fp.copy:
            result[fp.old_path] = None
        result[fp.new_path or fp.old_path] = after if fp.new_path else None
    written = sorted(p for p, c in result.items() if c is not None)
    for shorter, longer in zip(written, written[1:], strict=False):
        if longer.startswith(shorter + "/"):
            raise PatchDoesNotApply(shorter, f"a file and a directory ({longer}) at one path")
    return result


def patch_modes(patch: str) -> dict[str, str]:
    """The git mode of each file the patch writes: a new file's own, an existing file's old one."""
    modes = {}
    for fp in _parse(patch):
        if fp.new_path is not None:
            mode = fp.new_mode if fp.old_path is None else fp.old_mode
            modes[fp.new_path] = mode or FILE_MODE
    return modes


def parse_patch(patch: str) -> list[_FilePatch]:
    """The patch's file sections and their hunks, checked as `apply_patch` checks them."""
    return _parse(patch)


# parsing ------------------------------------------------------------------------------
def _parse(patch: str) -> list[_FilePatch]:
    sections: list[list[str]] = []
    lines = patch.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        if line.startswith("diff --git "):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        elif line.strip():
            raise PatchDoesNotApply(None, "not a git patch (expected 'diff --git')")
    return [_section(lines) for lines in sections]


def _section(lines: list[str]) -> _FilePatch:
    fp = _FilePatch(lines)
    names = _diff_names(lines[0][len("diff --git ") :])
    i = 1
    while i < len(lines) and not lines[i].startswith("@@"):
        _header(fp, lines[i], names)
        i += 1
    if fp.old_path is None and fp.new_path is None:
        fp.old_path = fp.new_path = names[1] if names else None
    if fp.old_path is None and fp.new_path is None:
        raise PatchDoesNotApply(None, f"no file name in {lines[0]!r}")
    for path in {fp.old_path, fp.new_path} - {None}:
        _check_path(path)
    for mode in {fp.old_mode, fp.new_mode} - {None}:
        if mode not in (FILE_MODE, EXEC_MODE):
            raise PatchDoesNotApply(fp.name, f"mode {mode}: symlinks and submodules are refused")
    fp.hunks = _hunks(fp.name, lines[i:])
    return fp


def _header(fp: _FilePatch, line: str, names: tuple[str, str] | None) -> None:
    key, value = next(
        ((k, line[len(k) :]) for k in _HEADER_KEYS if line.startswith(k)), (None, line)
    )
    if key in ("GIT binary patch", "Binary files "):
        raise PatchDoesNotApply(names[1] if names else None, "binary patches are refused")
    if key == "index ":
        found = _INDEX.fullmatch(line)
        if not found:
            raise PatchDoesNotApply(fp.name, f"malformed line {line!r}")
        fp.index = (found[1], found[2])
        fp.old_mode = fp.old_mode or found[3]
    elif key in ("old mode ", "deleted file mode "):
        fp.old_mode = value
    elif key in ("new mode ", "new file mode "):
        fp.new_mode = value
        if key == "new file mode ":
            fp.old_path, fp.new_path = None, names[1] if names else None
    elif key in ("rename from ", "copy from "):
        fp.old_path, fp.copy = _unquote(value), key == "copy from "
    elif key in ("rename to ", "copy to "):
        fp.new_path = _unquote(value)
    elif key in ("--- ", "+++ "):
        path = None if value == "/dev/null" else _strip_prefix(_unquote(value.removesuffix("\t")))
        if key == "--- ":
            fp.old_path = path
        else:
            fp.new_path = path
    elif key is None:
        raise PatchDoesNotApply(fp.name, f"unexpected header line {line!r}")
    if key == "deleted file mode ":
        fp.old_path, fp.new_path = names[0] if names else None, None


_HEADER_KEYS = (
    "index ",
    "old mode ",
    "new mode ",
    "deleted file mode ",
    "new file mode ",
    "similarity index ",
    "dissimilarity index ",
    "rename from ",
    "rename to ",
    "copy from ",
    "copy to ",
    "--- ",
    "+++ ",
    "GIT binary patch",
    "Binary files ",
)


def _hunks(name: str, lines: list[str]) -> list[_Hunk]:
    hunks: list[_Hunk] = []
    last = ""
    for line in lines:
        head = _HUNK.match(line)
        if head:
            if hunks and (hunks[-1].old_cut or hunks[-1].new_cut):
                raise PatchDoesNotApply(name, "a hunk follows the end of the file", len(hunks))
            counts = [int(g) if g is not None else 1 for g in head.groups()]
            hunks.append(_Hunk(*counts))
            last = ""
            continue
        hunk = hunks[-1] if hunks else None
        kind = line[:1]
        if hunk is None or kind not in (" ", "-", "+", "\\") or (kind == "\\" and not last):
            raise PatchDoesNotApply(name, "a line that is not part of a hunk", len(hunks) or None)
        if kind == "\\":
            hunk.old_cut |= last in " -"
            hunk.new_cut |= last in " +"
        elif (kind in " -" and hunk.old_cut) or (kind in " +" and hunk.new_cut):
            raise PatchDoesNotApply(name, "a line follows the end of the file", len(hunks))
        else:
            if kind in " -":
                hunk.old.append(line[1:])
            if kind in " +":
                hunk.new.append(line[1:])
            last = kind
    shift, end = 0, 0
    for number, hunk in enumerate(hunks, 1):
        if (len(hunk.old), len(hunk.new)) != (hunk.old_len, hunk.new_len):
            raise PatchDoesNotApply(name, "the hunk's line counts do not match its header", number)
        old = hunk.old_start + (hunk.old_len == 0)
        new = hunk.new_start + (hunk.new_len == 0)
        if old < max(end, 1) or new - old != shift:
            raise PatchDoesNotApply(name, "the hunk's position is inconsistent", number)
        shift, end = shift + hunk.new_len - hunk.old_len, old + hunk.old_len
    return hunks


def _diff_names(rest: str) -> tuple[str, str] | None:
    """The a/ and b/ names of a `diff --git` line (halved when unquoted: git's own rule)."""
    if rest.startswith('"') or rest.endswith('"'):
        found = re.fullmatch(r'("(?:[^"\\]|\\.)*"|\S+) ("(?:[^"\\]|\\.)*"|\S+)', rest)
        parts = (found[1], found[2]) if found else None
    else:
        half = len(rest) // 2
        parts = (rest[:half], rest[half + 1 :]) if rest[half : half + 1] == " " else None
    if parts is None:
        return None
    a, b = (_unquote(p) for p in parts)
    if not (a.startswith("a/") and b.startswith("b/")):
        raise PatchDoesNotApply(None, f"expected a/ and b/ prefixes in 'diff --git {rest}'")
    return a[2:], b[2:]


def _strip_prefix(path: str) -> str:
    if not path.startswith(("a/", "b/")):
        raise PatchDoesNotApply(path, "expected an a/ or b/ prefix")
    return path[2:]


def _unquote(text: str) -> str:
    """A name as git writes it: C-quoted (octal bytes) when it holds unusual characters."""
    if not (len(text) >= 2 and text[0] == text[-1] == '"'):
        return text
    raw, body, i = bytearray(), text[1:-1], 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            raw += char.encode("utf-8", "surrogateescape")
            i += 1
        elif body[i + 1 : i + 2] in _C_ESCAPES:
            raw.append(_C_ESCAPES[body[i + 1]])
            i += 2
        elif re.fullmatch(r"[0-7]{3}", body[i + 1 : i + 4]):
            raw.append(int(body[i + 1 : i + 4], 8))
            i += 4
        else:
            raise PatchDoesNotApply(None, f"malformed quoted name {text!r}")
    return raw.decode("utf-8", "surrogateescape")


def _check_path(path: str) -> None:
    """Relative, normalised, outside `.git`, and free of control characters."""
    parts = path.split("/")
    if (
        path.startswith("/")
        or any(p in ("", ".", "..") or p.lower() == ".git" for p in parts)
        or any(ord(c) < 32 or c == "\x7f" for c in path)
    ):
        raise PatchDoesNotApply(path, "unsafe path")


# applying -----------------------------------------------------------------------------
def _apply_file(fp: _FilePatch, before: bytes) -> bytes:
    text = before.decode("utf-8", "surrogateescape")
    ends_with_newline = text.endswith("\n") or not text
    lines = [_escape(line) for line in text.split("\n")]
    if ends_with_newline:
        lines.pop()
    after = _apply_hunks(fp, lines) if fp.hunks else lines
    if fp.hunks:
        last = fp.hunks[-1]
        # the old side's last line: the hunk's own, or the one it inserts after
        at_end = last.old_start + last.old_len - (last.old_len > 0) == len(lines)
        if (last.old_cut or last.new_cut) and not at_end:
            raise PatchDoesNotApply(fp.name, "end of file marked mid-file", len(fp.hunks))
        if at_end and lines and last.old_cut == ends_with_newline:
            state = "with" if ends_with_newline else "without"
            raise PatchDoesNotApply(fp.name, f"the base ends {state} a newline", len(fp.hunks))
        ends_with_newline = not last.new_cut if at_end else ends_with_newline
    if fp.new_path is None and after:
        raise PatchDoesNotApply(fp.name, "the deletion leaves lines behind")
    content = "\n".join(_UNESCAPE.sub(lambda m: _SPECIAL[int(m[1])], x) for x in after)
    if after and ends_with_newline:
        content += "\n"
    try:
        data = content.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise PatchDoesNotApply(fp.name, "the patch holds characters that are not bytes") from None
    _check_blob(fp, 0, before)
    _check_blob(fp, 1, data)
    return data


def _apply_hunks(fp: _FilePatch, lines: list[str]) -> list[str]:
    """whatthepatch applies the hunks; each one's old and new lines are checked in place."""
    for number, hunk in enumerate(fp.hunks, 1):
        start = hunk.old_start - (hunk.old_len == 0)
        if lines[start - 1 : start - 1 + hunk.old_len] != [_escape(x) for x in hunk.old]:
            where = f"lines {start}-{start + hunk.old_len - 1}"
            raise PatchDoesNotApply(fp.name, f"{where} of the base differ from the hunk", number)
    try:
        diff = next(whatthepatch.parse_patch([_escape(line) for line in fp.lines]), None)
        after = whatthepatch.apply_diff(diff, lines) if diff and diff.changes else None
    except WhatThePatchException as exc:
        raise PatchDoesNotApply(fp.name, f"whatthepatch refused it: {exc}") from None
    if after is None:
        raise PatchDoesNotApply(fp.name, "whatthepatch found no hunk")
    for number, hunk in enumerate(fp.hunks, 1):
        landed = after[hunk.new_start - 1 : hunk.new_start - 1 + hunk.new_len]
        if landed != [_escape(x) for x in hunk.new]:
            raise PatchDoesNotApply(fp.name, "the hunk does not land where it says", number)
    return after


def _escape(line: str) -> str:
    return line.translate(_ESCAPE)


def _check_blob(fp: _FilePatch, side: int, data: bytes) -> None:
    """The `index` line names the blobs git saw before and after: ours must be the same."""
    wanted = fp.index[side] if fp.index else ""
    if wanted and set(wanted) != {"0"} and not blob_sha(data).startswith(wanted):
        which = "the base is not the content" if side == 0 else "the result is not the file"
        raise PatchDoesNotApply(fp.name, f"{which} git diffed (blob {wanted})")


def blob_sha(data: bytes) -> str:
    """The sha git gives `data` as a blob."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
