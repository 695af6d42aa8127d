"""The repository's own tests before and after a fix: which command, one run, what newly fails.

Detecting the command and comparing two runs are pure; `detect_in` and
`run_tests` are thin adapters over a `Sandbox`. Everything fails closed: a run
whose results cannot be read counts as not run, and the test gate then blocks.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import re
import shlex
import tomllib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from orchestrator.sandbox.base import Sandbox, SandboxError
from policies.gates import GateDecision, test_gate
from policies.pack import Pack

DEFAULT_TIMEOUT = 600.0
TAIL_CHARS = 3000
NPM_PLACEHOLDER = "no test specified"  # npm init's default `test` script, which only fails
PYTEST = ("python3", "-m", "pytest")  # `-m` puts the workspace on sys.path, as apps expect
PYTEST_OPTIONS = ("-q", "-p", "no:cacheprovider")
# Non-interactive runners (no watch mode), and no bytecode or notices left in the workspace.
RUN_ENV = {"CI": "true", "PYTHONDONTWRITEBYTECODE": "1", "npm_config_update_notifier": "false"}
RUNNER_MISSING = (126, 127)  # the shell could not find or execute the test runner
REPORT_DIR = ".git"  # every sandbox keeps its snapshot there, and `diff` never shows it
READ_MANIFESTS = ("package.json", "pyproject.toml", "setup.cfg", "tox.ini")
TEST_DIRS = ("tests", "test")
SKIPPED_DIRS = frozenset({"node_modules", ".git", ".venv", "venv", "site-packages"})
SEARCH_DEPTH = 3  # how deep `detect_in` looks under a tests directory for Python
_INI_SECTION = {"setup.cfg": "tool:pytest", "tox.ini": "pytest"}


class Runner(StrEnum):
    PYTEST = "pytest"
    NODE = "node"


class Outcome(StrEnum):
    PASSED = "passed"
    SKIPPED = "skipped"
    FAILED = "failed"
    ERROR = "error"


_WORSE = {Outcome.PASSED: 0, Outcome.SKIPPED: 1, Outcome.FAILED: 2, Outcome.ERROR: 3}


class Verdict(StrEnum):
    NO_TESTS = "no_tests"  # no test command: the repository has no tests to break
    NO_BASELINE = "no_baseline"  # before the fix nothing was read, or nothing passed
    NOT_READ = "not_read"  # after the fix the results could not be read
    COMPARED = "compared"


class JUnitReportError(ValueError):
    """A JUnit XML report that is not well-formed, not JUnit, or refused as hostile XML."""


@dataclass(frozen=True, slots=True)
class TestCommand:
    """How to run the tests: an argv run in the workspace, by which runner, for how long."""

    __test__ = False  # a command, not a pytest test class

    runner: Runner
    argv: tuple[str, ...]
    timeout: float = DEFAULT_TIMEOUT

    @property
    def line(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True, slots=True)
class TestRun:
    """One run of the tests; `ran` means its results were read, and only then do they count."""

    __test__ = False

    command: TestCommand
    ran: bool
    exit_code: int
    outcomes: Mapping[str, Outcome] = field(default_factory=dict)  # test id -> outcome
    output_tail: str = ""
    timed_out: bool = False
    problem: str = ""  # why the results could not be read

    def count(self, outcome: Outcome) -> int:
        return sum(1 for value in self.outcomes.values() if value is outcome)

    @property
    def passed(self) -> frozenset[str]:
        return frozenset(test for test, value in self.outcomes.items() if value is Outcome.PASSED)


@dataclass(frozen=True, slots=True)
class Comparison:
    """What the runs before and after a fix say, in the terms the test gate takes."""

    verdict: Verdict
    reason: str
    new_failures: tuple[str, ...] = ()

    @property
    def gate_failures(self) -> int | None:
        """`test_gate`'s argument: `None` (blocks) when there is nothing to compare against."""
        if self.verdict is Verdict.NO_TESTS:
            return 0
        if self.verdict is Verdict.COMPARED:
            return len(self.new_failures)
        return None


# -- detection -------------------------------------------------------------------------


def detect(files: Mapping[str, bytes]) -> TestCommand | None:
    """The test command a repository declares, or `None` when it has no tests.

    `files` maps workspace-relative paths to contents; only package.json,
    pyproject.toml, setup.cfg and tox.ini are read, other paths count by name.
    A package.json `test` script wins over pytest. A package.json that is not
    JSON still gets `npm test`: npm reports the problem and the gate has no
    baseline, rather than the repository passing as one without tests.
    """
    return _node_command(files) or _pytest_command(files)


