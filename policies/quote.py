"""Quotes: what an agent build will probably cost, estimated from Tier 1 before it starts.

Pure: the caller passes the Tier 1 report's size (`ScanSize.from_report`), the agent
roles to run, the model's prices and the pack's budget for the tier; nothing here
reads a database, a clock or the model catalogue.

How it is estimated
-------------------
Each role is estimated on its own and the roles are summed. For a role `r`:

    read_r   = min(READ_SHARE[r] × bytes_scanned, max_iterations × BYTES_PER_CALL)
    input_r  = ROLE_OVERHEAD + RESEND × read_r / BYTES_PER_TOKEN + findings × FINDING_TOKENS
    output_r = OUTPUT_SHARE × input_r

and `cost = Σ input_r × input price + output_r × output price`. The numbers:

- BYTES_PER_TOKEN = 3.5: BPE tokenizers give 3 to 4 bytes per token on source code.
- READ_SHARE: the part of the scanned code a role reads. The scanner walks all of it
  (1.0); security follows inputs, auth and data paths (0.5); the prober reads what it
  runs (0.3); the planner and the educator mostly read the findings (0.15, 0.1). A role
  not listed reads half (0.5).
- BYTES_PER_CALL = 8,000: one file view shows about 8 KB, so `max_iterations` turns can
  read at most that many; a huge repository reaches this plateau instead of growing.
- RESEND = 3: an agent sends its conversation again on every turn, so what it read
  early is paid for again later; history condensing keeps the average near three sends.
- FINDING_TOKENS = 1,200 per finding and role: a finding's snippet with its surrounding
  lines (~400 tokens) sent about RESEND times while it is checked.
- ROLE_OVERHEAD = 15,000: the system prompt and tool definitions (~5,000 tokens) sent
  on the three or so turns that even an agent reading nothing takes.
- OUTPUT_SHARE = 0.1: agent turns are mostly tool calls and short notes.
- SPREAD = 0.4: the range is the estimate ±40%, since how much a model reads depends on
  what it finds. Beyond that the budget stops the run: no role is quoted above the
  agent's `max_cost_usd` nor the build above its own, and tokens are held to what those
  caps buy at these prices.

With no Tier 1 report the size is unknown: the low end is the roles' fixed overhead and
the high end is the cap (tokens: the read plateau), and `basis` says so. A model with
no price (both prices 0) is never charged, so its cost is 0 while tokens are estimated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policies.pack import BuildBudget

DEEP_SCAN_ROLES = ("scanner", "prober", "security", "planner", "educator")

BYTES_PER_TOKEN = 3.5
BYTES_PER_CALL = 8_000
BYTES_PER_LINE = 34  # when an older report has no bytes_scanned: typical source averages 30-40
RESEND = 3
FINDING_TOKENS = 1_200
ROLE_OVERHEAD = 15_000
OUTPUT_SHARE = 0.1
SPREAD = 0.4
READ_SHARE = {"scanner": 1.0, "security": 0.5, "prober": 0.3, "planner": 0.15, "educator": 0.1}
DEFAULT_READ_SHARE = 0.5


class ReportShapeError(ValueError):
    """A Tier 1 report without the coverage a quote is estimated from."""


@dataclass(frozen=True, slots=True)
class ScanSize:
    """What Tier 1 saw of a commit: the size an agent build will read."""

    files: int
    lines: int
    bytes: int
    findings: int

    @classmethod
    def from_report(cls, report: Mapping[str, Any]) -> ScanSize:
        """The size in a Tier 1 JSON report (`coverage` and `findings`)."""
        coverage = report.get("coverage")
        findings = report.get("findings", [])
        if not isinstance(coverage, Mapping) or not isinstance(findings, list):
            raise ReportShapeError("a Tier 1 report needs a `coverage` mapping and a findings list")
        lines = _count(coverage, "lines_scanned")
        size = coverage.get("bytes_scanned")
        return cls(
            files=_count(coverage, "files_scanned"),
            lines=lines,
            bytes=lines * BYTES_PER_LINE if size is None else _count(coverage, "bytes_scanned"),
            findings=len(findings),
        )


def _count(coverage: Mapping[str, Any], key: str) -> int:
    value = coverage.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReportShapeError(f"coverage.{key} must be a count, not {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Prices:
    """The model's prices in USD per token; 0 for a model no price is known for."""

    input_per_token: float = 0.0
    output_per_token: float = 0.0

    def __post_init__(self) -> None:
        for price in (self.input_per_token, self.output_per_token):
            if not math.isfinite(price) or price < 0:
                raise ValueError(f"a price per token must be finite and not negative: {price!r}")

    @property
    def known(self) -> bool:
        return self.input_per_token > 0 or self.output_per_token > 0

    def per_token(self) -> float:
        """The average price of a token at the estimate's input/output mix."""
        blend = self.input_per_token + OUTPUT_SHARE * self.output_per_token
        return blend / (1 + OUTPUT_SHARE)


