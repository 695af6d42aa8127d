"""What the web process shares between requests: made once in the lifespan, kept on `app.state`."""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis
from prometheus_client import CollectorRegistry

from bot.db import Database
from bot.inbox_writer import InboxWriter
from bot.settings import Settings


@dataclass(slots=True)
class AppState:
    settings: Settings
    db: Database
    queue: ArqRedis
    inbox: InboxWriter
    metrics: CollectorRegistry  # what `GET /metrics` exposes
