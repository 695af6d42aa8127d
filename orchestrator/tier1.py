"""The Tier 1 (deterministic scan) DAG and its nodes.

scan: download the head with a read-only token narrowed to the repository,
open a sandbox from the archive, validate `.clarity.yml` against the policy
pack, run the scanner inside the sandbox; verdict: what the check run's
conclusion is, by policy. (Comparison with the base and publishing join this
DAG where the pull request flow needs them.)
"""

from __future__ import annotations

import base64
import json
from typing import Any

import gidgethub
from pydantic import BaseModel, Field

from bot.models import BuildTier, utcnow
from orchestrator.dag import Dag, Node
from orchestrator.fallback import FALLBACKS
from orchestrator.head import head_archive, pack_of, pull_request_of, reader, repository
from orchestrator.nodes import NodeContext, NodeFailure
from orchestrator.sandbox.base import ArchiveSource, open_sandbox
from orchestrator.scan_bundle import BUNDLE_FILE, bundle_tarball, run_command
from policies import RepoConfigError, effective_pack, load_repo_config, sandbox_spec_for
from scanner.model import Severity
from scanner.rules import catalogue
from scanner.sandboxed import options_to_json

CONFIG_FILE = ".clarity.yml"
SCAN_TIMEOUT = 300.0


class ScanOutcome(BaseModel):
    """What the scan found (JSON report) or why it could not run as configured."""

    head_sha: str
    config_error: str | None = None
    skipped: str | None = None  # not scanned on purpose (e.g. a draft, with `drafts: skip`)
    report: dict[str, Any] = Field(default_factory=dict)
    fail_on: str = "high"
    comment: str = "on-findings"  # the repository's `comment:` mode for the pull request comment

    @property
    def findings(self) -> list[dict[str, Any]]:
        return list(self.report.get("findings", []))


class Verdict(BaseModel):
    conclusion: str  # success | failure | neutral
    title: str
    reason: str


async def scan(ctx: NodeContext) -> ScanOutcome:
    build, services = ctx.build, ctx.services
    found = await repository(services, build.repository_id)
    owner, name = found.full_name.split("/", 1)
    # The sandbox never sees a token: the archive is fetched here, read-only, for this repository alone.
    github = reader(ctx, name)
    archive = await head_archive(ctx, owner, name)
    pack = pack_of(ctx)
    spec = sandbox_spec_for(pack, "scan", build_id=build.id, installation_id=build.installation_id)
    pull = await pull_request_of(services, build)
    async with open_sandbox(services["sandboxes"], spec, ArchiveSource(archive)) as sandbox:
        if pull is not None and pull.from_fork:
            # A fork's pull request must not relax its own check: use the base branch's file.
            text = await config_at(github, owner, name, pull.base_ref)
        else:
            try:
                text = (await sandbox.read_file(CONFIG_FILE)).decode("utf-8", "replace")
            except Exception:  # no configuration file: the installation's pack applies as it is
                text = ""
        try:
            config = load_repo_config(text, known_rules=set(catalogue()))
            effective = effective_pack(pack, config)
        except RepoConfigError as error:
            return ScanOutcome(head_sha=build.head_sha, config_error=str(error))
        if pull is not None and pull.draft and config.drafts == "skip":
            return ScanOutcome(
                head_sha=build.head_sha,
                skipped="a draft pull request (drafts: skip)",
                comment=config.comment,
            )
        # The worker reads the clock; the scanner only compares `ignore:` expiries with it.
        options = config.scan_options(
            jobs=1, fail_on=effective.gates.fail_on, today=utcnow().date()
        )
        await sandbox.write_file(BUNDLE_FILE, bundle_tarball())
        result = await sandbox.exec(
            run_command(sandbox.workspace, options_to_json(options)), timeout=SCAN_TIMEOUT
        )
    if not result.ok:
        raise NodeFailure(f"the scanner exited with {result.exit_code}: {result.stderr[-500:]}")
    try:
        report = json.loads(result.stdout)
    except ValueError:
        raise NodeFailure("the scanner's output is not JSON") from None
    return ScanOutcome(
        head_sha=build.head_sha,
        report=report,
        fail_on=str(effective.gates.fail_on),
        comment=config.comment,
    )


async def config_at(github: Any, owner: str, name: str, ref: str) -> str:
    """`.clarity.yml` at `ref` through the contents API ("" when the branch has none)."""
    try:
        content = await github.getitem(
            "/repos/{owner}/{repo}/contents/{path}{?ref}",
            url_vars={"owner": owner, "repo": name, "path": CONFIG_FILE, "ref": ref},
        )
    except gidgethub.HTTPException as error:
        if error.status_code == 404:
            return ""
        raise
    return base64.b64decode(content.get("content", "")).decode("utf-8", "replace")


def our_side(outcome: ScanOutcome) -> Verdict | None:
    """The neutral verdict when the scan did not run as configured: never red for our side."""
    if outcome.config_error is not None:
        return Verdict(
            conclusion="neutral", title=f"{CONFIG_FILE} is invalid", reason=outcome.config_error
        )
    if outcome.skipped is not None:
        return Verdict(
            conclusion="neutral", title="Not scanned", reason=f"Not scanned: {outcome.skipped}."
        )
    return None


def judge(
    outcome: ScanOutcome, considered: list[dict[str, Any]], title: str, kind: str = ""
) -> Verdict:
    """Failure when any `considered` finding is at or above the failing severity (`kind`: e.g. "new ")."""
    threshold = Severity(outcome.fail_on)  # the pack's, tightened by the repository
    failing = [f for f in considered if Severity(f["severity"]).at_least(threshold)]
    if failing:
        reason = f"{len(failing)} {kind}finding(s) at or above {threshold}"
        return Verdict(conclusion="failure", title=title, reason=reason)
    return Verdict(
        conclusion="success", title=title, reason=f"no {kind}findings at or above {threshold}"
    )


def health(outcome: ScanOutcome) -> str:
    return f"Health {outcome.report.get('score', {}).get('overall')}/100"


async def verdict(ctx: NodeContext) -> Verdict:
    outcome = ScanOutcome.model_validate(ctx.inputs["scan"])
    if (neutral := our_side(outcome)) is not None:
        return neutral
    return judge(outcome, outcome.findings, f"{health(outcome)}, {len(outcome.findings)} findings")


SCAN_DAG = Dag(
    "tier1-scan",
    (
        Node("scan", "orchestrator.tier1:scan", retries=2, backoff=2.0, timeout=SCAN_TIMEOUT + 60),
        Node("verdict", "orchestrator.tier1:verdict", ("scan",)),
    ),
)

# An autonomous fix build that must give up on its agents still gives the user a Tier 1 answer.
FALLBACKS.setdefault(BuildTier.FIX, "orchestrator.tier1:SCAN_DAG")