@dataclass(frozen=True, slots=True)
class Estimate:
    """A quote: the likely range of tokens and USD of a build, never above its cap."""

    files: int | None  # None without a Tier 1 report
    lines: int | None
    findings: int | None
    roles: tuple[str, ...]
    tokens_low: int
    tokens_high: int
    cost_low: float  # USD
    cost_high: float  # USD, at most capped_at
    capped_at: float  # the build's max_cost_usd
    priced: bool  # False when the model has no price: the costs are then 0
    basis: str


def estimate_build(
    scan: ScanSize | None, roles: Sequence[str], prices: Prices, budget: BuildBudget
) -> Estimate:
    """The cost range of running `roles` over `scan` (None: no Tier 1 report for the commit)."""
    if not roles:
        raise ValueError("a build runs at least one agent role")
    roles, cap = tuple(roles), budget.max_cost_usd
    iterations = budget.agent.max_iterations
    if scan is None:
        low_roles = _role_tokens(roles, 0, 0, iterations)
        high_roles = _role_tokens(roles, math.inf, 0, iterations)
        basis = "the budget cap alone: there is no Tier 1 scan of this commit to size it by"
    else:
        central = _role_tokens(roles, scan.bytes, scan.findings, iterations)
        low_roles = [tokens * (1 - SPREAD) for tokens in central]
        high_roles = [tokens * (1 + SPREAD) for tokens in central]
        basis = (
            f"the Tier 1 scan of this commit ({_plural(scan.files, 'file')}, "
            f"{_plural(scan.bytes, 'byte')}, {_plural(scan.findings, 'finding')}), ±{SPREAD:.0%}"
        )
    price = prices.per_token()
    low, high = _within_budget(low_roles, price, budget), _within_budget(high_roles, price, budget)
    cost_low = low * price
    cost_high = cap if scan is None and prices.known else high * price
    return Estimate(
        files=None if scan is None else scan.files,
        lines=None if scan is None else scan.lines,
        findings=None if scan is None else scan.findings,
        roles=roles,
        tokens_low=round(low),
        tokens_high=round(high),
        cost_low=cost_low,
        cost_high=cost_high,
        capped_at=cap,
        priced=prices.known,
        basis=basis,
    )


def _role_tokens(
    roles: tuple[str, ...], size: float, findings: int, iterations: int
) -> list[float]:
    """Input plus output tokens of each role over `size` bytes with `findings` to check."""
    tokens = []
    for role in roles:
        read = min(READ_SHARE.get(role, DEFAULT_READ_SHARE) * size, iterations * BYTES_PER_CALL)
        given = ROLE_OVERHEAD + RESEND * read / BYTES_PER_TOKEN + findings * FINDING_TOKENS
        tokens.append(given * (1 + OUTPUT_SHARE))
    return tokens


def _within_budget(tokens: list[float], price: float, budget: BuildBudget) -> float:
    """All roles' tokens, each held to what its agent cap buys and the sum to the build's cap."""
    if price <= 0:  # an unpriced model is never charged, so no cap stops it early
        return sum(tokens)
    per_agent = budget.agent.max_cost_usd / price
    return min(sum(min(t, per_agent) for t in tokens), budget.max_cost_usd / price)


def needs_confirmation(estimate: Estimate, confirm_over_usd: float) -> bool:
    """Must the build wait for a confirm? When the high end of its cost is over the threshold."""
    return estimate.cost_high > confirm_over_usd


def render_quote(estimate: Estimate, *, threshold: float, confirm_command: str) -> str:
    """The Markdown reply giving the quote and, above `threshold`, how to confirm it."""
    size = (
        "unknown (no Tier 1 scan of this commit)"
        if estimate.files is None
        else f"{_plural(estimate.files, 'file')}, {_plural(estimate.lines or 0, 'line')}, "
        f"{_plural(estimate.findings or 0, 'finding')}"
    )
    if estimate.priced:
        cost = (
            f"{_usd(estimate.cost_low)}–{_usd(estimate.cost_high)}; "
            f"the budget stops the build at {_usd(estimate.capped_at)}"
        )
    else:
        cost = "unknown: this model has no price, so its use counts as $0"
    tokens = f"{_tokens_text(estimate.tokens_low)}–{_tokens_text(estimate.tokens_high)}"
    lines = [
        "**Cost estimate**",
        "",
        f"- Size: {size}",
        f"- Agents: {', '.join(estimate.roles)}",
        f"- Estimated tokens: {tokens}",
        f"- Estimated cost: {cost}",
        "",
        f"<sub>Estimated from {estimate.basis}.</sub>",
        "",
    ]
    if needs_confirmation(estimate, threshold):
        lines.append(
            f"This may cost more than {_usd(threshold)}, so it waits for a confirmation: "
            f"reply `{confirm_command}` to start it."
        )
    else:
        lines.append(f"This is within {_usd(threshold)}, so it starts without a confirmation.")
    return "\n".join(lines) + "\n"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _usd(value: float) -> str:
    return "<$0.01" if 0 < value < 0.005 else f"${value:,.2f}"


def _tokens_text(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f}M"
    if count >= 10_000:
        return f"{count / 1000:.0f}k"
    if count >= 1_000:
        return f"{count / 1000:.1f}k"
    return str(count)
