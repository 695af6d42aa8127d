"""The fault, fuzz and load suite's report: figures recorded by the tests, written as Markdown.

Tests of the suite are marked `chaos` and take the `chaos` fixture:

    chaos.record("Crash and restart", "duplicate check runs", 0, target="0", ok=True)

At the end of the session the figures are written, grouped by section, to
`$CLARITY_CHAOS_REPORT` when it is set (`make chaos` sets `docs/chaos-report.md`),
else to `chaos-report.md` in `$CLARITY_TEST_ARTEFACTS` or pytest's cache directory
(`.pytest_cache/d/chaos`). `CLARITY_CHAOS_SCALE=full` runs the suite at the issue's full size;
the default, `ci`, is the bounded form the test command runs.
"""

from __future__ import annotations

import os
import platform
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPORT_VARIABLE = "CLARITY_CHAOS_REPORT"
SCALE_VARIABLE = "CLARITY_CHAOS_SCALE"
SCALES = ("ci", "full")


def scale() -> str:
    """`full` for `make chaos`, `ci` (bounded) otherwise."""
    value = os.environ.get(SCALE_VARIABLE, "ci").strip().lower() or "ci"
    if value not in SCALES:
        raise ValueError(f"{SCALE_VARIABLE} must be one of {', '.join(SCALES)}, not {value!r}")
    return value


def sized(ci: int | float, full: int | float) -> int | float:
    """The bounded size in the test command, the issue's size under `make chaos`."""
    return full if scale() == "full" else ci


@dataclass(frozen=True)
class Figure:
    section: str
    name: str
    value: str
    target: str = ""
    ok: bool | None = None
    test: str = ""


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    modules: dict[str, list[str]] = field(default_factory=dict)  # section -> test modules
    current_test: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(
        self,
        section: str,
        name: str,
        value: object,
        *,
        target: str = "",
        ok: bool | None = None,
    ) -> None:
        """One figure of `section`; `ok` says whether it met `target` (None: no target)."""
        text = f"{value:.3g}" if isinstance(value, float) else str(value)
        with self._lock:
            self.figures.append(Figure(section, name, text, target, ok, self.current_test))
            module = self.current_test.split("::", 1)[0] or "tests"
            if module not in self.modules.setdefault(section, []):
                self.modules[section].append(module)

    def markdown(self) -> str:
        lines = [
            "# Fault, fuzz and load report",
            "",
            f"Written by the suite on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, scale `{scale()}`, "
            f"commit `{_commit()}`, {os.cpu_count()} cores, Python {platform.python_version()}.",
            "Every section names the command that reproduces it; `make chaos` runs them all "
            "at full size (`CLARITY_CHAOS_SCALE=full`).",
            "",
        ]
        sections: dict[str, list[Figure]] = {}
        for figure in self.figures:
            sections.setdefault(figure.section, []).append(figure)
        for section, figures in sections.items():
            lines += [f"## {section}", "", f"    {reproduce(self.modules[section])}", ""]
            lines += ["| figure | value | target | |", "|---|---|---|---|"]
            for figure in figures:
                mark = {True: "✓", False: "✗", None: ""}[figure.ok]
                lines.append(f"| {figure.name} | {figure.value} | {figure.target} | {mark} |")
            lines.append("")
        failed = [figure for figure in self.figures if figure.ok is False]
        lines.append(
            f"**{len(self.figures)} figures, {len(failed)} outside their target.**"
            if self.figures
            else "No figures were recorded."
        )
        return "\n".join(lines) + "\n"

    def write(self, default_directory: Path) -> Path | None:
        if not self.figures:
            return None
        target = os.environ.get(REPORT_VARIABLE)
        path = Path(target) if target else default_directory / "chaos-report.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.markdown(), encoding="utf-8")
        return path


def reproduce(modules: list[str]) -> str:
    """The command that re-runs the test modules at the current scale."""
    prefix = "CLARITY_CHAOS_SCALE=full " if scale() == "full" else ""
    return f"{prefix}.venv/bin/python -m pytest {' '.join(modules)}"


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
