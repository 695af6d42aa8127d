"""A sandbox's `git diff` re-applied to the base byte for byte, or refused with where and why."""

from __future__ import annotations

import pytest

from orchestrator.git_patch import PatchDoesNotApply, apply_patch, patch_modes
from tests.git_diffs import git_diff, repository, staged_diff, write

TWENTY_LINES = b"".join(b"line %d\n" % n for n in range(1, 21))


def test_modified_added_and_deleted_files_come_out_as_git_made_them(tmp_path):
    before = {"src/app.py": b"import os\nprint(1)\n", "src/old.py": b"x = 1\n", "README.md": b"#\n"}
    after = {"src/app.py": b"import os\nprint(2)\n", "src/old.py": None, "src/new.py": b"y = 2\n"}
    patch = git_diff(tmp_path, before, after)
    assert apply_patch(before, patch) == after


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (b"x\ny", b"x\nz\n"),
        (b"x\ny\n", b"x\nz"),
        (b"x\ny", b"x\nz"),
        (b"a\n", b"a\nb"),
        (b"a", b"a\nb\n"),
        (None, b"new\nfile"),
        (b"gone\nfor good", None),
        (b"a\nb\n", b""),
        (b"", b"grown\n"),
        (b"l1\r\nl2\r\n", b"l1\r\nL2\r\n"),
        (b"page\x0cbreak\nh\n", b"page\x0cbreak\nH\n"),
        (b"caf\xe9\nx\n", b"caf\xe9\ny\n"),
        (b"-- comment\nselect 1;\n", b"select 2;\n"),
        (TWENTY_LINES, TWENTY_LINES.replace(b"line 2\n", b"two\n").replace(b"line 19\n", b"")),
    ],
    ids=[
        "newline-added",
        "newline-removed",
        "never-a-newline",
        "append-without-newline",
        "append-after-no-newline",
        "new-file-without-newline",
        "deleted-file-without-newline",
        "emptied",
        "grown-from-empty",
        "crlf",
        "form-feed",
        "latin-1",
        "sql-comment",
        "two-hunks",
    ],
)
def test_content_comes_out_byte_for_byte(tmp_path, before, after):
    base = {} if before is None else {"f.txt": before}
    patch = git_diff(tmp_path, base, {"f.txt": after})
    assert apply_patch(base, patch) == {"f.txt": after}


def test_names_git_quotes_are_read_back(tmp_path):
    after = {"docs/über uns.md": b"hallo\n", "sp ace.txt": b"x\n", 'q"uote.txt': b"q\n"}
    patch = git_diff(tmp_path, {"README.md": b"#\n"}, after)
    assert '"b/docs/\\303\\274ber uns.md"' in patch
    assert apply_patch({"README.md": b"#\n"}, patch) == after


def test_a_hunk_whose_context_changed_is_refused_naming_file_and_hunk(tmp_path):
    changed = TWENTY_LINES.replace(b"line 2\n", b"two\n").replace(b"line 18\n", b"eighteen\n")
    patch = git_diff(tmp_path, {"f.txt": TWENTY_LINES}, {"f.txt": changed})
    moved_on = {"f.txt": TWENTY_LINES.replace(b"line 17\n", b"line 17 edited\n")}
    with pytest.raises(PatchDoesNotApply) as refused:
        apply_patch(moved_on, patch)
    assert (refused.value.path, refused.value.hunk) == ("f.txt", 2)
    assert "f.txt, hunk 2" in str(refused.value)


def test_a_base_that_differs_outside_the_hunks_is_refused(tmp_path):
    patch = git_diff(tmp_path, {"f.txt": TWENTY_LINES}, {"f.txt": b"one\n" + TWENTY_LINES[7:]})
    elsewhere = {"f.txt": TWENTY_LINES.replace(b"line 20\n", b"line twenty\n")}
    with pytest.raises(PatchDoesNotApply, match="not the content git diffed"):
        apply_patch(elsewhere, patch)


@pytest.mark.parametrize("binary", [True, False], ids=["git-binary-patch", "binary-files-differ"])
def test_binary_patches_are_refused(tmp_path, binary):
    root = repository(tmp_path, {"logo.png": b"\x89PNG\0\x01"})
    write(root, {"logo.png": b"\x89PNG\0\x02"})
    patch = staged_diff(root, binary=binary)
    assert ("GIT binary patch" in patch) is binary
    with pytest.raises(PatchDoesNotApply, match="binary") as refused:
        apply_patch({"logo.png": b"\x89PNG\0\x01"}, patch)
    assert refused.value.path == "logo.png"


