"""An environment file (`.env`), written so docker compose, python-dotenv and a shell read
the same values; secrets in it are written with mode 0600."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

_BARE_VALUE = re.compile(r"[A-Za-z0-9_./:@+,=-]*")


class EnvFileError(ValueError):
    """A value an env file cannot hold."""


def merge_env(text: str, values: Mapping[str, str], drop: tuple[str, ...] = ()) -> str:
    """`text` (an env file) with `values` set in place, `drop` removed, other lines kept."""
    lines, seen = [], set()
    for line in text.splitlines():
        name = _name(line)
        if name in drop:
            continue
        if name in values:
            if name in seen:
                continue
            line = f"{name}={_quoted(values[name])}"
            seen.add(name)
        lines.append(line)
    lines.extend(f"{name}={_quoted(value)}" for name, value in values.items() if name not in seen)
    return "\n".join(lines) + "\n"


def env_names(text: str) -> set[str]:
    """The variables an env file sets."""
    return {name for line in text.splitlines() if (name := _name(line))}


def _name(line: str) -> str | None:
    stripped = line.strip().removeprefix("export ").lstrip()
    if not stripped or stripped.startswith("#") or "=" not in stripped:
        return None
    return stripped.split("=", 1)[0].strip()


def _quoted(value: str) -> str:
    # Plain values stay bare; others are single-quoted, which docker compose, python-dotenv
    # and a shell all read literally (no `$` expansion, no escapes).
    if _BARE_VALUE.fullmatch(value):
        return value
    if "'" in value or "\n" in value:
        raise EnvFileError("cannot write a value holding a quote or a line break to an env file")
    return f"'{value}'"


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only, replacing any old file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
