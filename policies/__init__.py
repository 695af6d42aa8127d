"""Policy packs and their evaluation: pure decisions, no I/O beyond the packs' own YAML.

A pack comes from `load_pack(name)`, tightened for a repository by
`effective_pack(pack, load_repo_config(text))`. Each decision function takes it:
`check_command` (CommandDecision), `network_for` (NetworkDecision), `limits_for`
(Limits), `admit_build` (AdmissionDecision), `authorize` (AccessDecision),
`check_quota` (QuotaDecision), `scan_gate`/`security_gate`/`test_gate` (GateDecision),
`check_patch` (PatchDecision, with its CheckpointDecision) and `estimate_build`
(Estimate, for `pack.budgets`; `needs_confirmation` and `render_quote` use it).
"""

from policies.access import AccessDecision, SlashCommand, authorize, parse_permission
from policies.commands import CommandDecision, check_command
from policies.fixes import ChangedFile, PatchDecision, Violation, check_patch
from policies.gates import (
    CheckpointDecision,
    GateDecision,
    checkpoint_for,
    scan_gate,
    security_gate,
    test_gate,
)
from policies.limits import (
    AdmissionDecision,
    admit_build,
    limits_for,
    node_concurrency_for,
    sandbox_spec_for,
)
from policies.merge import effective_pack
from policies.network import NetworkDecision, network_for
from policies.pack import (
    AgentBudget,
    BuildBudget,
    CommandMode,
    EffectivePack,
    Pack,
    PackError,
    Permission,
    Tier,
    load_pack,
    pack_names,
    parse_pack,
)
from policies.quotas import QuotaDecision, QuotaKind, UsageSnapshot, check_quota, quota_period
from policies.quote import (
    DEEP_SCAN_ROLES,
    Estimate,
    Prices,
    ReportShapeError,
    ScanSize,
    estimate_build,
    needs_confirmation,
    render_quote,
)
from policies.repo_config import (
    RepoConfig,
    RepoConfigError,
    load_repo_config,
    schema_text,
    write_schema,
)

__all__ = [
    "DEEP_SCAN_ROLES",
    "AccessDecision",
    "AdmissionDecision",
    "AgentBudget",
    "BuildBudget",
    "ChangedFile",
    "CheckpointDecision",
    "CommandDecision",
    "CommandMode",
    "EffectivePack",
    "Estimate",
    "GateDecision",
    "NetworkDecision",
    "Pack",
    "PackError",
    "PatchDecision",
    "Permission",
    "Prices",
    "QuotaDecision",
    "QuotaKind",
    "RepoConfig",
    "RepoConfigError",
    "ReportShapeError",
    "ScanSize",
    "SlashCommand",
    "Tier",
    "UsageSnapshot",
    "Violation",
    "admit_build",
    "authorize",
    "check_command",
    "check_patch",
    "check_quota",
    "checkpoint_for",
    "effective_pack",
    "estimate_build",
    "limits_for",
    "load_pack",
    "load_repo_config",
    "needs_confirmation",
    "network_for",
    "node_concurrency_for",
    "pack_names",
    "parse_pack",
    "parse_permission",
    "quota_period",
    "render_quote",
    "sandbox_spec_for",
    "scan_gate",
    "schema_text",
    "security_gate",
    "test_gate",
    "write_schema",
]
