"""Credentials for `/v1`: operator API tokens (stored hashed, with scopes) and capability links.

A capability link grants read access to one build until it expires; it is what
a check run's details URL carries. It is an HMAC over (build id, expiry), so
nothing needs storing and a link cannot be widened to another build.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

from sqlmodel import col, select

from bot.db import Database
from bot.models import ApiToken, utcnow

TOKEN_PREFIX = "clarity_"


class Scope(StrEnum):
    READ = "read"
    CONTROL = "control"
    # Installation secrets are their own scopes: reading builds opens no secret.
    SECRETS_READ = "secrets:read"
    SECRETS_WRITE = "secrets:write"


class AuthError(Exception):
    """No valid credential (401)."""


class Forbidden(Exception):
    """A valid credential without the needed scope or build (403)."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What a request may do: `build_id` None means every build."""

    scopes: frozenset[Scope]
    build_id: int | None = None
    subject: str = ""

    def require(self, scope: Scope, build_id: int) -> None:
        if scope not in self.scopes or (self.build_id is not None and self.build_id != build_id):
            raise Forbidden(f"this credential does not allow {scope.value} on build {build_id}")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(db: Database, name: str, scopes: list[Scope]) -> str:
    """A new operator token; the plaintext is returned once and never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with db.session() as session:
        session.add(
            ApiToken(name=name, token_hash=hash_token(token), scopes=[s.value for s in scopes])
        )
        await session.commit()
    return token


async def revoke_token(db: Database, name: str) -> int:
    async with db.session() as session:
        rows = list(
            await session.exec(
                select(ApiToken).where(ApiToken.name == name, col(ApiToken.revoked_at).is_(None))
            )
        )
        for row in rows:
            row.revoked_at = utcnow()
            session.add(row)
        await session.commit()
        return len(rows)


async def token_grant(db: Database, token: str) -> Grant:
    async with db.session() as session:
        row = (
            await session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
        ).one_or_none()
    if row is None or row.revoked_at is not None:
        raise AuthError("unknown or revoked token")
    # A scope this version does not know (a newer one wrote it, say) grants nothing.
    known = {scope.value for scope in Scope}
    return Grant(frozenset(Scope(s) for s in row.scopes if s in known), subject=row.name)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def capability(
    build_id: int, key: bytes, *, ttl: float = 30 * 24 * 3600, now: float | None = None
) -> str:
    """A link token granting read access to `build_id` for `ttl` seconds."""
    expires = int((now or time.time()) + ttl)
    message = f"{build_id}.{expires}".encode()
    return f"{build_id}.{expires}.{_b64(hmac.new(key, message, hashlib.sha256).digest())}"


def capability_grant(token: str, key: bytes, *, now: float | None = None) -> Grant:
    try:
        build, expires, signature = token.split(".")
        build_id, expiry = int(build), int(expires)
    except ValueError:
        raise AuthError("malformed capability link") from None
    expected = _b64(hmac.new(key, f"{build_id}.{expiry}".encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature):
        raise AuthError("invalid capability link")
    if expiry < (now or time.time()):
        raise AuthError("capability link has expired")
    return Grant(frozenset({Scope.READ}), build_id=build_id, subject=f"link:{build_id}")


def link_key(signing_key: str | None, app_private_key: str) -> bytes:
    """The HMAC key for links: configured, or derived from the App's private key."""
    if signing_key:
        return signing_key.encode()
    return hashlib.sha256(b"clarity capability links\x00" + app_private_key.encode()).digest()
