"""localhub git data: objects hashed as git does, diffs, refs, trees, contents, tarballs, pulls."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import tarfile
from datetime import UTC, datetime

import httpx

from localhub.gitstore import Entry, GitRepo, signature
from tests.localhub.conftest import REPO, TLS


def test_objects_hash_exactly_as_git_does():
    git = GitRepo()
    assert git.objects.put_blob(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert git.build_tree({}) == "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
    files = {
        "README.md": ("100644", b"hello\n"),
        "src/a/b.py": ("100644", b"x=1\n"),
        "src/c.txt": ("100644", b"y\n"),
        "link": ("120000", b"README.md"),
        "run.sh": ("100755", b"#!/bin/sh\n"),
    }
    tree = git.build_tree(
        {p: Entry(mode, "blob", git.objects.put_blob(data)) for p, (mode, data) in files.items()}
    )
    who = signature("A", "a@x", datetime.fromtimestamp(1700000000, UTC))
    # the shas `git commit -m init` gives for these files, author and date
    assert tree == "1c0435539f1a82bb2c5adc7fbc160c7d363d3d10"
    assert (
        git.objects.put_commit(tree, (), "init\n", who, who)
        == "bba7d89126a113410e7395cf9299cd7739bbe729"
    )


# pull requests and git data ------------------------------------------------------------
def test_pull_request_files_show_the_three_dot_diff(client, world):
    files = client.get(f"/repos/{REPO}/pulls/1/files", headers=world.auth).json()
    assert {f["filename"]: f["status"] for f in files} == {
        "src/app.py": "modified",
        "src/new.py": "added",
        "src/old.py": "removed",
    }
    patch = next(f["patch"] for f in files if f["filename"] == "src/app.py")
    assert patch.startswith("@@ -1 +1,2 @@") and "+print(2)" in patch


def test_git_data_flow_updates_contents_and_tarball(hub, client, world):
    base_sha = hub.ref(REPO, "main")
    base_tree = client.get(f"/repos/{REPO}/git/commits/{base_sha}", headers=world.auth).json()[
        "tree"
    ]["sha"]
    blob = client.post(
        f"/repos/{REPO}/git/blobs",
        headers=world.auth,
        json={"content": base64.b64encode(b"fixed\n").decode(), "encoding": "base64"},
    ).json()
    assert blob["sha"] == hashlib.sha1(b"blob 6\0fixed\n").hexdigest()
    tree = client.post(
        f"/repos/{REPO}/git/trees",
        headers=world.auth,
        json={
            "base_tree": base_tree,
            "tree": [
                {"path": "src/fix.py", "mode": "100644", "type": "blob", "sha": blob["sha"]},
                {"path": "src/old.py", "mode": "100644", "type": "blob", "sha": None},
            ],
        },
    ).json()
    commit = client.post(
        f"/repos/{REPO}/git/commits",
        headers=world.auth,
        json={"message": "Fix", "tree": tree["sha"], "parents": [base_sha]},
    ).json()
    assert (
        client.post(
            f"/repos/{REPO}/git/refs",
            headers=world.auth,
            json={"ref": "refs/heads/clarity/fix", "sha": base_sha},
        ).status_code
        == 201
    )
    assert (
        client.patch(
            f"/repos/{REPO}/git/refs/heads/clarity/fix",
            headers=world.auth,
            json={"sha": commit["sha"]},
        ).status_code
        == 200
    )
    assert (
        client.get(f"/repos/{REPO}/git/ref/heads/clarity/fix", headers=world.auth).json()["object"][
            "sha"
        ]
        == commit["sha"]
    )
    content = client.get(
        f"/repos/{REPO}/contents/src/fix.py", headers=world.auth, params={"ref": "clarity/fix"}
    ).json()
    assert base64.b64decode(content["content"]) == b"fixed\n"
    archive = client.get(f"/repos/{REPO}/tarball/clarity/fix", headers=world.auth)
    with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as tar:
        names = tar.getnames()
        assert tar.pax_headers["comment"] == commit["sha"]
        prefix = f"octo-org-app-{commit['sha'][:7]}"
        assert tar.extractfile(f"{prefix}/src/fix.py").read() == b"fixed\n"
    assert f"{prefix}/src/old.py" not in names and f"{prefix}/README.md" in names
    assert hub.files(REPO, "clarity/fix")["src/fix.py"] == b"fixed\n"
    assert (
        client.delete(f"/repos/{REPO}/git/refs/heads/clarity/fix", headers=world.auth).status_code
        == 204
    )
    assert (
        client.get(f"/repos/{REPO}/git/ref/heads/clarity/fix", headers=world.auth).status_code
        == 404
    )


def test_update_ref_must_fast_forward_unless_forced(hub, client, world):
    main = hub.ref(REPO, "main")
    assert (
        client.patch(
            f"/repos/{REPO}/git/refs/heads/feature", headers=world.auth, json={"sha": main}
        ).status_code
        == 422
    )
    assert (
        client.patch(
            f"/repos/{REPO}/git/refs/heads/feature",
            headers=world.auth,
            json={"sha": main, "force": True},
        ).status_code
        == 200
    )


def test_workflow_files_need_the_workflows_permission(client, world):
    entry = {
        "path": ".github/workflows/ci.yml",
        "mode": "100644",
        "type": "blob",
        "content": "on: push\n",
    }
    assert (
        client.post(
            f"/repos/{REPO}/git/trees", headers=world.auth, json={"tree": [entry]}
        ).status_code
        == 404
    )


def test_contents_directory_listing_and_raw_file(base_url, client, world):
    listing = client.get(f"/repos/{REPO}/contents/src", headers=world.auth).json()
    assert [(i["name"], i["type"]) for i in listing] == [("app.py", "file"), ("old.py", "file")]
    # the description documents only the JSON forms, so this one skips the conformance hook
    raw = httpx.get(
        f"{base_url}/repos/{REPO}/contents/src/app.py",
        headers={**world.auth, "Accept": "application/vnd.github.raw"},
        verify=TLS,
    )
    assert raw.content == b"print('hello')\n"
    assert client.get(f"/repos/{REPO}/contents/nope.txt", headers=world.auth).status_code == 404


def test_create_pull_request_then_duplicate_is_422(hub, client, world):
    hub.commit_files(REPO, "clarity/fix-1", {"src/app.py": "print('fixed')\n"})
    body = {"title": "Clarity fix", "head": "clarity/fix-1", "base": "main", "body": "Fixes #1"}
    created = client.post(f"/repos/{REPO}/pulls", headers=world.auth, json=body)
    assert created.status_code == 201 and created.json()["user"]["type"] == "Bot"
    assert client.post(f"/repos/{REPO}/pulls", headers=world.auth, json=body).status_code == 422
    listed = client.get(
        f"/repos/{REPO}/pulls", headers=world.auth, params={"head": "octo-org:clarity/fix-1"}
    ).json()
    assert [p["number"] for p in listed] == [created.json()["number"]]


def test_gzip_archive_is_reproducible(hub, world):
    repo = hub.repository(REPO)
    sha = hub.ref(REPO, "main")
    first, second = repo.git.tarball(sha, "p"), repo.git.tarball(sha, "p")
    assert first == second and gzip.decompress(first)


def test_deleting_a_head_branch_closes_its_open_pull_request(hub, client, world):
    hub.commit_files(REPO, "other", {"src/other.py": "z = 3\n"})
    other = hub.open_pull_request(REPO, "other", title="Other")
    assert (
        client.delete(f"/repos/{REPO}/git/refs/heads/feature", headers=world.auth).status_code
        == 204
    )
    closed = client.get(f"/repos/{REPO}/pulls/1", headers=world.auth).json()
    assert closed["state"] == "closed" and closed["closed_at"] and closed["merged_at"] is None
    assert closed["head"]["sha"] == world.head_sha  # GitHub keeps showing the last head
    assert hub.pull_request(REPO, 1).state == "closed"
    assert hub.pull_request(REPO, other.number).state == "open"
    listed = client.get(f"/repos/{REPO}/pulls", headers=world.auth).json()
    assert [p["number"] for p in listed] == [other.number]
