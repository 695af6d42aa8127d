"""Logs are JSON lines, and no secret the process holds is ever written, not even in part."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from sqlmodel import select

from bot import logs
from bot.logs import REDACTED, SecretRedactor
from bot.models import BuildTier, Installation, Repository, Task
from orchestrator import control
from orchestrator.dag import Node
from orchestrator.executor import run_build
from tests.dag_nodes import chain

SECRET = "whsec-test-0123456789abcdef"


def test_a_secret_is_masked_wherever_it_appears_in_an_event():
    redactor = SecretRedactor([SECRET])
    event = {"event": f"token {SECRET} seen", "nested": {"list": [f"x{SECRET}y", 3]}, "n": 1}
    cleaned = redactor(None, "info", event)
    assert SECRET not in repr(cleaned)
    assert cleaned["event"] == f"token {REDACTED} seen"
    assert cleaned["nested"]["list"] == [f"x{REDACTED}y", 3]


def test_short_values_are_not_treated_as_secrets():
    assert SecretRedactor(["abc"])(None, "info", {"event": "abc"}) == {"event": "abc"}


def test_configured_logging_writes_json_lines_without_secrets(capfd):
    logs.configure("INFO", secrets=[SECRET])
    try:
        structlog.get_logger("test").info(
            "delivery.failed", error=f"401 for token {SECRET}", delivery_id="d-1"
        )
        logging.getLogger("library").warning("library said %s", SECRET)
        lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.strip()]
    finally:
        logging.getLogger().handlers.clear()
        structlog.reset_defaults()
    assert SECRET not in json.dumps(lines)
    assert {line["event"] for line in lines} >= {"delivery.failed", f"library said {REDACTED}"}
    assert lines[0]["delivery_id"] == "d-1"


GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6" * 3
AWS_KEY = "AKIA" + "QWERTYUIOPASDFGH"


@pytest.mark.parametrize("secret", [GITHUB_TOKEN, AWS_KEY])
def test_a_value_shaped_like_a_secret_is_masked_though_the_process_never_held_it(secret):
    event = {"event": "clone.failed", "error": f"fatal: auth failed for {secret}", "n": [secret]}
    cleaned = SecretRedactor()(None, "info", event)
    assert secret not in json.dumps(cleaned)
    assert cleaned["error"].startswith("fatal: auth failed for ")


def test_ordinary_values_pass_unchanged():
    event = {"event": "build.started", "head_sha": "3f786850e387550fdab836ed7d6dc881de23001b"}
    assert SecretRedactor()(None, "info", dict(event)) == event


async def test_a_node_log_line_carries_its_build_task_and_installation(
    db, queue, make_settings, capfd
):
    async with db.session() as session:
        session.add(Installation(id=1, account_login="octo-org"))
        await session.flush()
        session.add(Repository(id=10, installation_id=1, full_name="octo-org/app"))
        await session.commit()
    build = await control.create_build(
        db, chain(Node("talk", "tests.dag_nodes:log_line")), installation_id=1, repository_id=10,
        head_sha="a" * 40, tier=BuildTier.SCAN, trigger="test",
    )  # fmt: skip
    ctx = {"db": db, "redis": queue, "settings": make_settings(database_url=db.url)}
    logs.configure("INFO")
    try:
        assert await run_build(ctx, build.id) == "succeeded"
        lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.strip()]
    finally:
        logging.getLogger().handlers.clear()
        structlog.reset_defaults()
    [line] = [line for line in lines if line["event"] == "node.working"]
    async with db.session() as session:
        [task] = await session.exec(select(Task).where(Task.build_id == build.id))
    assert (line["build_id"], line["task_id"], line["task"]) == (build.id, task.id, "talk")
    assert (line["installation_id"], line["repository_id"]) == (1, 10)


def test_database_statements_and_their_parameters_are_never_logged(capfd):
    """OpenHands, imported by the worker, must not turn SQLAlchemy's statement log on."""
    import subprocess
    import sys

    program = (
        "import asyncio, bot.worker\n"
        "from sqlalchemy import text\n"
        "from bot import logs\n"
        "from bot.db import Database\n"
        "logs.configure('DEBUG')\n"
        "async def main():\n"
        "    db = Database('sqlite://')\n"
        "    async with db.session() as session:\n"
        "        await session.exec(text(\"SELECT 'statement-parameter-7f3a'\"))\n"
        "    await db.dispose()\n"
        "asyncio.run(main())\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert "statement-parameter-7f3a" not in ran.stdout + ran.stderr
