"""Findings as a pull request shows them, and the sticky comment that lists them.

A finding is shown masked (every text through `redact`), ranked worst first and named
by a short id that people type back (`/clarity fix CC-7K2M9Q`). The Markdown pieces
here keep any text inside GitHub's limits; `publish_render` builds the check run from
them. One comment per pull request, found again by its hidden marker and edited on
each push. Pure: data in, data out.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from scanner.model import Severity
from scanner.report.common import SEVERITY_ORDER
from scanner.secrets import redact

COMMENT_MARKER = "<!-- clarity-check:sticky -->"
COMMENT_LIMIT = 65_536  # characters; GitHub answers 422 "Body is too long" past it
TABLE = ("| id | severity | where | finding |", "| --- | --- | --- | --- |")
MORE = "…and {n} more on the build page."
TRUNCATED = "\n\n…(cut to fit GitHub's size limit: the full report is on the build page)\n"
VERDICTS = {"success": "Passing", "failure": "Failing", "neutral": "Neutral (not blocking)"}

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SHORT_PREFIX = "CC-"
SHORT_LENGTH = 6  # 30 bits: short to type, rarely shared among a few thousand findings
# Crockford's decoding: the letters people mistake for digits read as those digits.
_CONFUSABLE = str.maketrans({"I": "1", "L": "1", "O": "0"})
# A pipe, with the backslashes before it: one of them could escape the `\` that escapes it.
_PIPE = re.compile(r"(\\*)\|")


def short_id(fingerprint: str) -> str:
    """A short, stable id for a finding, such as `CC-7K2M9Q`, to type in `/clarity fix <id>`."""
    value = int.from_bytes(hashlib.sha256(fingerprint.encode()).digest()[:4], "big") >> 2
    digits = []
    for _ in range(SHORT_LENGTH):
        value, digit = divmod(value, 32)
        digits.append(CROCKFORD[digit])
    return SHORT_PREFIX + "".join(reversed(digits))


def resolve_short_id(short: str, fingerprints: Iterable[str]) -> str | None:
    """The fingerprint that `short` names, or None when none or several do.

    Case, spaces, hyphens and a missing `CC-` do not matter, and I, L and O read as
    1, 1 and 0. A full fingerprint is accepted too: the way round a rare shared id.
    """
    candidates = list(dict.fromkeys(fingerprints))
    if short.strip().lower() in candidates:
        return short.strip().lower()
    wanted = re.sub(r"[\s_-]", "", short).upper()
    prefix = SHORT_PREFIX.rstrip("-")
    if len(wanted) == SHORT_LENGTH + len(prefix) and wanted.startswith(prefix):
        wanted = wanted[len(prefix) :]
    wanted = SHORT_PREFIX + wanted.translate(_CONFUSABLE)
    matches = [f for f in candidates if short_id(f) == wanted]
    return matches[0] if len(matches) == 1 else None


@dataclass(frozen=True, slots=True)
class Comparison:
    """A head scan against its base: finding dicts shaped as in the JSON report."""

    new: Sequence[Mapping[str, Any]] = ()
    fixed: Sequence[Mapping[str, Any]] = ()
    persisting: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True, slots=True)
class ShownFinding:
    """A finding as it is shown: every text masked, a short id, a stable place in the order."""

    short: str
    severity: Severity
    rule_id: str
    title: str
    cwe: str
    path: str
    line: int
    end_line: int
    column: int
    end_column: int
    message: str
    evidence: str
    fix: str
    fingerprint: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.path else "(repository)"

    @property
    def order(self) -> tuple:
        return (-self.severity.rank, self.path, self.line, self.rule_id, self.fingerprint)


def show(finding: Mapping[str, Any], mask: Callable[[str], str] = redact) -> ShownFinding:
    """A report finding ready to render, masked again here whatever the scanner did."""

    def text(key: str) -> str:
        return mask(str(finding.get(key) or ""))

    line = int(finding.get("line") or 0)
    fingerprint = str(finding.get("fingerprint") or "")
    return ShownFinding(
        short=short_id(fingerprint),
        severity=Severity(finding.get("severity") or Severity.INFO),
        rule_id=text("rule_id"),
        title=text("title"),
        cwe=text("cwe"),
        path=text("path"),
        line=line,
        end_line=max(line, int(finding.get("end_line") or line)),
        column=int(finding.get("column") or 0),
        end_column=int(finding.get("end_column") or 0),
        message=text("message"),
        evidence=text("evidence"),
        fix=text("fix"),
        fingerprint=fingerprint,
    )


@dataclass(frozen=True, slots=True)
class Shown:
    """What a publication lists, each group worst first; without a base all is `persisting`."""

    new: tuple[ShownFinding, ...]
    persisting: tuple[ShownFinding, ...]
    fixed: tuple[ShownFinding, ...]
    compared: bool

    @classmethod
    def of(cls, report: Mapping[str, Any], comparison: Comparison | None) -> Shown:
        mask = cache(redact)  # titles, fixes and rule ids repeat: mask each text once

        def ranked(findings: Iterable[Mapping[str, Any]]) -> tuple[ShownFinding, ...]:
            return tuple(sorted((show(f, mask) for f in findings), key=lambda f: f.order))

        if comparison is None:
            return cls((), ranked(report.get("findings") or ()), (), compared=False)
        new, persisting = ranked(comparison.new), ranked(comparison.persisting)
        return cls(new, persisting, ranked(comparison.fixed), compared=True)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pipes_as_entities(text: str) -> str:
    """Outside code: `|` as `&#124;`, which no table splits on, its backslashes as `&#92;`."""
    return _PIPE.sub(lambda m: "&#92;" * len(m[1]) + "&#124;", text)


def _pipes_escaped(text: str) -> str:
    """In a code span, where an entity shows as typed: `\\|`, which GFM unescapes there too.

    A backslash before it would escape that backslash instead, so it is shown as `⧵`.
    """
    return _PIPE.sub(lambda m: "⧵" * len(m[1]) + "\\|", text)


def cell(text: str, limit: int = 200) -> str:
    """Text for Markdown (a table cell too): one line, clipped, no splitting pipe, no HTML."""
    parts = clip(" ".join(text.split()), limit).split("`")
    # Escape HTML outside code spans only: inside one, GitHub would show "&lt;" as it is.
    # Single backticks pair up in order; longer runs are rare, so they escape everything.
    spans = len(parts) - (len(parts) % 2 == 0) if "``" not in text else 0
    for index, part in enumerate(parts):
        if index % 2 == 0 or index >= spans:
            parts[index] = _pipes_as_entities(part).replace("<", "&lt;").replace(">", "&gt;")
        else:
            parts[index] = _pipes_escaped(part)
    return "`".join(parts)


def code(text: str, limit: int = 200) -> str:
    """Text as inline code (paths, evidence), safe in a table cell."""
    text = _pipes_escaped(clip(" ".join(text.split()), limit).replace("`", "ˋ"))
    return f"`{text}`" if text else ""


def link(url: str, label: str = "Open the build") -> str:
    """A Markdown link to an http(s) `url`, or nothing; characters that end a link escaped."""
    if not url.startswith(("https://", "http://")):
        return ""
    return f"[{label}](" + "".join(f"%{ord(c):02X}" if c in " ()<>[]`" else c for c in url) + ")"


def size(lines: Sequence[str]) -> int:
    return sum(len(line) + 1 for line in lines)


def bounded(text: str, limit: int) -> str:
    """`text`, or the whole lines of it that fit with a note saying it was cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - len(TRUNCATED)]
    return cut[: cut.rfind("\n") + 1 or len(cut)] + TRUNCATED


