"""The deployment files, read as Docker and docker compose read them: a pinned, non-root image
built from uv.lock, and a compose file whose settings are the service's real settings."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from bot.cli import build_parser
from bot.settings import Settings
from bot.setup import RegisteredApp, env_values
from tests.conftest import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
COMPOSE = REPO_ROOT / "compose.yaml"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
PINNED_PYTHON = re.compile(
    r"python:3\.12(\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?|-slim-bookworm@sha256:[0-9a-f]{64})"
)
OUR_SERVICES = ("migrate", "web", "worker-fast", "worker-slow")


# reading the files -------------------------------------------------------------------
def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    found, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        keyword, _, rest = (current + line).partition(" ")
        found.append((keyword.upper(), rest.strip()))
        current = ""
    return found


def stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's build stages, each starting with its FROM."""
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def arguments(rest: str) -> list[str]:
    """An instruction's exec form (JSON array) or shell form, as a list of words."""
    if rest.startswith("["):
        return yaml.safe_load(rest)
    return shlex.split(rest)


def final(keyword: str) -> list[str]:
    return [rest for k, rest in stages()[-1] if k == keyword]


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def setting_names(field_name: str) -> list[str]:
    """The environment variables that set one field of `Settings`."""
    alias = Settings.model_fields[field_name].validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [f"CLARITY_{field_name.upper()}"]


def all_setting_names() -> set[str]:
    return {name for field in Settings.model_fields for name in setting_names(field)}


def secret_setting_names() -> set[str]:
    names = set()
    for field_name, field in Settings.model_fields.items():
        if "SecretStr" in repr(field.annotation):
            names.update(setting_names(field_name))
    return names


def written_by_setup() -> dict[str, str]:
    """What `clarity setup` puts in the env file, for a typical App."""
    app = RegisteredApp(
        id=12345,
        slug="clarity-check",
        name="Clarity Check",
        html_url="https://github.com/apps/clarity-check",
        client_id="Iv23liExample",
        pem="-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----\n",
        webhook_secret="0123456789abcdef0123456789abcdef01234567",
        client_secret="not-used",
    )
    return env_values(
        app,
        Path("github-app-key.pem"),
        "https://api.github.com",
        "https://c.example/webhooks/github",
    )


