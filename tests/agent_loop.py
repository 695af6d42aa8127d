"""The whole App for agent tests: GitHub stand-in, web service, both worker lanes, a scripted model.

`agent_loop(...)` yields a `Loop`: deliver events or comment on a pull request, and
every lane runs until its queue is empty before the call returns (no waiting on time).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.worker import create_worker
from localhub import Hub, running, serving
from orchestrator.sandbox.local import LocalSandboxProvider
from tests.conftest import WEBHOOK_SECRET
from tests.llm_standin import ScriptedModel

REPO = "octo-org/app"


class Loop:
    def __init__(self, hub: Hub, root: Path, make: Any) -> None:
        self.hub, self.root, self._make = hub, root, make
        self.settings: Any = None
        self.service_url = ""  # where the web process serves

    def __iter__(self):  # hub, comment, configure = loop
        return iter((self.hub, self.comment, self.configure))

    def configure(self, **overrides: Any) -> Any:
        """The settings the workers use from now on (the web process keeps its own)."""
        self.settings = self._make(**overrides)
        return self.settings

    async def burst(self, lane: str) -> None:
        """Run `lane`'s worker until its queue is empty."""
        worker = create_worker(
            self.settings, lane, burst=True, poll_delay=0.01, handle_signals=False
        )
        try:
            await worker.main()
        finally:
            await worker.close()

    async def drain(self) -> None:
        for lane in ("fast", "slow", "fast"):
            await self.burst(lane)

    async def deliver(self, event: Any) -> None:
        assert (await self.hub.deliver(event)).status_code == 202
        await self.drain()

    async def comment(self, body: str, user: str = "maintainer", number: int = 1) -> Any:
        made = self.hub.add_comment(REPO, number, body, user=user)
        await self.deliver(self.hub.issue_comment_event(made))
        return made

    def replies(self, number: int = 1) -> list[str]:
        """What the App answered on the pull request, without its scan and report comments."""
        ours = self.hub.app.bot_login
        return [
            c.body
            for c in self.hub.comments(REPO, number)
            if c.user == ours and "clarity-check:" not in c.body
        ]


@asynccontextmanager
async def agent_loop(
    db: Any,
    make_settings: Any,
    app_private_key: str,
    model: ScriptedModel,
    files: dict[str, bytes],
    **settings: Any,
) -> AsyncIterator[Loop]:
    """The repository `octo-org/app` holding `files`, the App serving it, a model for agents."""
    hub = Hub(
        app_id=4242,
        client_id="Iv1.testclient",
        private_key_pem=app_private_key,
        webhook_secret=WEBHOOK_SECRET,
    )
    installation = hub.add_installation("octo-org", installation_id=77)
    hub.add_repository("octo-org", "app", files, installation_id=installation.id)
    root = Path(tempfile.mkdtemp(prefix="clarity-agents-test-"))
    try:
        with running(hub) as github_url:
            base = {
                "database_url": db.url,
                "github_api_url": github_url,
                "sandbox_root": root,
                "llm_model": "openai/scripted",
                "llm_api_key": "sk-scripted-" + "k" * 30,
                "llm_base_url": model.url,
                "llm_num_retries": 0,
                **settings,
            }
            loop = Loop(hub, root, lambda **overrides: make_settings(**{**base, **overrides}))
            loop.configure()
            from bot.app import create_app

            with serving(create_app(loop.settings)) as service_url:
                hub.webhook_url = f"{service_url}/webhooks/github"
                loop.service_url = service_url
                hub.set_permission(REPO, "maintainer", "write")
                yield loop
    finally:
        await LocalSandboxProvider(root).reap(older_than=timedelta(0))
