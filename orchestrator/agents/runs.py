"""What an agent run is given and what it comes to, without loading OpenHands: nodes that
only budget or record runs (and the fast lane, which runs no agent) import this."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel


class AgentStatus(StrEnum):
    FINISHED = "finished"
    INVALID = "invalid"  # the answer broke the contract twice
    ITERATIONS = "iterations"  # max iterations reached
    BUDGET = "budget"  # max cost reached
    STUCK = "stuck"
    TIMEOUT = "timeout"  # max wall time reached
    MODEL_ERROR = "model_error"  # the model kept failing (after LiteLLM's retries)
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Budget:
    max_iterations: int = 40
    max_cost_usd: float = 1.5
    wall_seconds: float = 600.0


@dataclass
class AgentRun:
    role: str
    model: str
    status: AgentStatus
    output: BaseModel | None = None
    iterations: int = 0
    cost_usd: float = 0.0
    duration_seconds: float = 0.0
    error: str | None = None
    attempts: int = 1  # answers given (2 when the first was sent back)
    events: list[dict[str, Any]] = field(default_factory=list)


class AgentFailed(Exception):
    """The role produced no valid answer; `run` says how far it got and what it cost."""

    def __init__(self, run: AgentRun) -> None:
        super().__init__(f"the {run.role} agent ended {run.status.value}: {run.error}")
        self.run = run
