"""What a deep scan publishes: the report comment, the check run output and the deep score."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.agents.contracts import (
    Concern,
    EducatorOutput,
    Evidence,
    FindingVerdict,
    Lesson,
    PlannerOutput,
    PlanStep,
    ProberOutput,
    ProbeStep,
)
from orchestrator.deep_plan import deep_score, plan_order
from orchestrator.deep_render import check_run_output, report_comment
from orchestrator.deep_report import REPORT_MARKER, AgentUsage, DeepReport
from orchestrator.publish_comment import COMMENT_LIMIT, short_id
from orchestrator.publish_render import OUTPUT_LIMIT, TITLE_LIMIT
from scanner.engine import scan_tree
from scanner.model import Severity
from scanner.options import ScanOptions
from scanner.report.json import document

SAMPLE_APP = Path(__file__).parent / "fixtures" / "sample_app"
BUILD_URL = "https://clarity.example.com/builds/77"
POINTER = f"[Open the build]({BUILD_URL})"
# Realistic key shapes, assembled at run time so that this file holds none.
SECRETS = ("AKIA" + "Z7Q2XK4MRT5WN3PB", "ghp_" + "R8c2Vb7Lq0Wm4Tz9Yx1Ns5Kd3Hf6Jg8Pa2Ue")
SQL, SECRET, RETRY, LOG = ("a1" * 16, "b2" * 16, "c3" * 16, "d4" * 16)  # fingerprints


def tier1_finding(fingerprint: str, severity: str, title: str, **changes) -> dict:
    base = {
        "rule_id": "js-sql-injection",
        "title": title,
        "severity": severity,
        "category": "security",
        "cwe": "CWE-89",
        "path": "api/orders.ts",
        "line": 42,
        "message": title,
        "evidence": "db.query(`SELECT * FROM orders WHERE id = ${id}`)",
        "fix": "Use a parameterised query.",
        "fingerprint": fingerprint,
    }
    return {**base, **changes}


def tier1_findings() -> list[dict]:
    return [
        tier1_finding(SQL, "high", "SQL built from user input"),
        tier1_finding(SECRET, "critical", "Service key in client code", path="src/lib/db.ts"),
        tier1_finding(RETRY, "medium", "Fetch without error handling", category="reliability"),
        tier1_finding(LOG, "low", "console.log left in", category="maintainability"),
    ]


def verdict(fingerprint: str, decision: str = "confirmed", reasoning: str = "", **changes):
    reasoning = reasoning or f"The code at the cited line shows it is {decision}."
    return FindingVerdict(
        fingerprint=fingerprint,
        verdict=decision,
        confidence=changes.pop("confidence", 0.9),
        reasoning=reasoning,
        evidence=[Evidence(path="api/orders.ts", line=42, excerpt="db.query(...)")],
        **changes,
    )


def concern(title: str = "No authorisation on admin routes", **changes) -> Concern:
    base = {
        "title": title,
        "severity": Severity.HIGH,
        "category": "security",
        "area": "auth",
        "explanation": "Any signed-in user can call /api/admin/users and list every account.",
        "evidence": [Evidence(path="api/admin.ts", line=12, excerpt="router.get('/users', list)")],
    }
    return Concern(**{**base, **changes})


def step(id: str, effort: str = "s", findings=(), depends_on=(), **changes) -> PlanStep:
    return PlanStep(
        id=id,
        title=changes.pop("title", f"Step {id}"),
        findings=list(findings),
        effort=effort,
        depends_on=list(depends_on),
        rationale=changes.pop("rationale", "It removes the risk at its source."),
        **changes,
    )


def plan(*steps: PlanStep) -> PlannerOutput:
    return PlannerOutput(summary="Fix the leaked key first, then the queries.", steps=list(steps))


def deep_report(**changes) -> DeepReport:
    """An autonomous deep scan of a small Next.js app: every section filled."""
    base = {
        "mode": "autonomous",
        "head_sha": "3f9c2a7" + "0" * 33,
        "conclusion": "failure",
        "title": "1 confirmed critical finding",
        "reason": "A service key is exposed to the browser.",
        "tier1_score": 62,
        "deep_score": 71,
        "findings": tier1_findings(),
        "verdicts": [
            verdict(SQL),
            verdict(SECRET, confidence=0.97),
            verdict(RETRY, "rejected", "The fetch is wrapped by a retrying client in lib/http.ts."),
            verdict(LOG, "rejected", "Only runs in development builds."),
        ],
        "concerns": [concern()],
        "architecture": "Next.js app router with Supabase for auth and data.",
        "probe": ProberOutput(
            summary="Installs and builds; no tests are defined.",
            runnable=True,
            steps=[
                ProbeStep(
                    name="install", command="npm ci", outcome="passed", exit_code=0, detail=""
                ),
                ProbeStep(
                    name="build", command="npm run build", outcome="passed", exit_code=0, detail=""
                ),
                ProbeStep(
                    name="test",
                    command="",
                    outcome="skipped",
                    detail="No test script in package.json.",
                ),
                ProbeStep(
                    name="start",
                    command="npm start",
                    outcome="failed",
                    exit_code=1,
                    detail="EADDRINUSE",
                ),
            ],
        ),
        "plan": plan(
            step("rotate-key", "s", [SECRET], ["move-to-server"], title="Rotate the service key"),
            step("move-to-server", "m", [], title="Move database calls to a server route"),
            step("parameterise", "xs", [SQL], title="Parameterise the orders query"),
        ),
        "education": EducatorOutput(
            summary="Two problems let strangers read or change your data.",
            lessons=[
                Lesson(
                    fingerprint=SECRET,
                    why_it_matters="Anyone who opens the site can read the key.",
                    business_impact="A stranger could delete every customer record.",
                ),
                Lesson(
                    fingerprint=SQL,
                    why_it_matters="Input becomes part of the query.",
                    business_impact="Orders of other customers can be read.",
                ),
            ],
        ),
        "usage": [
            AgentUsage(
                role="security",
                model="claude-sonnet",
                status="finished",
                iterations=7,
                cost_usd=0.0412,
                duration_seconds=48,
            ),
            AgentUsage(
                role="planner",
                model="claude-sonnet",
                status="finished",
                iterations=3,
                cost_usd=0.0131,
                duration_seconds=21,
            ),
        ],
        "cost_usd": 0.0543,
        "duration_seconds": 192,
        "build_url": BUILD_URL,
    }
    return DeepReport(**{**base, **changes})


def deterministic_report(**changes) -> DeepReport:
    base = {
        "mode": "deterministic",
        "fallback_reason": "the model provider answered 529 (overloaded) three times",
        "head_sha": "3f9c2a7" + "0" * 33,
        "conclusion": "failure",
        "title": "1 critical finding",
        "reason": "A service key is exposed to the browser.",
        "tier1_score": 40,
        "findings": tier1_findings(),
        "build_url": BUILD_URL,
    }
    return DeepReport(**{**base, **changes})


def outputs(report: DeepReport) -> list[str]:
    """Everything published for `report`: the comment and each check run output field."""
    return [report_comment(report), *check_run_output(report).values()]


def heading_section(body: str, heading: str) -> str:
    """The text from `heading` to the next `####` heading."""
    start = body.index(heading)
    end = body.find("\n#### ", start + len(heading))
    return body[start : end if end > 0 else len(body)]


def cell_pipes(line: str) -> int:
    """The pipes that split a table row, read as GitHub does: `\\` escapes any punctuation."""
    return sum(1 for m in re.finditer(r"\\[!-/:-@\[-`{-~]|\|", line) if m[0] == "|")


# -- the comment


def test_comment_starts_with_marker_and_links_the_build():
    body = report_comment(deep_report())
    assert body.startswith(REPORT_MARKER + "\n")
    assert body.rstrip().endswith(POINTER)


@pytest.mark.parametrize(
    ("tier1", "deep", "shown"),
    [(62, 71, "62 → 71 (+9)"), (71, 55, "71 → 55 (-16)"), (80, 80, "80 → 80 (±0)")],
)
def test_health_shows_the_tier1_and_deep_scores_with_their_delta(tier1, deep, shown):
    report = deep_report(tier1_score=tier1, deep_score=deep)
    assert f"**Health {shown}**" in report_comment(report)
    assert check_run_output(report)["summary"].startswith(f"## Health {shown}\n")


def test_deterministic_mode_says_why_and_lists_tier1_findings_only():
    report = deterministic_report()
    body = report_comment(report)
    assert "Ran without agents: the model provider answered 529 (overloaded) three times" in body
    assert "#### Tier 1 findings (4)" in body
    assert all(short_id(f["fingerprint"]) in body for f in report.findings)
    for agent_section in ("Confirmed", "rejected", "Concerns", "Probe", "Remediation", "matter"):
        assert agent_section not in body
    assert "**Health 40**" in body and "→" not in body


def test_deterministic_check_run_says_it_ran_without_agents():
    output = check_run_output(deterministic_report())
    assert output["title"] == "Health 40 · 1 critical, 1 high, 1 medium, 1 low · ran without agents"
    assert "Ran without agents: the model provider" in output["summary"]
    assert "| category | Tier 1 |\n" in output["summary"]


def test_confirmed_findings_are_listed_and_rejected_ones_collapsed_with_reasoning():
    body = report_comment(deep_report())
    confirmed = heading_section(body, "#### Confirmed findings (2)")
    assert short_id(SQL) in confirmed and short_id(SECRET) in confirmed
    assert "97%" in confirmed and "`src/lib/db.ts:42`" in confirmed
    # Worst first: the critical key before the high SQL injection.
    assert confirmed.index(short_id(SECRET)) < confirmed.index(short_id(SQL))
    rejected = confirmed[confirmed.index("<details><summary>2 rejected") :]
    assert short_id(RETRY) in rejected and short_id(LOG) in rejected
    assert "wrapped by a retrying client in lib/http.ts" in rejected
    assert short_id(RETRY) not in confirmed[: confirmed.index("<details>")]


def test_findings_without_a_verdict_are_listed_as_not_reviewed():
    report = deep_report(verdicts=[verdict(SQL)])
    body = report_comment(report)
    assert "<details><summary>3 findings the agents did not review</summary>" in body
    assert "#### Confirmed findings (1)" in body


def test_concerns_probe_and_education_are_shown():
    body = report_comment(deep_report())
    concerns = heading_section(body, "#### Concerns raised by the agents (1)")
    assert "| high | security | auth | No authorisation on admin routes |" in concerns
    assert "`api/admin.ts:12`" in concerns
    probe = heading_section(body, "#### Probe")
    assert "The app runs in the sandbox" in probe
    assert "| install | ✅ pass | `npm ci` |" in probe
    assert "| test | ⏭️ skip |" in probe
    assert "| start | ❌ fail (exit 1) | `npm start` | EADDRINUSE |" in probe
    lessons = heading_section(body, "#### Why these findings matter")
    assert lessons.count("<details><summary>CC-") == 2
    assert "**Business impact:** A stranger could delete every customer record." in lessons


def test_plan_is_in_dependency_order_then_worst_first():
    body = report_comment(deep_report())
    steps = re.findall(
        r"^\d+\. \*\*(.+?)\*\*", heading_section(body, "#### Remediation plan"), re.MULTILINE
    )
    # The SQL fix (high) is ready at once; the key rotation (critical) must wait for the move.
    assert steps == [
        "Parameterise the orders query",
        "Move database calls to a server route",
        "Rotate the service key",
    ]
    assert re.search(r"^3\. \*\*Rotate the service key\*\* .* · after step 2$", body, re.MULTILINE)


def test_plan_order_breaks_ties_by_severity_then_effort():
    severities = {SECRET: Severity.CRITICAL, SQL: Severity.HIGH}
    steps = [
        step("docs", "xs"),
        step("big-sql", "l", [SQL]),
        step("small-sql", "s", [SQL]),
        step("key", "m", [SECRET], ["docs"]),
    ]
    order = [s.id for s in plan_order(steps, severities)]
    assert order == ["small-sql", "big-sql", "docs", "key"]


def test_plan_order_puts_every_step_after_its_dependencies():
    steps = [
        step("c", "xs", [SECRET], ["b"]),
        step("b", "xs", [], ["a"]),
        step("a", "xl", []),
        step("d", "xs", [SQL]),
    ]
    order = [s.id for s in plan_order(steps, {SECRET: Severity.CRITICAL, SQL: Severity.HIGH})]
    assert order == ["d", "a", "b", "c"]


def test_plan_shows_effort_per_step_and_the_total():
    body = report_comment(deep_report())
    plan_section = heading_section(body, "#### Remediation plan")
    assert plan_section.startswith("#### Remediation plan (3 steps, about 6.5 h in total)")
    assert "effort m (4 h)" in plan_section
    assert "effort xs (0.5 h)" in plan_section
    assert "effort s (2 h)" in plan_section
    assert "about 6.5 h" in check_run_output(deep_report())["summary"]


def test_cost_duration_and_usage_per_agent():
    body = report_comment(deep_report())
    assert "Cost $0.0543 · took 3 min 12 s." in body
    assert "| security | `claude-sonnet` | finished | 7 | $0.0412 | 48 s |" in body
    assert "Cost $1.50 · took 45 s." in report_comment(
        deep_report(cost_usd=1.5, duration_seconds=45)
    )


# -- masking and escaping


@pytest.mark.parametrize("secret", SECRETS)
def test_a_secret_in_any_agent_text_is_masked_everywhere(secret):
    leak = f"found {secret} in .env"
    report = deep_report(
        title=f"key {secret}",
        reason=leak,
        verdicts=[verdict(SQL, reasoning=leak), verdict(SECRET, "rejected", leak)],
        concerns=[
            concern(
                title=leak,
                explanation=leak,
                evidence=[Evidence(path="api/admin.ts", line=3, excerpt=f"KEY = '{secret}'")],
            )
        ],
        architecture=leak,
        probe=ProberOutput(
            summary=leak,
            runnable=False,
            steps=[
                ProbeStep(
                    name="start",
                    command=f"AWS_KEY={secret} npm start",
                    outcome="failed",
                    exit_code=1,
                    detail=leak,
                )
            ],
        ),
        plan=plan(step("rotate", "s", [SECRET], title=leak, rationale=leak)),
        education=EducatorOutput(
            summary=leak,
            lessons=[Lesson(fingerprint=SECRET, why_it_matters=leak, business_impact=leak)],
        ),
        usage=[AgentUsage(role="scanner", status="failed", error=f"401 for token {secret}")],
    )
    published = outputs(report)
    assert all(secret not in text for text in published)
    assert secret[:4] + "…" in published[0]  # masked, not dropped
    fallback = outputs(deterministic_report(fallback_reason=leak, reason=leak))
    assert all(secret not in text for text in fallback)


INJECTIONS = (
    "a | b | c",
    "</details></summary><details>",
    "```\n# Not a heading\n```",
    "~~~ fence",
    "a \\| b",
    "<!-- clarity-check:deep-scan -->",
    "`</details>` and ``x`` |",
)


def written_by_agents(text: str) -> DeepReport:
    """A deep report with `text` in every field an agent writes, and in a finding's title."""
    return deep_report(
        reason=text,
        findings=[tier1_finding(SQL, "high", text, path=text), *tier1_findings()[1:]],
        verdicts=[verdict(SQL, reasoning=text), verdict(RETRY, "rejected", text)],
        concerns=[concern(title=text, explanation=text)],
        architecture=text,
        plan=plan(step("fix", "s", [SQL], title=text, rationale=text)),
        education=EducatorOutput(
            summary=text,
            lessons=[Lesson(fingerprint=SQL, why_it_matters=text, business_impact=text)],
        ),
    )