def _node_command(files: Mapping[str, bytes]) -> TestCommand | None:
    if "package.json" not in files:
        return None
    try:
        manifest = json.loads(files["package.json"])
    except ValueError:
        return TestCommand(Runner.NODE, ("npm", "test"))
    scripts = manifest.get("scripts") if isinstance(manifest, dict) else None
    script = scripts.get("test") if isinstance(scripts, dict) else None
    if not isinstance(script, str) or not script.strip() or NPM_PLACEHOLDER in script:
        return None
    if "pnpm-lock.yaml" in files:
        manager = "pnpm"
    elif "yarn.lock" in files:
        manager = "yarn"
    else:
        manager = "npm"
    return TestCommand(Runner.NODE, (manager, "test"))


def _pytest_command(files: Mapping[str, bytes]) -> TestCommand | None:
    if _configures_pytest(files) or any(_is_python_test(path) for path in files):
        return TestCommand(Runner.PYTEST, PYTEST)
    return None


def _configures_pytest(files: Mapping[str, bytes]) -> bool:
    if "pytest.ini" in files:
        return True
    if "pyproject.toml" in files:
        text = files["pyproject.toml"].decode("utf-8", "replace")
        try:
            tool = tomllib.loads(text).get("tool", {})
        except tomllib.TOMLDecodeError:
            return "[tool.pytest" in text
        if isinstance(tool, dict) and "pytest" in tool:
            return True
    for name, section in _INI_SECTION.items():
        text = files.get(name, b"").decode("utf-8", "replace")
        if re.search(rf"^\s*\[{re.escape(section)}\]\s*$", text, re.MULTILINE):
            return True
    return False


def _is_python_test(path: str) -> bool:
    parts = path.split("/")
    if SKIPPED_DIRS.intersection(parts) or not path.endswith(".py"):
        return False
    name = parts[-1]
    return (
        parts[0] in TEST_DIRS
        or name == "conftest.py"
        or name.startswith("test_")
        or name.endswith("_test.py")
    )


async def detect_in(sandbox: Sandbox) -> TestCommand | None:
    """`detect` on the workspace: reads the top level, a few manifests and the tests folders."""
    files: dict[str, bytes] = {}
    for info in await sandbox.list_files("."):
        if info.is_dir:
            if info.path in TEST_DIRS:
                files |= dict.fromkeys(await _python_files(sandbox, info.path), b"")
        elif info.path in READ_MANIFESTS:
            files[info.path] = await sandbox.read_file(info.path)
        else:
            files[info.path] = b""
    return detect(files)


async def _python_files(sandbox: Sandbox, top: str) -> list[str]:
    """The first Python file found under `top`, breadth first (one is enough to decide)."""
    level = [top]
    for _ in range(SEARCH_DEPTH):
        below: list[str] = []
        for directory in level:
            for info in await sandbox.list_files(directory):
                if not info.is_dir and info.path.endswith(".py"):
                    return [info.path]
                if info.is_dir and posixpath.basename(info.path) not in SKIPPED_DIRS:
                    below.append(info.path)
        level = below
    return []


# -- running ---------------------------------------------------------------------------


async def run_tests(sandbox: Sandbox, command: TestCommand) -> TestRun:
    """Run `command` in the workspace and read per-test outcomes.

    pytest writes a JUnit XML report, read back and parsed per test. A node run
    is judged by its exit code only: one test named after the command (runners
    differ too much in how they report), and "not run" when the shell could not
    find the runner (126/127, e.g. no node_modules). A run that timed out counts
    as not run.
    """
    if command.runner is Runner.PYTEST:
        return await _run_pytest(sandbox, command)
    result = await sandbox.exec(list(command.argv), timeout=command.timeout, env=RUN_ENV)
    tail = _tail(result.stdout, result.stderr)
    if result.timed_out:
        return _timed_out(command, result.exit_code, tail)
    if result.exit_code in RUNNER_MISSING:
        problem = f"the test runner could not be started (exit code {result.exit_code})"
        return TestRun(command, False, result.exit_code, output_tail=tail, problem=problem)
    outcome = Outcome.PASSED if result.exit_code == 0 else Outcome.FAILED
    return TestRun(command, True, result.exit_code, {command.line: outcome}, tail)


