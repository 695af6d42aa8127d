"""`clarity scan`: scan a directory and report, for people, tools, PR comments or code scanning.

    clarity scan PATH [--format text|json|markdown|sarif] [--output FILE]
                      [--base REF] [--fail-on SEVERITY] [--no-cache]

Exit codes:
    0  clean: no finding at or above the fail-on severity (with --base: no NEW one)
    1  findings at or above the fail-on severity (with --base: new ones)
    2  usage or configuration error (an invalid .clarity.yml names the key and line)

`PATH/.clarity.yml`, when present, sets excludes, rule overrides, ignored findings
and fail_on; --fail-on wins over it. `ignore:` entries expire by today's UTC date.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from policies.repo_config import RepoConfigError, load_repo_config
from scanner.cache import ScanCache
from scanner.compare import compare
from scanner.engine import ScanError, scan_tree
from scanner.model import Severity
from scanner.options import ScanOptions
from scanner.report import FORMATS, render
from scanner.report.text import ProgressBar
from scanner.rules import catalogue

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
CONFIG_FILE = ".clarity.yml"


class UsageError(Exception):
    """A problem with the command line or the repository configuration (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="clarity scan",
        description="Scan a repository for production-readiness problems.",
        epilog="exit codes: 0 clean, 1 findings at or above --fail-on (with --base: new ones), "
        "2 usage or .clarity.yml error",
    )
    parser.add_argument("path", help="directory to scan (a repository or any folder)")
    parser.add_argument(
        "--format", choices=sorted(FORMATS), default="text", help="output format (default: text)"
    )
    parser.add_argument(
        "--output", "-o", help="write the report to FILE instead of standard output"
    )
    parser.add_argument(
        "--base",
        metavar="REF",
        help="git ref to compare with: report new/fixed/persisting findings",
    )
    parser.add_argument(
        "--fail-on",
        choices=[str(s) for s in Severity],
        help="lowest severity that fails (default: from .clarity.yml, else high)",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="do not read or write the result cache"
    )
    parser.add_argument("--cache-dir", help="cache directory (default: ~/.cache/clarity/scan)")
    parser.add_argument("--jobs", type=int, help="worker processes (default: one per core)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `clarity scan`; `argv` may start with "scan". Returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["scan"]:
        arguments = arguments[1:]
    try:
        return _run(_parser().parse_args(arguments), sys.stdout, sys.stderr)
    except UsageError as error:
        sys.stderr.write(f"{error}\n")
        return EXIT_USAGE
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)


def _run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    root = Path(args.path)
    if not root.is_dir():
        raise UsageError(f"clarity scan: not a directory: {args.path}")
    options = _options(root, args)
    cache = (
        None
        if args.no_cache
        else (ScanCache(args.cache_dir) if args.cache_dir else ScanCache.default())
    )
    progress = ProgressBar(stderr) if stderr.isatty() else None
    try:
        head = scan_tree(root, options, cache=cache, progress=progress)
        comparison = _compare_with_base(root, args.base, options, cache) if args.base else None
    except ScanError as error:
        raise UsageError(f"clarity scan: {error}") from error
    if comparison is not None:
        comparison = compare(comparison, head)
    report = render(head, args.format, comparison)
    if args.output:
        Path(args.output).write_text(report, encoding="utf-8")
    else:
        stdout.write(report)
    failing = comparison.new if comparison is not None else head.findings
    return (
        EXIT_FINDINGS if any(f.severity.at_least(options.fail_on) for f in failing) else EXIT_CLEAN
    )


def _options(root: Path, args: argparse.Namespace) -> ScanOptions:
    config_path = root / CONFIG_FILE
    if config_path.is_file():
        try:
            config = load_repo_config(
                config_path.read_text(encoding="utf-8"), known_rules=catalogue()
            )
        except RepoConfigError as error:
            raise UsageError(f"{CONFIG_FILE}: {error}") from error
        except UnicodeDecodeError as error:
            raise UsageError(f"{CONFIG_FILE}: not UTF-8 text") from error
        options = config.scan_options(jobs=args.jobs, today=datetime.now(UTC).date())
    else:
        options = ScanOptions(jobs=args.jobs)
    if args.fail_on:
        options = replace(options, fail_on=Severity(args.fail_on))
    return options


def _git(root: Path, *command: str) -> bytes:
    try:
        return subprocess.run(
            ["git", *command], cwd=root, capture_output=True, check=True, timeout=300
        ).stdout
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", b"") or b""
        raise UsageError(
            f"clarity scan: git {command[0]} failed: {detail.decode(errors='replace').strip()}"
        ) from error


def _compare_with_base(root: Path, ref: str, options: ScanOptions, cache: ScanCache | None):
    """Scan the tree at `ref` (exported with git archive into a temporary directory)."""
    top = Path(_git(root, "rev-parse", "--show-toplevel").decode().strip())
    prefix = _git(root, "rev-parse", "--show-prefix").decode().strip()
    _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    archive = _git(top, "archive", "--format=tar", ref)
    with tempfile.TemporaryDirectory(prefix="clarity-base-") as temporary:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(temporary, filter="data")
        base_root = Path(temporary) / prefix
        if not base_root.is_dir():
            return []  # the directory did not exist at the base: everything is new
        return scan_tree(base_root, options, cache=cache)


if __name__ == "__main__":
    sys.exit(main())