def outside_code(text: str) -> str:
    """`text` without its inline code spans: what is shown as code opens and closes nothing."""
    return re.sub(r"`[^`\n]*`", "", text)


def row_widths(text: str) -> list[list[int]]:
    """For each table, the number of cell-splitting pipes of each of its rows."""
    tables: list[list[int]] = []
    previous = ""
    for line in text.splitlines():
        if line.startswith("|"):
            if not previous.startswith("|"):
                tables.append([])
            tables[-1].append(cell_pipes(line))
        previous = line
    return tables


@pytest.mark.parametrize("evil", INJECTIONS)
def test_markdown_in_agent_text_does_not_break_the_structure(evil):
    published = outputs(written_by_agents(evil))
    for text, reference in zip(published, outputs(written_by_agents("plain")), strict=True):
        for tag in ("<details>", "</details>", "<summary>", "</summary>", REPORT_MARKER):
            assert outside_code(text).count(tag) == outside_code(reference).count(tag), tag
        blocks = ("#", "```", "~~~")
        headings = [line for line in text.splitlines() if line.lstrip().startswith(blocks)]
        assert headings == [line for line in reference.splitlines() if line.startswith("#")]
        assert all(len(set(widths)) == 1 for widths in row_widths(text)), row_widths(text)


# -- limits


