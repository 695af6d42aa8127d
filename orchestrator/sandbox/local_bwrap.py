"""The `bwrap` and `prlimit` command lines of the local sandbox, and the host layout they bind.

Deciding only: `discover_layout` looks at the host once (which system
directories exist, where the toolchains live); `sandbox_argv` turns a layout,
a sandbox's directories and its limits into one argv. Nothing here starts a
process.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.sandbox.base import Limits, SandboxError

WORKSPACE = "/workspace"
HOME = "/tmp"  # private to each command (and to a shell session), and size-limited
SHM_BYTES = 64 * 1024**2
# The identity inside the sandbox; bwrap maps it to the unprivileged host uid that runs it.
SANDBOX_UID = 1000
SANDBOX_GID = 1000

# System trees programs need; each is bound read-only, or recreated as the same symlink
# (merged-/usr systems make /bin, /lib... symlinks into /usr).
SYSTEM_TREES = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Only these parts of /etc: the dynamic loader, certificates, name-service switch,
# alternatives symlinks. Never all of /etc (shadow, the host's own configuration).
ETC_ENTRIES = (
    "/etc/alternatives",
    "/etc/ssl/certs",  # not /etc/ssl: /etc/ssl/private holds the host's TLS keys
    "/etc/ssl/openssl.cnf",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/nsswitch.conf",
    "/etc/localtime",
    "/etc/protocols",
    "/etc/services",
    "/etc/mime.types",
)


def generated_etc(hostname: str) -> dict[str, str]:
    """/etc files written for each sandbox instead of bound from the host (its users, hosts)."""
    return {
        "passwd": (
            "root:x:0:0:root:/root:/usr/sbin/nologin\n"
            f"sandbox:x:{SANDBOX_UID}:{SANDBOX_GID}:sandbox:{HOME}:/bin/bash\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        ),
        "group": f"root:x:0:\nsandbox:x:{SANDBOX_GID}:\nnogroup:x:65534:\n",
        "hosts": f"127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t{hostname}\n",
        "hostname": f"{hostname}\n",
    }


# A toolchain prefix holding one of these (or a home, or the worker's directory) is refused.
GUARDED_TREES = ("/root", "/home", "/etc", "/var", "/srv", "/tmp", "/run", "/proc", "/sys", "/dev")
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"


class BackendUnavailable(SandboxError):
    """bwrap, prlimit or a shell is missing on this host."""


@dataclass(frozen=True, slots=True)
class HostLayout:
    """What of the host a sandbox sees, found once per provider."""

    bwrap: str  # host path of bwrap
    binds: tuple[str, ...]  # host paths bound read-only at the same path
    toolchains: tuple[tuple[str, str], ...]  # (host source, path inside) bound read-only
    symlinks: tuple[tuple[str, str], ...]  # (target, path) recreated inside
    path: str  # PATH inside: toolchain bin directories first
    shell: str  # in-sandbox path of bash (or sh)
    prlimit: str  # in-sandbox path of prlimit


def _covered(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _prefix_of(executable: str | None) -> str | None:
    """The install prefix of an executable found on PATH (`<prefix>/bin/<name>`)."""
    if not executable:
        return None
    real = Path(executable).resolve()
    if real.parent.name != "bin":
        return None
    return str(real.parent.parent)


def _too_broad(prefix: str) -> bool:
    """Whether binding `prefix` would expose a whole tree of the host: /, /root, a home..."""
    homes = (entry.pw_dir for entry in pwd.getpwall())
    guarded = [*GUARDED_TREES, *homes, os.getcwd()]
    return any(_covered(tree, [prefix]) for tree in guarded if tree and tree != "/")


def _toolchain_prefixes(extra: Sequence[str]) -> list[str]:
    # The worker's own interpreter: its base prefix, never the virtual environment,
    # which holds the service's dependencies. Found ones that are too broad are left
    # out; one asked for explicitly is an error.
    found = [sys.base_prefix, _prefix_of(shutil.which("node"))]
    prefixes: list[str] = []
    # Asked-for toolchains come first on PATH: an operator's Python with test tools wins.
    for prefix, explicit in [*((p, True) for p in extra), *((p, False) for p in found)]:
        if not prefix or not os.path.isdir(prefix):
            if explicit:
                raise BackendUnavailable(f"toolchain prefix {prefix} is not a directory")
            continue
        prefix = str(Path(prefix).resolve())
        if _too_broad(prefix):
            if explicit:
                raise BackendUnavailable(f"toolchain prefix too broad to bind: {prefix}")
            continue
        if prefix not in prefixes:
            prefixes.append(prefix)
    return prefixes


def _inside(name: str, bound: Sequence[str]) -> str:
    """The in-sandbox path of a system program, which must come from a bound tree."""
    found = shutil.which(name, path=SYSTEM_PATH)
    if not found:
        raise BackendUnavailable(f"{name} not found")
    real = str(Path(found).resolve())
    if not _covered(real, bound):
        raise BackendUnavailable(f"{name} lives outside the trees bound into the sandbox")
    return real


def discover_layout(extra_toolchains: Sequence[str] = ()) -> HostLayout:
    """Look at this host: system trees, selected /etc entries, and toolchain prefixes."""
    bwrap = shutil.which("bwrap")
    if not bwrap:
        raise BackendUnavailable("bwrap not found (Debian package bubblewrap)")
    binds: list[str] = []
    symlinks: list[tuple[str, str]] = []
    for tree in SYSTEM_TREES:
        if os.path.islink(tree):
            symlinks.append((os.readlink(tree), tree))
        elif os.path.isdir(tree):
            binds.append(tree)
    binds += [entry for entry in ETC_ENTRIES if os.path.exists(entry)]
    toolchains = [p for p in _toolchain_prefixes(extra_toolchains) if not _covered(p, binds)]
    bound = [*binds, *toolchains, *(str(Path(path).resolve()) for _, path in symlinks)]
    shell = "bash" if shutil.which("bash", path=SYSTEM_PATH) else "sh"
    bin_dirs = [f"{prefix}/bin" for prefix in toolchains if os.path.isdir(f"{prefix}/bin")]
    return HostLayout(
        bwrap=bwrap,
        binds=tuple(binds),
        toolchains=tuple((prefix, prefix) for prefix in toolchains),
        symlinks=tuple(symlinks),
        path=":".join([*bin_dirs, SYSTEM_PATH]),
        shell=_inside(shell, bound),
        prlimit=_inside("prlimit", bound),
    )


@dataclass(frozen=True, slots=True)
class SandboxDirs:
    """The host directories of one sandbox."""

    hostname: str  # the sandbox's id; it also marks its bwrap processes in the host's `ps`
    workspace: Path  # bound read-write at WORKSPACE
    etc: Path  # the generated /etc files


def run_label() -> str:
    """A fresh label for one command's bwrap."""
    return f"CLARITY_RUN_{uuid.uuid4().hex}"


