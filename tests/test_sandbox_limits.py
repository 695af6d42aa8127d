"""Resource attacks against both backends: each is stopped by the limit meant to stop it.

Every limit is set low (`TIGHT`) and every command has a timeout, so the module is
quick and leaves the host (two cores) responsive. On Daytona the limits of
`SandboxSpec.limits` are ours to apply to each command and shell (Daytona's own are
the whole sandbox's cores, memory and disk); what is the image's (the sizes of
`/tmp` and `/dev/shm`) is checked on the local backend only.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator.sandbox.local import LocalSandboxProvider
from tests import sandbox_backends as backends
from tests.sandbox_backends import SIGKILL, SIGXCPU, SIGXFSZ, TIGHT, MiB, python
from tests.sandbox_contract import archive

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(60)]
# the shared fixtures, used here by name
backend, box, attempt, daytona_standin = backends.fixtures()
tally = backends.attempts("resource attacks stopped")
IMAGE_SIZED = "the size of /tmp and /dev/shm is the Daytona image's, not a limit Clarity sets"

# Stops by itself at 200 children, so a broken limit fails the test instead of the host.
FORKS = """
import os, time
children = 0
try:
    while children < 200:
        if os.fork() == 0:
            time.sleep(5)
            os._exit(0)
        children += 1
    print(children, 0)
except BlockingIOError as error:
    print(children, error.errno)
"""


async def test_fork_bomb_is_stopped_by_the_process_limit(box, attempt):
    counted = await box.exec(python(FORKS), timeout=10)
    children, errno_ = map(int, counted.stdout.split())
    assert errno_ == 11  # EAGAIN from fork: RLIMIT_NPROC
    assert children < TIGHT.limits.processes
    started = time.monotonic()
    # bash backs off and retries a fork that failed: a loaded host needs the seconds
    bomb = await box.exec(":(){ :|:& };:; sleep 1; echo survived", timeout=6)
    assert "Resource temporarily unavailable" in bomb.stderr
    assert time.monotonic() - started < 9
    # The host still starts processes at once.
    started = time.monotonic()
    true = await asyncio.create_subprocess_exec("true")
    assert await asyncio.wait_for(true.wait(), 5) == 0
    assert time.monotonic() - started < 1
    attempt.stopped()


async def test_memory_hog_is_stopped_by_the_memory_limit(box, attempt):
    fits = await box.exec(python("x = bytearray(64 * 1024**2); print(len(x))"), timeout=10)
    assert fits.stdout.strip() == str(64 * MiB), fits.stderr
    hog = await box.exec(python("x = bytearray(1024**3)"), timeout=10)
    assert hog.exit_code == 1 and "MemoryError" in hog.stderr
    attempt.stopped()


async def test_one_huge_file_is_stopped_by_the_file_size_limit(box, attempt):
    result = await box.exec("head -c 100M /dev/zero > big.bin", timeout=10)
    assert result.exit_code == 128 + SIGXFSZ
    size = len(await box.read_file("big.bin"))
    assert size == TIGHT.limits.file_size_bytes
    attempt.stopped()


async def test_endless_loop_is_stopped_by_the_cpu_limit(box, attempt):
    result = await box.exec("while :; do :; done", timeout=10)
    assert not result.timed_out
    assert result.exit_code in (128 + SIGXCPU, 128 + SIGKILL)
    assert result.duration < TIGHT.limits.cpu_seconds + 3
    attempt.stopped()


async def test_endless_wait_is_stopped_by_the_wall_timeout(box, attempt):
    for command in ["sleep 60", "exec sleep 60 & wait", "while :; do sleep 0.01; done"]:
        result = await box.exec(command, timeout=0.3)
        assert result.timed_out and result.exit_code == 128 + SIGKILL, command
        assert result.duration < 3
    attempt.stopped()


async def test_the_limits_hold_in_a_shell_session_too(box, attempt):
    """Agents work through a shell: its commands get the same limits as `exec`."""
    shell = await box.shell()
    try:
        forks = await shell.run(f"python3 -c '{FORKS}'", timeout=10)
        big = await shell.run("head -c 100M /dev/zero > big.bin; echo $?", timeout=10)
        hog = await shell.run("python3 -c 'x = bytearray(1024**3)'", timeout=10)
        spin = await shell.run("python3 -c 'while True: pass'; echo $?", timeout=10)
    finally:
        await shell.close()
    children, errno_ = map(int, forks.stdout.split())
    assert errno_ == 11 and children < TIGHT.limits.processes
    assert big.stdout.strip() == str(128 + SIGXFSZ)
    assert len(await box.read_file("big.bin")) == TIGHT.limits.file_size_bytes
    assert "MemoryError" in hog.stderr
    assert spin.stdout.strip() in (str(128 + SIGXCPU), str(128 + SIGKILL)) and not spin.timed_out
    attempt.stopped()


async def test_tmp_is_private_to_the_sandbox(backend, box, attempt):
    host_marker = Path(tempfile.gettempdir()) / f"clarity-host-{uuid.uuid4().hex}"
    host_marker.write_text("host\n")
    try:
        assert (await box.exec("echo mine > /tmp/left-behind")).ok
        other = await backend.provider.create(TIGHT, archive())
        try:
            seen = await other.exec(f"ls -A /tmp; test -e {host_marker} && echo HOST")
        finally:
            await other.destroy()
    finally:
        host_marker.unlink()
    assert "left-behind" not in seen.stdout and "HOST" not in seen.stdout
    assert not Path("/tmp/left-behind").exists()
    attempt.stopped()


async def test_tmp_is_small(backend, box, attempt):
    if backend.name == "daytona":
        attempt.skip(IMAGE_SIZED)
    fill = await box.exec("for i in 1 2 3 4 5 6; do head -c 1M /dev/zero > /tmp/f$i || exit; done")
    assert fill.exit_code == 1 and "No space left on device" in fill.stderr
    attempt.stopped()


async def test_shared_memory_is_small(backend, box, attempt):
    if backend.name == "daytona":
        attempt.skip(IMAGE_SIZED)
    # Eight-MiB files (the file-size limit) until /dev/shm, 64 MiB, is full.
    fill = await box.exec(
        "for i in $(seq 20); do head -c 8M /dev/zero > /dev/shm/f$i || exit; done"
    )
    assert fill.exit_code == 1 and "No space left on device" in fill.stderr
    attempt.stopped()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a workspace tmpfs needs root")
async def test_many_files_are_stopped_by_the_workspace_size():
    """Local only: Daytona's workspace is bounded by the sandbox's disk, which Daytona sets."""
    root = Path(tempfile.mkdtemp(prefix="clarity-escape-test-"))
    provider = LocalSandboxProvider(root, workspace_bytes=16 * MiB)
    try:
        async with asyncio.timeout(20):
            sandbox = await provider.create(TIGHT, archive())
            try:
                fill = await sandbox.exec(
                    "i=0; while head -c 1M /dev/zero > f$i; do i=$((i+1)); done; echo $i",
                    timeout=10,
                )
                assert "No space left on device" in fill.stderr
                assert int(fill.stdout) < 16
            finally:
                await sandbox.destroy()
            assert not os.path.ismount(sandbox.directory / "workspace")
    finally:
        await provider.reap(older_than=timedelta(0))
        shutil.rmtree(root)
