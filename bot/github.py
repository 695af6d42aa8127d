"""GitHub App client: App JWT, cached installation tokens, and retries of GitHub's transient failures.

Deciding whether and how long to wait is a pure function (`retry_delay`); the
gidgethub client only acts on its answer.
"""

from __future__ import annotations

import asyncio
import http
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import gidgethub
import gidgethub.httpx
import httpx

from bot import metrics

USER_AGENT = "clarity-check"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How persistently a request is retried before the job itself is deferred."""

    max_attempts: int = 5
    base_delay: float = 1.0  # seconds; doubled per attempt for 5xx
    max_delay: float = 30.0
    # A wait longer than this is not spent inside a job: the job is deferred instead.
    max_inline_wait: float = 60.0
    # GitHub asks for at least a minute when a secondary limit gives no hint.
    secondary_default_wait: float = 60.0


class TarballTooLarge(Exception):
    """The repository archive exceeds the size a scan accepts."""


class RateLimited(Exception):
    """GitHub asked us to wait longer than a job should block; retry at `retry_at` (epoch seconds)."""

    def __init__(self, retry_at: float) -> None:
        super().__init__(f"GitHub rate limit: retry after {retry_at:.0f}")
        self.retry_at = retry_at


def retry_delay(
    status: int,
    headers: Mapping[str, str],
    message: str | None,
    attempt: int,
    policy: RetryPolicy,
    now: float,
) -> float | None:
    """Seconds to wait before retrying a failed request, or None when it must not be retried.

    Follows GitHub's guidance: honour `retry-after`; else, when the primary
    limit is spent, wait until `x-ratelimit-reset`; else for a secondary limit
    wait at least a minute, backing off exponentially; 5xx back off exponentially.
    """
    if attempt >= policy.max_attempts:
        return None
    headers = {key.lower(): value for key, value in headers.items()}
    if status >= 500:
        return min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))
    if status not in (403, 429):
        return None
    if (retry_after := headers.get("retry-after")) is not None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            return policy.secondary_default_wait
    if headers.get("x-ratelimit-remaining") == "0" and (reset := headers.get("x-ratelimit-reset")):
        try:
            return max(0.0, float(reset) - now) + 1.0
        except ValueError:
            return policy.secondary_default_wait
    if status == 429 or (message and "secondary rate limit" in message.lower()):
        return policy.secondary_default_wait * 2 ** (attempt - 1)
    return None  # a plain 403 (permissions) is an answer, not a transient failure


# Set while `GitHubClient.once` writes: a 5xx then goes back to it, to look before it retries.
_WRITING_ONCE: ContextVar[bool] = ContextVar("writing_once", default=False)


def is_answer(error: BaseException) -> bool:
    """Whether `error` is a refusal GitHub would repeat: a 4xx that is no rate limit.

    A 404 is not counted: just after a write, GitHub may not show what it made yet.
    """
    if not isinstance(error, gidgethub.BadRequest) or int(error.status_code) == 404:
        return False
    message = str(error.args[0]) if error.args else None
    policy = RetryPolicy()
    return retry_delay(int(error.status_code), error.headers, message, 1, policy, 0.0) is None


def describe(error: BaseException) -> str:
    """An error as a build records it; GitHub's name the status it answered."""
    if isinstance(error, gidgethub.HTTPException):
        status = http.HTTPStatus(error.status_code)
        return f"GitHub answered {status.value} {status.phrase}: {error}"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class GitHubClient(gidgethub.httpx.GitHubAPI):
    """gidgethub over httpx that retries 5xx and rate limits, and can fetch its token lazily."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        policy: RetryPolicy = RetryPolicy(),
        token: Callable[[], Any] | None = None,
        on_unauthorized: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(http, USER_AGENT, base_url=base_url.rstrip("/"), **kwargs)
        self._policy = policy
        self._token = token
        self._on_unauthorized = on_unauthorized
        self._clock = clock

    async def _request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes = b""
    ) -> tuple[int, Mapping[str, str], bytes]:
        if self._token is not None and "authorization" not in headers:
            headers = {**headers, "authorization": f"token {await self._token()}"}
        response = await super()._request(method, url, headers, body)
        metrics.GITHUB_REQUESTS.labels(method.upper(), str(response[0])).inc()
        return response

    async def create(
        self,
        url: str,
        url_vars: Mapping[str, str],
        *,
        data: Any,
        existing: Callable[[], Awaitable[Any]],
    ) -> Any:
        """POST what must exist once (a comment, a check run), found again rather than duplicated."""
        return await self.once("POST", url, url_vars, data=data, done=existing)

    async def once(
        self,
        method: str,
        url: str,
        url_vars: Mapping[str, str],
        *,
        data: Any,
        done: Callable[[], Awaitable[Any]],
    ) -> Any:
        """A write whose effect must happen once: a POST that creates, a PATCH that appends.

        GitHub may carry out a write and still answer 5xx, so before each retry `done()`
        looks for the failed attempt's effect; its answer (when not None) is returned instead.
        """
        send = {"POST": self.post, "PATCH": self.patch}[method]
        attempt = 0
        while True:
            attempt += 1
            writing = _WRITING_ONCE.set(True)
            try:
                return await send(url, url_vars=url_vars, data=data)
            except gidgethub.GitHubBroken as error:
                failure = error
            finally:
                _WRITING_ONCE.reset(writing)
            if (found := await done()) is not None:
                return found
            status = int(failure.status_code)
            delay = retry_delay(status, failure.headers, None, attempt, self._policy, self._clock())
            if delay is None:
                raise failure
            await self.sleep(delay * random.uniform(1.0, 1.1))

    async def tarball(
        self, owner: str, repo: str, ref: str, *, limit: int = 512 * 1024**2
    ) -> bytes:
        """The repository at `ref` as GitHub's gzipped tarball (GitHub answers with a redirect)."""
        headers = {"user-agent": USER_AGENT, "accept": "application/vnd.github+json"}
        if self._token is not None:
            headers["authorization"] = f"token {await self._token()}"
        url = f"{self.base_url}/repos/{owner}/{repo}/tarball/{ref}"
        async with self._client.stream(
            "GET", url, headers=headers, follow_redirects=True
        ) as response:
            metrics.GITHUB_REQUESTS.labels("GET", str(response.status_code)).inc()
            if response.status_code != 200:
                await response.aread()
                raise gidgethub.HTTPException(
                    http.HTTPStatus(response.status_code), response.text[:200]
                )
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise TarballTooLarge(f"{owner}/{repo} at {ref} is larger than {limit} bytes")
                chunks.append(chunk)
        return b"".join(chunks)

    async def handle_rate_limit_error(
        self, *, method: str, url: str, exception: gidgethub.HTTPException, attempt: int
    ) -> bool:
        status = int(exception.status_code)
        if status >= 500 and _WRITING_ONCE.get():
            return False  # it may have been carried out: `once` looks before it retries
        if status == 401 and self._on_unauthorized is not None and attempt == 1:
            # The cached token was revoked or expired early: drop it and try once with a new one.
            self._on_unauthorized()
            return True
        message = exception.args[0] if exception.args else None
        delay = retry_delay(
            status,
            exception.headers,
            str(message) if message else None,
            attempt,
            self._policy,
            self._clock(),
        )
        if delay is None:
            return False
        if status in (403, 429):  # a 5xx backs off too, but that is no rate limit
            metrics.github_waited(delay, deferred=delay > self._policy.max_inline_wait)
        if delay > self._policy.max_inline_wait:
            raise RateLimited(self._clock() + delay) from exception
        await self.sleep(delay * random.uniform(1.0, 1.1) if delay else 0)
        return True


