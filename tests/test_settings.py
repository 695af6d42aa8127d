"""Settings: validated once, every problem in one error, durations in plain seconds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from bot.settings import Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)


def test_every_bad_or_missing_value_is_named_in_one_error(monkeypatch):
    monkeypatch.setenv("CLARITY_APP_ID", "not-a-number")
    monkeypatch.setenv("CLARITY_MAX_BODY_BYTES", "-1")
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = str(error.value)
    for name in ("CLARITY_APP_ID", "CLARITY_WEBHOOK_SECRETS", "CLARITY_MAX_BODY_BYTES"):
        assert name in message


def test_secrets_rotate_as_a_comma_separated_list_and_never_print(monkeypatch):
    monkeypatch.setenv("CLARITY_APP_ID", "7")
    monkeypatch.setenv("CLARITY_PRIVATE_KEY", "-----BEGIN KEY-----")
    monkeypatch.setenv("CLARITY_WEBHOOK_SECRETS", "old-secret-1, new-secret-2")
    settings = load_settings()
    assert [s.get_secret_value() for s in settings.webhook_secrets] == [
        "old-secret-1",
        "new-secret-2",
    ]
    assert "old-secret-1" not in repr(settings) and "BEGIN KEY" not in repr(settings)


def test_durations_are_plain_seconds_or_iso_8601(monkeypatch):
    monkeypatch.setenv("CLARITY_APP_ID", "7")
    monkeypatch.setenv("CLARITY_PRIVATE_KEY", "k")
    monkeypatch.setenv("CLARITY_WEBHOOK_SECRETS", "s")
    monkeypatch.setenv("CLARITY_FRESHNESS_WINDOW", "3600")
    monkeypatch.setenv("CLARITY_BUILD_LEASE_TTL", "PT2S")
    settings = load_settings()
    assert settings.freshness_window == timedelta(hours=1)
    assert settings.build_lease_ttl == timedelta(seconds=2)


def test_nonces_must_outlive_the_freshness_window(monkeypatch):
    monkeypatch.setenv("CLARITY_APP_ID", "7")
    monkeypatch.setenv("CLARITY_PRIVATE_KEY", "k")
    monkeypatch.setenv("CLARITY_WEBHOOK_SECRETS", "s")
    monkeypatch.setenv("CLARITY_FRESHNESS_WINDOW", "7200")
    monkeypatch.setenv("CLARITY_NONCE_RETENTION", "3600")
    with pytest.raises(SettingsError, match="NONCE_RETENTION"):
        load_settings()


def test_the_database_url_is_read_bare_as_platforms_provide_it(monkeypatch):
    monkeypatch.setenv("CLARITY_APP_ID", "7")
    monkeypatch.setenv("CLARITY_PRIVATE_KEY", "k")
    monkeypatch.setenv("CLARITY_WEBHOOK_SECRETS", "s")
    monkeypatch.setenv("DATABASE_URL", "postgresql://db.example/clarity")
    assert load_settings().database_url == "postgresql://db.example/clarity"


def test_a_validation_error_never_echoes_a_secret_value():
    # Not through load_settings: pydantic's own message must hold no value either. The blank
    # fails the field, which pydantic would report by quoting the whole list of secrets.
    with pytest.raises(ValidationError) as error:
        Settings(
            app_id=7,
            private_key="k",
            webhook_secrets=["hook-secret-5e1f", ""],
            encryption_keys="not-a-fernet-key-93c1",
        )
    message = str(error.value)
    assert "webhook_secrets" in message and "encryption_keys" in message
    assert "hook-secret-5e1f" not in message and "not-a-fernet-key-93c1" not in message
