"""`clarity setup`: the App manifest flow end to end against the GitHub stand-in, as a browser
drives it; credentials land in the env file and a 0600 key file, and nowhere else."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml
from dotenv import dotenv_values
from gidgethub.apps import get_jwt

from bot.cli import main
from bot.settings import Settings
from bot.setup import RegisteredApp, env_values
from localhub import Hub, running
from tests.conftest import REPO_ROOT

WEBHOOK_URL = "https://clarity.example.test/webhooks/github"
EXIT_TIMEOUT = 15


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str]


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(values["action"], values.get("method", "get"), {}))
        elif tag == "input" and self.forms and "name" in values:
            self.forms[-1].fields[values["name"]] = values.get("value", "")


def the_form(page: str) -> Form:
    parser = _FormParser()
    parser.feed(page)
    assert len(parser.forms) == 1, page
    return parser.forms[0]


@dataclass
class Setup:
    """A running `clarity setup` process, the env file it was given, and its first line."""

    process: subprocess.Popen[str]
    url: str
    env_file: Path
    first_line: str

    @property
    def key_file(self) -> Path:
        return self.env_file.parent / "github-app-key.pem"

    def callback(self, query: str) -> httpx.Response:
        return httpx.get(f"{self.url}callback?{query}", timeout=10)

    def finish(self) -> tuple[int, str]:
        """Wait for the process to end by itself; its exit code and everything it printed."""
        out, err = self.process.communicate(timeout=EXIT_TIMEOUT)
        return self.process.returncode, self.first_line + out + err

    def stop(self) -> str:
        """End a setup still waiting for GitHub; everything it printed."""
        self.process.terminate()
        out, err = self.process.communicate(timeout=EXIT_TIMEOUT)
        return self.first_line + out + err


def launch(github: str, env_file: Path, *extra: str) -> Setup:
    """Start `clarity setup` against the stand-in, once it says where its page is."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CLARITY_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot",
            "setup",
            "--webhook-url",
            WEBHOOK_URL,
            "--github-url",
            github,
            "--api-url",
            github,
            "--env-file",
            str(env_file),
            "--port",
            "0",
            *extra,
        ],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline() if process.stdout else ""
    found = re.search(r"Open (http://127\.0\.0\.1:\d+/) in a browser", line)
    if not found:
        process.kill()
        pytest.fail(f"setup did not start: {line}{process.communicate()[1]}")
    return Setup(process, found.group(1), env_file, line)


def register(setup: Setup) -> httpx.Response:
    """What a person does: open the page, press the button, let GitHub redirect back."""
    with httpx.Client(follow_redirects=True, timeout=10) as browser:
        form = the_form(browser.get(setup.url).text)
        assert form.method == "post"
        return browser.post(form.action, data=form.fields)


@dataclass
class Registered:
    """One whole run of the flow: the stand-in, the setup, its last page and its output."""

    hub: Hub
    github: str
    setup: Setup
    page: httpx.Response
    exit_code: int
    printed: str


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registered]:
    """The flow run once (a setup process costs a second); each test checks one outcome."""
    hub = Hub()
    with running(hub) as github:
        setup = launch(github, tmp_path_factory.mktemp("setup") / "deploy" / ".env")
        try:
            page = register(setup)
            exit_code, printed = setup.finish()
        finally:
            if setup.process.poll() is None:
                setup.process.kill()
        yield Registered(hub, github, setup, page, exit_code, printed)


@pytest.fixture
def hub() -> Hub:
    return Hub()


@pytest.fixture
def github(hub: Hub) -> Iterator[str]:
    with running(hub) as base_url:
        yield base_url


@pytest.fixture
def start_setup(tmp_path: Path, github: str) -> Iterator[Callable[..., Setup]]:
    started: list[Setup] = []

    def start(*extra: str) -> Setup:
        started.append(launch(github, tmp_path / "deploy" / ".env", *extra))
        return started[-1]

    yield start
    for setup in started:
        if setup.process.poll() is None:
            setup.process.kill()
            setup.process.communicate()


# the flow ----------------------------------------------------------------------------
def test_setup_ends_on_a_page_saying_the_app_is_registered(registered):
    assert registered.page.status_code == 200, registered.page.text
    assert "GitHub App registered" in registered.page.text
    assert registered.exit_code == 0, registered.printed


def test_the_env_file_holds_the_apps_credentials(registered):
    hub, setup = registered.hub, registered.setup
    assert dotenv_values(setup.env_file) == {
        "CLARITY_APP_ID": str(hub.app.id),
        "CLARITY_CLIENT_ID": hub.app.client_id,
        "CLARITY_PRIVATE_KEY_FILE": str(setup.key_file),
        "CLARITY_WEBHOOK_SECRETS": hub.webhook_secret,
        "CLARITY_GITHUB_API_URL": registered.github,
        "CLARITY_PUBLIC_URL": "https://clarity.example.test",
    }


