"""localhub and its vendored GitHub description: data matches upstream, every operation is routed,
requests the description refuses are refused, and drifted responses are caught."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from localhub.app import ROUTES
from localhub.spec import DATA_DIR, load_spec
from tests.localhub.conftest import REPO, SHARED_FIXTURES


# vendored data ----------------------------------------------------------------------
def test_vendored_webhook_index_lists_exactly_the_vendored_payloads():
    index = json.loads((DATA_DIR / "webhooks" / "index.json").read_text())
    listed = {entry["file"] for entry in index["fixtures"]}
    payloads = {
        p.relative_to(DATA_DIR / "webhooks").as_posix()
        for p in (DATA_DIR / "webhooks").rglob("*.json")
        if "_schemas" not in p.parts and p.name != "index.json"
    }
    assert listed == payloads


# Operations we added to the description, verbatim from the same upstream release, and the
# components they need; `localhub/github/README.md` documents them. All else is upstream's.
ADDED_PATHS = {
    "/app-manifests/{code}/conversions",
    "/repos/{owner}/{repo}/pulls/{pull_number}/reviews",
    "/repos/{owner}/{repo}/commits/{ref}/check-runs",
}
ADDED_COMPONENTS = {
    "examples": {"integration-from-manifest", "pull-request-review", "check-run-paginated"},
    "parameters": {"check-name", "commit-ref", "status"},
    "responses": {"validation_failed_simple"},
    "schemas": {"validation-error-simple", "pull-request-review"},
}
OWN_FILES = {Path("README.md")}
SUBSET = Path("rest-api-subset.json")


def without_additions(document: dict) -> dict:
    paths = {k: v for k, v in document["paths"].items() if k not in ADDED_PATHS}
    components = {
        kind: {k: v for k, v in items.items() if k not in ADDED_COMPONENTS.get(kind, set())}
        for kind, items in document["components"].items()
    }
    return {**document, "paths": paths, "components": components}


def serialized(document: dict) -> bytes:
    # how the shared file is written: two-space indent, UTF-8, no final newline
    return json.dumps(document, indent=2, ensure_ascii=False).encode()


def require_shared() -> None:
    # CI and development machines have it; an installed copy may not
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(reason="requires the shared fixtures folder beside this checkout")


def test_vendored_upstream_files_are_byte_identical_to_shared():
    require_shared()
    vendored = sorted(p.relative_to(DATA_DIR) for p in DATA_DIR.rglob("*") if p.is_file())
    assert {SUBSET, Path("LICENSE.octokit-openapi.txt"), Path("webhooks/index.json")} <= set(
        vendored
    )
    for relative in set(vendored) - OWN_FILES:
        data = (DATA_DIR / relative).read_bytes()
        if relative == SUBSET:
            data = serialized(without_additions(json.loads(data)))
        assert data == (SHARED_FIXTURES / relative).read_bytes(), relative
    shared = {p.relative_to(SHARED_FIXTURES) for p in SHARED_FIXTURES.rglob("*") if p.is_file()}
    # everything but the folders' own notes travels with the package
    assert shared - {Path("README.md")} == set(vendored) - OWN_FILES


def test_the_description_adds_exactly_the_documented_operations():
    require_shared()
    ours = json.loads((DATA_DIR / SUBSET).read_text())
    upstream = json.loads((SHARED_FIXTURES / SUBSET).read_text())
    assert set(ours["paths"]) - set(upstream["paths"]) == ADDED_PATHS
    for kind, names in ADDED_COMPONENTS.items():
        assert set(ours["components"][kind]) - set(upstream["components"][kind]) == names


def test_the_additions_name_their_source_in_the_readme():
    require_shared()
    readme = (DATA_DIR / "README.md").read_text()
    document = load_spec().document
    for path in ADDED_PATHS:
        for method, op in document["paths"][path].items():
            assert f"| {method.upper()} | {path} | {op['operationId']} |" in readme
    for kind, names in ADDED_COMPONENTS.items():
        assert all(f"components/{kind}/{name}" in readme for name in names)
    # the same tarball as the rest of the subset
    upstream_notes = (SHARED_FIXTURES / "README.md").read_text()
    tarball_sha = re.search(
        r"octokit-openapi-23\.0\.2\.tgz`, sha256 `([0-9a-f]{64})`", upstream_notes
    )
    assert tarball_sha and tarball_sha.group(1) in readme


def test_every_operation_of_the_description_is_served():
    served_ids = {route.name for route in ROUTES}
    assert set(load_spec().operations) <= served_ids


# routing and request validation --------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/repos/octo-org/app/issues"),
        ("GET", "/nope"),
        ("DELETE", "/app"),
        ("PUT", f"/repos/{REPO}/pulls/1"),
    ],
)
def test_unknown_route_or_method_is_404(client, world, method, path):
    response = client.request(method, path, headers=world.auth)
    assert response.status_code == 404
    assert response.json()["message"] == "Not Found"
    assert "documentation_url" in response.json()


@pytest.mark.parametrize("query", [{"state": "merged"}, {"per_page": "many"}, {"direction": "up"}])
def test_query_parameter_the_description_refuses_is_422(client, world, query):
    response = client.get(f"/repos/{REPO}/pulls", headers=world.auth, params=query)
    assert response.status_code == 422
    assert response.json()["message"].startswith("Invalid request.\n\n")


def test_malformed_json_is_400(client, world):
    response = client.post(
        f"/repos/{REPO}/issues/1/comments", headers=world.auth, content=b"{not json"
    )
    assert (response.status_code, response.json()["message"]) == (400, "Problems parsing JSON")


def test_response_validation_catches_a_drifted_body(hub, client, world):
    response = client.get(f"/repos/{REPO}/pulls/1", headers=world.auth)
    op, params = load_spec().match("GET", f"/repos/{REPO}/pulls/1")
    drifted = {k: v for k, v in response.json().items() if k != "head"}
    problems = load_spec().response_problems(
        op,
        f"/repos/{REPO}/pulls/1",
        params,
        200,
        {"content-type": "application/json"},
        json.dumps(drifted).encode(),
    )
    assert problems
