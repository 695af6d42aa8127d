"""The scan: walk a tree, scan each file once (in parallel, through the cache), run
repository-level checks once, then suppress, score and sign the result.

    result = scan_tree("path/to/repo", ScanOptions(), cache=ScanCache.default())
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from scanner.cache import ScanCache, code_digest, entry_key
from scanner.dispatch import CheckSet
from scanner.fingerprint import blob_sha
from scanner.model import Finding, Hit, Severity
from scanner.options import ScanOptions
from scanner.parse import detect_language
from scanner.receipt import receipt, ruleset_version
from scanner.rules import all_checks
from scanner.rules.base import Check, RepoCheck, RepoView, reporter
from scanner.score import Scores, score
from scanner.suppress import SuppressedFinding, apply_options, expiry_note, live_ignores
from scanner.walk import Skip, SkipReason, classify_content, walk
from scanner.worker import FileOutcome, findings_from_hits, scan_source

# Below this many bytes to scan, starting worker processes costs more than it saves.
INLINE_BYTES = 256 * 1024
CHUNKS_PER_WORKER = 6

Progress = Callable[[int, int], None]


class ScanError(Exception):
    """The scan root is missing or not a directory."""


@dataclass(frozen=True, slots=True)
class Note:
    """Something the reader of a coverage manifest should know about one file."""

    path: str
    message: str


@dataclass
class Coverage:
    """What was scanned, what was not and why."""

    files_scanned: int = 0
    lines_scanned: int = 0
    bytes_scanned: int = 0
    from_cache: int = 0
    languages: dict[str, int] = field(default_factory=dict)
    skipped: list[Skip] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    used_git: bool = False

    def skipped_by_reason(self) -> dict[str, int]:
        return dict(sorted(Counter(str(skip.reason) for skip in self.skipped).items()))


@dataclass
class ScanResult:
    """Everything one scan found, in a deterministic order."""

    root: str
    findings: list[Finding]
    suppressed: list[SuppressedFinding]
    coverage: Coverage
    scores: Scores
    receipt: str
    ruleset_version: str
    options: ScanOptions
    timings: dict[str, float]

    def failing(self, threshold: Severity | None = None) -> list[Finding]:
        """Active findings at or above `threshold` (default: the options' fail_on)."""
        threshold = threshold or self.options.fail_on
        return [f for f in self.findings if f.severity.at_least(threshold)]


def sort_key(finding: Finding) -> tuple:
    return (finding.path, finding.line, finding.column, finding.rule_id, finding.fingerprint)


def scan_tree(
    root: str | os.PathLike[str],
    options: ScanOptions | None = None,
    paths: Iterable[str] | None = None,
    cache: ScanCache | None = None,
    progress: Progress | None = None,
) -> ScanResult:
    """Scan the tree at `root` (or only `paths` in it, relative POSIX paths).

    Repository-level checks always see the whole tree. `progress(done, total)` is
    called as files finish.
    """
    started = time.perf_counter()
    options = options if options is not None else ScanOptions()
    base = Path(root)
    if not base.is_dir():
        raise ScanError(f"not a directory: {root}")
    timings: dict[str, float] = {}
    walked = walk(base, options)
    coverage = Coverage(skipped=list(walked.skipped), used_git=walked.used_git)
    candidates = walked.files
    if paths is not None:
        wanted = {PurePosixPath(p).as_posix().removeprefix("./") for p in paths}
        candidates = [c for c in candidates if c.path in wanted]
        coverage.skipped = [s for s in coverage.skipped if s.path in wanted]
    timings["walk"] = time.perf_counter() - started

    ruleset = ruleset_version()
    salt = f"{ruleset}\0{code_digest()}"
    checks = all_checks()
    outcomes: dict[str, FileOutcome] = {}
    blobs: dict[str, str] = {}
    pending: list[tuple[str, bytes]] = []
    keys: dict[str, str] = {}
    for candidate in candidates:
        try:
            data = (base / candidate.path).read_bytes()
        except OSError:
            coverage.skipped.append(Skip(candidate.path, SkipReason.UNREADABLE))
            continue
        reason = classify_content(data)
        if reason is not None:
            coverage.skipped.append(Skip(candidate.path, reason))
            continue
        blob = blobs[candidate.path] = blob_sha(data)
        key = keys[candidate.path] = entry_key(candidate.path, blob, salt)
        cached = _cached_outcome(cache, key)
        if cached is not None:
            outcomes[candidate.path] = cached
            coverage.from_cache += 1
        else:
            pending.append((candidate.path, data))
    timings["read"] = time.perf_counter() - started - timings["walk"]

    repo_results: list[tuple[list[Finding], list[SuppressedFinding]]] = []

    def run_repo_checks() -> None:
        # Runs in this process while the workers scan files: it would sit idle otherwise.
        mark = time.perf_counter()
        repo_results.append(
            _run_repo_checks(base, walked.repo_paths, blobs, checks, salt, cache, coverage)
        )
        timings["repo"] = time.perf_counter() - mark

    mark = time.perf_counter()
    for path, outcome in _scan_pending(pending, checks, options.jobs, progress, run_repo_checks):
        outcomes[path] = outcome
        if cache is not None:
            cache.put(keys[path], outcome.to_record())
    timings["scan"] = time.perf_counter() - mark
    if not repo_results:
        run_repo_checks()
    repo_findings, repo_suppressed = repo_results[0]

    findings: list[Finding] = list(repo_findings)
    suppressed: list[SuppressedFinding] = list(repo_suppressed)
    for path in sorted(outcomes):
        outcome = outcomes[path]
        if outcome.undecodable:
            coverage.skipped.append(Skip(path, SkipReason.UNDECODABLE))
            blobs.pop(path, None)
        else:
            coverage.files_scanned += 1
            coverage.lines_scanned += outcome.lines
            language = str(detect_language(path))
            coverage.languages[language] = coverage.languages.get(language, 0) + 1
        coverage.notes.extend(Note(path, message) for message in outcome.notes)
        findings.extend(outcome.findings)
        suppressed.extend(outcome.suppressed)
    coverage.bytes_scanned = sum(c.size for c in candidates if c.path in blobs)
    coverage.skipped.sort(key=lambda s: (s.path, s.reason))
    coverage.languages = dict(sorted(coverage.languages.items()))

    active, turned_off = apply_options(findings, options)
    suppressed.extend(turned_off)
    _, expired = live_ignores(options.ignores, options.today)
    coverage.notes.extend(Note("", expiry_note(entry, options.today)) for entry in expired)
    active.sort(key=sort_key)
    suppressed.sort(key=lambda s: sort_key(s.finding))
    timings["total"] = time.perf_counter() - started
    return ScanResult(
        root=str(base),
        findings=active,
        suppressed=suppressed,
        coverage=coverage,
        scores=score(active),
        receipt=receipt(blobs.items(), ruleset, options),
        ruleset_version=ruleset,
        options=options,
        timings={name: round(value, 4) for name, value in timings.items()},
    )


def _cached_outcome(cache: ScanCache | None, key: str) -> FileOutcome | None:
    if cache is None:
        return None
    record = cache.get(key)
    if record is None:
        return None
    try:
        return FileOutcome.from_record(record)
    except (ValueError, TypeError, KeyError, IndexError):
        return None  # an entry from a damaged or foreign cache: scan again


# Set in the parent before workers fork, or by _init_worker under forkserver.
_WORKER_CHECKS: tuple[CheckSet, list[Check]] | None = None


def _init_worker() -> None:
    global _WORKER_CHECKS
    if _WORKER_CHECKS is None:
        checks = all_checks()
        _WORKER_CHECKS = (CheckSet.of(checks), checks)


def _scan_chunk(chunk: list[tuple[str, bytes]]) -> list[tuple[str, list]]:
    _init_worker()
    assert _WORKER_CHECKS is not None
    checkset, checks = _WORKER_CHECKS
    return [(path, scan_source(path, data, checkset, checks).to_record()) for path, data in chunk]


def _scan_pending(
    pending: list[tuple[str, bytes]],
    checks: list[Check],
    jobs: int | None,
    progress: Progress | None,
    meanwhile: Callable[[], None],
) -> Iterable[tuple[str, FileOutcome]]:
    """Outcomes of `pending` files; `meanwhile` runs once while (or after) they are scanned."""
    total = len(pending)
    workers = max(1, jobs or os.cpu_count() or 1)
    if workers == 1 or sum(len(data) for _, data in pending) < INLINE_BYTES:
        checkset = CheckSet.of(checks)
        for done, (path, data) in enumerate(pending, start=1):
            yield path, scan_source(path, data, checkset, checks)
            if progress:
                progress(done, total)
        meanwhile()
        return
    yield from _scan_in_pool(pending, checks, workers, progress, meanwhile)


def _scan_in_pool(
    pending: list[tuple[str, bytes]],
    checks: list[Check],
    workers: int,
    progress: Progress | None,
    meanwhile: Callable[[], None],
) -> Iterable[tuple[str, FileOutcome]]:
    global _WORKER_CHECKS
    chunks = _balanced_chunks(pending, workers * CHUNKS_PER_WORKER)
    # fork is cheap and inherits the built checks, but is unsafe once threads exist.
    method = "fork" if threading.active_count() == 1 and hasattr(os, "fork") else "forkserver"
    if method == "fork":
        _WORKER_CHECKS = (CheckSet.of(checks), checks)
    context = multiprocessing.get_context(method)
    done = 0
    with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=context) as pool:
        futures = [pool.submit(_scan_chunk, chunk) for chunk in chunks]
        meanwhile()
        for future in as_completed(futures):
            for path, record in future.result():
                yield path, FileOutcome.from_record(record)
                done += 1
            if progress:
                progress(done, len(pending))


