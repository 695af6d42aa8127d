"""What a deep scan reports: the data the report node assembles and the publisher renders."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from orchestrator.agents.contracts import (
    Concern,
    EducatorOutput,
    FindingVerdict,
    PlannerOutput,
    ProberOutput,
)

DEEP_CHECK_NAME = "Clarity Deep Scan"
REPORT_MARKER = "<!-- clarity-check:deep-scan -->"


class AgentUsage(BaseModel):
    """One agent node's run: which model, how far it got and what it cost."""

    role: str
    model: str = ""
    status: str  # finished | failed | skipped
    iterations: int = 0
    cost_usd: float = 0.0
    duration_seconds: float = 0.0
    error: str | None = None


class DeepReport(BaseModel):
    """Everything the check run and the report comment show.

    In `deterministic` mode (no model, or the agents failed and the build fell back)
    only the Tier 1 parts are filled and `fallback_reason` says why.
    """

    mode: Literal["autonomous", "deterministic"]
    fallback_reason: str | None = None
    head_sha: str
    conclusion: Literal["success", "failure", "neutral"]
    title: str
    reason: str
    tier1_score: int | None = None  # the Tier 1 health score (0-100)
    deep_score: int | None = None  # the same formula after validation: rejected out, concerns in
    categories: dict[str, int] = Field(default_factory=dict)  # deep category scores
    findings: list[dict[str, Any]] = Field(default_factory=list)  # Tier 1 findings (JSON report)
    verdicts: list[FindingVerdict] = Field(default_factory=list)
    concerns: list[Concern] = Field(default_factory=list)
    architecture: str | None = None
    probe: ProberOutput | None = None
    plan: PlannerOutput | None = None
    education: EducatorOutput | None = None
    usage: list[AgentUsage] = Field(default_factory=list)
    cost_usd: float = 0.0
    duration_seconds: float = 0.0
    build_url: str = ""

    @property
    def confirmed(self) -> list[str]:
        return [v.fingerprint for v in self.verdicts if v.verdict == "confirmed"]

    @property
    def rejected(self) -> list[str]:
        return [v.fingerprint for v in self.verdicts if v.verdict == "rejected"]
