"""Installation secrets (e.g. an installation's own LLM key), sealed at rest with Fernet keys.

The first configured key seals; every configured key opens, so keys rotate by
putting a new key first, running `rotate()`, then dropping the old key. Each
row records a short id of the key that sealed it, so an operator can see which
rows still need an old key. No value, key, or fragment or length of either
ever leaves this module except through `get()`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, delete, select

from bot.db import Database
from bot.models import Installation, Secret, utcnow

# Fixed: a mask that varied with the value would tell its length.
MASK = "•" * 8
MAX_VALUE_LENGTH = 8192
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,99}")
MAKE_A_KEY = "make one with `clarity secret new-key`"


class SecretStoreError(Exception):
    """A secret that cannot be stored or opened; the message never holds a value or a key."""


class NoEncryptionKeys(SecretStoreError):
    """The store was asked to seal or open a secret, but no key is configured."""

    def __init__(self) -> None:
        super().__init__(
            "no encryption keys are configured: set CLARITY_ENCRYPTION_KEYS to one or more "
            f"Fernet keys (comma-separated, newest first); {MAKE_A_KEY}"
        )


class InvalidEncryptionKey(SecretStoreError, ValueError):
    """A configured key that is not a Fernet key; named by its position only."""

    def __init__(self, position: int, count: int) -> None:
        super().__init__(
            f"key {position} of {count} is not a Fernet key "
            f"(32 url-safe base64-encoded bytes); {MAKE_A_KEY}"
        )


class InvalidSecret(SecretStoreError, ValueError):
    """A secret name or value the store does not accept."""


class UnknownInstallation(SecretStoreError):
    """Secrets belong to an installation the service does not know."""

    def __init__(self, installation_id: int) -> None:
        super().__init__(f"installation {installation_id} is not known to this service")
        self.installation_id = installation_id


class UndecryptableSecret(SecretStoreError):
    """A stored secret that none of the configured keys opens."""

    def __init__(self, installation_id: int, name: str, key_id: str, *, key_known: bool) -> None:
        where = f"secret {name!r} of installation {installation_id}"
        if key_known:
            reason = f"{where} does not open with key {key_id}, which sealed it: it is damaged"
        else:
            reason = (
                f"{where} was sealed with key {key_id}, which is not in CLARITY_ENCRYPTION_KEYS: "
                "add that key back (and run `clarity secret rotate`) or set the secret again"
            )
        super().__init__(reason)
        self.installation_id, self.name, self.key_id = installation_id, name, key_id


@dataclass(frozen=True, slots=True)
class MaskedSecret:
    """What may be shown of a stored secret: everything but its value."""

    name: str
    key_id: str
    updated_at: datetime
    mask: str = MASK


def new_key() -> str:
    """A fresh Fernet key, for CLARITY_ENCRYPTION_KEYS."""
    return Fernet.generate_key().decode()


def key_id(key: str) -> str:
    """A short, non-reversible id of `key`: 32 bits of a digest say nothing usable about it."""
    return hashlib.sha256(b"clarity encryption key\x00" + key.encode()).hexdigest()[:8]


def check_keys(keys: Sequence[str]) -> list[Fernet]:
    """One Fernet per key, in order; InvalidEncryptionKey names a bad key by position only."""
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            raise InvalidEncryptionKey(position, len(keys)) from None
    return fernets


def check_secret(name: str, value: str) -> None:
    """Refuse a name the store would not list cleanly, or an empty or oversized value."""
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidSecret(
            f"secret name {name[:100]!r} must start with a letter and hold up to 100 "
            "letters, digits, '_', '.' or '-'"
        )
    if not value:
        raise InvalidSecret(f"the value of secret {name!r} is empty")
    if len(value) > MAX_VALUE_LENGTH:
        raise InvalidSecret(f"the value of secret {name!r} is longer than {MAX_VALUE_LENGTH}")


class SecretStore:
    """Per-installation secrets in the `secret` table, sealed with the newest of `keys`."""

    __slots__ = ("_db", "_fernet", "_key_ids")

    def __init__(self, db: Database, keys: Sequence[SecretStr | str]) -> None:
        plain = [k.get_secret_value() if isinstance(k, SecretStr) else k for k in keys]
        fernets = check_keys(plain)
        self._db = db
        self._fernet = MultiFernet(fernets) if fernets else None
        self._key_ids = [key_id(k) for k in plain]

    def __repr__(self) -> str:
        return f"SecretStore(key_ids={self._key_ids})"

    @property
    def newest_key_id(self) -> str | None:
        """The id of the key that seals; None when no key is configured."""
        return self._key_ids[0] if self._key_ids else None

    def _sealer(self) -> MultiFernet:
        if self._fernet is None:
            raise NoEncryptionKeys()
        return self._fernet

    async def put(self, installation_id: int, name: str, value: str) -> MaskedSecret:
        """Store `value` as `name` for the installation, replacing any earlier value."""
        check_secret(name, value)
        ciphertext = self._sealer().encrypt(value.encode())
        sealed_by, now = self._key_ids[0], utcnow()
        async with self._db.session() as session:
            if await session.get(Installation, installation_id) is None:
                raise UnknownInstallation(installation_id)
            insert = (
                postgresql_insert if self._db.engine.dialect.name == "postgresql" else sqlite_insert
            )
            # The unique (installation, name) decides insert or update: two writers cannot race.
            statement = (
                insert(Secret)
                .values(
                    installation_id=installation_id,
                    name=name,
                    ciphertext=ciphertext,
                    key_id=sealed_by,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_update(
                    index_elements=["installation_id", "name"],
                    set_={"ciphertext": ciphertext, "key_id": sealed_by, "updated_at": now},
                )
            )
            await session.exec(statement)
            await session.commit()
        return MaskedSecret(name=name, key_id=sealed_by, updated_at=now)

    async def get(self, installation_id: int, name: str) -> str | None:
        """The value of `name` for the installation, or None if it has none."""
        statement = select(Secret).where(
            Secret.installation_id == installation_id, Secret.name == name
        )
        async with self._db.session() as session:
            row = (await session.exec(statement)).one_or_none()
        if row is None:
            return None
        return self._open(row).decode()

    async def list_masked(self, installation_id: int) -> list[MaskedSecret]:
        """The installation's secrets by name, masked; no key is needed to list them."""
        async with self._db.session() as session:
            if await session.get(Installation, installation_id) is None:
                raise UnknownInstallation(installation_id)
            rows = await session.exec(
                select(Secret)
                .where(Secret.installation_id == installation_id)
                .order_by(col(Secret.name))
            )
            return [MaskedSecret(r.name, r.key_id, r.updated_at) for r in rows]

    async def delete(self, installation_id: int, name: str) -> bool:
        """Remove `name` from the installation; False when there was no such secret."""
        async with self._db.session() as session:
            if await session.get(Installation, installation_id) is None:
                raise UnknownInstallation(installation_id)
            result = await session.exec(
                delete(Secret).where(
                    col(Secret.installation_id) == installation_id, col(Secret.name) == name
                )
            )
            await session.commit()
            return result.rowcount > 0

    async def rotate(self) -> int:
        """Re-seal with the newest key every secret sealed by another; how many were re-sealed.

        All or nothing: a secret no configured key opens raises UndecryptableSecret
        and leaves every row as it was. The value's `updated_at` is kept, as the
        value did not change.
        """
        sealer, newest = self._sealer(), self._key_ids[0]
        async with self._db.session() as session:
            rows = list(
                await session.exec(
                    select(Secret)
                    .where(Secret.key_id != newest)
                    .order_by(col(Secret.id))
                    .with_for_update()
                )
            )
            for row in rows:
                try:
                    row.ciphertext = sealer.rotate(row.ciphertext)
                except InvalidToken:
                    raise self._undecryptable(row) from None
                row.key_id = newest
                session.add(row)
            await session.commit()
        return len(rows)

    def _open(self, row: Secret) -> bytes:
        try:
            return self._sealer().decrypt(row.ciphertext)
        except InvalidToken:
            raise self._undecryptable(row) from None

    def _undecryptable(self, row: Secret) -> UndecryptableSecret:
        return UndecryptableSecret(
            row.installation_id, row.name, row.key_id, key_known=row.key_id in self._key_ids
        )