def limit_argv(prlimit: str, limits: Limits) -> list[str]:
    """prlimit applied inside the sandbox's user namespace.

    Inside, RLIMIT_NPROC counts the processes of this sandbox only (the kernel keeps
    process counts per user namespace), so concurrent sandboxes do not share one budget.
    """
    return [
        prlimit,
        f"--cpu={limits.cpu_seconds}",
        f"--as={limits.memory_bytes}",
        f"--nproc={limits.processes}",
        f"--fsize={limits.file_size_bytes}",
        "--core=0",  # a crashing test must not drop core files into the workspace
        "--",
    ]


def sandbox_argv(
    layout: HostLayout,
    dirs: SandboxDirs,
    limits: Limits,
    command: Sequence[str],
    *,
    cwd: str = WORKSPACE,
    tmp_bytes: int,
    label: str,
) -> list[str]:
    """The full argv: bwrap's namespaces and mounts, then prlimit, then `command`.

    The environment is not on this command line (the host's `ps` shows arguments to
    every user); the caller starts bwrap with exactly the sandbox's environment.
    `label` (see `run_label`) marks this one command.
    """
    argv = [
        layout.bwrap,
        "--unshare-all",  # user, pid, net, ipc, uts, cgroup: no network at all
        "--unshare-user",
        "--disable-userns",  # no nested user namespaces, so no capabilities regained inside
        "--die-with-parent",
        "--new-session",  # no TIOCSTI into a terminal outside
        "--cap-drop",
        "ALL",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_GID),
        "--hostname",
        dirs.hostname,
        # A no-op that labels the command line, which bwrap's pid 1 inside shares: if bwrap
        # is killed before that pid 1 arms its parent-death signal, the label still finds it.
        "--unsetenv",
        label,
    ]
    for path in layout.binds:
        argv += ["--ro-bind", path, path]
    for source, path in layout.toolchains:
        argv += ["--ro-bind", source, path]
    for target, path in layout.symlinks:
        argv += ["--symlink", target, path]
    for name in sorted(generated_etc(dirs.hostname)):
        argv += ["--ro-bind", str(dirs.etc / name), f"/etc/{name}"]
    argv += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        # Every writable place is bounded: /dev is an unbounded tmpfs, so /dev/shm gets its
        # own small one and /dev itself turns read-only (its device nodes are separate
        # mounts and stay usable). /tmp, also HOME, is memory too: bounded as well.
        "--size",
        str(SHM_BYTES),
        "--tmpfs",
        "/dev/shm",
        "--remount-ro",
        "/dev",
        "--size",
        str(tmp_bytes),
        "--tmpfs",
        "/tmp",
        "--bind",
        str(dirs.workspace),
        WORKSPACE,
        # The root is a tmpfs bwrap made; read-only, so /, /etc and the like take no writes.
        "--remount-ro",
        "/",
        "--chdir",
        cwd,
        "--",
    ]
    return argv + limit_argv(layout.prlimit, limits) + list(command)
