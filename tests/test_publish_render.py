"""What the pull-request loop publishes: check-run output, annotations, the sticky comment, ids."""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from orchestrator import publish_comment, publish_render
from orchestrator.publish_comment import (
    COMMENT_LIMIT,
    COMMENT_MARKER,
    TRUNCATED,
    bounded,
    is_sticky,
    resolve_short_id,
    should_comment,
    sticky_comment,
)
from orchestrator.publish_render import (
    ANNOTATION_BYTES,
    OUTPUT_LIMIT,
    TITLE_LIMIT,
    CheckRunOutput,
    Comparison,
    annotation_batches,
    changed_lines,
    check_run_output,
    neutral_output,
    short_id,
    superseded_output,
)
from scanner.engine import scan_tree
from scanner.options import ScanOptions
from scanner.report.json import document

SAMPLE_APP = Path(__file__).parent / "fixtures" / "sample_app"
BUILD_URL = "https://clarity.example.com/builds/42"
SHORT = re.compile(r"CC-[0-9A-HJKMNP-TV-Z]{6}")
# Realistic key shapes, assembled at run time so that this file holds none.
SECRETS = (
    "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc" + "Xq9Lm2Vb",
    "AKIA" + "Z7Q2XK4MRT5WN3PB",
    "ghp_" + "R8c2Vb7Lq0Wm4Tz9Yx1Ns5Kd3Hf6Jg8Pa2Ue",
)
SEVERITIES = ("critical", "high", "medium", "low", "info")


@pytest.fixture(scope="module")
def report() -> dict:
    return document(scan_tree(SAMPLE_APP, ScanOptions(jobs=1)))


@pytest.fixture(scope="module")
def comparison(report) -> Comparison:
    """The pull request added everything in api/main.py and fixed one older finding."""
    head = report["findings"]
    gone = {**head[-1], "fingerprint": "0" * 32, "path": "api/old.py", "title": "Old problem"}
    return Comparison(
        new=[f for f in head if f["path"] == "api/main.py"],
        fixed=[gone],
        persisting=[f for f in head if f["path"] != "api/main.py"],
    )


def finding(index: int, **changes) -> dict:
    """A synthetic report finding; long texts, so that size limits are reached."""
    base = {
        "rule_id": f"rule-{index % 40}",
        "title": f"Problem number {index % 40} in the code",
        "severity": SEVERITIES[index % 5],
        "category": "security",
        "cwe": "CWE-89",
        "path": f"src/module_{index % 97}/file_{index}.py",
        "line": 10 + index % 50,
        "column": 5,
        "end_line": 10 + index % 50,
        "end_column": 40,
        "message": f"Finding {index}: " + "this explains what is wrong at length. " * 8,
        "evidence": f"token = {SECRETS[index % 3]!r}",
        "fix": "Do the right thing instead, as the documentation describes. " * 3,
        "fingerprint": hashlib.md5(str(index).encode()).hexdigest(),
    }
    return base | changes


def synthetic(count: int) -> tuple[dict, Comparison, dict[str, frozenset[int]]]:
    findings = [finding(i) for i in range(count)]
    report = {
        "score": {"overall": 12, "categories": {"security": 0, "reliability": 40}},
        "findings": findings,
        "coverage": {"files_scanned": count, "lines_scanned": 99 * count},
    }
    comparison = Comparison(new=findings[::2], fixed=findings[:5], persisting=findings[1::2])
    changed = {f["path"]: frozenset(range(1, 100)) for f in findings}
    return report, comparison, changed


def outputs(report, comparison, changed) -> tuple[CheckRunOutput, str]:
    check = check_run_output(
        report,
        comparison,
        conclusion="failure",
        verdict_reason="findings at or above high",
        build_url=BUILD_URL,
        changed=changed,
    )
    comment = sticky_comment(
        report, comparison, conclusion="failure", build_url=BUILD_URL, since="a" * 40
    )
    return check, comment


def everything(check: CheckRunOutput, comment: str) -> str:
    return "\n".join(
        [check.title, check.summary, check.text, json.dumps(check.annotations), comment]
    )


