"""The agent's `terminal` and `file_editor`, executed in our sandbox instead of on the worker.

The agent loop runs in the worker; only tool calls cross into the sandbox, so the
LLM key never enters it. The tools keep the stock names, schemas and prompts (the
model sees OpenHands' own tools); their executors call the `Sandbox` protocol, so
both backends serve them. Tool parameters must be JSON, so a conversation's tools
name a registered `Workspace` by id and look the live sandbox up here.

Executors are called on a worker thread; they run the sandbox's coroutines on the
event loop that registered the workspace.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from openhands.sdk.tool import ToolExecutor, register_tool
from openhands.tools.file_editor import FileEditorTool
from openhands.tools.file_editor.definition import FileEditorAction, FileEditorObservation
from openhands.tools.terminal import TerminalTool
from openhands.tools.terminal.definition import TerminalAction, TerminalObservation

from orchestrator.sandbox.base import Sandbox, SandboxError, Shell
from orchestrator.sandbox.local_files import NotAFileError

if TYPE_CHECKING:
    from openhands.sdk.conversation.state import ConversationState

COMMAND_TIMEOUT = 120.0  # seconds, when the agent sets none
OUTPUT_LIMIT = 30_000  # characters of one command's output shown to the model
VIEW_LIMIT = 2_000  # lines of one file shown at once


@dataclass
class Workspace:
    """A live sandbox lent to one conversation, and what its terminal ran."""

    sandbox: Sandbox
    loop: asyncio.AbstractEventLoop
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    commands: dict[str, int | None] = field(default_factory=dict)  # command -> last exit code
    shell: Shell | None = None
    history: dict[str, list[bytes]] = field(default_factory=dict)  # file_editor's undo
    _pending: set[Future[Any]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def call[T](self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coroutine` on the workspace's loop from a tool thread and wait for it."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        with self._lock:
            self._pending.add(future)
        try:
            return future.result(timeout)
        finally:
            with self._lock:
                self._pending.discard(future)

    def interrupt(self) -> None:
        """Cancel what the tools are waiting for (called from another thread)."""
        with self._lock:
            for future in list(self._pending):
                future.cancel()

    def relative(self, path: str) -> str:
        """`path` (absolute in the sandbox, or relative) as a workspace path; SandboxError outside."""
        root = self.sandbox.workspace.rstrip("/")
        if path == root:
            return "."
        if path.startswith("/"):
            if not path.startswith(root + "/"):
                raise SandboxError(f"{path} is outside the repository at {root}")
            path = path[len(root) + 1 :]
        if any(part == ".." for part in path.split("/")):
            raise SandboxError(f"{path} leaves the repository")
        return path or "."


_WORKSPACES: dict[str, Workspace] = {}


def lend(sandbox: Sandbox) -> Workspace:
    """Register `sandbox` for the tools of one conversation (call on the event loop)."""
    workspace = Workspace(sandbox, asyncio.get_running_loop())
    _WORKSPACES[workspace.id] = workspace
    return workspace


async def give_back(workspace: Workspace) -> None:
    _WORKSPACES.pop(workspace.id, None)
    workspace.interrupt()
    if workspace.shell is not None:
        shell, workspace.shell = workspace.shell, None
        await shell.close()


def _workspace(workspace_id: str) -> Workspace:
    try:
        return _WORKSPACES[workspace_id]
    except KeyError:
        raise SandboxError(f"workspace {workspace_id} is not lent to any conversation") from None


class SandboxTerminalExecutor(ToolExecutor[TerminalAction, TerminalObservation]):
    """One persistent shell in the sandbox: `cd` and exports carry over between commands."""

    def __init__(self, workspace_id: str) -> None:
        self.workspace_id = workspace_id

    def __call__(self, action: TerminalAction, conversation: Any = None) -> TerminalObservation:
        workspace = _workspace(self.workspace_id)
        if action.is_input:
            return _terminal_error(action, "this terminal takes whole commands, not input keys")
        if action.reset:
            workspace.call(give_back_shell(workspace))
            if not action.command.strip():
                return TerminalObservation.from_text(text="terminal reset", command="", exit_code=0)
        if not action.command.strip():
            return _terminal_error(action, "no command given")
        timeout = action.timeout or COMMAND_TIMEOUT
        try:
            result = workspace.call(_run(workspace, action.command, timeout), timeout + 30)
        except SandboxError as error:  # refused by policy, or the sandbox is gone
            workspace.commands[action.command] = None
            return _terminal_error(action, str(error))
        workspace.commands[action.command] = result.exit_code
        output = (result.stdout + result.stderr)[-OUTPUT_LIMIT:]
        if result.timed_out:
            output += f"\n[command timed out after {timeout:g} seconds]"
        return TerminalObservation.from_text(
            text=output,
            command=action.command,
            exit_code=result.exit_code,
            timeout=result.timed_out,
            is_error=False,
        )

    def interrupt(self) -> None:
        workspace = _WORKSPACES.get(self.workspace_id)
        if workspace is not None:
            workspace.interrupt()


async def _run(workspace: Workspace, command: str, timeout: float) -> Any:
    if workspace.shell is None:
        workspace.shell = await workspace.sandbox.shell()
    return await workspace.shell.run(command, timeout=timeout)


async def give_back_shell(workspace: Workspace) -> None:
    if workspace.shell is not None:
        shell, workspace.shell = workspace.shell, None
        await shell.close()


def _terminal_error(action: TerminalAction, message: str) -> TerminalObservation:
    return TerminalObservation.from_text(
        text=message, command=action.command, exit_code=None, is_error=True
    )


class SandboxFileEditorExecutor(ToolExecutor[FileEditorAction, FileEditorObservation]):
    """view / create / str_replace / insert / undo_edit on the sandbox's files."""

    def __init__(self, workspace_id: str) -> None:
        self.workspace_id = workspace_id

    def __call__(self, action: FileEditorAction, conversation: Any = None) -> FileEditorObservation:
        workspace = _workspace(self.workspace_id)
        try:
            path = workspace.relative(action.path)
            text = workspace.call(_edit(workspace, path, action))
        except (SandboxError, EditError, OSError) as error:
            return FileEditorObservation.from_text(
                text=f"ERROR: {error}", command=action.command, path=action.path, is_error=True
            )
        return FileEditorObservation.from_text(text=text, command=action.command, path=action.path)


