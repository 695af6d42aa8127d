"""Group commit for the inbox: deliveries that arrive together share one transaction.

A commit waits for the disk; one per delivery caps intake at a few hundred per
second. Each request still waits for the commit that holds its own row before
it is acknowledged, so nothing is acknowledged that is not stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot import inbox
from bot.db import Database
from bot.models import Delivery
from orchestrator.batching import Batcher


class InboxWriter:
    """Stores deliveries in batches; `store` answers whether the delivery was new."""

    def __init__(
        self,
        db: Database,
        on_stored: Callable[[list[Delivery]], Awaitable[None]] | None = None,
        *,
        max_batch: int = 256,
        writers: int = 4,
    ) -> None:
        self._db = db
        self._on_stored = on_stored
        # Several writers: while one batch waits for its commit, the next is being collected.
        self._batcher: Batcher[Delivery, bool] = Batcher(
            self._write, max_batch=max_batch, workers=writers
        )

    async def start(self) -> None:
        await self._batcher.start()

    async def stop(self) -> None:
        await self._batcher.stop()

    async def store(self, delivery: Delivery) -> bool:
        """Commit `delivery`; False when its nonce or GUID is already in the inbox."""
        return await self._batcher.submit(delivery)

    async def _write(self, batch: list[Delivery]) -> list[bool]:
        inserted = await inbox.accept_many(self._db, batch)
        if inserted and self._on_stored is not None:
            # Committed first: whatever happens here, the reconciler can still find the rows.
            stored: dict[str, Delivery] = {}
            for delivery in batch:
                if delivery.id in inserted:
                    stored.setdefault(delivery.id, delivery)
            await self._on_stored([stored[key] for key in sorted(stored)])
        new = []
        for delivery in batch:
            # Within a batch the first request with a GUID owns the stored row.
            new.append(delivery.id in inserted)
            inserted.discard(delivery.id)
        return new
