"""`clarity setup`: register the GitHub App through the manifest flow, as Probot does.

A small local page POSTs `app.yml` as the manifest to GitHub's "new App" form; GitHub
creates the App and redirects back here with a one-time code, which we exchange
(`POST /app-manifests/{code}/conversions`) for the App's id, key and webhook secret.
They go to an environment file and a 0600 key file, never to the terminal or a log.
"""

from __future__ import annotations

import html
import json
import secrets
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import yaml
from pydantic import BaseModel, SecretStr, ValidationError
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from bot.env_file import EnvFileError, env_names, merge_env, write_private

GITHUB_URL = "https://github.com"
API_URL = "https://api.github.com"
APP_YML = Path(__file__).resolve().parent.parent / "app.yml"
CALLBACK_PATH = "/callback"
WEBHOOK_PATH = "/webhooks/github"
# What the env file holds for the App; a key given inline would conflict with the file.
REPLACED_BY_SETUP = ("CLARITY_PRIVATE_KEY",)
NO_WEBHOOK_SECRET = (
    "GitHub returned no webhook secret: set one in the App's settings"
    " and put it in CLARITY_WEBHOOK_SECRETS"
)


class SetupError(Exception):
    """Setup cannot go on; the message says what to do."""


class CodeRejected(SetupError):
    """GitHub would not exchange the code: unknown, already used or expired."""


@dataclass(frozen=True)
class SetupOptions:
    """What `clarity setup` was asked for."""

    webhook_url: str
    env_file: Path = Path(".env")
    private_key_file: Path | None = None  # default: beside the env file
    org: str | None = None
    github_url: str = GITHUB_URL
    api_url: str = API_URL
    manifest_file: Path = APP_YML
    host: str = "127.0.0.1"
    port: int = 3000
    force: bool = False

    @property
    def key_path(self) -> Path:
        return self.private_key_file or self.env_file.parent / "github-app-key.pem"


class RegisteredApp(BaseModel):
    """The conversion's answer, as far as we use it; the secrets never show in a repr."""

    id: int
    slug: str
    name: str
    html_url: str
    client_id: str
    pem: SecretStr
    webhook_secret: SecretStr | None
    client_secret: SecretStr

    @property
    def install_url(self) -> str:
        return f"{self.html_url.rstrip('/')}/installations/new"


def manifest(template: Mapping[str, Any], webhook_url: str, redirect_url: str) -> dict[str, Any]:
    """`app.yml` with our webhook URL and the address GitHub sends the code back to."""
    data = json.loads(json.dumps(template))  # a deep copy that is also plain JSON
    data["hook_attributes"] = {**data.get("hook_attributes", {}), "url": webhook_url}
    data["redirect_url"] = redirect_url
    return data


def new_app_url(github_url: str, org: str | None, state: str) -> str:
    """GitHub's "register a new App" form, for the signed-in user or an organization."""
    base = github_url.rstrip("/")
    where = f"/organizations/{quote(org, safe='')}" if org else ""
    return f"{base}{where}/settings/apps/new?{urlencode({'state': state})}"


def env_values(
    app: RegisteredApp, key_path: Path, api_url: str, webhook_url: str
) -> dict[str, str]:
    """The settings the App's credentials become (`bot.settings`)."""
    values = {
        "CLARITY_APP_ID": str(app.id),
        "CLARITY_CLIENT_ID": app.client_id,
        "CLARITY_PRIVATE_KEY_FILE": str(key_path.resolve()),
    }
    # GitHub makes one when the manifest has a webhook URL, as ours always does
    if app.webhook_secret is not None and app.webhook_secret.get_secret_value():
        values["CLARITY_WEBHOOK_SECRETS"] = app.webhook_secret.get_secret_value()
    if api_url.rstrip("/") != API_URL:
        values["CLARITY_GITHUB_API_URL"] = api_url.rstrip("/")
    if webhook_url.endswith(WEBHOOK_PATH):
        # the service's own address, for the build links in check runs
        values["CLARITY_PUBLIC_URL"] = webhook_url.removesuffix(WEBHOOK_PATH)
    return values


async def convert(client: httpx.AsyncClient, api_url: str, code: str) -> RegisteredApp:
    """Exchange the manifest flow's code for the new App's credentials (once)."""
    url = f"{api_url.rstrip('/')}/app-manifests/{quote(code, safe='')}/conversions"
    headers = {"accept": "application/vnd.github+json", "x-github-api-version": "2022-11-28"}
    try:
        response = await client.post(url, headers=headers)
    except httpx.HTTPError as error:
        raise SetupError(
            f"cannot reach GitHub's API at {api_url} ({type(error).__name__})"
        ) from None
    if response.status_code in (404, 422):
        raise CodeRejected(
            "GitHub did not accept the code: it was already used, is over an hour old,"
            " or is not one GitHub issued. Start again from the setup page."
        )
    if response.status_code != 201:
        raise SetupError(f"GitHub answered the code exchange with HTTP {response.status_code}")
    try:
        return RegisteredApp.model_validate_json(response.content)
    except ValidationError:
        # the error would quote the body, which holds the key: name no value
        raise SetupError(
            "GitHub's answer to the code exchange lacks the App's credentials"
        ) from None


def save(options: SetupOptions, app: RegisteredApp) -> list[str]:
    """Write the key file and the env file; the names of the variables written."""
    values = env_values(app, options.key_path, options.api_url, options.webhook_url)
    try:
        write_private(options.key_path, app.pem.get_secret_value())
        old = options.env_file.read_text() if options.env_file.exists() else ""
        write_private(options.env_file, merge_env(old, values, REPLACED_BY_SETUP))
    except (OSError, EnvFileError) as error:
        # the code is spent: this App's key cannot be had again
        raise SetupError(
            f"GitHub created the App (id {app.id}) but its credentials could not be written"
            f" ({error}); delete the App in its settings on GitHub and run setup again"
        ) from None
    return list(values)