def test_the_key_and_env_files_are_readable_by_their_owner_only(registered):
    setup = registered.setup
    assert setup.key_file.read_bytes() == registered.hub.private_key_pem
    assert stat.S_IMODE(setup.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(setup.env_file.stat().st_mode) == 0o600


def test_the_last_page_links_to_the_apps_installation(registered):
    install = f"{registered.github}/apps/clarity-check/installations/new"
    assert f'href="{install}"' in registered.page.text
    assert install in registered.printed


def test_the_manifest_sent_is_app_yml_with_our_webhook_and_redirect(registered):
    hub = registered.hub
    (pending,) = hub.manifest_codes.values()
    sent = pending.manifest
    app_yml = yaml.safe_load((REPO_ROOT / "app.yml").read_text())
    assert sent["hook_attributes"] == {**app_yml["hook_attributes"], "url": WEBHOOK_URL}
    assert sent["redirect_url"] == f"{registered.setup.url}callback"
    assert {k: v for k, v in sent.items() if k not in ("hook_attributes", "redirect_url")} == {
        k: v for k, v in app_yml.items() if k != "hook_attributes"
    }
    assert hub.webhook_url == WEBHOOK_URL
    assert pending.owner == "octocat"


def test_the_written_settings_authenticate_as_the_new_app(registered):
    settings = Settings(_env_file=registered.setup.env_file)
    jwt = get_jwt(app_id=settings.jwt_issuer, private_key=settings.app_private_key())
    answer = httpx.get(f"{settings.github_api_url}/app", headers={"authorization": f"Bearer {jwt}"})
    assert answer.status_code == 200
    assert answer.json()["id"] == settings.app_id == registered.hub.app.id


def test_no_secret_is_printed(registered):
    hub, printed = registered.hub, registered.printed
    ((one_time_code, pending),) = hub.manifest_codes.items()
    pem_lines = [line for line in hub.private_key_pem.decode().splitlines() if "-----" not in line]
    secrets = [hub.webhook_secret, pending.client_secret, one_time_code, *pem_lines]
    assert all(secret and secret not in printed for secret in secrets)
    assert "PRIVATE KEY" not in printed


def test_an_organization_app_is_registered_on_the_organization(hub, start_setup):
    setup = start_setup("--org", "octo-org")
    with httpx.Client(timeout=10) as browser:
        form = the_form(browser.get(setup.url).text)
    assert urlsplit(form.action).path == "/organizations/octo-org/settings/apps/new"
    register(setup)
    assert setup.finish()[0] == 0
    assert hub.app.owner_login == "octo-org"


# refusals ----------------------------------------------------------------------------
def test_a_code_github_never_issued_is_refused_clearly(start_setup):
    setup = start_setup()
    state = parse_qs(urlsplit(the_form(httpx.get(setup.url).text).action).query)["state"][0]
    page = setup.callback(f"code=0123456789abcdef0123&state={state}")
    assert page.status_code == 400
    assert "already used" in page.text and "Start again" in page.text
    assert not setup.env_file.exists() and not setup.key_file.exists()
    assert "GitHub did not accept the code" in setup.stop()


def test_a_code_already_used_is_refused_clearly(github, start_setup):
    setup = start_setup()
    with httpx.Client(timeout=10) as browser:
        form = the_form(browser.get(setup.url).text)
        to_github = browser.post(form.action, data=form.fields)
        assert to_github.status_code == 302
        back = to_github.headers["location"]
        code = parse_qs(urlsplit(back).query)["code"][0]
        first = browser.post(f"{github}/app-manifests/{code}/conversions")
        assert first.status_code == 201
        page = browser.get(back)
    assert page.status_code == 400
    assert "GitHub did not accept the code: it was already used" in page.text
    assert not setup.env_file.exists()
    assert "already used" in setup.stop()


def test_an_answer_for_another_session_is_refused(start_setup):
    setup = start_setup()
    page = setup.callback("code=0123456789abcdef0123&state=someone-elses")
    assert page.status_code == 400
    assert "not for this setup session" in page.text
    setup.stop()


def test_setup_will_not_replace_an_app_the_env_file_names(tmp_path, capsys):
    env_file = tmp_path / ".env"
    env_file.write_text("CLARITY_APP_ID=17\n")
    code = main(["setup", "--webhook-url", WEBHOOK_URL, "--env-file", str(env_file)])
    assert code == 2
    assert "--force" in capsys.readouterr().err
    assert env_file.read_text() == "CLARITY_APP_ID=17\n"


def test_setup_refuses_a_webhook_url_that_is_not_http(tmp_path, capsys):
    code = main(
        ["setup", "--webhook-url", "clarity.example.com", "--env-file", str(tmp_path / "e")]
    )
    assert code == 2
    assert "--webhook-url must be an http(s) URL" in capsys.readouterr().err


def test_an_app_without_a_webhook_secret_still_gets_its_id_and_key_written(tmp_path):
    app = RegisteredApp(
        id=7,
        slug="c",
        name="C",
        html_url="https://github.com/apps/c",
        client_id="Iv1.c",
        pem="-----BEGIN RSA PRIVATE KEY-----\n",
        webhook_secret=None,
        client_secret="s",
    )
    values = env_values(app, tmp_path / "k.pem", "https://api.github.com", "https://x.test/hook")
    assert set(values) == {"CLARITY_APP_ID", "CLARITY_CLIENT_ID", "CLARITY_PRIVATE_KEY_FILE"}