def test_short_id_is_typable_and_distinct(report):
    ids = [short_id(f["fingerprint"]) for f in report["findings"]]
    assert all(SHORT.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("fingerprint", "expected"),
    [("0" * 32, "CC-GKGC1T"), ("ba53528bc70e7da2a8e2ce4a74d36e90", "CC-ZCDRCA")],
)
def test_short_id_never_changes_for_a_fingerprint(fingerprint, expected):
    # Users type ids seen on an earlier push: the mapping is part of the interface.
    assert short_id(fingerprint) == expected


@pytest.mark.parametrize(
    "typed",
    [
        lambda s: s,
        lambda s: s.lower(),
        lambda s: s.removeprefix("CC-"),
        lambda s: "  " + s.removeprefix("CC-").lower() + "\n",
        lambda s: s.replace("-", ""),
        lambda s: s.replace("0", "o").replace("1", "l"),
    ],
    ids=["exact", "lower", "no-prefix", "spaces", "no-hyphen", "confusables"],
)
def test_resolve_short_id_forgives_how_it_was_typed(report, typed):
    prints = [f["fingerprint"] for f in report["findings"]]
    for fingerprint in prints:
        assert resolve_short_id(typed(short_id(fingerprint)), prints) == fingerprint


def test_resolve_short_id_refuses_unknown_and_ambiguous_ids():
    seen: dict[str, str] = {}
    for index in range(200_000):  # 30-bit ids: a shared one turns up within ~40,000
        fingerprint = f"fp-{index}"
        short = short_id(fingerprint)
        if short in seen:
            pair = [seen[short], fingerprint]
            break
        seen[short] = fingerprint
    assert resolve_short_id(short, pair) is None
    assert resolve_short_id(pair[1], pair) == pair[1]  # the full fingerprint still works
    assert resolve_short_id("CC-ZZZZZZ", ["0" * 32]) is None
    assert resolve_short_id("CC-12", [short]) is None


PATCH = """\
@@ -1,4 +1,5 @@
 import os
-import sys
+import json
+import re

 def main():
@@ -20,3 +21,4 @@ def main():
     run()
+    stop()
     return 0
\\ No newline at end of file
+"""


@pytest.mark.parametrize(
    ("item", "lines"),
    [
        ({"filename": "app.py", "status": "modified", "patch": PATCH}, {2, 3, 22, 24}),
        ({"filename": "new.py", "status": "added", "patch": "@@ -0,0 +1,2 @@\n+a\n+b"}, {1, 2}),
        (
            {"filename": "b.py", "previous_filename": "a.py", "status": "renamed", "patch": PATCH},
            {2, 3, 22, 24},
        ),
        ({"filename": "gone.py", "status": "removed", "patch": "@@ -1,2 +0,0 @@\n-a\n-b"}, set()),
        ({"filename": "logo.png", "status": "added"}, set()),
        ({"filename": "big.sql", "status": "modified", "patch": None}, set()),
        ({"filename": "del.py", "status": "modified", "patch": "@@ -3,2 +2,0 @@\n-a\n-b"}, set()),
        # GitHub's own example entry (REST description): headers and no lines.
        (
            {
                "filename": "file1.txt",
                "status": "added",
                "patch": "@@ -132,7 +132,7 @@ module Test @@ -1000,7 +1000,7 @@ module Test",
            },
            set(),
        ),
    ],
    ids=["hunks", "added", "renamed", "removed", "binary", "big", "deletion", "github-example"],
)
def test_changed_lines_are_the_head_side_additions(item, lines):
    assert changed_lines([item]) == {item["filename"]: frozenset(lines)}


def test_changed_lines_counts_a_plus_plus_line_and_a_form_feed_as_one_line_each():
    patch = "@@ -1,1 +1,3 @@\n x\n+++ not a header\n+page\x0cbreak\n"
    assert changed_lines([{"filename": "a.py", "status": "modified", "patch": patch}]) == {
        "a.py": frozenset({2, 3})
    }


def test_check_run_title_counts_new_findings_by_severity(report, comparison):
    check, _ = outputs(report, comparison, None)
    counts = Counter(f["severity"] for f in comparison.new)
    parts = [f"{counts[s]} new {s}" for s in SEVERITIES if counts[s]]
    assert check.title == f"Health {report['score']['overall']}/100 · {', '.join(parts)}, 1 fixed"


