"""YAML policy text with the line of every key, so that errors can say where.

Shared by the repository's `.clarity.yml` and by policy packs: both are validated
with pydantic, and a validation error is turned into the dotted key it names and
the line that key is on.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

KeyLines = dict[tuple, int]


class PolicySourceError(ValueError):
    """Invalid policy text; `key` is the dotted key path and `line` 1-based (0 if unknown)."""

    def __init__(self, message: str, key: str = "", line: int = 0) -> None:
        self.key = key
        self.line = line
        self.problem = message
        where = key or "(file)"
        super().__init__(f"{where} (line {line}): {message}" if line else f"{where}: {message}")


def load_yaml(
    text: str, error: type[PolicySourceError] = PolicySourceError
) -> tuple[Any, KeyLines]:
    """The document in `text` (None when empty) and the line of every key path in it."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None) or getattr(problem, "context_mark", None)
        reason = getattr(problem, "problem", None) or "not valid YAML"
        raise error(str(reason), line=mark.line + 1 if mark else 0) from problem
    except (ValueError, LookupError, AttributeError, RecursionError) as problem:
        # PyYAML's constructors fail on some values with plain errors (`2024-02-30`,
        # `!!int`, `!!bool x`, `!!timestamp x`), and its composer recurses once per level.
        raise error(f"not valid YAML: {problem}") from problem
    return data, key_lines(root) if root is not None else {}


def validation_problem(problem: ValidationError, lines: KeyLines) -> tuple[str, str, int]:
    """(message, dotted key, line) of the first error pydantic reports."""
    first = problem.errors()[0]
    location = tuple(first["loc"])
    return message(first), dotted(location), line_of(location, lines)


def message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "value_error" and "error" in error.get("ctx", {}):
        return str(error["ctx"]["error"])  # our own validators' words, without pydantic's prefix
    return str(error["msg"])


def dotted(location: tuple) -> str:
    return ".".join(str(part) for part in location)


def line_of(location: tuple, lines: KeyLines) -> int:
    """The line of the deepest part of `location` that the document has."""
    for end in range(len(location), 0, -1):
        line = lines.get(location[:end])
        if line:
            return line
    return 1


def key_lines(node: yaml.Node) -> KeyLines:
    """1-based line of every key (and list item) path in a composed YAML document."""
    lines: KeyLines = {}
    # An alias shares its anchor's node; walking it again would let a small file with
    # nested aliases (a "billion laughs") take exponential time. Its keys have no line of
    # their own anyway, so each node is walked once.
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, tuple]] = [(node, ())]
    while stack:
        current, path = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                child = (*path, key.value)
                lines[child] = key.start_mark.line + 1
                stack.append((value, child))
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                child = (*path, index)
                lines[child] = item.start_mark.line + 1
                stack.append((item, child))
    return lines
