"""The stand-in's App manifest flow: the "new App" form issues a one-time code, and the
conversion trades it, once and within the hour, for the new App's credentials."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from gidgethub.apps import get_jwt

from localhub import Hub, running
from localhub.clock import utcnow
from tests.localhub.conftest import TLS, conforms

MANIFEST = {
    "name": "Clarity Check",
    "url": "https://clarity.example.test",
    "hook_attributes": {"url": "https://clarity.example.test/webhooks/github"},
    "redirect_url": "http://127.0.0.1:3000/callback",
    "default_events": ["pull_request"],
    "default_permissions": {"checks": "write", "metadata": "read"},
}


@pytest.fixture(scope="module")
def own_hub() -> Iterator[tuple[Hub, str]]:
    # A hub of its own: a conversion replaces the App that the package's shared hub serves.
    hub = Hub()
    with running(hub) as base_url:
        yield hub, base_url


@pytest.fixture
def hub(own_hub) -> Hub:
    hub, _ = own_hub
    hub.reset()
    hub.clock = utcnow
    return hub


@pytest.fixture
def client(own_hub) -> Iterator[httpx.Client]:
    """The API side: every answer is checked against the description."""
    with httpx.Client(base_url=own_hub[1], event_hooks={"response": [conforms]}, verify=TLS) as c:
        yield c


@pytest.fixture
def browser(own_hub) -> Iterator[httpx.Client]:
    """The web side (github.com's pages), which the REST description does not cover."""
    with httpx.Client(base_url=own_hub[1]) as c:
        yield c


def submit(browser: httpx.Client, manifest: object, path: str = "/settings/apps/new"):
    return browser.post(f"{path}?state=s-1", data={"manifest": json.dumps(manifest)})


def code_of(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["location"]).query)["code"][0]


def test_the_form_redirects_to_the_manifests_redirect_url_with_a_code_and_the_state(
    hub, client, browser
):
    response = submit(browser, {**MANIFEST, "redirect_url": "http://127.0.0.1:3000/cb?x=1"})
    location = urlsplit(response.headers["location"])
    assert (location.netloc, location.path) == ("127.0.0.1:3000", "/cb")
    query = parse_qs(location.query)
    assert query["x"] == ["1"] and query["state"] == ["s-1"] and query["code"]


def test_the_conversion_answers_the_new_apps_credentials_as_described(hub, client, browser):
    answer = client.post(f"/app-manifests/{code_of(submit(browser, MANIFEST))}/conversions")
    assert answer.status_code == 201  # and `conforms` checked the body against the schema
    body = answer.json()
    assert (body["id"], body["slug"], body["client_id"]) == (
        hub.app.id,
        "clarity-check",
        hub.app.client_id,
    )
    assert body["webhook_secret"] == hub.webhook_secret
    assert body["pem"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert (
        hub.app.events == ["pull_request"] and hub.webhook_url == MANIFEST["hook_attributes"]["url"]
    )


def test_the_new_apps_key_signs_its_jwts(hub, client, browser):
    body = client.post(f"/app-manifests/{code_of(submit(browser, MANIFEST))}/conversions").json()
    jwt = get_jwt(app_id=body["client_id"], private_key=body["pem"])
    answer = client.get("/app", headers={"authorization": f"Bearer {jwt}"})
    assert answer.status_code == 200 and answer.json()["id"] == body["id"]


def test_an_organizations_form_makes_the_organization_the_owner(hub, client, browser):
    code = code_of(submit(browser, MANIFEST, "/organizations/octo-org/settings/apps/new"))
    owner = client.post(f"/app-manifests/{code}/conversions").json()["owner"]
    assert (owner["login"], owner["type"]) == ("octo-org", "Organization")


def test_a_code_converts_once(hub, client, browser):
    code = code_of(submit(browser, MANIFEST))
    assert client.post(f"/app-manifests/{code}/conversions").status_code == 201
    assert client.post(f"/app-manifests/{code}/conversions").status_code == 404


def test_a_code_over_an_hour_old_is_unknown(hub, client, browser):
    code = code_of(submit(browser, MANIFEST))
    later = utcnow() + timedelta(hours=1, seconds=1)
    hub.clock = lambda: later
    assert client.post(f"/app-manifests/{code}/conversions").status_code == 404


@pytest.mark.parametrize(
    ("manifest", "problem"),
    [
        ({**MANIFEST, "default_events": ["installation", "push"]}, "unsupported: installation"),
        ({**MANIFEST, "hook_attributes": {}}, "hook_attributes.url can't be blank"),
        ({k: v for k, v in MANIFEST.items() if k != "url"}, "url can't be blank"),
        ("not an object", "must be a JSON object"),
    ],
)
def test_a_manifest_github_refuses_gets_no_code(hub, client, browser, manifest, problem):
    response = submit(browser, manifest)
    assert response.status_code == 422
    assert problem in html.unescape(response.text)
    assert not hub.manifest_codes