def test_summary_has_score_categories_counts_reason_top_findings_coverage_and_link(
    report, comparison
):
    check, _ = outputs(report, comparison, None)
    summary = check.summary
    assert f"## Health {report['score']['overall']}/100" in summary
    assert "**Failing**: findings at or above high" in summary
    for category, value in report["score"]["categories"].items():
        assert f"| {category} | {value} |" in summary
    assert (
        f"**{len(comparison.new)} new**, **1 fixed**, {len(comparison.persisting)} persisting."
        in summary
    )
    rows = [line for line in summary.splitlines() if SHORT.search(line)]
    assert len(rows) == min(25, len(report["findings"]))
    assert all(" new " in row for row in rows[: len(comparison.new)])  # new ones come first
    ranks = [SEVERITIES.index(row.split(" | ")[1].removeprefix("new ")) for row in rows]
    split = len(comparison.new)
    assert ranks[:split] == sorted(ranks[:split]) and ranks[split:] == sorted(ranks[split:])
    worst = next(f for f in comparison.new if f["severity"] == "high")
    assert f"`{short_id(worst['fingerprint'])}`" in summary
    assert f"Scanned {report['coverage']['files_scanned']} files" in summary
    assert f"[Open the build]({BUILD_URL})" in summary
    assert "### Fixed findings (1)" in check.text and "Old problem" in check.text


def test_annotations_mark_only_findings_on_changed_lines(report, comparison):
    changed = {"api/main.py": frozenset({12, 19, 40, 57}), "src/lib/supabase.ts": frozenset({7})}
    check, _ = outputs(report, comparison, changed)
    marked = [
        (a["path"], a["start_line"], a["end_line"], a["annotation_level"])
        for a in check.annotations
    ]
    assert marked == [
        ("api/main.py", 10, 16, "failure"),  # a range that contains a changed line
        ("api/main.py", 19, 19, "warning"),
        ("api/main.py", 40, 40, "failure"),
        ("api/main.py", 57, 57, "notice"),
        ("src/lib/supabase.ts", 7, 7, "failure"),  # persisting, but on a changed line
    ]
    single = check.annotations[2]
    assert (single["start_column"], single["end_column"]) == (5, 83)
    assert "start_column" not in check.annotations[0]
    sql = next(f for f in report["findings"] if f["rule_id"] == "py-sql-injection")
    assert single["title"] == f"{short_id(sql['fingerprint'])} {sql['title']}"
    assert (
        sql["fix"] in single["message"]
        and f"/clarity fix {short_id(sql['fingerprint'])}" in single["message"]
    )
    assert "1 more" not in check.summary and "5 findings on changed lines" in check.summary


def test_a_push_without_a_diff_gets_no_annotations(report):
    check = check_run_output(
        report, None, conclusion="success", verdict_reason="ok", build_url=BUILD_URL, changed=None
    )
    assert check.annotations == ()
    assert check.title.startswith(f"Health {report['score']['overall']}/100 · 2 critical")


@pytest.mark.parametrize(
    ("count", "annotated", "batch_sizes", "comment_cut"),
    [(120, 120, [50, 50, 20], False), (5_000, 500, [50] * 10, True)],
)
def test_outputs_stay_within_github_limits(count, annotated, batch_sizes, comment_cut):
    report, comparison, changed = synthetic(count)
    check, comment = outputs(report, comparison, changed)
    assert len(check.title) <= TITLE_LIMIT
    assert len(check.summary) <= OUTPUT_LIMIT and len(check.text) <= OUTPUT_LIMIT
    assert len(comment) <= COMMENT_LIMIT and comment.endswith("</sub>\n")
    assert ("more on the build page." in comment) is comment_cut
    assert f"…and {count - 25} more in the details below." in check.summary
    assert "more on the build page." in check.text  # the details of 120 findings do not fit
    assert len(check.annotations) == annotated
    assert f"{annotated} findings on changed lines are annotated" in check.summary
    for note in check.annotations:
        assert len(note["title"]) <= TITLE_LIMIT
        assert len(note["message"].encode()) <= ANNOTATION_BYTES
    batches = annotation_batches(check.annotations)
    assert [len(batch) for batch in batches] == batch_sizes
    assert [a for batch in batches for a in batch] == list(check.annotations)


def test_bounded_cuts_at_a_line_and_says_so():
    text = bounded("a line of the report\n" * 10_000, OUTPUT_LIMIT)
    assert len(text) <= OUTPUT_LIMIT and text.endswith(TRUNCATED)
    assert text.removesuffix(TRUNCATED).endswith("a line of the report\n")