@pytest.mark.parametrize("unsafe", ["../app.py", "src/../../app.py", "/etc/app.py", ".git/config"])
def test_paths_outside_the_repository_are_refused(tmp_path, unsafe):
    patch = git_diff(tmp_path, {"app.py": b"x = 1\n"}, {"app.py": b"x = 2\n"})
    with pytest.raises(PatchDoesNotApply, match="unsafe path"):
        apply_patch({unsafe: b"x = 1\n"}, patch.replace("/app.py", f"/{unsafe}"))


def test_a_truncated_patch_is_refused(tmp_path):
    patch = git_diff(tmp_path, {"f.txt": TWENTY_LINES}, {"f.txt": b"one\n" + TWENTY_LINES[7:]})
    with pytest.raises(PatchDoesNotApply, match="line counts"):
        apply_patch({"f.txt": TWENTY_LINES}, patch.rsplit("\n", 2)[0] + "\n")


def test_a_hunk_header_that_misplaces_its_lines_is_refused(tmp_path):
    patch = git_diff(tmp_path, {"f.txt": TWENTY_LINES}, {"f.txt": b"one\n" + TWENTY_LINES[7:]})
    assert "@@ -1,4 +1,4 @@" in patch
    with pytest.raises(PatchDoesNotApply, match="position"):
        apply_patch({"f.txt": TWENTY_LINES}, patch.replace("@@ -1,4 +1,4 @@", "@@ -1,4 +9,4 @@"))


@pytest.mark.parametrize(
    ("before", "given", "refusal"),
    [({"f.txt": b"a\n"}, {}, "not in the base"), ({}, {"f.txt": b"b\n"}, "already has")],
)
def test_a_base_without_the_file_changed_or_with_the_file_created_is_refused(
    tmp_path, before, given, refusal
):
    patch = git_diff(tmp_path, before, {"f.txt": b"b\n"})
    with pytest.raises(PatchDoesNotApply, match=refusal):
        apply_patch(given, patch)


def test_a_rename_across_directories_applies_when_its_target_is_new(tmp_path):
    body = b"".join(b"def f%d(): pass\n" % n for n in range(10))
    before = {"old/mod.py": body}
    after = {"old/mod.py": None, "new/place/mod.py": body.replace(b"f3", b"g3")}
    patch = git_diff(tmp_path, before, after, renames=True)
    assert "rename from old/mod.py" in patch
    assert apply_patch(before, patch) == after
    with pytest.raises(PatchDoesNotApply, match="over an existing file"):
        apply_patch({**before, "new/place/mod.py": b"mine\n"}, patch)


def test_executables_keep_their_mode_and_a_mode_change_alone_is_ignored(tmp_path):
    root = repository(
        tmp_path, {"run.sh": b"#!/bin/sh\n", "x.sh": b"#!/bin/sh\n"}, ("run.sh", "x.sh")
    )
    write(root, {"run.sh": b"#!/bin/sh\necho hi\n", "new.sh": b"#!/bin/sh\n"}, ("run.sh", "new.sh"))
    (root / "x.sh").chmod(0o644)
    patch = staged_diff(root)
    assert "old mode 100755" in patch
    assert apply_patch({"run.sh": b"#!/bin/sh\n", "x.sh": b"#!/bin/sh\n"}, patch) == {
        "run.sh": b"#!/bin/sh\necho hi\n",
        "new.sh": b"#!/bin/sh\n",
    }
    assert patch_modes(patch) == {"run.sh": "100755", "new.sh": "100755", "x.sh": "100755"}


def test_symlinks_are_refused(tmp_path):
    root = repository(tmp_path, {"README.md": b"#\n"})
    (root / "link").symlink_to("/etc/passwd")
    with pytest.raises(PatchDoesNotApply, match="symlinks"):
        apply_patch({"README.md": b"#\n"}, staged_diff(root))


def test_an_empty_patch_changes_nothing_and_prose_is_refused():
    assert apply_patch({"f.txt": b"a\n"}, "") == {}
    with pytest.raises(PatchDoesNotApply, match="not a git patch"):
        apply_patch({}, "I fixed it, trust me.\n")
