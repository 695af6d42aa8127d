"""A scripted OpenAI-compatible chat server: real HTTP, the answers a test wrote, step by step.

Each conversation is recognised by the role line of its first user message
("Clarity role: scanner"); its script is a list of steps served in order. A step
is a tool call, a plain reply, an HTTP failure, a held answer (released by the
test, to abort mid-run), or a function of the request returning one of those.
Every request is recorded so a test can check what the agent was told.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from localhub import serving

ROLE = re.compile(r"Clarity role: (\w+)")


@dataclass(frozen=True)
class Call:
    """The model calls one tool."""

    tool: str
    args: dict[str, Any] = field(default_factory=dict)
    prompt_tokens: int = 1000
    completion_tokens: int = 100


def finish(output: Any) -> Call:
    """The model finishes with `output` (a dict is sent as its JSON text)."""
    message = output if isinstance(output, str) else json.dumps(output)
    return Call("finish", {"message": message})


def terminal(command: str) -> Call:
    return Call("terminal", {"command": command, "summary": command[:40]})


@dataclass(frozen=True)
class Say:
    text: str
    prompt_tokens: int = 1000
    completion_tokens: int = 100


@dataclass(frozen=True)
class Fail:
    status: int = 500
    message: str = "the scripted model failed"


@dataclass
class Hold:
    """Hold the answer until the test releases it; `reached` is set when the request arrives."""

    then: Call | Say
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


Step = Call | Say | Fail | Hold | Callable[[dict[str, Any]], "Call | Say | Fail"]


class ScriptedModel:
    def __init__(self) -> None:
        self.scripts: dict[str, list[Step]] = {}
        self.requests: list[dict[str, Any]] = []
        self.repeat_failures: dict[str, Fail] = {}
        self._lock = threading.Lock()
        self._ids = 0

    def script(self, role: str, *steps: Step) -> None:
        self.scripts[role] = list(steps)

    def always_fail(self, role: str, failure: Fail | None = None) -> None:
        """Every request of `role` fails (a model that is down), however often it is retried."""
        self.repeat_failures[role] = failure or Fail()

    def requests_for(self, role: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if _role(r) == role]

    @contextmanager
    def serving(self) -> Iterator[str]:
        """Run the server; yields the base URL for `LLM(base_url=...)` (ending in /v1)."""
        app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])
        with serving(app) as url:
            yield url + "/v1"

    async def _chat(self, request: Request) -> JSONResponse:
        body = await request.json()
        role = _role(body)
        with self._lock:
            self.requests.append(body)
            failure = self.repeat_failures.get(role)
            steps = self.scripts.get(role, [])
            step = failure or (steps.pop(0) if steps else None)
            self._ids += 1
            number = self._ids
        if step is None:
            return _error(400, f"no scripted step left for role {role!r}")
        if isinstance(step, Hold):
            step.reached.set()
            await asyncio.to_thread(step.release.wait)
            step = step.then
        if callable(step) and not isinstance(step, (Call, Say, Fail)):
            step = step(body)
        if isinstance(step, Fail):
            return _error(step.status, step.message)
        return JSONResponse(_completion(body["model"], number, step))


def _role(body: dict[str, Any]) -> str:
    for message in body.get("messages", []):
        if message.get("role") == "user":
            match = ROLE.search(_text(message.get("content")))
            return match.group(1) if match else ""
    return ""


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


def last_tool_output(body: dict[str, Any]) -> str:
    """The text of the latest tool result the agent sent (for steps that react to it)."""
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "tool":
            return _text(message.get("content"))
    return ""


def _completion(model: str, number: int, step: Call | Say) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if isinstance(step, Say):
        message["content"] = step.text
        reason = "stop"
    else:
        message["tool_calls"] = [
            {
                "id": f"call_{number}",
                "type": "function",
                "function": {"name": step.tool, "arguments": json.dumps(step.args)},
            }
        ]
        reason = "tool_calls"
    return {
        "id": f"chatcmpl-{number}",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": reason}],
        "usage": {
            "prompt_tokens": step.prompt_tokens,
            "completion_tokens": step.completion_tokens,
            "total_tokens": step.prompt_tokens + step.completion_tokens,
        },
    }


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": "server_error", "code": status}}, status_code=status
    )
