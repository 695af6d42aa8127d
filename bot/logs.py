"""Structured JSON logs; every secret the process holds is masked before a line is written."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any

import structlog

from scanner.secrets import redact

REDACTED = "[redacted]"
# Shorter strings hold no token the detectors know; skipping them keeps logging cheap.
MIN_SCANNED_LENGTH = 16


class SecretRedactor:
    """A structlog processor masking known secret values, and anything shaped like a secret."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        # Very short values would mask ordinary words; secrets are never that short.
        self._secrets.update(s for s in secrets if len(s) >= 8)

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            # Secrets the process does not hold (a token in an error text, say) by their shape.
            return redact(value) if len(value) >= MIN_SCANNED_LENGTH else value
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._clean(v) for v in value)
        return value

    def __call__(self, logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        return self._clean(event)


redactor = SecretRedactor()


def configure(level: str = "INFO", *, json: bool = True, secrets: Iterable[str] = ()) -> None:
    """Route structlog and the standard library's logging through one JSON renderer."""
    redactor.add(secrets)
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[redactor, structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Statements and their parameters are never logged, whatever a library set before us.
    for name in ("sqlalchemy", "aiosqlite"):
        logging.getLogger(name).setLevel(logging.WARNING)
