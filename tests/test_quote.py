"""Quotes: a build's cost estimated from Tier 1, held to its budget, and the reply that shows it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from policies import (
    DEEP_SCAN_ROLES,
    Prices,
    ReportShapeError,
    ScanSize,
    estimate_build,
    load_pack,
    needs_confirmation,
    render_quote,
)
from policies.pack import AgentBudget, BuildBudget

BUDGET = load_pack("default").budgets.deep_scan
# About what a mid-range hosted model charges: $3 per million input tokens, $15 output.
PRICES = Prices(input_per_token=3e-6, output_per_token=15e-6)
REPORT = {
    "coverage": {
        "files_scanned": 17,
        "lines_scanned": 321,
        "bytes_scanned": 10910,
        "languages": {"python": 12, "typescript": 5},
    },
    "findings": [{"rule": "py-sql-injection"}, {"rule": "js-console-log"}],
    "score": {"overall": 81},
}
CONFIRM = "/clarity deep-scan confirm"


def _size(kilobytes: float, findings: int = 0) -> ScanSize:
    size = int(kilobytes * 1000)
    return ScanSize(files=max(1, size // 2000), lines=size // 34, bytes=size, findings=findings)


def test_report_size_is_read_from_coverage_and_findings():
    assert ScanSize.from_report(REPORT) == ScanSize(files=17, lines=321, bytes=10910, findings=2)


def test_an_older_report_without_bytes_is_sized_by_lines():
    report = {"coverage": {"files_scanned": 2, "lines_scanned": 100}, "findings": []}
    assert ScanSize.from_report(report).bytes == 3400


@pytest.mark.parametrize(
    "report",
    [
        {},
        {"coverage": [], "findings": []},
        {"coverage": {"files_scanned": 1, "lines_scanned": "many"}, "findings": []},
        {"coverage": {"files_scanned": -1, "lines_scanned": 1}, "findings": []},
        {"coverage": {"files_scanned": True, "lines_scanned": 1}, "findings": []},
        {"coverage": {"files_scanned": 1, "lines_scanned": 1}, "findings": {}},
    ],
)
def test_a_report_without_usable_coverage_is_an_error(report):
    with pytest.raises(ReportShapeError):
        ScanSize.from_report(report)


def test_an_estimate_gives_a_range_around_the_report():
    estimate = estimate_build(ScanSize.from_report(REPORT), DEEP_SCAN_ROLES, PRICES, BUDGET)
    assert (estimate.files, estimate.lines, estimate.findings) == (17, 321, 2)
    assert estimate.roles == DEEP_SCAN_ROLES
    assert 0 < estimate.tokens_low < estimate.tokens_high
    assert estimate.tokens_high / estimate.tokens_low == pytest.approx(1.4 / 0.6, rel=1e-3)
    assert 0 < estimate.cost_low < estimate.cost_high < BUDGET.max_cost_usd
    assert estimate.capped_at == BUDGET.max_cost_usd and estimate.priced
    assert "Tier 1 scan" in estimate.basis and "17 files" in estimate.basis


def test_a_small_report_is_estimated_by_the_formula():
    # 5 roles × 15,000 overhead, the scanner reading 3,500 bytes 3 times, no findings; +10% output.
    scan = ScanSize(files=1, lines=100, bytes=3500, findings=0)
    estimate = estimate_build(scan, ("scanner",) * 5, Prices(), BUDGET)
    central = 5 * (15_000 + 3 * 1000) * 1.1
    assert (estimate.tokens_low, estimate.tokens_high) == (
        round(central * 0.6),
        round(central * 1.4),
    )


@pytest.mark.parametrize("field", ["tokens_low", "tokens_high", "cost_low", "cost_high"])
def test_estimates_grow_with_the_repository(field):
    sizes = [_size(kb) for kb in (1, 10, 100, 500)]
    values = [getattr(estimate_build(s, DEEP_SCAN_ROLES, PRICES, BUDGET), field) for s in sizes]
    assert values == sorted(values) and len(set(values)) == len(values)


def test_estimates_grow_with_the_findings_to_check():
    few, many = (
        estimate_build(_size(20, findings), DEEP_SCAN_ROLES, PRICES, BUDGET) for findings in (1, 30)
    )
    assert many.tokens_high > few.tokens_high and many.cost_high > few.cost_high


def test_reading_stops_at_what_the_iterations_allow():
    # Past the plateau (40 iterations × 8 KB per role), a bigger repository reads no more.
    huge, huger = (
        estimate_build(_size(kb), DEEP_SCAN_ROLES, Prices(), BUDGET) for kb in (50_000, 500_000)
    )
    assert huge.tokens_high == huger.tokens_high
    fewer_turns = BUDGET.model_copy(
        update={"agent": BUDGET.agent.model_copy(update={"max_iterations": 10})}
    )
    assert estimate_build(_size(50_000), DEEP_SCAN_ROLES, Prices(), fewer_turns).tokens_high < (
        huge.tokens_high
    )


def test_zero_price_costs_nothing_but_tokens_are_still_estimated():
    estimate = estimate_build(_size(100, 5), DEEP_SCAN_ROLES, Prices(), BUDGET)
    assert (estimate.cost_low, estimate.cost_high, estimate.priced) == (0, 0, False)
    priced = estimate_build(_size(100, 5), DEEP_SCAN_ROLES, PRICES, BUDGET)
    assert priced.cost_high < BUDGET.max_cost_usd  # no cap binds, so the tokens are the same
    assert (estimate.tokens_low, estimate.tokens_high) == (priced.tokens_low, priced.tokens_high)
    assert not needs_confirmation(estimate, 0.0)


def test_the_build_cap_is_never_exceeded():
    expensive = Prices(input_per_token=1e-3, output_per_token=1e-3)
    estimate = estimate_build(_size(500, 40), DEEP_SCAN_ROLES, expensive, BUDGET)
    assert estimate.cost_high == BUDGET.max_cost_usd
    assert estimate.cost_low <= estimate.cost_high
    assert estimate.tokens_high == round(BUDGET.max_cost_usd / 1e-3)  # what the cap buys


def test_no_agent_is_quoted_above_its_own_cap():
    # One role, a big repository, and an agent cap well under the build's.
    budget = BuildBudget(
        max_cost_usd=5.0,
        confirm_over_usd=1.0,
        agent=AgentBudget(max_iterations=40, max_cost_usd=0.2, wall_seconds=600),
    )
    estimate = estimate_build(_size(500, 10), ("scanner",), PRICES, budget)
    assert estimate.cost_high == pytest.approx(0.2)


def test_without_a_report_the_high_end_is_the_cap():
    estimate = estimate_build(None, DEEP_SCAN_ROLES, PRICES, BUDGET)
    assert (estimate.files, estimate.lines, estimate.findings) == (None, None, None)
    assert estimate.cost_high == BUDGET.max_cost_usd
    assert 0 < estimate.cost_low < estimate.cost_high
    assert "no Tier 1 scan" in estimate.basis and "budget cap" in estimate.basis
    assert needs_confirmation(estimate, BUDGET.confirm_over_usd)


def test_without_a_report_tokens_still_range_from_overhead_to_the_reading_plateau():
    estimate = estimate_build(None, DEEP_SCAN_ROLES, Prices(), BUDGET)
    assert estimate.cost_high == 0
    assert estimate.tokens_low == round(5 * 15_000 * 1.1)  # the roles' overhead
    # Every role reads its most: 40 iterations × 8 KB, sent 3 times, at 3.5 bytes a token.
    assert estimate.tokens_high == round(5 * (15_000 + 3 * 40 * 8_000 / 3.5) * 1.1)


@pytest.mark.parametrize(
    ("cost_high", "threshold", "waits"),
    [(0.99, 1.0, False), (1.0, 1.0, False), (1.01, 1.0, True), (0.01, 0.0, True)],
)
def test_confirmation_is_needed_above_the_threshold(cost_high, threshold, waits):
    estimate = estimate_build(_size(10), DEEP_SCAN_ROLES, PRICES, BUDGET)
    assert needs_confirmation(replace(estimate, cost_high=cost_high), threshold) is waits


def test_a_quote_over_the_threshold_says_how_to_confirm():
    estimate = estimate_build(_size(500, 12), DEEP_SCAN_ROLES, PRICES, BUDGET)
    assert needs_confirmation(estimate, BUDGET.confirm_over_usd)
    text = render_quote(estimate, threshold=BUDGET.confirm_over_usd, confirm_command=CONFIRM)
    assert "- Size: 250 files, 14,705 lines, 12 findings" in text
    assert "- Agents: scanner, prober, security, planner, educator" in text
    assert f"- Estimated tokens: {estimate.tokens_low // 1000}k" in text
    assert f"${estimate.cost_low:.2f}–${estimate.cost_high:.2f}" in text
    assert "the budget stops the build at $5.00" in text
    assert "more than $1.00" in text and f"reply `{CONFIRM}` to start it" in text


def test_a_quote_within_the_threshold_starts_without_confirmation():
    estimate = estimate_build(ScanSize.from_report(REPORT), DEEP_SCAN_ROLES, PRICES, BUDGET)
    text = render_quote(estimate, threshold=2.0, confirm_command=CONFIRM)
    assert "within $2.00, so it starts without a confirmation" in text
    assert CONFIRM not in text
    assert "Estimated from the Tier 1 scan of this commit (17 files" in text


def test_a_quote_without_report_or_price_says_what_is_unknown():
    text = render_quote(
        estimate_build(None, DEEP_SCAN_ROLES, Prices(), BUDGET),
        threshold=1.0,
        confirm_command=CONFIRM,
    )
    assert "- Size: unknown (no Tier 1 scan of this commit)" in text
    assert "- Estimated cost: unknown: this model has no price" in text


@pytest.mark.parametrize(
    "call",
    [
        lambda: estimate_build(_size(1), (), PRICES, BUDGET),
        lambda: Prices(input_per_token=-1e-6),
        lambda: Prices(output_per_token=float("inf")),
    ],
)
def test_misuse_is_an_error(call):
    with pytest.raises(ValueError):
        call()