def interpolated(value: str, variables: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` substitution."""

    def substitute(match: re.Match[str]) -> str:
        name, operator, word = match.group(1), match.group(2), match.group(3)
        if name in variables and variables[name]:
            return variables[name]
        if operator == ":-":
            return word
        raise AssertionError(f"{name} is required: {word}")

    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", substitute, value)


# the Dockerfile ----------------------------------------------------------------------
def test_the_image_is_built_in_stages_from_a_pinned_python_3_12_slim_bookworm():
    bases = [rest.split()[0] for rest in (stage[0][1] for stage in stages())]
    assert len(bases) >= 2
    assert all(PINNED_PYTHON.fullmatch(base) for base in bases), bases


def test_dependencies_are_installed_from_uv_lock_with_uv():
    build = stages()[0]
    copied = [arguments(rest) for keyword, rest in build if keyword == "COPY"]
    assert any("uv.lock" in words for words in copied)
    syncs = [rest for keyword, rest in build if keyword == "RUN" and "uv sync" in rest]
    assert syncs and all(re.search(r"--(frozen|locked)\b", rest) for rest in syncs)
    assert all("--no-dev" in rest for rest in syncs)
    # pip installs nothing but a pinned uv
    pips = [rest for keyword, rest in build if keyword == "RUN" and "pip install" in rest]
    assert all(re.search(r'"?uv==[\d.]+"?$', rest) for rest in pips), pips


def test_the_image_runs_as_a_user_that_is_not_root():
    users = final("USER")
    assert users, "the runtime stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    # nothing after it switches back
    keywords = [k for k, _ in stages()[-1]]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")


def test_bubblewrap_is_installed_for_the_local_sandbox():
    runs = " ".join(final("RUN"))
    assert re.search(r"apt-get install\b[^&;]*\bbubblewrap\b", runs)


def test_the_health_check_asks_the_web_process_for_healthz():
    (check,) = final("HEALTHCHECK")
    port = build_parser().parse_args(arguments(final("CMD")[-1])).port
    assert f"127.0.0.1:{port}/healthz" in check


def test_the_entrypoint_is_clarity_and_the_default_command_is_one_of_its_commands():
    assert arguments(final("ENTRYPOINT")[-1]) == ["clarity"]
    args = build_parser().parse_args(arguments(final("CMD")[-1]))
    assert args.command == "serve" and args.host == "0.0.0.0"


def test_no_secret_is_baked_into_the_image():
    secret_names = secret_setting_names() | {"CLARITY_PRIVATE_KEY_FILE"}
    for keyword, rest in (step for stage in stages() for step in stage):
        if keyword in ("ENV", "ARG"):
            named = set(re.findall(r"(?:^|\s)([A-Z_][A-Z0-9_]*)=", rest)) | {rest.split("=")[0]}
            assert not named & secret_names, rest
        if keyword in ("COPY", "ADD"):
            assert not re.search(r"\.env\b|\.pem\b", rest), rest


def ignored(path: str, pattern: str) -> bool:
    """Whether a .dockerignore pattern excludes `path` (relative to the context), as Docker
    matches: `**` spans directories, `*` and `?` stay within one, a directory takes its contents."""
    regex = ""
    for part in re.split(r"(\*\*/|\*|\?)", pattern.strip("/")):
        regex += {"**/": "(?:.*/)?", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
    return re.fullmatch(regex + "(?:/.*)?", path) is not None


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        "deploy/.env",
        ".env.production",
        "github-app-key.pem",
        "keys/app.pem",
        ".git/HEAD",
        "a/x.db",
    ],
)
def test_dockerignore_keeps_credentials_and_state_out_of_the_build(path):
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert any(ignored(path, pattern) for pattern in patterns), path


@pytest.mark.parametrize(
    "path", ["pyproject.toml", "uv.lock", "README.md", "app.yml", "bot/setup.py"]
)
def test_dockerignore_keeps_what_the_build_needs(path):
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not any(ignored(path, pattern) for pattern in patterns), path


# compose.yaml ------------------------------------------------------------------------
def test_compose_runs_the_web_process_both_lanes_the_databases_and_a_migration():
    assert set(compose()["services"]) == {*OUR_SERVICES, "postgres", "redis"}


@pytest.mark.parametrize("name", OUR_SERVICES)
def test_each_command_is_a_clarity_command(name):
    words = service(name)["command"]
    assert words[0] in build_parser().format_help()
    build_parser().parse_args(words)  # argparse exits on anything `clarity` does not accept


@pytest.mark.parametrize(("name", "lane"), [("worker-fast", "fast"), ("worker-slow", "slow")])
def test_each_worker_serves_one_lane(name, lane):
    assert build_parser().parse_args(service(name)["command"]).lane == lane


@pytest.mark.parametrize("name", ["web", "worker-fast", "worker-slow", "postgres", "redis"])
def test_every_long_running_service_has_a_health_check(name):
    check = service(name)["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL") and check["interval"]


@pytest.mark.parametrize("name", ["web", "worker-fast", "worker-slow"])
def test_the_service_waits_for_healthy_databases_and_the_migration(name):
    assert service(name)["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }


def test_the_migration_runs_once_when_postgres_is_healthy():
    migrate = service("migrate")
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}


@pytest.mark.parametrize("name", OUR_SERVICES)
def test_settings_come_from_the_env_file(name):
    assert service(name)["env_file"] == [{"path": ".env", "required": True}]


@pytest.mark.parametrize("name", OUR_SERVICES)
def test_every_variable_compose_sets_is_a_setting(name):
    assert set(service(name)["environment"]) <= all_setting_names()


def test_everything_clarity_setup_writes_is_a_setting():
    assert set(written_by_setup()) <= all_setting_names()


@pytest.mark.parametrize("name", ["web", "worker-fast", "worker-slow"])
def test_every_required_setting_is_provided(name):
    provided = set(service(name)["environment"]) | set(written_by_setup())
    required = [field for field, info in Settings.model_fields.items() if info.is_required()]
    assert required  # app_id and webhook_secrets, at least
    for field in required:
        assert provided & set(setting_names(field)), field
    # and the key, as a value or a file (settings refuse both at once)
    key_names = {"CLARITY_PRIVATE_KEY", "CLARITY_PRIVATE_KEY_FILE"}
    assert len(provided & key_names) == 1


@pytest.mark.parametrize("name", ["web", "worker-fast", "worker-slow"])
def test_the_settings_load_from_what_setup_and_compose_provide(name, monkeypatch, tmp_path):
    for variable in all_setting_names():
        monkeypatch.delenv(variable, raising=False)
    key = tmp_path / "github_app_key"
    key.write_text("-----BEGIN RSA PRIVATE KEY-----\n")
    environment = {**written_by_setup(), **service(name)["environment"]}
    for variable, value in environment.items():
        monkeypatch.setenv(variable, interpolated(str(value), {"POSTGRES_PASSWORD": "pw"}))
    secret_path = Path(environment["CLARITY_PRIVATE_KEY_FILE"])
    monkeypatch.setenv("CLARITY_PRIVATE_KEY_FILE", str(key))
    settings = Settings(_env_file=None)
    assert settings.database_url == "postgresql://clarity:pw@postgres:5432/clarity"
    assert settings.redis_url == "redis://redis:6379/0"
    assert secret_path == Path("/run/secrets/github_app_key")


def test_the_key_setup_writes_is_the_secret_compose_mounts():
    key_file = Path(written_by_setup()["CLARITY_PRIVATE_KEY_FILE"]).name
    assert compose()["secrets"]["github_app_key"]["file"] == f"./{key_file}"
    for name in OUR_SERVICES:
        assert "github_app_key" in service(name)["secrets"]


def test_postgres_password_is_required_not_defaulted():
    url = service("web")["environment"]["DATABASE_URL"]
    with pytest.raises(AssertionError, match="POSTGRES_PASSWORD"):
        interpolated(url, {})


@pytest.mark.parametrize(("name", "lane"), [("worker-fast", "fast"), ("worker-slow", "slow")])
def test_a_workers_health_check_reads_arqs_sentinel_for_its_lane(
    name, lane, redis_url, monkeypatch
):
    import redis

    prefix = f"clarity-deploy-test-{lane}"
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("CLARITY_QUEUE_PREFIX", prefix)
    code = compile(service(name)["healthcheck"]["test"][3], "healthcheck", "exec")
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(f"{prefix}:{lane}:health-check")
        with pytest.raises(SystemExit) as no_worker:
            exec(code, {})
        client.set(f"{prefix}:{lane}:health-check", "j_complete=0", ex=60)
        with pytest.raises(SystemExit) as worker_up:
            exec(code, {})
    finally:
        client.delete(f"{prefix}:{lane}:health-check")
        client.close()
    assert (no_worker.value.code, worker_up.value.code) == (1, 0)
