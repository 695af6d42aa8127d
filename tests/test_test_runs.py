"""The repository's own tests before and after a fix: detection, real runs in a LocalSandbox, the gate."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import shutil
import sys
import tempfile
import time
import venv
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator.sandbox.base import ArchiveSource, Sandbox, open_sandbox
from orchestrator.sandbox.local import LocalSandboxProvider
from orchestrator.test_runs import (
    PYTEST,
    Comparison,
    JUnitReportError,
    Outcome,
    Runner,
    TestCommand,
    TestRun,
    Verdict,
    compare,
    detect,
    detect_in,
    gate_decision,
    new_failures,
    parse_junit,
    run_tests,
    test_evidence,
)
from policies import load_pack
from tests.sandbox_contract import SPEC, github_tarball

DEFAULT = load_pack("default")
PYTEST_RUN = TestCommand(Runner.PYTEST, PYTEST, timeout=60)
# pytest and what it imports, copied into a toolchain the sandbox can see.
PYTEST_DISTRIBUTIONS = ("pytest", "pluggy", "iniconfig", "packaging", "pygments")

APP = b"def add(a, b):\n    return a + b\n"
BROKEN_APP = b"def add(a, b):\n    return a - b\n"
TESTS = b"""\
import pytest

from app import add


@pytest.fixture
def database():
    raise RuntimeError("no database here")


def test_adds():
    assert add(2, 2) == 4


def test_known_bug():
    assert add(2, 2) == 5


@pytest.mark.skip(reason="not yet")
def test_later():
    pass


def test_needs_database(database):
    pass
"""
REPO = {"app.py": APP, "tests/test_app.py": TESTS}
EXPECTED = {
    "tests.test_app::test_adds": Outcome.PASSED,
    "tests.test_app::test_known_bug": Outcome.FAILED,
    "tests.test_app::test_later": Outcome.SKIPPED,
    "tests.test_app::test_needs_database": Outcome.ERROR,
}


def package_json(test_script: str | None) -> bytes:
    scripts = {} if test_script is None else {"test": test_script}
    return json.dumps({"name": "app", "scripts": scripts}).encode()


def run(outcomes: dict[str, Outcome], *, ran: bool = True, problem: str = "") -> TestRun:
    return TestRun(PYTEST_RUN, ran, 0 if ran else 1, outcomes, problem=problem)


@pytest.fixture(scope="module")
def pytest_toolchain() -> Iterator[Path]:
    """A Python install prefix holding pytest, for the provider's `toolchains`.

    The sandbox binds only the worker's base interpreter (never its virtual
    environment), which has no pytest, and has no network to install it: a host
    that runs Python repositories' tests provides such a toolchain.
    """
    # Not under /tmp, which every sandbox replaces with its own; searchable by the sandbox's
    # identity, so the provider binds it directly instead of mounting a view of it.
    prefix = Path(tempfile.mkdtemp(prefix="clarity-pytest-", dir="/var/tmp"))
    prefix.chmod(0o755)
    venv.create(prefix, symlinks=True, with_pip=False)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site_packages = prefix / "lib" / version / "site-packages"
    for name in PYTEST_DISTRIBUTIONS:
        distribution = importlib.metadata.distribution(name)
        for file in distribution.files or ():
            if file.parts[0] != "..":  # scripts outside site-packages are not needed
                target = site_packages / file
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(str(distribution.locate_file(file))), target)
    try:
        yield prefix
    finally:
        shutil.rmtree(prefix)


@pytest.fixture
async def provider(pytest_toolchain: Path) -> AsyncIterator[LocalSandboxProvider]:
    root = Path(tempfile.mkdtemp(prefix="clarity-sandboxes-test-"))
    try:
        yield LocalSandboxProvider(root, toolchains=[str(pytest_toolchain)])
    finally:
        await LocalSandboxProvider(root).reap(older_than=timedelta(0))
        shutil.rmtree(root)


@asynccontextmanager
async def repository(
    provider: LocalSandboxProvider, files: dict[str, bytes], *, toolchain: Path | None
) -> AsyncIterator[Sandbox]:
    """A sandbox holding `files` (the provider's toolchains come first on PATH)."""
    env = dict(SPEC.env)
    if toolchain is not None:
        env["PATH"] = f"{toolchain}/bin:{provider.layout.path}"
    spec = dataclasses.replace(SPEC, env=env)
    async with open_sandbox(provider, spec, ArchiveSource(github_tarball(files))) as sandbox:
        yield sandbox


# -- detection -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "argv"),
    [
        ({"package.json": package_json("jest")}, ("npm", "test")),
        ({"package.json": package_json("vitest run"), "package-lock.json": b"{}"}, ("npm", "test")),
        ({"package.json": package_json("vitest run"), "pnpm-lock.yaml": b""}, ("pnpm", "test")),
        ({"package.json": package_json("jest"), "yarn.lock": b""}, ("yarn", "test")),
        ({"package.json": b"{not json"}, ("npm", "test")),
        ({"package.json": package_json('echo "Error: no test specified" && exit 1')}, None),
        ({"package.json": package_json(None)}, None),
        ({"package.json": package_json("  ")}, None),
        ({"pyproject.toml": b"[tool.pytest.ini_options]\naddopts = '-ra'\n"}, PYTEST),
        ({"pyproject.toml": b"[project]\nname = 'app'\n"}, None),
        ({"pyproject.toml": b"[tool.pytest.ini_options\nbroken"}, PYTEST),
        ({"setup.cfg": b"[metadata]\nname = app\n\n[tool:pytest]\ntestpaths = tests\n"}, PYTEST),
        ({"setup.cfg": b"[metadata]\nname = app\n"}, None),
        ({"pytest.ini": b""}, PYTEST),
        ({"tox.ini": b"[tox]\nenvlist = py312\n\n[pytest]\naddopts = -q\n"}, PYTEST),
        ({"tox.ini": b"[tox]\nenvlist = py312\n"}, None),
        ({"tests/test_app.py": b""}, PYTEST),
        ({"tests/unit/helpers.py": b""}, PYTEST),
        ({"test_app.py": b""}, PYTEST),
        ({"src/app/models_test.py": b""}, PYTEST),
        ({"conftest.py": b""}, PYTEST),
        ({"tests/app.test.js": b"", "README.md": b""}, None),
        ({"node_modules/lib/test_lib.py": b""}, None),
        ({"package.json": package_json("no test specified"), "tests/test_app.py": b""}, PYTEST),
        ({"package.json": package_json("jest"), "tests/test_api.py": b""}, ("npm", "test")),
        ({"README.md": b"# app\n", "app.py": b""}, None),
        ({}, None),
    ],
)
def test_detect_finds_the_test_command_a_repository_declares(files, argv):
    command = detect(files)
    assert (command.argv if command else None) == argv
    if command is not None:
        assert command.runner is (Runner.PYTEST if argv == PYTEST else Runner.NODE)


