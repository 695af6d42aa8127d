"""What every agent node does around its agent: models, key, budget, and recording the run."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col

from bot import metrics
from bot.models import Build, Trajectory, utcnow
from bot.secret_store import SecretStore, SecretStoreError
from bot.usage import add_cost
from orchestrator.agents.contracts import Role
from orchestrator.agents.llm import ModelChoice, NoModel, models_for
from orchestrator.agents.runs import AgentRun, Budget
from orchestrator.deep_report import AgentUsage
from orchestrator.head import pack_of
from orchestrator.nodes import NodeContext, NodeFailure

LLM_KEY_SECRET = "llm_api_key"  # the installation's own key, in the secret store


async def models_of(ctx: NodeContext, role: Role) -> list[ModelChoice]:
    settings = ctx.services["settings"]
    key = await installation_key(ctx) or (
        settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    )
    try:
        return models_for(
            role.value,
            model=settings.llm_model,
            fallback=settings.llm_fallback_model,
            role_models=settings.llm_role_models,
            api_key=key,
            base_url=settings.llm_base_url,
            input_cost_per_token=settings.llm_input_cost_per_token,
            output_cost_per_token=settings.llm_output_cost_per_token,
            num_retries=settings.llm_num_retries,
        )
    except NoModel as error:
        raise NodeFailure(str(error), retryable=False) from None


async def installation_key(ctx: NodeContext) -> str | None:
    settings = ctx.services["settings"]
    if not settings.encryption_keys:
        return None
    store = SecretStore(ctx.services["db"], settings.encryption_keys)
    try:
        return await store.get(ctx.build.installation_id, LLM_KEY_SECRET)
    except SecretStoreError as error:
        raise NodeFailure(f"the installation's LLM key cannot be used: {error}", retryable=False)


async def budget_of(ctx: NodeContext, tier: str) -> Budget:
    """The pack's agent budget for `tier`, cut to what is left of the build's."""
    agent = getattr(pack_of(ctx).budgets, tier).agent
    async with ctx.services["db"].session() as session:
        build = await session.get(Build, ctx.build.id)
    left = agent.max_cost_usd
    if build.budget_usd is not None:
        left = min(left, build.budget_usd - build.cost_usd)
    if left <= 0:
        raise NodeFailure("the build's budget is spent", retryable=False)
    return Budget(agent.max_iterations, left, agent.wall_seconds)


async def record_run(ctx: NodeContext, run: AgentRun) -> None:
    """Store the trajectory and count its cost against the build and the installation."""
    db = ctx.services["db"]
    async with db.session() as session:
        session.add(
            Trajectory(
                build_id=ctx.build.id,
                task_key=ctx.node.key,
                role=run.role,
                attempt=ctx.attempt,
                model=run.model,
                status=run.status.value,
                iterations=run.iterations,
                cost_usd=run.cost_usd,
                duration_seconds=run.duration_seconds,
                error=run.error,
                events=run.events,
            )
        )
        await session.execute(
            update(Build)
            .where(col(Build.id) == ctx.build.id)
            .values(cost_usd=col(Build.cost_usd) + run.cost_usd)
        )
        await session.commit()
    metrics.llm_cost(run.role, run.model, run.cost_usd)
    if run.cost_usd > 0:
        await add_cost(db, pack_of(ctx), ctx.build.installation_id, run.cost_usd, utcnow())


def usage_of(run: AgentRun) -> AgentUsage:
    return AgentUsage(
        role=run.role,
        model=run.model,
        status="finished",
        iterations=run.iterations,
        cost_usd=run.cost_usd,
        duration_seconds=run.duration_seconds,
    )