def test_an_enormous_finding_is_clipped_to_the_annotation_limit():
    report, _, _ = synthetic(1)
    report["findings"][0]["message"] = "é" * 100_000
    report["findings"][0]["evidence"] = "ü" * 100_000
    changed = {report["findings"][0]["path"]: frozenset({10})}
    check, comment = outputs(report, None, changed)
    (note,) = check.annotations
    assert len(note["message"].encode()) <= ANNOTATION_BYTES
    assert len(note["raw_details"].encode()) <= ANNOTATION_BYTES
    assert len(check.text) <= OUTPUT_LIMIT and len(comment) <= COMMENT_LIMIT


def test_planted_secrets_never_appear_in_any_output(report):
    planted = [
        finding(i, message=f"key {SECRETS[i % 3]} leaked", fix=f"rotate {SECRETS[(i + 1) % 3]}")
        for i in range(30)
    ]
    leaky = {**report, "findings": report["findings"] + planted}
    comparison = Comparison(new=planted[:10], fixed=planted[10:20], persisting=planted[20:])
    changed = {f["path"]: frozenset({f["line"]}) for f in planted}
    check, comment = outputs(leaky, comparison, changed)
    text = everything(check, comment)
    assert len(check.annotations) == 20
    for secret in SECRETS:
        assert secret not in text
        assert secret[:4] + "…" in text  # masked, not dropped


def test_the_verdict_reason_is_masked_too(report):
    check = check_run_output(
        report,
        None,
        conclusion="failure",
        verdict_reason=f"a gate failed near {SECRETS[0]}",
        build_url=BUILD_URL,
        changed=None,
    )
    assert SECRETS[0] not in check.summary and "a gate failed near sk_l…" in check.summary


def test_text_from_the_scanned_code_cannot_inject_html(report):
    hostile = finding(
        1,
        title="</details> <!-- hide the rest",
        fix="Run `alter table <name> enable row level security;` first",
    )
    comparison = Comparison(new=[hostile], persisting=report["findings"][:3])
    check, comment = outputs(report, comparison, None)
    assert "</details> <!--" not in comment and "&lt;/details&gt; &lt;!-- hide" in comment
    assert comment.count("</details>") == 1
    assert "`alter table <name> enable row level security;`" in check.summary


def table_widths(markdown: str) -> list[list[int]]:
    """For each table, the cells of each row, read strictly: `\\` escapes any punctuation."""
    tables: list[list[int]] = []
    previous = ""
    for line in markdown.splitlines():
        if line.startswith("|"):
            if not previous.startswith("|"):
                tables.append([])
            pipes = [m for m in re.finditer(r"\\[!-/:-@\[-`{-~]|\|", line) if m[0] == "|"]
            tables[-1].append(len(pipes) - 1)
        previous = line
    return tables


PIPES_AND_BACKTICKS = (
    "a\\|b",
    "a | b",
    "a\\\\|b \\ | c",
    "`x|y` and `a\\|b`",
    "``a|b`` and `c",
    "trailing \\",
)


@pytest.mark.parametrize("text", PIPES_AND_BACKTICKS)
def test_pipes_backslashes_and_backticks_stay_in_their_cell(text):
    hostile = finding(1, title=text, path=f"src/{text}.py", message=text, evidence=text, fix=text)
    report = {"score": {"overall": 50, "categories": {"security": 50}}, "findings": [hostile]}
    check, comment = outputs(report, Comparison(new=[hostile]), None)
    [row] = [line for line in comment.splitlines() if short_id(hostile["fingerprint"]) in line]
    assert table_widths(row) == [[4]]
    assert all(len(set(rows)) == 1 for rows in table_widths(check.summary)), check.summary


def test_pipes_are_entities_outside_code_and_escaped_inside():
    # `&#124;` and `&#92;` are what GitHub shows as `|` and `\`; in code an entity shows as typed.
    assert publish_comment.cell("a\\|b `c|d`") == "a&#92;&#124;b `c\\|d`"
    assert publish_comment.code("a\\|b") == "`a⧵\\|b`"


def test_outputs_do_not_depend_on_the_order_of_findings(report, comparison):
    shuffled = Comparison(
        new=random.Random(1).sample(list(comparison.new), len(comparison.new)),
        fixed=comparison.fixed,
        persisting=list(reversed(comparison.persisting)),
    )
    changed = {"api/main.py": frozenset(range(1, 80))}
    assert outputs(report, comparison, changed) == outputs(report, shuffled, changed)


