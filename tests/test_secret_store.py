"""Installation secrets: sealed at rest, rotated between keys, masked everywhere they are shown."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from bot.auth import Scope, capability, create_token
from bot.models import Installation
from bot.secret_store import (
    MASK,
    InvalidSecret,
    MaskedSecret,
    NoEncryptionKeys,
    SecretStore,
    UndecryptableSecret,
    UnknownInstallation,
    key_id,
    new_key,
)
from bot.settings import SettingsError, load_settings
from tests.conftest import REPO_ROOT

VALUE = "sk-live-4f9c2e7a1b8d6053-installation-llm-key"
OLD_KEY, NEW_KEY = new_key(), new_key()


@pytest.fixture
async def installation(db) -> int:
    async with db.session() as session:
        session.add(Installation(id=7, account_login="octo-org"))
        await session.commit()
    return 7


async def stored_rows(db) -> list[tuple[bytes, str]]:
    async with db.engine.connect() as connection:
        result = await connection.execute(text("SELECT ciphertext, key_id FROM secret"))
        return [(bytes(ciphertext), kid) for ciphertext, kid in result]


async def test_a_secret_round_trips(db, installation):
    store = SecretStore(db, [NEW_KEY])
    await store.put(installation, "llm_api_key", VALUE)
    assert await store.get(installation, "llm_api_key") == VALUE
    assert await store.get(installation, "other") is None


async def test_put_replaces_the_earlier_value(db, installation):
    store = SecretStore(db, [NEW_KEY])
    await store.put(installation, "llm_api_key", "first-value-123")
    await store.put(installation, "llm_api_key", VALUE)
    assert await store.get(installation, "llm_api_key") == VALUE
    assert len(await store.list_masked(installation)) == 1


async def test_the_database_holds_only_ciphertext(db, installation):
    await SecretStore(db, [NEW_KEY]).put(installation, "llm_api_key", VALUE)
    [(ciphertext, kid)] = await stored_rows(db)
    assert VALUE.encode() not in ciphertext
    assert NEW_KEY.encode() not in ciphertext and NEW_KEY not in kid
    assert kid == key_id(NEW_KEY)


async def test_rotation_reseals_old_rows_with_the_newest_key(db, installation):
    await SecretStore(db, [OLD_KEY]).put(installation, "llm_api_key", VALUE)
    await SecretStore(db, [NEW_KEY]).put(installation, "other_key", "sealed-by-new")
    rotating = SecretStore(db, [NEW_KEY, OLD_KEY])

    assert await rotating.rotate() == 1
    assert {kid for _, kid in await stored_rows(db)} == {key_id(NEW_KEY)}
    assert await rotating.rotate() == 0
    assert await SecretStore(db, [NEW_KEY]).get(installation, "llm_api_key") == VALUE


async def test_a_secret_whose_key_was_removed_names_the_key_id_only(db, installation):
    await SecretStore(db, [OLD_KEY]).put(installation, "llm_api_key", VALUE)
    store = SecretStore(db, [NEW_KEY])
    for attempt in (store.get(installation, "llm_api_key"), store.rotate()):
        with pytest.raises(UndecryptableSecret) as error:
            await attempt
        message = str(error.value)
        assert key_id(OLD_KEY) in message and "CLARITY_ENCRYPTION_KEYS" in message
        assert VALUE not in message and OLD_KEY not in message and NEW_KEY not in message


async def test_a_failed_rotation_changes_nothing(db, installation):
    await SecretStore(db, [OLD_KEY]).put(installation, "a_key", VALUE)
    await SecretStore(db, [new_key()]).put(installation, "b_key", VALUE)
    before = await stored_rows(db)
    with pytest.raises(UndecryptableSecret):
        await SecretStore(db, [NEW_KEY, OLD_KEY]).rotate()
    assert await stored_rows(db) == before


async def test_masks_reveal_nothing_of_the_value(db, installation):
    store = SecretStore(db, [NEW_KEY])
    await store.put(installation, "short_key", "x")
    await store.put(installation, "long_key", VALUE * 50)
    listed = await SecretStore(db, []).list_masked(installation)
    assert [(s.name, s.mask, s.key_id) for s in listed] == [
        ("long_key", MASK, key_id(NEW_KEY)),
        ("short_key", MASK, key_id(NEW_KEY)),
    ]
    assert set(MaskedSecret.__dataclass_fields__) == {"name", "key_id", "updated_at", "mask"}


async def test_sealing_or_opening_without_keys_says_how_to_make_one(db, installation):
    store = SecretStore(db, [])
    with pytest.raises(NoEncryptionKeys, match="CLARITY_ENCRYPTION_KEYS.*clarity secret new-key"):
        await store.put(installation, "llm_api_key", VALUE)
    with pytest.raises(NoEncryptionKeys):
        await store.rotate()


async def test_unknown_installations_and_bad_input_are_refused(db, installation):
    store = SecretStore(db, [NEW_KEY])
    with pytest.raises(UnknownInstallation):
        await store.put(999, "llm_api_key", VALUE)
    with pytest.raises(UnknownInstallation):
        await store.list_masked(999)
    with pytest.raises(InvalidSecret):
        await store.put(installation, "bad name!", VALUE)
    with pytest.raises(InvalidSecret) as error:
        await store.put(installation, "llm_api_key", "")
    assert "empty" in str(error.value)


async def test_delete_removes_one_secret(db, installation):
    store = SecretStore(db, [NEW_KEY])
    await store.put(installation, "llm_api_key", VALUE)
    assert await store.delete(installation, "llm_api_key") is True
    assert await store.delete(installation, "llm_api_key") is False
    assert await store.get(installation, "llm_api_key") is None


@pytest.fixture
def base_environment(monkeypatch):
    monkeypatch.setenv("CLARITY_APP_ID", "7")
    monkeypatch.setenv("CLARITY_PRIVATE_KEY", "k")
    monkeypatch.setenv("CLARITY_WEBHOOK_SECRETS", "s")


def test_settings_accept_fernet_keys_newest_first(monkeypatch, base_environment):
    monkeypatch.setenv("CLARITY_ENCRYPTION_KEYS", f"{NEW_KEY}, {OLD_KEY}")
    keys = load_settings().encryption_keys
    assert [k.get_secret_value() for k in keys] == [NEW_KEY, OLD_KEY]


def test_settings_refuse_a_key_that_is_not_fernet_without_echoing_it(monkeypatch, base_environment):
    monkeypatch.setenv("CLARITY_ENCRYPTION_KEYS", f"{NEW_KEY},not-a-fernet-key-93c1")
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = str(error.value)
    assert "CLARITY_ENCRYPTION_KEYS" in message and "key 2 of 2" in message
    assert "not-a-fernet-key-93c1" not in message and NEW_KEY not in message


def clarity(
    db, *args: str, keys: list[str], stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": db.url,
        "CLARITY_ENCRYPTION_KEYS": ",".join(keys),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", "secret", *args],
        input=stdin,
        check=False,
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO_ROOT,
        timeout=60,
    )


async def test_clarity_secret_sets_lists_and_deletes_without_printing_the_value(db, installation):
    by_stdin = clarity(db, "set", "7", "llm_api_key", keys=[NEW_KEY], stdin=VALUE + "\n")
    by_env = clarity(
        db, "set", "7", "other_key", "--from-env", "THE_VALUE", keys=[NEW_KEY], THE_VALUE=VALUE
    )
    listed = clarity(db, "list", "7", keys=[NEW_KEY])
    deleted = clarity(db, "delete", "7", "other_key", keys=[NEW_KEY])
    again = clarity(db, "delete", "7", "other_key", keys=[NEW_KEY])

    runs = (by_stdin, by_env, listed, deleted, again)
    assert [run.returncode for run in runs] == [0, 0, 0, 0, 1]
    assert all(VALUE not in run.stdout + run.stderr for run in runs)
    assert "llm_api_key" in listed.stdout and MASK in listed.stdout
    assert key_id(NEW_KEY) in listed.stdout
    store = SecretStore(db, [NEW_KEY])
    assert await store.get(installation, "llm_api_key") == VALUE  # one trailing newline dropped
    assert await store.get(installation, "other_key") is None


async def test_clarity_secret_rotate_moves_rows_to_the_first_key(db, installation):
    assert clarity(db, "set", "7", "llm_api_key", keys=[OLD_KEY], stdin=VALUE).returncode == 0
    rotated = clarity(db, "rotate", keys=[NEW_KEY, OLD_KEY])
    assert rotated.returncode == 0 and "re-sealed 1 secret" in rotated.stdout
    assert await SecretStore(db, [NEW_KEY]).get(installation, "llm_api_key") == VALUE


@pytest.mark.parametrize(
    ("args", "keys", "env", "expected"),
    [
        (["set", "999", "llm_api_key"], [NEW_KEY], {}, "installation 999 is not known"),
        (["list", "999"], [NEW_KEY], {}, "installation 999 is not known"),
        (["set", "7", "llm_api_key"], [], {}, "clarity secret new-key"),
        (["rotate"], [], {}, "set CLARITY_ENCRYPTION_KEYS"),
        (["list", "7"], ["not-a-fernet-key-93c1"], {}, "CLARITY_ENCRYPTION_KEYS: key 1 of 1"),
        (["set", "7", "llm_api_key", "--from-env", "MISSING"], [NEW_KEY], {}, "MISSING"),
        (["set", "7", "bad name!"], [NEW_KEY], {}, "must start with a letter"),
    ],
)
async def test_clarity_secret_refuses_bad_input_with_exit_2(
    db, installation, args, keys, env, expected
):
    refused = clarity(db, *args, keys=keys, stdin=VALUE, **env)
    assert refused.returncode == 2
    assert expected in refused.stderr
    assert VALUE not in refused.stdout + refused.stderr
    assert "not-a-fernet-key-93c1" not in refused.stderr


def test_clarity_secret_new_key_prints_a_usable_key():
    made = subprocess.run(
        [sys.executable, "-m", "bot", "secret", "new-key"],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert made.returncode == 0
    fernet = Fernet(made.stdout.strip())
    assert fernet.decrypt(fernet.encrypt(b"sealed")) == b"sealed"


@pytest.fixture
def secrets_api(intake, installation):
    url, _ = intake(encryption_keys=[NEW_KEY])
    return url


async def operator(db, *scopes: Scope) -> dict[str, str]:
    return {"Authorization": f"Bearer {await create_token(db, 'ops', list(scopes))}"}


async def test_the_api_stores_and_lists_secrets_masked(db, secrets_api):
    path = "/v1/installations/7/secrets"
    async with httpx.AsyncClient(base_url=secrets_api) as client:
        put = await client.put(
            f"{path}/llm_api_key",
            json={"value": VALUE},
            headers=await operator(db, Scope.SECRETS_WRITE),
        )
        listed = await client.get(path, headers=await operator(db, Scope.SECRETS_READ))
    assert put.status_code == 200 and listed.status_code == 200
    assert VALUE not in put.text + listed.text
    [secret] = listed.json()["secrets"]
    assert (secret["name"], secret["mask"], secret["key_id"]) == (
        "llm_api_key",
        MASK,
        key_id(NEW_KEY),
    )
    assert await SecretStore(db, [NEW_KEY]).get(7, "llm_api_key") == VALUE


async def test_the_api_deletes_a_secret(db, secrets_api):
    await SecretStore(db, [NEW_KEY]).put(7, "llm_api_key", VALUE)
    headers = await operator(db, Scope.SECRETS_WRITE)
    async with httpx.AsyncClient(base_url=secrets_api) as client:
        first = await client.delete("/v1/installations/7/secrets/llm_api_key", headers=headers)
        second = await client.delete("/v1/installations/7/secrets/llm_api_key", headers=headers)
    assert (first.status_code, second.status_code) == (204, 404)
    assert second.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("method", "scopes", "status", "error"),
    [
        ("GET", None, 401, "unauthenticated"),
        ("PUT", None, 401, "unauthenticated"),
        ("DELETE", None, 401, "unauthenticated"),
        ("GET", [Scope.READ, Scope.CONTROL], 403, "forbidden"),
        ("PUT", [Scope.READ, Scope.CONTROL], 403, "forbidden"),
        ("DELETE", [Scope.READ, Scope.CONTROL], 403, "forbidden"),
        ("PUT", [Scope.SECRETS_READ], 403, "forbidden"),
        ("DELETE", [Scope.SECRETS_READ], 403, "forbidden"),
    ],
)
async def test_the_api_needs_an_operator_token_with_the_scope(
    db, secrets_api, method, scopes, status, error
):
    headers = await operator(db, *scopes) if scopes is not None else {}
    path = "/v1/installations/7/secrets" + ("" if method == "GET" else "/llm_api_key")
    async with httpx.AsyncClient(base_url=secrets_api) as client:
        response = await client.request(method, path, json={"value": VALUE}, headers=headers)
    assert (response.status_code, response.json()["error"]) == (status, error)
    assert await SecretStore(db, [NEW_KEY]).get(7, "llm_api_key") is None


async def test_a_build_link_does_not_open_secrets(db, secrets_api, make_settings):
    link = capability(1, make_settings().link_key())
    async with httpx.AsyncClient(base_url=secrets_api) as client:
        response = await client.get("/v1/installations/7/secrets", params={"cap": link})
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/installations/999/secrets/llm_api_key", {"value": VALUE}, 404),
        ("/v1/installations/7/secrets/llm_api_key", {"value": 42}, 400),
        ("/v1/installations/7/secrets/llm_api_key", ["not", "an", "object"], 400),
        ("/v1/installations/7/secrets/bad%20name", {"value": VALUE}, 400),
    ],
)
async def test_the_api_refuses_bad_input(db, secrets_api, path, body, status):
    async with httpx.AsyncClient(base_url=secrets_api) as client:
        response = await client.put(
            path, json=body, headers=await operator(db, Scope.SECRETS_WRITE)
        )
    assert response.status_code == status
    assert set(response.json()) == {"error", "detail"} and VALUE not in response.text


async def test_the_api_without_keys_says_how_to_configure_them(db, intake, installation):
    url, _ = intake()
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.put(
            "/v1/installations/7/secrets/llm_api_key",
            json={"value": VALUE},
            headers=await operator(db, Scope.SECRETS_WRITE),
        )
    assert (response.status_code, response.json()["error"]) == (503, "unavailable")
    assert "set CLARITY_ENCRYPTION_KEYS" in response.json()["detail"]