@pytest.mark.parametrize(
    ("files", "argv"),
    [
        ({"app.py": APP, "tests/unit/api/test_api.py": b""}, PYTEST),
        ({"package.json": package_json("vitest run"), "pnpm-lock.yaml": b""}, ("pnpm", "test")),
        ({"package.json": package_json("no test specified"), "index.js": b""}, None),
        ({"app.py": APP, "tests/fixtures/data.json": b"{}"}, None),
    ],
)
async def test_detect_in_reads_the_manifests_of_the_workspace(provider, files, argv):
    async with repository(provider, files, toolchain=None) as sandbox:
        command = await detect_in(sandbox)
    assert (command.argv if command else None) == argv


# -- real runs -------------------------------------------------------------------------


async def test_pytest_run_reads_each_tests_outcome(provider, pytest_toolchain):
    async with repository(provider, REPO, toolchain=pytest_toolchain) as sandbox:
        assert await detect_in(sandbox) == TestCommand(Runner.PYTEST, PYTEST)
        result = await run_tests(sandbox, PYTEST_RUN)
        left_behind = await sandbox.diff()
    assert result.ran and not result.timed_out
    assert result.outcomes == EXPECTED
    assert result.exit_code == 1
    assert "1 failed, 1 passed, 1 skipped, 1 error" in result.output_tail
    # No report, cache or bytecode stays in the workspace to become part of a fix.
    assert left_behind == ""


