"""Service settings from the environment, validated once at start-up."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MiB = 1024 * 1024
DEFAULT_DATABASE_URL = "sqlite:///clarity.db"


def _seconds(value: object) -> object:
    # Durations in the environment are plain seconds ("90"); ISO 8601 ("PT90S") also works.
    if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
        return timedelta(seconds=float(value))
    return value


Duration = Annotated[timedelta, BeforeValidator(_seconds)]


class SettingsError(Exception):
    """Settings that cannot start the service; the message lists every problem."""


class Settings(BaseSettings):
    """Everything the web process and the workers read from the environment.

    Variables are prefixed `CLARITY_`; `DATABASE_URL` and `REDIS_URL` are also
    accepted bare, as platforms commonly provide them.
    """

    # A ValidationError must never echo a value: most of these are secrets.
    model_config = SettingsConfigDict(
        env_prefix="CLARITY_",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        hide_input_in_errors=True,
    )

    app_id: int = Field(gt=0)
    client_id: str | None = None
    private_key: SecretStr | None = None
    private_key_file: Path | None = None
    webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(min_length=1)
    database_url: str = Field(
        DEFAULT_DATABASE_URL, validation_alias=AliasChoices("CLARITY_DATABASE_URL", "DATABASE_URL")
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", validation_alias=AliasChoices("CLARITY_REDIS_URL", "REDIS_URL")
    )
    github_api_url: str = "https://api.github.com"
    # The wait before retrying a request GitHub answered with a 5xx, doubled after each.
    github_retry_delay: Duration = timedelta(seconds=1)
    public_url: str = "http://127.0.0.1:8000"
    freshness_window: Duration = timedelta(hours=72)
    nonce_retention: Duration = timedelta(days=7)
    body_retention: Duration = timedelta(days=3)
    max_body_bytes: int = Field(25 * MiB, gt=0)
    reconcile_grace: Duration = timedelta(seconds=60)
    # Outbound webhooks: the wait after a failed attempt, doubled after each (capped at 30 min).
    outbound_retry_base: Duration = timedelta(minutes=2)
    # A build whose owner stops renewing is taken over after this long.
    build_lease_ttl: Duration = timedelta(seconds=30)
    queue_prefix: str = "clarity"
    # Where repository code runs: "local" (bubblewrap on this host) or "daytona".
    sandbox_backend: Literal["local", "daytona"] = "local"
    sandbox_root: Path | None = None  # local: where sandboxes live (default: the system temp dir)
    # local: install prefixes bound read-only and first on PATH (e.g. a Python with pytest),
    # comma-separated; the worker's own interpreter is always there, without its packages.
    sandbox_toolchains: Annotated[list[str], NoDecode] = Field(default_factory=list)
    daytona_api_url: str | None = None
    daytona_api_key: SecretStr | None = None
    daytona_target: str | None = None
    daytona_snapshot: str | None = None
    daytona_image: str | None = None
    policy_pack: str = "default"
    # Signs build links (check run details URLs); derived from the App key when unset.
    link_signing_key: SecretStr | None = None
    # Fernet keys sealing secrets at rest (comma-separated, newest first); older keys still open.
    encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # Agents (Tier 2 and 3): LiteLLM model names; no model means deterministic fallback.
    llm_model: str | None = None
    llm_fallback_model: str | None = None
    llm_role_models: dict[str, str] = Field(default_factory=dict)  # role -> model, as JSON
    llm_api_key: SecretStr | None = None
    llm_base_url: str | None = None
    # Prices for models LiteLLM does not know (USD per token); unknown models otherwise cost 0.
    llm_input_cost_per_token: float | None = Field(None, ge=0)
    llm_output_cost_per_token: float | None = Field(None, ge=0)
    llm_num_retries: int = Field(2, ge=0, le=10)
    # A worker process serves its own `/metrics` on this port; unset: it serves none.
    metrics_port: int | None = Field(None, ge=1, le=65535)
    # Niceness a worker process takes at start (0-19): on a host shared with `clarity serve`,
    # webhook acknowledgements keep the CPU while builds wait a little.
    worker_nice: int = Field(0, ge=0, le=19)
    # `/readyz` fails when the fast queue's oldest waiting job has waited longer than this.
    readiness_max_queue_age: Duration = timedelta(seconds=60)

    @field_validator("webhook_secrets", "encryption_keys", "sandbox_toolchains", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        # Several secrets, comma-separated, so a rotation can accept old and new at once.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_secrets")
    @classmethod
    def _no_empty_secret(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(not secret.get_secret_value() for secret in value):
            raise ValueError("a webhook secret may not be empty")
        return value

    @field_validator("encryption_keys")
    @classmethod
    def _fernet_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        # The store's own check, so settings and `clarity secret` refuse the same keys alike.
        from bot.secret_store import check_keys

        check_keys([key.get_secret_value() for key in value])
        return value

    @model_validator(mode="after")
    def _check_consistency(self) -> Settings:
        problems = []
        if self.private_key is None and self.private_key_file is None:
            problems.append("set CLARITY_PRIVATE_KEY or CLARITY_PRIVATE_KEY_FILE")
        if self.private_key is not None and self.private_key_file is not None:
            problems.append("set only one of CLARITY_PRIVATE_KEY and CLARITY_PRIVATE_KEY_FILE")
        if self.private_key_file is not None and not self.private_key_file.is_file():
            problems.append("CLARITY_PRIVATE_KEY_FILE does not name a readable file")
        if self.sandbox_backend == "daytona" and not (
            self.daytona_api_url and self.daytona_api_key
        ):
            problems.append(
                "the daytona backend needs CLARITY_DAYTONA_API_URL and CLARITY_DAYTONA_API_KEY"
            )
        if self.nonce_retention <= self.freshness_window:
            problems.append("CLARITY_NONCE_RETENTION must be longer than CLARITY_FRESHNESS_WINDOW")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def app_private_key(self) -> str:
        """The App's PEM private key, from the value or the file."""
        if self.private_key is not None:
            return self.private_key.get_secret_value()
        assert self.private_key_file is not None  # guaranteed by validation
        return self.private_key_file.read_text()

    def link_key(self) -> bytes:
        from bot.auth import link_key

        key = self.link_signing_key.get_secret_value() if self.link_signing_key else None
        return link_key(key, self.app_private_key())

    def secret_values(self) -> list[str]:
        """Every secret value held, for log redaction."""
        values = [s.get_secret_value() for s in self.webhook_secrets]
        if self.private_key is not None:
            values.append(self.private_key.get_secret_value())
        values.extend(k.get_secret_value() for k in self.encryption_keys)
        for secret in (self.daytona_api_key, self.link_signing_key, self.llm_api_key):
            if secret is not None:
                values.append(secret.get_secret_value())
        return values

    @property
    def jwt_issuer(self) -> str:
        # GitHub recommends the client ID as issuer; the App ID also works.
        return self.client_id or str(self.app_id)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (and `overrides`), or one SettingsError naming every problem."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        lines = []
        for problem in error.errors(include_url=False, include_input=False):
            where = ".".join(str(part) for part in problem["loc"]) or "settings"
            name = f"CLARITY_{where.upper()}" if problem["loc"] else where
            lines.append(f"  {name}: {problem['msg']}")
        raise SettingsError("invalid settings:\n" + "\n".join(lines)) from None