def section(
    frame: tuple[Sequence[str], Sequence[str]],
    rows: Sequence[str],
    budget: int,
    more: str,
    most: int | None = None,
) -> list[str]:
    """The opening of `frame`, the first `most` `rows` that fit in `budget`, a note, the closing.

    `more` is formatted with `n`, the number of rows left out; a row may span lines.
    Nothing at all when even the frame and the note do not fit.
    """
    opening, closing = frame
    used = size([*opening, *closing, "", more.format(n=len(rows))])
    kept: list[str] = []
    for row in rows[:most]:
        if used + len(row) + 1 > budget:
            break
        kept.append(row)
        used += len(row) + 1
    if used > budget:
        return []
    left = len(rows) - len(kept)
    return [*opening, *kept, *(["", more.format(n=left)] if left else []), *closing]


def severity_counts(findings: Sequence[ShownFinding], label: str = "") -> str:
    """Such as "2 critical, 1 high" (`label` before each severity), worst first."""
    counts = [(s, sum(1 for f in findings if f.severity is s)) for s in SEVERITY_ORDER]
    return ", ".join(f"{n} {label}{s}" for s, n in counts if n)


def verdict_label(conclusion: str) -> str:
    return VERDICTS.get(conclusion, conclusion.replace("_", " ").capitalize())


