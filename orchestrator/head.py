"""The pull request's head as a sandbox: downloaded read-only here, never with a token inside."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import gidgethub
from sqlmodel import select

from bot.models import PullRequest, Repository
from orchestrator.nodes import NodeContext, NodeFailure
from orchestrator.sandbox.base import ArchiveSource, NetworkMode, Sandbox, open_sandbox
from orchestrator.sandbox.guarded import GuardedSandbox
from orchestrator.sandbox.local import NetworkPolicyUnsupported
from policies import Pack, load_pack, sandbox_spec_for


async def repository(services: Any, repository_id: int) -> Repository:
    async with services["db"].session() as session:
        found = await session.get(Repository, repository_id)
    if found is None:
        raise NodeFailure(f"repository {repository_id} is not known", retryable=False)
    return found


async def pull_request_of(services: Any, build: Any) -> PullRequest | None:
    """What we know of the build's pull request (None for a build of a push)."""
    if build.pr_number is None:
        return None
    async with services["db"].session() as session:
        return (
            await session.exec(
                select(PullRequest).where(
                    PullRequest.repository_id == build.repository_id,
                    PullRequest.number == build.pr_number,
                )
            )
        ).one_or_none()


def reader(ctx: NodeContext, name: str) -> Any:
    """An installation client that can only read this one repository's contents."""
    return ctx.services["github"].for_installation(
        ctx.build.installation_id, repositories=(name,), permissions={"contents": "read"}
    )


async def head_archive(ctx: NodeContext, owner: str, name: str) -> bytes:
    """GitHub's tarball of the build's head commit."""
    try:
        return await reader(ctx, name).tarball(owner, name, ctx.build.head_sha)
    except gidgethub.HTTPException as error:
        # GitHub's client already retried what is transient; a 4xx will not fix itself.
        raise NodeFailure(
            f"GitHub refused the archive of {owner}/{name}: {error}",
            retryable=int(error.status_code) >= 500,
        ) from None


def pack_of(ctx: NodeContext) -> Pack:
    return ctx.services.get("policy") or load_pack("default")


@dataclasses.dataclass(frozen=True, slots=True)
class HeadSandbox:
    sandbox: Sandbox  # guarded: every command passes the pack's command policy first (agents)
    network: str  # what the agents are told about the network
    raw: Sandbox  # the same sandbox unguarded, for the control plane's own commands


@asynccontextmanager
async def head_sandbox(ctx: NodeContext, tier: str) -> AsyncIterator[HeadSandbox]:
    """A guarded sandbox of the head for `tier`, destroyed on the way out.

    A backend that cannot filter hosts gets no network at all: stricter than the pack asks.
    """
    build = ctx.build
    found = await repository(ctx.services, build.repository_id)
    owner, name = found.full_name.split("/", 1)
    archive = ArchiveSource(await head_archive(ctx, owner, name))
    pack = pack_of(ctx)
    spec = sandbox_spec_for(pack, tier, build_id=build.id, installation_id=build.installation_id)
    network = (
        "none"
        if spec.network is NetworkMode.NONE
        else "only these hosts: " + ", ".join(spec.allow_hosts)
    )
    provider = ctx.services["sandboxes"]
    async with AsyncExitStack() as stack:
        try:
            sandbox = await stack.enter_async_context(open_sandbox(provider, spec, archive))
        except NetworkPolicyUnsupported:
            spec = dataclasses.replace(spec, network=NetworkMode.NONE, allow_hosts=())
            network = "none (this sandbox backend cannot filter hosts)"
            sandbox = await stack.enter_async_context(open_sandbox(provider, spec, archive))
        yield HeadSandbox(GuardedSandbox(sandbox, pack), network, sandbox)
