"""An agent's events as compact, masked JSON for the build page (not OpenHands' full dump)."""

from __future__ import annotations

from typing import Any

from scanner.secrets import redact

TEXT_LIMIT = 4_000


def compact(event: Any) -> dict[str, Any]:
    """The event's kind, source and what a reader needs: tool, arguments, output, message."""
    item: dict[str, Any] = {"kind": type(event).__name__, "source": getattr(event, "source", "")}
    action = getattr(event, "action", None)
    if action is not None:
        item["tool"] = getattr(event, "tool_name", "")
        item["arguments"] = _masked(action.model_dump(mode="json", exclude={"kind"}))
    observation = getattr(event, "observation", None)
    if observation is not None:
        item["tool"] = getattr(event, "tool_name", "")
        item["output"] = _text(getattr(observation, "text", "") or "")
        item["error"] = bool(getattr(observation, "is_error", False))
    message = getattr(event, "llm_message", None)
    if message is not None and item["kind"] != "SystemPromptEvent":
        item["message"] = _text(
            "".join(getattr(part, "text", "") for part in getattr(message, "content", []))
        )
    for name in ("code", "detail", "reason"):
        value = getattr(event, name, None)
        if isinstance(value, str) and value:
            item[name] = _text(value)
    return item


def _text(value: str) -> str:
    value = redact(value)
    return value if len(value) <= TEXT_LIMIT else value[:TEXT_LIMIT] + "…"


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value