def _balanced_chunks(items: list[tuple[str, bytes]], count: int) -> list[list[tuple[str, bytes]]]:
    """Items split into `count` chunks of similar byte size, largest first (LPT)."""
    chunks: list[list[tuple[str, bytes]]] = [[] for _ in range(min(count, len(items)))]
    sizes = [0] * len(chunks)
    for item in sorted(items, key=lambda item: -len(item[1])):
        lightest = sizes.index(min(sizes))
        chunks[lightest].append(item)
        sizes[lightest] += len(item[1]) + 512  # per-file overhead, so many tiny files spread too
    return [chunk for chunk in chunks if chunk]


def _run_repo_checks(
    base: Path,
    repo_paths: list[str],
    blobs: dict[str, str],
    checks: list[Check],
    salt: str,
    cache: ScanCache | None,
    coverage: Coverage,
) -> tuple[list[Finding], list[SuppressedFinding]]:
    repo_checks = [check for check in checks if isinstance(check, RepoCheck)]
    if not repo_checks:
        return [], []
    identity = [(path, blobs.get(path) or _stat_identity(base / path)) for path in repo_paths]
    key = entry_key("repo", salt, *(f"{path}:{ident}" for path, ident in identity))
    cached = _cached_outcome(cache, key)
    if cached is not None:
        return cached.findings, cached.suppressed
    reader = _Reader(base)
    view = RepoView(paths=repo_paths, read=reader)
    hits: list[Hit] = []
    for check in repo_checks:
        sink: list[Hit] = []
        try:
            check.check(view, reporter("", sink))
        except Exception as error:  # noqa: BLE001 - one faulty check must not lose the scan
            coverage.notes.append(
                Note("", f"check-error: {type(check).__name__}: {type(error).__name__}")
            )
            continue
        hits.extend(sink)
    outcome = FileOutcome()
    by_path: dict[str, list[Hit]] = {}
    for hit in hits:
        by_path.setdefault(hit.path, []).append(hit)
    for path, path_hits in sorted(by_path.items()):
        text = reader(path) if path else None
        found, hidden = findings_from_hits(path_hits, text.splitlines() if text else [])
        outcome.findings.extend(found)
        outcome.suppressed.extend(hidden)
    if cache is not None:
        cache.put(key, outcome.to_record())
    return outcome.findings, outcome.suppressed


def _stat_identity(path: Path) -> str:
    try:
        info = path.stat()
    except OSError:
        return "missing"
    return f"{info.st_size}:{info.st_mtime_ns}"


class _Reader:
    """Reads repository files for repository-level checks, once each, inside the root."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.memo: dict[str, str | None] = {}

    def __call__(self, path: str) -> str | None:
        if path not in self.memo:
            self.memo[path] = self._read(path)
        return self.memo[path]

    def _read(self, path: str) -> str | None:
        target = self.base / path
        try:
            if ".." in PurePosixPath(path).parts or target.is_symlink() or not target.is_file():
                return None
            if target.stat().st_size > 4 * 1024 * 1024:
                return None
            return target.read_bytes().decode("utf-8-sig")
        except (OSError, UnicodeDecodeError):
            return None