async def _run_pytest(sandbox: Sandbox, command: TestCommand) -> TestRun:
    # A fresh name per run, so a report left by an earlier run is never read as this one's.
    report = f"{REPORT_DIR}/clarity-junit-{uuid.uuid4().hex}.xml"
    junit = f"--junitxml={posixpath.join(sandbox.workspace, report)}"
    argv = [*command.argv, junit, *PYTEST_OPTIONS]
    try:
        result = await sandbox.exec(argv, timeout=command.timeout, env=RUN_ENV)
        tail = _tail(result.stdout, result.stderr)
        if result.timed_out:
            return _timed_out(command, result.exit_code, tail)
        try:
            outcomes = parse_junit(await sandbox.read_file(report))
        except SandboxError as error:
            problem = f"pytest wrote no readable report: {error}"
            return TestRun(command, False, result.exit_code, output_tail=tail, problem=problem)
        except JUnitReportError as error:
            problem = f"pytest's report could not be read: {error}"
            return TestRun(command, False, result.exit_code, output_tail=tail, problem=problem)
        return TestRun(command, True, result.exit_code, outcomes, tail)
    finally:
        # Housekeeping only: a report left behind is never read again, nor shown by `diff`.
        with contextlib.suppress(SandboxError):
            await sandbox.exec(["rm", "-f", "--", report], timeout=30)


def _timed_out(command: TestCommand, exit_code: int, tail: str) -> TestRun:
    problem = f"the tests did not finish within {command.timeout:g} s"
    return TestRun(command, False, exit_code, output_tail=tail, timed_out=True, problem=problem)


def _tail(stdout: str, stderr: str) -> str:
    return "\n".join(part for part in (stdout, stderr) if part)[-TAIL_CHARS:]


def parse_junit(data: bytes) -> dict[str, Outcome]:
    """Per-test outcomes keyed `classname::name`; a test reported twice keeps its worst outcome."""
    try:
        root = fromstring(data)
    except (ParseError, DefusedXmlException) as error:
        raise JUnitReportError(str(error) or type(error).__name__) from None
    if root.tag not in ("testsuites", "testsuite"):
        raise JUnitReportError(f"the root element is <{root.tag}>, not <testsuites>")
    outcomes: dict[str, Outcome] = {}
    for case in root.iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        test = f"{classname}::{name}" if classname else name
        outcome = _case_outcome(child.tag for child in case)
        if test not in outcomes or _WORSE[outcome] > _WORSE[outcomes[test]]:
            outcomes[test] = outcome
    return outcomes


def _case_outcome(tags: Iterable[str]) -> Outcome:
    found = {Outcome.PASSED}
    for tag in tags:
        if tag == "error":
            found.add(Outcome.ERROR)
        elif tag == "failure":
            found.add(Outcome.FAILED)
        elif tag == "skipped":
            found.add(Outcome.SKIPPED)
    return max(found, key=_WORSE.__getitem__)


# -- comparison ------------------------------------------------------------------------


def new_failures(before: TestRun, after: TestRun) -> list[str]:
    """Tests that passed before and do not pass now: failed, errored, skipped or missing."""
    return sorted(test for test in before.passed if after.outcomes.get(test) is not Outcome.PASSED)


def compare(before: TestRun | None, after: TestRun | None) -> Comparison:
    """The verdict on two runs of the same command; `None` runs mean no command was detected."""
    if before is None:
        return Comparison(Verdict.NO_TESTS, "the repository has no tests to break")
    if not before.ran:
        why = before.problem or "the tests did not run"
        return Comparison(Verdict.NO_BASELINE, f"before the fix: {why}")
    if not before.passed:
        return Comparison(Verdict.NO_BASELINE, "no test passed before the fix")
    if after is None or not after.ran:
        why = after.problem if after is not None and after.problem else "the tests did not run"
        return Comparison(Verdict.NOT_READ, f"after the fix: {why}")
    failures = tuple(new_failures(before, after))
    reason = f"{len(failures)} test(s) newly fail" if failures else "no test newly fails"
    return Comparison(Verdict.COMPARED, reason, failures)


def gate_decision(pack: Pack, comparison: Comparison) -> GateDecision:
    """`policies.gates.test_gate` on a comparison, saying so when there were no tests."""
    decision = test_gate(pack, comparison.gate_failures)
    if comparison.verdict is Verdict.NO_TESTS and pack.gates.tests.no_new_failures:
        return replace(decision, reason=comparison.reason)
    return decision


def test_evidence(before: TestRun | None, after: TestRun | None) -> dict[str, Any]:
    """JSON-ready evidence of the test gate: the command, each run's counts, what newly fails."""
    comparison = compare(before, after)
    run = before if before is not None else after
    command = run.command if run is not None else None
    return {
        "verdict": comparison.verdict.value,
        "reason": comparison.reason,
        "command": command.line if command else None,
        "runner": command.runner.value if command else None,
        "before": _run_evidence(before),
        "after": _run_evidence(after),
        "new_failures": list(comparison.new_failures),
    }


test_evidence.__test__ = False  # type: ignore[attr-defined]  # evidence, not a pytest test


def _run_evidence(run: TestRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "ran": run.ran,
        "exit_code": run.exit_code,
        "timed_out": run.timed_out,
        "problem": run.problem,
        "counts": {outcome.value: run.count(outcome) for outcome in Outcome},
        "output_tail": run.output_tail,
    }
