"""The App manifest flow: GitHub's "register a new App" form and the code it trades for credentials.

GitHub's own flow has three steps: a form POSTs the manifest to `/settings/apps/new`
(or an organization's), the person confirms, and GitHub redirects to the manifest's
`redirect_url` with a one-time `code`, which `POST /app-manifests/{code}/conversions`
exchanges for the new App's id, key and secrets within an hour. The stand-in skips
the confirmation page. It serves one App, so a conversion makes the new App the one
it serves: its id, key and webhook secret replace the old ones.
"""

from __future__ import annotations

import html
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from . import render
from .endpoint import Context, Reply, record
from .errors import NotFound
from .models import App, AuthKind

if TYPE_CHECKING:
    from .state import Hub

CODE_LIFETIME = timedelta(hours=1)
# GitHub sends these to every App and refuses a manifest that subscribes to them.
ALWAYS_DELIVERED = {"installation", "installation_repositories", "github_app_authorization"}
# The person the stand-in pretends is signed in when no organization is named.
SIGNED_IN_USER = "octocat"


@dataclass
class PendingManifest:
    """A manifest GitHub accepted, waiting for its code to be converted (once)."""

    manifest: dict[str, Any]
    owner: str
    owner_type: str
    issued_at: datetime
    used: bool = False
    # kept after the conversion so tests can check it was never shown anywhere
    client_secret: str | None = None


def manifest_problems(manifest: Any) -> list[str]:
    """Why GitHub would refuse this manifest (empty when it accepts it)."""
    if not isinstance(manifest, dict):
        return ["The manifest must be a JSON object."]
    problems = []
    for key in ("name", "url", "redirect_url"):
        if not isinstance(manifest.get(key), str) or not manifest[key].strip():
            problems.append(f"{key} can't be blank")
    hook = manifest.get("hook_attributes") or {}
    if not isinstance(hook, dict) or (hook.get("active", True) and not hook.get("url")):
        problems.append("hook_attributes.url can't be blank")
    events = manifest.get("default_events") or []
    refused = sorted(set(events) & ALWAYS_DELIVERED) if isinstance(events, list) else ["?"]
    if refused:
        problems.append(f"Default events unsupported: {', '.join(refused)}")
    if not isinstance(manifest.get("default_permissions") or {}, dict):
        problems.append("default_permissions must be an object")
    return problems


async def new_app_form(request: Request) -> Response:
    """`POST /settings/apps/new` (and an organization's): accept a manifest, redirect with a code."""
    hub: Hub = request.app.state.hub
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    org = request.path_params.get("org")
    try:
        manifest = json.loads(form.get("manifest", [""])[0])
    except ValueError:
        manifest = None
    problems = manifest_problems(manifest)
    status = 422 if problems else 302
    record(hub, request, None, status, None, AuthKind.NONE, dict(request.query_params))
    if problems:
        items = "".join(f"<li>{html.escape(p)}</li>" for p in problems)
        page = f"<!doctype html><h1>Invalid GitHub App configuration</h1><ul>{items}</ul>"
        return HTMLResponse(page, status_code=422)
    code = secrets.token_hex(10)
    with hub.lock:
        hub.manifest_codes[code] = PendingManifest(
            manifest, org or SIGNED_IN_USER, "Organization" if org else "User", hub.now()
        )
    query = {"code": code}
    if "state" in request.query_params:
        query["state"] = request.query_params["state"]
    target = manifest["redirect_url"]
    joiner = "&" if urlsplit(target).query else "?"
    return RedirectResponse(f"{target}{joiner}{urlencode(query)}", status_code=302)


async def create_from_manifest(ctx: Context) -> Reply:
    """`apps/create-from-manifest`: 404 for a code that is unknown, used or over an hour old."""
    hub = ctx.hub
    with hub.lock:
        pending = hub.manifest_codes.get(ctx.params["code"])
        if pending is None or pending.used or hub.now() - pending.issued_at > CODE_LIFETIME:
            raise NotFound()
        pending.used = True
        credentials = _register(hub, pending)
        pending.client_secret = credentials["client_secret"]
    body = render.example("integration-from-manifest")
    body.update(render.integration(hub, ctx.base_url))
    body.update(
        owner=render.user(hub, pending.owner, ctx.base_url, pending.owner_type),
        description=pending.manifest.get("description") or "",
        external_url=pending.manifest["url"],
        installations_count=0,
        **credentials,
    )
    return Reply(201, body)


def _register(hub: Hub, pending: PendingManifest) -> dict[str, str]:
    """Make the manifest's App the hub's App; its secrets, to be shown this once."""
    manifest = pending.manifest
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # GitHub hands out PKCS#1 ("BEGIN RSA PRIVATE KEY"), as in its downloaded key files
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    hook = manifest.get("hook_attributes") or {}
    hub.app = App(
        id=hub.next_id(),
        client_id="Iv23li" + secrets.token_hex(7),
        slug=slug(manifest["name"]),
        name=manifest["name"],
        owner_login=pending.owner,
        public_key=key.public_key(),
        permissions=dict(manifest.get("default_permissions") or {}),
        events=list(manifest.get("default_events") or []),
        created_at=hub.now(),
    )
    hub.private_key_pem = pem
    hub._private_key = key  # the hub signs test JWTs with it (`Hub.app_jwt`)
    hub.webhook_url = hook.get("url")
    hub.webhook_secret = secrets.token_hex(20)
    return {
        "client_id": hub.app.client_id,
        "client_secret": secrets.token_hex(20),
        "webhook_secret": hub.webhook_secret,
        "pem": pem.decode(),
    }


def slug(name: str) -> str:
    """GitHub's slug of an App name: lower case, runs of other characters become one dash."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