def check_env_file(options: SetupOptions) -> None:
    """Refuse to replace the App an env file already names, unless forced."""
    if options.force or not options.env_file.exists():
        return
    if "CLARITY_APP_ID" in env_names(options.env_file.read_text()):
        raise SetupError(
            f"{options.env_file} already names a GitHub App (CLARITY_APP_ID);"
            " pass --force to register a new App and replace its credentials"
        )


@dataclass
class SetupFlow:
    """One setup session: its options, its address, and how it ended."""

    options: SetupOptions
    base_url: str
    template: dict[str, Any]
    state: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    registered: RegisteredApp | None = None
    stop: Callable[[], None] = lambda: None


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers={"cache-control": "no-store"})


async def start_page(request: Request) -> HTMLResponse:
    """The form that sends `app.yml` to GitHub."""
    flow: SetupFlow = request.app.state.flow
    if flow.registered is not None:
        return _page("Already registered", f"<p>{_install_link(flow.registered)}</p>")
    data = manifest(flow.template, flow.options.webhook_url, flow.base_url + CALLBACK_PATH)
    owner = f"the organization {flow.options.org}" if flow.options.org else "your account"
    action = new_app_url(flow.options.github_url, flow.options.org, flow.state)
    return _page(
        "Register Clarity Check as a GitHub App",
        f"<p>This creates the App <strong>{html.escape(str(data.get('name', '')))}</strong>"
        f" on {html.escape(owner)}; webhooks go to"
        f" <code>{html.escape(flow.options.webhook_url)}</code>.</p>"
        f'<form action="{html.escape(action)}" method="post">'
        f'<input type="hidden" name="manifest" value="{html.escape(json.dumps(data))}">'
        '<button type="submit">Register the GitHub App</button></form>',
    )


async def callback(request: Request) -> HTMLResponse:
    """Where GitHub sends the person back with `?code=`: exchange it and save the result."""
    flow: SetupFlow = request.app.state.flow
    if flow.registered is not None:
        return _page("Already registered", f"<p>{_install_link(flow.registered)}</p>")
    code, state = request.query_params.get("code"), request.query_params.get("state")
    if not code or not state or not secrets.compare_digest(state, flow.state):
        return _failed("This answer is not for this setup session: start again.", 400)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            app = await convert(client, flow.options.api_url, code)
        written = save(flow.options, app)
    except SetupError as error:
        print(f"clarity setup: {error}", file=sys.stderr, flush=True)
        return _failed(str(error), 400 if isinstance(error, CodeRejected) else 502)
    flow.registered = app
    print(
        f"Registered the GitHub App {app.name!r} (id {app.id}, client id {app.client_id}).\n"
        f"Wrote {', '.join(written)} to {flow.options.env_file};"
        f" the private key is in {flow.options.key_path} (mode 0600).\n"
        f"Install it: {app.install_url}",
        flush=True,
    )
    if "CLARITY_WEBHOOK_SECRETS" not in written:
        print(f"clarity setup: {NO_WEBHOOK_SECRET}", file=sys.stderr, flush=True)
    page = _page(
        "GitHub App registered",
        f"<p>{html.escape(app.name)} (id {app.id}) is registered and its credentials are in"
        f" <code>{html.escape(str(flow.options.env_file))}</code>.</p>"
        f"<p>{_install_link(app)}</p><p>You can close this page.</p>",
    )
    page.background = BackgroundTask(flow.stop)
    return page


def _failed(message: str, status: int) -> HTMLResponse:
    body = f'<p>{html.escape(message)}</p><p><a href="/">Start again</a></p>'
    return _page("Setup did not finish", body, status)


def _install_link(app: RegisteredApp) -> str:
    url = html.escape(app.install_url)
    return f'Next, <a href="{url}">install the App</a> on your repositories: {url}'


def create_setup_app(flow: SetupFlow) -> Starlette:
    """The local setup site over `flow`."""
    app = Starlette(
        routes=[
            Route("/", start_page, methods=["GET"]),
            Route(CALLBACK_PATH, callback, methods=["GET"]),
        ]
    )
    app.state.flow = flow
    return app


def load_template(path: Path) -> dict[str, Any]:
    """The manifest template (`app.yml`)."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise SetupError(f"cannot read the manifest {path}: {error}") from None
    if not isinstance(data, dict) or not data.get("name"):
        raise SetupError(f"{path} is not an App manifest (it needs at least a name)")
    return data


def _check_url(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SetupError(f"{name} must be an http(s) URL, not {value!r}")


def run(options: SetupOptions) -> int:
    """Serve the setup page until the App is registered (or Ctrl-C); 0 once registered."""
    import uvicorn

    for name, value in (
        ("--webhook-url", options.webhook_url),
        ("--github-url", options.github_url),
        ("--api-url", options.api_url),
    ):
        _check_url(name, value)
    check_env_file(options)
    template = load_template(options.manifest_file)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((options.host, options.port))
        # listening before the address is printed: a browser that is quick queues, not fails
        sock.listen(64)
    except OSError as error:
        raise SetupError(f"cannot listen on {options.host}:{options.port}: {error}") from None
    base_url = f"http://{options.host}:{sock.getsockname()[1]}"
    flow = SetupFlow(options, base_url, template)
    # no access log: the callback's query string carries the code
    config = uvicorn.Config(
        create_setup_app(flow), log_config=None, access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    flow.stop = lambda: setattr(server, "should_exit", True)
    print(f"Open {base_url}/ in a browser to register the GitHub App.", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0 if flow.registered is not None else 1