@dataclass(frozen=True, slots=True)
class _TokenKey:
    installation_id: int
    repositories: tuple[str, ...]
    permissions: tuple[tuple[str, str], ...]


@dataclass(slots=True)
class _Token:
    value: str
    expires_at: float


class InstallationTokens:
    """Installation tokens cached until shortly before they expire, per installation and scope."""

    # Refresh this long before expiry so a token never dies in the middle of a request.
    REFRESH_MARGIN = 300.0

    def __init__(self, app_client: GitHubClient, clock: Callable[[], float] = time.time) -> None:
        self._app = app_client
        self._clock = clock
        self._cache: dict[_TokenKey, _Token] = {}
        self._locks: dict[_TokenKey, asyncio.Lock] = {}

    @staticmethod
    def key(
        installation_id: int,
        repositories: tuple[str, ...] | None = None,
        permissions: Mapping[str, str] | None = None,
    ) -> _TokenKey:
        return _TokenKey(
            installation_id,
            tuple(sorted(repositories or ())),
            tuple(sorted((permissions or {}).items())),
        )

    async def get(self, key: _TokenKey) -> str:
        """A valid token for `key`, from the cache or freshly issued."""
        cached = self._cache.get(key)
        if cached and cached.expires_at - self.REFRESH_MARGIN > self._clock():
            return cached.value
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._cache.get(key)
            if cached and cached.expires_at - self.REFRESH_MARGIN > self._clock():
                return cached.value
            token = await self._issue(key)
            self._cache[key] = token
            return token.value

    def invalidate(self, key: _TokenKey) -> None:
        self._cache.pop(key, None)

    async def _issue(self, key: _TokenKey) -> _Token:
        request: dict[str, Any] = {}
        if key.repositories:
            request["repositories"] = list(key.repositories)
        if key.permissions:
            request["permissions"] = dict(key.permissions)
        response = await self._app.post(
            "/app/installations/{installation_id}/access_tokens",
            url_vars={"installation_id": str(key.installation_id)},
            data=request or b"",
        )
        expires_at = datetime.fromisoformat(response["expires_at"].replace("Z", "+00:00"))
        return _Token(response["token"], expires_at.timestamp())


class GitHubApp:
    """The App's clients: one authenticated as the App (JWT), one per installation (token)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        issuer: str,
        private_key: str,
        base_url: str,
        policy: RetryPolicy = RetryPolicy(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._base_url = base_url
        self._policy = policy
        self._clock = clock
        self.app = GitHubClient(
            http,
            base_url=base_url,
            policy=policy,
            clock=clock,
            app_id=issuer,
            private_key=private_key,
        )
        self.tokens = InstallationTokens(self.app, clock)

    def for_installation(
        self,
        installation_id: int,
        *,
        repositories: tuple[str, ...] | None = None,
        permissions: Mapping[str, str] | None = None,
    ) -> GitHubClient:
        """A client acting as the installation, optionally narrowed to repositories and permissions.

        No token is fetched until the first request needs one.
        """
        key = self.tokens.key(installation_id, repositories, permissions)
        return GitHubClient(
            self._http,
            base_url=self._base_url,
            policy=self._policy,
            clock=self._clock,
            token=lambda: self.tokens.get(key),
            on_unauthorized=lambda: self.tokens.invalidate(key),
        )