def huge_findings(count: int) -> list[dict]:
    severities = ("critical", "high", "medium", "low")
    return [tier1_finding(f"{i:032x}", severities[i % 4], f"Problem {i}") for i in range(count)]


def huge_report() -> DeepReport:
    """Every list an agent answers at its contract's maximum, every text at its longest."""
    words = "The query joins user input into SQL | and returns every row <b>now</b>. " * 40
    findings = huge_findings(500)
    return deep_report(
        findings=findings,
        verdicts=[
            verdict(f["fingerprint"], ("confirmed", "rejected")[i % 2], words[:2000])
            for i, f in enumerate(findings)
        ],
        concerns=[concern(f"Concern {i}", explanation=words[:2000]) for i in range(30)],
        plan=plan(
            *(
                step(f"s{i}", "xl", [findings[i]["fingerprint"]], rationale=words[:2000])
                for i in range(40)
            )
        ),
        education=EducatorOutput(
            summary=words[:2000],
            lessons=[
                Lesson(
                    fingerprint=f["fingerprint"],
                    why_it_matters=words[:1500],
                    business_impact=words[:1000],
                )
                for f in findings[:200]
            ],
        ),
    )


@pytest.mark.parametrize("mode", ["autonomous", "deterministic"])
def test_huge_reports_stay_within_the_limits_and_point_to_the_build(mode):
    report = (
        huge_report()
        if mode == "autonomous"
        else deterministic_report(findings=huge_findings(3000))
    )
    body = report_comment(report)
    assert len(body) <= COMMENT_LIMIT
    assert body.rstrip().endswith(POINTER)
    assert "more on the build page" in body
    output = check_run_output(report)
    assert len(output["title"]) <= TITLE_LIMIT
    assert len(output["summary"]) <= OUTPUT_LIMIT and len(output["text"]) <= OUTPUT_LIMIT
    assert POINTER in output["summary"]
    for text in (body, output["text"]):
        assert text.count("<details>") == text.count("</details>")
        assert all(line.endswith("|") for line in text.splitlines() if line.startswith("|"))


