"""The real OpenHands agent loop, driven by a scripted model, with its tools in a real sandbox."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator.agents.contracts import Role
from orchestrator.agents.llm import ModelChoice
from orchestrator.agents.prompts import CONTRACTS
from orchestrator.agents.runner import AgentFailed, AgentStatus, Budget, run_agent
from orchestrator.sandbox.base import ArchiveSource, open_sandbox
from orchestrator.sandbox.daytona import DaytonaSandboxProvider
from orchestrator.sandbox.guarded import GuardedSandbox
from orchestrator.sandbox.local import LocalSandboxProvider
from policies import load_pack
from tests.daytona_standin import running_daytona
from tests.llm_standin import Call, Fail, Hold, Say, ScriptedModel, finish, terminal
from tests.sandbox_contract import SPEC, github_tarball

APP = {
    "app/db.py": b"import sqlite3\n\n\ndef find(name):\n    q = f\"SELECT * FROM users WHERE name = '{name}'\"\n    return sqlite3.connect('app.db').execute(q)\n",
    "app/main.py": b"from app.db import find\n\nprint(find('x'))\n",
    "README.md": b"# demo\n",
}
FINDING = {
    "fingerprint": "f00d",
    "rule_id": "py-sql-injection",
    "title": "SQL built from input",
    "severity": "high",
    "path": "app/db.py",
    "line": 5,
}
KEY = "sk-scripted-" + "k" * 24


@pytest.fixture
def scripted(model: ScriptedModel) -> ScriptedModel:
    """The scripted model of tests/conftest.py, emptied for this test."""
    return model


@pytest.fixture
async def box() -> AsyncIterator:
    root = Path(tempfile.mkdtemp(prefix="clarity-agent-test-"))  # the sandbox user reaches it
    provider = LocalSandboxProvider(root)
    try:
        async with open_sandbox(provider, SPEC, ArchiveSource(github_tarball(APP))) as sandbox:
            yield sandbox
    finally:
        await provider.reap(older_than=timedelta(0))
        shutil.rmtree(root, ignore_errors=True)


def choice(scripted: ScriptedModel, **overrides) -> ModelChoice:
    fields = {
        "model": "openai/scripted",
        "api_key": KEY,
        "base_url": scripted.url,
        "input_cost_per_token": 1e-6,
        "output_cost_per_token": 2e-6,
        "num_retries": 0,
    }
    return ModelChoice(**{**fields, **overrides})


def confirmed(line: int = 5, path: str = "app/db.py") -> dict:
    return {
        "verdicts": [
            {
                "fingerprint": "f00d",
                "verdict": "confirmed",
                "confidence": 0.9,
                "reasoning": "the name reaches the query unescaped",
                "evidence": [{"path": path, "line": line, "excerpt": 'q = f"SELECT'}],
            }
        ]
    }


SECURITY = CONTRACTS[Role.SECURITY]
GIVEN = {"findings": [FINDING]}


async def test_security_agent_reads_the_sandbox_and_answers_with_a_validated_verdict(scripted, box):
    scripted.script(
        "security",
        terminal("grep -n SELECT app/db.py"),
        Call("file_editor", {"command": "view", "path": "/workspace/app/db.py"}),
        finish(confirmed()),
    )
    run = await run_agent(SECURITY, GIVEN, box, choice(scripted), Budget())
    assert run.status is AgentStatus.FINISHED
    assert run.output.verdicts[0].verdict == "confirmed"
    outputs = [e.get("output", "") for e in run.events if e["kind"] == "ObservationEvent"]
    assert "SELECT * FROM users" in outputs[0]  # the command ran in the sandbox's checkout
    assert "5\t    q = f" in outputs[1]  # the file editor read the sandbox's file
    assert run.iterations == 3
    assert run.cost_usd == pytest.approx(3 * (1000 * 1e-6 + 100 * 2e-6))


async def test_the_key_is_sent_to_the_model_and_never_into_the_sandbox(scripted, box):
    scripted.script("security", terminal("env; cat /proc/self/environ"), finish(confirmed()))
    run = await run_agent(SECURITY, GIVEN, box, choice(scripted), Budget())
    assert KEY not in str(run.events)
    assert all(KEY not in str(request) for request in scripted.requests)


async def test_the_model_sees_the_stock_tool_names_and_the_contract(scripted, box):
    scripted.script("security", finish(confirmed()))
    await run_agent(SECURITY, GIVEN, box, choice(scripted), Budget())
    first = scripted.requests[0]
    names = {tool["function"]["name"] for tool in first["tools"]}
    assert {"terminal", "file_editor", "task_tracker", "finish"} <= names
    assert "security/1" in str(first["messages"])


async def test_a_cited_file_that_does_not_exist_is_sent_back_then_rejected(scripted, box):
    scripted.script(
        "security",
        finish(confirmed(path="app/ghost.py")),
        finish(confirmed(path="app/ghost.py")),
    )
    with pytest.raises(AgentFailed) as failed:
        await run_agent(SECURITY, GIVEN, box, choice(scripted), Budget())
    assert failed.value.run.status is AgentStatus.INVALID
    assert "app/ghost.py, which does not exist" in failed.value.run.error
    retry = scripted.requests[-1]["messages"][-1]
    assert "does not exist" in str(retry)


async def test_a_cited_line_past_the_end_of_the_file_is_rejected(scripted, box):
    scripted.script("security", finish(confirmed(line=99)), finish(confirmed(line=99)))
    with pytest.raises(AgentFailed) as failed:
        await run_agent(SECURITY, GIVEN, box, choice(scripted), Budget())
    assert "app/db.py:99, but the file has 6 lines" in failed.value.run.error


async def test_invalid_json_is_retried_with_the_errors_and_a_corrected_answer_passes(scripted, box):
    scripted.script("security", finish("I think it is fine"), finish(confirmed()))
    run = await run_agent(SECURITY, GIVEN, box, choice(scripted), Budget())
    assert run.attempts == 2
    assert "holds no JSON object" in str(scripted.requests[-1]["messages"])


async def test_invalid_json_twice_fails_the_node(scripted, box):
    scripted.script("security", finish("{not json"), finish({"verdicts": "many"}))
    with pytest.raises(AgentFailed) as failed:
        await run_agent(SECURITY, GIVEN, box, choice(scripted), Budget())
    assert failed.value.run.status is AgentStatus.INVALID
    assert failed.value.run.output is None


async def test_a_missing_verdict_breaks_the_contract(scripted, box):
    scripted.script("security", finish({"verdicts": []}), finish({"verdicts": []}))
    with pytest.raises(AgentFailed) as failed:
        await run_agent(SECURITY, GIVEN, box, choice(scripted), Budget())
    assert "no verdict for finding f00d" in failed.value.run.error


async def test_the_iteration_cap_stops_the_agent(scripted, box):
    scripted.script("security", *[terminal(f"echo {n}") for n in range(10)])
    with pytest.raises(AgentFailed) as failed:
        await run_agent(SECURITY, GIVEN, box, choice(scripted), Budget(max_iterations=3))
    assert failed.value.run.status is AgentStatus.ITERATIONS
    assert len(scripted.requests) == 3


async def test_the_cost_cap_stops_the_agent(scripted, box):
    expensive = [Call("terminal", {"command": "true"}, prompt_tokens=100_000) for _ in range(10)]
    scripted.script("security", *expensive)
    with pytest.raises(AgentFailed) as failed:
        await run_agent(SECURITY, GIVEN, box, choice(scripted), Budget(max_cost_usd=0.25))
    run = failed.value.run
    assert run.status is AgentStatus.BUDGET
    assert 0.25 <= run.cost_usd < 0.25 + 0.11  # stops after the call that crossed the cap


async def test_a_failing_model_ends_as_a_model_error(scripted, box):
    scripted.always_fail("security", Fail(500))
    with pytest.raises(AgentFailed) as failed:
        await run_agent(SECURITY, GIVEN, box, choice(scripted), Budget())
    assert failed.value.run.status is AgentStatus.MODEL_ERROR


async def test_a_command_the_policy_pack_refuses_never_runs(scripted, box):
    scripted.script("security", terminal("git push origin main"), finish(confirmed()))
    guarded = GuardedSandbox(box, load_pack("default"))
    run = await run_agent(SECURITY, GIVEN, guarded, choice(scripted), Budget())
    refused = [e for e in run.events if e.get("tool") == "terminal" and "output" in e]
    assert refused[0]["error"]
    assert "refused by policy (git-push)" in refused[0]["output"]


async def test_a_high_risk_action_is_rejected_without_asking_anyone(scripted, box):
    scripted.script("security", terminal("rm -rf / --no-preserve-root"), finish(confirmed()))
    run = await run_agent(SECURITY, GIVEN, box, choice(scripted), Budget())
    assert run.status is AgentStatus.FINISHED
    assert any(e["kind"] == "UserRejectObservation" for e in run.events)
    assert "rm -rf" not in str([e.get("output", "") for e in run.events])
    assert (await box.exec("ls app")).ok  # nothing was deleted


async def test_cancelling_the_node_interrupts_the_agent_and_frees_the_sandbox(scripted, box):
    held = Hold(then=Say("too late"))
    scripted.script("security", terminal("echo started"), held)
    running = asyncio.create_task(run_agent(SECURITY, GIVEN, box, choice(scripted), Budget()))
    try:
        assert await asyncio.to_thread(held.reached.wait, 30)
        running.cancel()
        held.release.set()  # the model's late answer must not matter: the node is cancelled
        with pytest.raises(asyncio.CancelledError):
            await running
    finally:
        held.release.set()
    assert (await box.exec("echo still usable")).ok


async def test_file_editor_edits_the_sandbox_files_and_undoes(scripted, box):
    path = "/workspace/app/db.py"
    scripted.script(
        "security",
        Call(
            "file_editor",
            {
                "command": "str_replace",
                "path": path,
                "old_str": "import sqlite3",
                "new_str": "import sqlite3  # edited",
            },
        ),
        Call(
            "file_editor", {"command": "insert", "path": path, "insert_line": 0, "new_str": "# top"}
        ),
        Call("file_editor", {"command": "undo_edit", "path": path}),
        Call(
            "file_editor", {"command": "create", "path": "/workspace/NOTES.md", "file_text": "n\n"}
        ),
        Call("file_editor", {"command": "view", "path": "/etc/passwd"}),
        finish(confirmed(line=5)),
    )
    run = await run_agent(SECURITY, GIVEN, box, choice(scripted), Budget())
    assert (await box.read_file("app/db.py")).startswith(b"import sqlite3  # edited\n")
    assert (await box.read_file("NOTES.md")) == b"n\n"
    outside = [e for e in run.events if e.get("tool") == "file_editor" and "output" in e][-1]
    assert outside["error"] and "outside the repository" in outside["output"]


async def test_the_same_tools_run_on_the_daytona_backend(scripted):
    with running_daytona() as (api_url, api_key, _state):
        provider = DaytonaSandboxProvider.connect(api_key=api_key, api_url=api_url, target="local")
        try:
            snapshot = ArchiveSource(github_tarball(APP))
            async with open_sandbox(provider, SPEC, snapshot) as sandbox:
                scripted.script(
                    "security",
                    terminal("cd app && grep -c SELECT db.py"),
                    terminal("pwd"),
                    Call("file_editor", {"command": "view", "path": f"{sandbox.workspace}/app"}),
                    finish(confirmed()),
                )
                run = await run_agent(SECURITY, GIVEN, sandbox, choice(scripted), Budget())
        finally:
            await provider.close()
    outputs = [e["output"] for e in run.events if e["kind"] == "ObservationEvent"]
    assert outputs[0].strip() == "1"
    assert outputs[1].strip().endswith("/app")  # the shell session kept its directory
    assert "app/db.py" in outputs[2] and "app/main.py" in outputs[2]