def score_of(report: Mapping[str, Any]) -> str:
    overall = (report.get("score") or {}).get("overall")
    return f"{overall}/100" if overall is not None else "unknown"


class CommentMode(StrEnum):
    """`comment:` in `.clarity.yml`."""

    ALWAYS = "always"
    ON_FINDINGS = "on-findings"
    NEVER = "never"


def is_sticky(body: str) -> bool:
    """Whether `body` is the sticky comment. Anyone can type the marker: check the author too."""
    return body.lstrip().startswith(COMMENT_MARKER)


def should_comment(
    mode: CommentMode | str, comparison: Comparison | None, existing_comment: bool
) -> bool:
    """Whether to post (or edit) the sticky comment for this push.

    `on-findings` comments while there are new or persisting findings, and always
    edits a comment that exists: the push may have fixed what it lists, and a stale
    list is worse than none. A clean pull request without a comment gets none.
    """
    mode = CommentMode(mode)
    if mode is not CommentMode.ON_FINDINGS:
        return mode is CommentMode.ALWAYS
    if existing_comment:
        return True
    return comparison is not None and bool(comparison.new or comparison.persisting)


def _row(finding: ShownFinding) -> str:
    cells = (code(finding.short), str(finding.severity), code(finding.where), cell(finding.title))
    return "| " + " | ".join(cells) + " |"


def _since(since: str | None) -> str:
    if since is None:
        return "On this pull request"
    label = since[:7] if re.fullmatch(r"[0-9a-fA-F]{40,64}", since) else since
    return f"Since {code(redact(label), 40)}"


def _collapsed(summary: str, findings: tuple[ShownFinding, ...], budget: int) -> list[str]:
    opening = ["", f"<details><summary>{summary}</summary>", "", *TABLE]
    return section((opening, ["", "</details>"]), [_row(f) for f in findings], budget, MORE)


def sticky_comment(
    report: Mapping[str, Any],
    comparison: Comparison | None,
    *,
    conclusion: str,
    build_url: str,
    since: str | None,
) -> str:
    """The sticky comment's body: marker, headline, what changed, new findings, commands.

    `since` is the commit the previous comment was about (None on the first push).
    """
    shown = Shown.of(report, comparison)
    head = [
        COMMENT_MARKER,
        f"### Clarity Check: health {score_of(report)}, {verdict_label(conclusion).lower()}",
        "",
    ]
    if shown.compared:
        counts = (len(shown.new), len(shown.fixed), len(shown.persisting))
        head.append("{}: **{} new**, **{} fixed**, {} persisting.".format(_since(since), *counts))
    else:
        found = shown.persisting
        head.append(
            f"**{len(found)} findings**" + (f": {severity_counts(found)}." if found else ".")
        )
    commands = (
        "Comment `/clarity fix <id>` for a fix, `/clarity ignore <id> <reason>` to ignore a "
        "finding, or `/clarity deep-scan` for a deeper scan."
    )
    footer = ["", "---", f"<sub>{commands} {link(build_url)}</sub>"]
    budget = COMMENT_LIMIT - size(head) - size(footer)
    listed = shown.new if shown.compared else shown.persisting
    body: list[str] = []
    if listed:
        opening = ["", "#### New findings" if shown.compared else "#### Findings", "", *TABLE]
        body += section((opening, []), [_row(f) for f in listed], budget, MORE)
    elif shown.compared:
        body += ["", "No new findings."]
    if shown.compared and shown.persisting:
        summary = f"{len(shown.persisting)} persisting findings"
        body += _collapsed(summary, shown.persisting, budget - size(body))
    if shown.fixed:
        body += _collapsed(f"{len(shown.fixed)} fixed", shown.fixed, budget - size(body))
    return bounded("\n".join([*head, *body, *footer]) + "\n", COMMENT_LIMIT)
