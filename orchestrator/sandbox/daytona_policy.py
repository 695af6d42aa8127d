"""What a `SandboxSpec` asks of Daytona: network policy, labels, lifetimes, resources, limits.

Pure functions and values, no I/O: the provider turns them into the SDK's create
parameters and network-settings updates.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field
from datetime import timedelta

from daytona import CreateSandboxFromImageParams, CreateSandboxFromSnapshotParams, Resources

from orchestrator.sandbox.base import Limits, NetworkMode, SandboxError, SandboxSpec

# Every sandbox we create carries this label, so `reap` finds ours and only ours.
MARKER_LABEL = "clarity.sandbox"
MARKER_VALUE = "1"
BUILD_LABEL = "clarity.build_id"
INSTALLATION_LABEL = "clarity.installation_id"
GiB = 1024**3
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


class PolicyError(SandboxError):
    """The spec asks for something Daytona cannot express (an allow-list entry that is neither a host nor a CIDR)."""


@dataclass(frozen=True, slots=True)
class DaytonaOptions:
    """How sandboxes are made: from a Daytona snapshot (fast; preferred) or an image, and how big."""

    snapshot: str | None = None
    image: str | None = None  # used when no snapshot is named; then `cpu` and `disk_gib` apply
    cpu: int = 2
    disk_gib: int = 10
    create_timeout: float = 120.0
    workspace_name: str = "workspace"  # the repository's folder inside Daytona's work directory


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """Daytona's three network settings: block everything, or allow CIDRs and domains."""

    block_all: bool
    cidrs: tuple[str, ...] = field(default=())
    domains: tuple[str, ...] = field(default=())

    @classmethod
    def for_spec(cls, spec: SandboxSpec) -> NetworkPolicy:
        """NONE blocks all; ALLOWLIST allows exactly `allow_hosts` (nothing listed blocks all)."""
        if spec.network is NetworkMode.NONE or not spec.allow_hosts:
            return cls(block_all=True)
        policy = cls(block_all=False)
        for host in spec.allow_hosts:
            policy = policy.with_host(host)
        return policy

    def with_host(self, host: str) -> NetworkPolicy:
        """This policy plus `host` (an address or CIDR goes to the CIDR list, a name to the domains)."""
        entry = host.strip().lower()
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            domain = entry.removeprefix("*.")
            if not _HOSTNAME.match(domain):
                raise PolicyError(
                    f"allow-list entry {host!r} is neither a host name nor a CIDR"
                ) from None
            if domain in self.domains:
                return self
            return NetworkPolicy(False, self.cidrs, (*self.domains, domain))
        cidr = str(network)
        if cidr in self.cidrs:
            return self
        return NetworkPolicy(False, (*self.cidrs, cidr), self.domains)

    def permits(self, host: str) -> bool:
        """Whether `host` is reachable under this policy."""
        if self.block_all:
            return False
        name = host.strip().lower()
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return any(name == d or name.endswith("." + d) for d in self.domains)
        return any(address in ipaddress.ip_network(c) for c in self.cidrs)

    def create_fields(self) -> dict[str, object]:
        """The create parameters that set this policy."""
        if self.block_all:
            return {"network_block_all": True}
        return {
            "network_block_all": False,
            "network_allow_list": ",".join(self.cidrs) or None,
            "domain_allow_list": ",".join(self.domains) or None,
        }

    def update_fields(self) -> dict[str, object]:
        """The network-settings update that replaces any policy by this one.

        An empty list is sent as "" so that an entry added for the clone is removed.
        """
        if self.block_all:
            return {"network_block_all": True}
        return {
            "network_allow_list": ",".join(self.cidrs),
            "domain_allow_list": ",".join(self.domains),
        }


def labels(spec: SandboxSpec) -> dict[str, str]:
    return {
        MARKER_LABEL: MARKER_VALUE,
        BUILD_LABEL: str(spec.build_id),
        INSTALLATION_LABEL: str(spec.installation_id),
    }


def minutes(duration: timedelta) -> int:
    """Whole minutes, rounded up, at least one (Daytona's intervals are minutes; 0 would mean "never")."""
    return max(1, math.ceil(duration.total_seconds() / 60))


def create_params(
    spec: SandboxSpec, options: DaytonaOptions, network: NetworkPolicy
) -> CreateSandboxFromSnapshotParams | CreateSandboxFromImageParams:
    """The SDK's create parameters: stopped after `spec.lifetime` without activity, deleted as soon as stopped."""
    common: dict[str, object] = {
        "labels": labels(spec),
        "env_vars": dict(spec.env),  # nothing but the spec's variables
        "auto_stop_interval": minutes(spec.lifetime),
        "auto_delete_interval": 0,  # a stopped sandbox is deleted at once: nothing lingers
        "public": False,
        **network.create_fields(),
    }
    if options.snapshot or not options.image:
        return CreateSandboxFromSnapshotParams(snapshot=options.snapshot, **common)
    resources = Resources(
        cpu=options.cpu,
        memory=max(1, math.ceil(spec.limits.memory_bytes / GiB)),
        disk=options.disk_gib,
    )
    return CreateSandboxFromImageParams(image=options.image, resources=resources, **common)


def limit_commands(limits: Limits) -> str:
    """Shell commands putting `limits` on the shell that runs them and on all it starts.

    Daytona bounds only the whole sandbox (cores, memory, disk); the per-command
    limits the local backend sets with prlimit are set here with `ulimit`, whose
    flags and units differ: bash counts processes with -u and file sizes in KiB
    (512-byte blocks in POSIX mode), POSIX shells such as dash use -p and 512 bytes.
    """
    blocks = max(1, limits.file_size_bytes // 512)
    return (
        f"{{ ulimit -t {limits.cpu_seconds}; ulimit -v {max(1, limits.memory_bytes // 1024)}; "
        'if [ -n "${BASH_VERSION:-}" ]; then '
        f"ulimit -u {limits.processes}; case :${{SHELLOPTS:-}}: in "
        f"*:posix:*) ulimit -f {blocks};; *) ulimit -f {max(1, blocks // 2)};; esac; "
        f"else ulimit -p {limits.processes}; ulimit -f {blocks}; fi; }} 2>/dev/null"
    )