async def test_a_change_that_breaks_a_passing_test_is_a_new_failure(provider, pytest_toolchain):
    async with repository(provider, REPO, toolchain=pytest_toolchain) as sandbox:
        before = await run_tests(sandbox, PYTEST_RUN)
        await sandbox.write_file("app.py", BROKEN_APP)
        after = await run_tests(sandbox, PYTEST_RUN)
    assert new_failures(before, after) == ["tests.test_app::test_adds"]
    comparison = compare(before, after)
    assert comparison == Comparison(
        Verdict.COMPARED, "1 test(s) newly fail", ("tests.test_app::test_adds",)
    )
    assert not gate_decision(DEFAULT, comparison).passed


async def test_a_change_that_keeps_passing_tests_passing_passes_the_gate(
    provider, pytest_toolchain
):
    fixed = TESTS.replace(b"== 5", b"== 4")
    async with repository(provider, REPO, toolchain=pytest_toolchain) as sandbox:
        before = await run_tests(sandbox, PYTEST_RUN)
        await sandbox.write_file("tests/test_app.py", fixed)
        after = await run_tests(sandbox, PYTEST_RUN)
    assert after.outcomes["tests.test_app::test_known_bug"] is Outcome.PASSED
    assert new_failures(before, after) == []
    assert gate_decision(DEFAULT, compare(before, after)).passed


async def test_a_fix_that_stops_the_tests_importing_reports_every_passing_test(
    provider, pytest_toolchain
):
    async with repository(provider, REPO, toolchain=pytest_toolchain) as sandbox:
        before = await run_tests(sandbox, PYTEST_RUN)
        await sandbox.write_file("app.py", b"def add(a, b)\n")
        after = await run_tests(sandbox, PYTEST_RUN)
    assert after.ran
    assert new_failures(before, after) == ["tests.test_app::test_adds"]


@pytest.mark.parametrize(
    ("script", "problem"),
    [
        ("pass", "pytest wrote no readable report"),
        (
            "import sys; open(sys.argv[1].partition('=')[2], 'w').write('<testsuites><testcase')",
            "pytest's report could not be read",
        ),
        (
            "import sys; open(sys.argv[1].partition('=')[2], 'w').write('<html></html>')",
            "pytest's report could not be read",
        ),
    ],
    ids=["missing", "truncated", "not-junit"],
)
async def test_a_run_whose_report_cannot_be_read_did_not_run_and_blocks(
    provider, pytest_toolchain, script, problem
):
    command = TestCommand(Runner.PYTEST, ("python3", "-c", script), timeout=60)
    async with repository(provider, REPO, toolchain=pytest_toolchain) as sandbox:
        before = await run_tests(sandbox, PYTEST_RUN)
        after = await run_tests(sandbox, command)
    assert after.exit_code == 0
    assert not after.ran and after.outcomes == {}
    assert after.problem.startswith(problem)
    assert compare(before, after).verdict is Verdict.NOT_READ
    assert compare(after, before).verdict is Verdict.NO_BASELINE
    assert not gate_decision(DEFAULT, compare(before, after)).passed


async def test_a_sandbox_without_pytest_blocks_rather_than_passing():
    root = Path(tempfile.mkdtemp(prefix="clarity-sandboxes-test-"))
    bare = LocalSandboxProvider(root)  # only the worker's own interpreter: no pytest in it
    try:
        async with repository(bare, REPO, toolchain=None) as sandbox:
            result = await run_tests(sandbox, PYTEST_RUN)
    finally:
        await bare.reap(older_than=timedelta(0))
        shutil.rmtree(root)
    assert not result.ran
    assert "No module named pytest" in result.output_tail
    assert compare(result, result).gate_failures is None


async def test_a_run_that_times_out_did_not_run(provider, pytest_toolchain):
    slow = {**REPO, "tests/test_slow.py": b"import time\n\ndef test_slow():\n    time.sleep(60)\n"}
    command = dataclasses.replace(PYTEST_RUN, timeout=3)
    async with repository(provider, slow, toolchain=pytest_toolchain) as sandbox:
        started = time.monotonic()
        result = await run_tests(sandbox, command)
        elapsed = time.monotonic() - started
    assert elapsed < 30
    assert result.timed_out and not result.ran
    assert result.problem == "the tests did not finish within 3 s"
    assert compare(result, result).verdict is Verdict.NO_BASELINE