def test_sticky_comment_lists_new_findings_persisting_collapsed_and_the_commands(
    report, comparison
):
    _, comment = outputs(report, comparison, None)
    assert comment.startswith(COMMENT_MARKER + "\n") and is_sticky(comment)
    assert f"health {report['score']['overall']}/100, failing" in comment.splitlines()[1]
    assert f"Since `aaaaaaa`: **{len(comparison.new)} new**, **1 fixed**" in comment
    new_part, persisting_part = comment.split("persisting findings</summary>")
    for item in comparison.new:
        where = f"`{item['path']}:{item['line']}`"
        assert f"| `{short_id(item['fingerprint'])}` | {item['severity']} | {where} |" in new_part
    for item in comparison.persisting:
        assert short_id(item["fingerprint"]) in persisting_part
    assert "<details>" in new_part and persisting_part.count("</details>") == 2  # persisting, fixed
    for command in ("/clarity fix <id>", "/clarity ignore <id> <reason>", "/clarity deep-scan"):
        assert command in comment
    assert f"[Open the build]({BUILD_URL})" in comment


def test_sticky_comment_for_a_clean_push_says_so(report):
    comment = sticky_comment(
        report, Comparison(), conclusion="success", build_url=BUILD_URL, since=None
    )
    assert "On this pull request: **0 new**, **0 fixed**, 0 persisting." in comment
    assert "No new findings." in comment and "<details>" not in comment


@pytest.mark.parametrize(
    "body",
    ["Looks good to me", "> " + COMMENT_MARKER, "text\n" + COMMENT_MARKER, ""],
)
def test_other_comments_are_not_sticky(body):
    assert not is_sticky(body)


ONE = [{"fingerprint": "f" * 32}]


@pytest.mark.parametrize(
    ("mode", "comparison", "existing", "expected"),
    [
        ("never", Comparison(new=ONE), True, False),
        ("always", Comparison(), False, True),
        ("on-findings", Comparison(new=ONE), False, True),
        ("on-findings", Comparison(persisting=ONE), False, True),
        ("on-findings", Comparison(), False, False),  # clean, nothing to say
        ("on-findings", Comparison(fixed=ONE), False, False),
        ("on-findings", Comparison(fixed=ONE), True, True),  # update the old list: all fixed
        ("on-findings", Comparison(), True, True),
        ("on-findings", None, False, False),
    ],
)
def test_should_comment(mode, comparison, existing, expected):
    assert should_comment(mode, comparison, existing) is expected


def test_should_comment_refuses_an_unknown_mode():
    with pytest.raises(ValueError):
        should_comment("sometimes", Comparison(), False)


def test_neutral_output_explains_a_configuration_error_without_leaking():
    reason = f".clarity.yml line 4: `gates.fail_on`: unknown severity 'urgent' (token {SECRETS[2]})"
    output = neutral_output(".clarity.yml is invalid", reason, BUILD_URL)
    assert output.title == ".clarity.yml is invalid" and output.annotations == ()
    assert "line 4" in output.summary and "gates.fail_on" in output.summary
    assert "neutral" in output.summary and BUILD_URL in output.summary
    assert SECRETS[2] not in output.summary


def test_superseded_output_names_the_newer_commit():
    output = superseded_output("0123456789abcdef" * 2 + "01234567", BUILD_URL)
    assert output.title == "Superseded by a newer push"
    assert "`0123456789ab`" in output.summary and BUILD_URL in output.summary


@pytest.mark.parametrize("size", [0, 51])
def test_annotation_batches_refuse_sizes_github_does_not_take(size):
    with pytest.raises(ValueError):
        annotation_batches([], size)


def test_build_links_cannot_break_out_of_markdown():
    output = superseded_output("abc1234", "https://x.example/b?q=a b)(c")
    assert "(https://x.example/b?q=a%20b%29%28c)" in output.summary
    assert "javascript" not in superseded_output("abc1234", "javascript:alert(1)").summary


def test_the_comment_api_is_importable_from_publish_render_too():
    for name in ("COMMENT_MARKER", "is_sticky", "should_comment", "sticky_comment", "short_id"):
        assert getattr(publish_render, name) is getattr(publish_comment, name)
