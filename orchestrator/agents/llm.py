"""Which model each agent role uses: LiteLLM names, key, base URL, prices and the fallback.

The installation's own key (stored encrypted) wins over the service's; a role may have
its own model; the fallback model is tried when the first one keeps failing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from policies import Prices

# Before LiteLLM is first imported: no price list fetched from the internet, no telemetry.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENHANDS_SUPPRESS_BANNER", "1")
os.environ.setdefault("LITELLM_TELEMETRY", "False")


@dataclass(frozen=True, slots=True)
class ModelChoice:
    model: str  # a LiteLLM name, e.g. "openai/gpt-5-mini" or "anthropic/claude-sonnet-4-5"
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    num_retries: int = 2


class NoModel(LookupError):
    """No model is configured for a role: the build runs without agents."""


def models_for(
    role: str,
    *,
    model: str | None,
    fallback: str | None,
    role_models: Mapping[str, str],
    api_key: str | None,
    base_url: str | None,
    input_cost_per_token: float | None = None,
    output_cost_per_token: float | None = None,
    num_retries: int = 2,
) -> list[ModelChoice]:
    """The models to try for `role`, in order; NoModel when there is none or no key."""
    names = [name for name in (role_models.get(role) or model, fallback) if name]
    if not names:
        raise NoModel("no model is configured (set CLARITY_LLM_MODEL)")
    if not api_key:
        raise NoModel("no LLM key is configured for this installation or the service")
    return [
        ModelChoice(
            name,
            api_key,
            base_url,
            input_cost_per_token,
            output_cost_per_token,
            num_retries,
        )
        for name in dict.fromkeys(names)
    ]


def prices_for(model: str | None, input_cost: float | None, output_cost: float | None) -> Prices:
    """USD per token: the configured prices, else LiteLLM's local price list, else 0."""
    if input_cost is not None or output_cost is not None:
        return Prices(input_cost or 0.0, output_cost or 0.0)
    if not model:
        return Prices()
    import litellm  # the local price list (LITELLM_LOCAL_MODEL_COST_MAP is set above)

    known = litellm.model_cost.get(model) or litellm.model_cost.get(model.split("/", 1)[-1]) or {}
    return Prices(
        float(known.get("input_cost_per_token") or 0.0),
        float(known.get("output_cost_per_token") or 0.0),
    )