def test_a_long_table_does_not_crowd_out_the_other_sections():
    body = report_comment(huge_report())
    for heading in ("Confirmed findings", "rejected as false positives", "Concerns", "Probe"):
        assert heading in body
    for heading in ("Remediation plan (40 steps, about 640 h in total)", "Why these findings"):
        assert heading in body
    assert body.count("more on the build page") >= 4


def test_check_run_title_is_short():
    output = check_run_output(deep_report())
    assert output["title"] == "Health 62 → 71 · 2 confirmed, 2 rejected"
    assert set(output) == {"title", "summary", "text"}
    assert "| security | 40 | " in output["summary"]
    assert output["text"].startswith("#### Confirmed findings (2)")


# -- the deep score


@pytest.fixture(scope="module")
def sample_report() -> dict:
    return document(scan_tree(SAMPLE_APP, ScanOptions(jobs=1)))


def test_deep_score_equals_the_tier1_score_when_nothing_changes(sample_report):
    overall, categories = deep_score(sample_report["findings"], [], [])
    assert overall == sample_report["score"]["overall"]
    assert categories == sample_report["score"]["categories"]
    confirmed = [verdict(f["fingerprint"]) for f in sample_report["findings"]]
    assert deep_score(sample_report["findings"], confirmed, [])[0] == overall


def test_rejecting_a_critical_finding_raises_the_score():
    before, categories_before = deep_score(tier1_findings(), [], [])
    after, categories_after = deep_score(tier1_findings(), [verdict(SECRET, "rejected")], [])
    assert (before, after) == (40, 75)  # no longer capped by an open critical
    assert categories_after["security"] > categories_before["security"]


def test_a_critical_concern_lowers_the_score():
    findings = [f for f in tier1_findings() if f["severity"] in ("medium", "low")]
    before, _ = deep_score(findings, [], [])
    critical = concern(severity=Severity.CRITICAL, category="scalability", area="data_access")
    after, categories = deep_score(findings, [], [critical])
    assert after < before and after <= 40
    assert categories["scalability"] == 60
