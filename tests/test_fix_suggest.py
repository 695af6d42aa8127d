"""A small fix as GitHub suggested changes: one comment per hunk, on the head's own lines."""

from __future__ import annotations

import difflib

import pytest

from orchestrator.fix_suggest import Suggestion, suggestion_block, suggestions

LINES = [f"line {n}" for n in range(1, 61)]
BASE = "\n".join(LINES) + "\n"


def patch(after: str, path: str = "app.py", before: str = BASE, context: int = 3) -> str:
    diff = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        f"a/{path}",
        f"b/{path}",
        n=context,
    )
    return f"diff --git a/{path} b/{path}\n" + "".join(diff)


def edited(changes: dict[int, list[str]]) -> str:
    """BASE with line n (1-based) replaced by the given lines."""
    out = [new for n, line in enumerate(LINES, 1) for new in changes.get(n, [line])]
    return "\n".join(out) + "\n"


def test_one_modified_line_is_one_single_line_suggestion():
    found = suggestions(patch(edited({5: ["line five"]})), {"app.py": BASE.encode()})
    assert found == [Suggestion("app.py", 5, 5, ("line five",))]
    assert found[0].comment() == {
        "path": "app.py",
        "line": 5,
        "side": "RIGHT",
        "body": "```suggestion\nline five\n```",
    }


def test_several_modified_lines_span_start_line_to_line():
    after = edited({5: ["five"], 6: ["six", "six and a half"], 7: ["seven"]})
    [found] = suggestions(patch(after), {"app.py": BASE.encode()})
    assert found == Suggestion("app.py", 5, 7, ("five", "six", "six and a half", "seven"))
    assert (found.comment()["start_line"], found.comment()["line"]) == (5, 7)


def test_a_pure_insertion_is_anchored_on_the_line_before():
    after = edited({10: ["line 10", "inserted"]})
    assert suggestions(patch(after), {"app.py": BASE.encode()}) == [
        Suggestion("app.py", 10, 10, ("line 10", "inserted"))
    ]


def test_an_insertion_at_the_top_keeps_the_first_line_after_it():
    after = "first\n" + BASE
    assert suggestions(patch(after), {"app.py": BASE.encode()}) == [
        Suggestion("app.py", 1, 1, ("first", "line 1"))
    ]


def test_a_deletion_suggests_nothing_in_place_of_the_lines():
    [found] = suggestions(patch(edited({8: [], 9: []})), {"app.py": BASE.encode()})
    assert found == Suggestion("app.py", 8, 9, ())
    assert found.comment()["body"] == "```suggestion\n```"


def test_two_hunks_are_two_suggestions():
    after = edited({3: ["three"], 30: ["thirty"]})
    assert suggestions(patch(after), {"app.py": BASE.encode()}) == [
        Suggestion("app.py", 3, 3, ("three",)),
        Suggestion("app.py", 30, 30, ("thirty",)),
    ]


@pytest.mark.parametrize(
    "after",
    [
        edited({n: [f"changed {n}"] for n in (2, 12, 22, 32, 42, 52)}),  # six hunks
        edited({5: [f"new {i}" for i in range(31)]}),  # 31 new lines in one hunk
    ],
)
def test_too_much_to_suggest_is_none(after):
    assert suggestions(patch(after), {"app.py": BASE.encode()}) is None


def test_a_new_file_is_none():
    new_file = (
        "diff --git a/new.py b/new.py\nnew file mode 100644\n--- /dev/null\n+++ b/new.py\n"
        "@@ -0,0 +1 @@\n+x = 1\n"
    )
    assert suggestions(new_file, {"app.py": BASE.encode()}) is None


def test_a_patch_that_does_not_apply_to_the_head_is_none():
    assert suggestions(patch(edited({5: ["five"]})), {"app.py": b"other\n"}) is None


def test_a_suggestion_holding_a_fence_gets_a_longer_one():
    assert suggestion_block(("```python",)) == "````suggestion\n```python\n````"