@pytest.mark.parametrize(
    ("script", "ran", "outcomes"),
    [
        ("node --version", True, {"npm test": Outcome.PASSED}),
        ("node -e 'process.exit(3)'", True, {"npm test": Outcome.FAILED}),
        ("jest", False, {}),  # no node_modules in the sandbox: the runner is not found
    ],
)
async def test_node_runs_count_as_one_test_judged_by_exit_code(provider, script, ran, outcomes):
    async with repository(provider, {"package.json": package_json(script)}, toolchain=None) as box:
        command = await detect_in(box)
        assert command is not None
        result = await run_tests(box, command)
    assert result.ran is ran
    assert result.outcomes == outcomes


# -- reading reports and comparing -----------------------------------------------------


def test_parse_junit_keeps_the_worst_outcome_of_a_test_reported_twice():
    report = b"""<?xml version="1.0"?>
<testsuite name="pytest">
  <testcase classname="tests.test_db" name="test_query"/>
  <testcase classname="tests.test_db" name="test_query"><error message="teardown"/></testcase>
  <testcase classname="" name="tests.test_broken"><error message="collection failure"/></testcase>
  <testcase classname="tests.test_db.TestPool" name="test_size[2]"><skipped/></testcase>
</testsuite>"""
    assert parse_junit(report) == {
        "tests.test_db::test_query": Outcome.ERROR,
        "tests.test_broken": Outcome.ERROR,
        "tests.test_db.TestPool::test_size[2]": Outcome.SKIPPED,
    }


def test_parse_junit_refuses_entities():
    report = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>
<testsuites><testcase classname="t" name="&b;"/></testsuites>"""
    with pytest.raises(JUnitReportError):
        parse_junit(report)


def test_a_passing_test_that_is_skipped_or_missing_afterwards_is_a_new_failure():
    before = run({"t::a": Outcome.PASSED, "t::b": Outcome.PASSED, "t::c": Outcome.PASSED})
    after = run({"t::a": Outcome.PASSED, "t::b": Outcome.SKIPPED})
    assert new_failures(before, after) == ["t::b", "t::c"]


def test_tests_that_failed_before_do_not_count_against_the_fix():
    before = run({"t::a": Outcome.PASSED, "t::b": Outcome.FAILED, "t::c": Outcome.ERROR})
    after = run({"t::a": Outcome.PASSED, "t::b": Outcome.FAILED})
    assert compare(before, after) == Comparison(Verdict.COMPARED, "no test newly fails")


@pytest.mark.parametrize(
    ("before", "after", "verdict"),
    [
        (None, None, Verdict.NO_TESTS),
        (
            run({}, ran=False, problem="no report"),
            run({"t::a": Outcome.PASSED}),
            Verdict.NO_BASELINE,
        ),
        (run({"t::a": Outcome.FAILED}), run({"t::a": Outcome.PASSED}), Verdict.NO_BASELINE),
        (run({}), run({}), Verdict.NO_BASELINE),  # pytest collected nothing
        (run({"t::a": Outcome.PASSED}), run({}, ran=False), Verdict.NOT_READ),
        (run({"t::a": Outcome.PASSED}), None, Verdict.NOT_READ),
    ],
)
def test_what_the_gate_makes_of_runs_that_say_nothing(before, after, verdict):
    comparison = compare(before, after)
    assert comparison.verdict == verdict
    decision = gate_decision(DEFAULT, comparison)
    assert decision.passed is (verdict is Verdict.NO_TESTS)


def test_a_repository_without_tests_passes_and_says_why():
    decision = gate_decision(DEFAULT, compare(None, None))
    assert decision.passed
    assert decision.reason == "the repository has no tests to break"


def test_evidence_is_json_with_counts_and_new_failures():
    before = run({"t::a": Outcome.PASSED, "t::b": Outcome.SKIPPED})
    after = run({"t::a": Outcome.FAILED, "t::b": Outcome.SKIPPED})
    evidence = json.loads(json.dumps(test_evidence(before, after)))
    assert evidence["verdict"] == "compared"
    assert evidence["command"] == "python3 -m pytest"
    assert evidence["runner"] == "pytest"
    assert evidence["new_failures"] == ["t::a"]
    assert evidence["before"]["counts"] == {"passed": 1, "skipped": 1, "failed": 0, "error": 0}
    assert evidence["after"]["counts"] == {"passed": 0, "skipped": 1, "failed": 1, "error": 0}


def test_evidence_without_tests_names_no_command():
    evidence = test_evidence(None, None)
    assert evidence["verdict"] == "no_tests"
    assert evidence["command"] is None and evidence["before"] is None