class EditError(Exception):
    pass


async def _edit(workspace: Workspace, path: str, action: FileEditorAction) -> str:
    sandbox = workspace.sandbox
    if action.command == "view":
        return await _view(sandbox, path, action.view_range)
    if action.command == "create":
        if action.file_text is None:
            raise EditError("`create` needs file_text")
        await _save(workspace, path, action.file_text.encode())
        return f"File created successfully at: {action.path}"
    if action.command == "undo_edit":
        if not workspace.history.get(path):
            raise EditError(f"no edit to undo in {action.path}")
        await sandbox.write_file(path, workspace.history[path].pop())
        return f"Last edit to {action.path} undone successfully."
    content = (await sandbox.read_file(path)).decode("utf-8", "replace")
    if action.command == "str_replace":
        if not action.old_str:
            raise EditError("`str_replace` needs old_str")
        count = content.count(action.old_str)
        if count != 1:
            where = "did not appear verbatim" if count == 0 else f"appears {count} times"
            raise EditError(f"No replacement was performed: old_str {where} in {action.path}.")
        updated = content.replace(action.old_str, action.new_str or "")
    elif action.command == "insert":
        if action.new_str is None or action.insert_line is None:
            raise EditError("`insert` needs new_str and insert_line")
        lines = content.splitlines(keepends=True)
        if action.insert_line > len(lines):
            raise EditError(
                f"insert_line {action.insert_line} is past the end ({len(lines)} lines)"
            )
        block = action.new_str if action.new_str.endswith("\n") else action.new_str + "\n"
        updated = (
            "".join(lines[: action.insert_line]) + block + "".join(lines[action.insert_line :])
        )
    else:
        raise EditError(f"unknown command {action.command!r}")
    await _save(workspace, path, updated.encode(), previous=content.encode())
    return f"The file {action.path} has been edited.\n" + _numbered(updated, None)[:OUTPUT_LIMIT]


async def _save(
    workspace: Workspace, path: str, data: bytes, previous: bytes | None = None
) -> None:
    if previous is not None:
        workspace.history.setdefault(path, []).append(previous)
    await workspace.sandbox.write_file(path, data)


async def _view(sandbox: Sandbox, path: str, view_range: list[int] | None) -> str:
    entries = await _listing(sandbox, path)
    if entries is not None:
        shown = "\n".join(entries[:VIEW_LIMIT])
        return f"Files and directories in {path} (two levels, hidden items left out):\n{shown}"
    content = (await sandbox.read_file(path)).decode("utf-8", "replace")
    return _numbered(content, view_range)


async def _listing(sandbox: Sandbox, path: str) -> list[str] | None:
    """Two levels of a directory, hidden entries left out; None when `path` is not a directory."""
    try:
        entries = await sandbox.list_files(path)
    except NotAFileError:
        return None
    found = []
    for entry in entries:
        if entry.path.rsplit("/", 1)[-1].startswith("."):
            continue
        found.append(entry.path + ("/" if entry.is_dir else ""))
        if entry.is_dir:
            inner = await sandbox.list_files(entry.path)
            found += [
                e.path + ("/" if e.is_dir else "")
                for e in inner
                if not e.path.rsplit("/", 1)[-1].startswith(".")
            ]
    return sorted(found)


def _numbered(content: str, view_range: list[int] | None) -> str:
    lines = content.splitlines()
    start, end = 1, len(lines)
    if view_range:
        start = max(1, view_range[0])
        end = len(lines) if len(view_range) < 2 or view_range[1] == -1 else view_range[1]
    end = min(end, start + VIEW_LIMIT - 1)
    return "\n".join(f"{n:6}\t{lines[n - 1]}" for n in range(start, min(end, len(lines)) + 1))


class SandboxTerminalTool(TerminalTool):
    """OpenHands' `terminal`, run in the sandbox lent as `workspace_id`."""

    name: ClassVar[str] = "terminal"

    @classmethod
    def create(  # type: ignore[override]
        cls, conv_state: ConversationState, workspace_id: str
    ) -> Sequence[TerminalTool]:
        return super().create(conv_state, executor=SandboxTerminalExecutor(workspace_id))


class SandboxFileEditorTool(FileEditorTool):
    """OpenHands' `file_editor`, editing the files of the sandbox lent as `workspace_id`."""

    name: ClassVar[str] = "file_editor"

    @classmethod
    def create(  # type: ignore[override]
        cls, conv_state: ConversationState, workspace_id: str
    ) -> Sequence[FileEditorTool]:
        stock = super().create(conv_state)[0]
        where = _workspace(workspace_id).sandbox.workspace
        description = stock.description.replace(conv_state.workspace.working_dir, where)
        return [
            stock.model_copy(
                update={
                    "executor": SandboxFileEditorExecutor(workspace_id),
                    "description": description,
                }
            )
        ]


# Registered under the stock names: the model is offered OpenHands' own tools.
register_tool("terminal", SandboxTerminalTool)
register_tool("file_editor", SandboxFileEditorTool)
