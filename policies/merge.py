"""Tightening: the repository's `.clarity.yml` applied to the installation's pack.

Every value in `policy:` (and the top-level `fail_on` and `tiers`) must be at least
as strict as the pack's; the effective value is then the repository's. A value that
would loosen the pack — a higher limit, a weaker permission, a network where the
pack has none, a host the pack does not allow — is refused with a RepoConfigError
naming its key and line, never silently ignored. Lists of denials only grow.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orchestrator.sandbox.base import NetworkMode
from policies.network import host_allowed
from policies.pack import CommandMode, EffectivePack, Pack, Permission, Tier
from policies.repo_config import (
    BudgetOverrides,
    CommandOverrides,
    FixOverrides,
    GateOverrides,
    NetworkOverrides,
    PolicyOverrides,
    QuotaOverrides,
    RepoConfig,
    RepoConfigError,
)
from scanner.model import Severity


def effective_pack(pack: Pack, config: RepoConfig) -> EffectivePack:
    """`pack` tightened by `config`; raises RepoConfigError (key, line) for any loosening."""
    merge = _Merge(config)
    policy: PolicyOverrides = config.policy
    data = pack.model_dump(by_alias=True)

    fail_on = pack.gates.fail_on
    if "fail_on" in config.model_fields_set:  # the top-level key sets the failing severity too
        fail_on = merge.severity(("fail_on",), fail_on, config.fail_on)
    fail_on = merge.severity(("policy", "fail_on"), fail_on, policy.fail_on)
    data["gates"]["fail_on"] = fail_on

    merge.tiers(data["tiers"])
    if policy.commands is not None:
        merge.commands(pack, policy.commands, data["commands"])
    if policy.network is not None:
        merge.network(policy.network, data["network"])
    if policy.limits is not None:
        for tier in Tier:
            for key, value in _set(getattr(policy.limits, tier.value)):
                path = ("policy", "limits", tier.value, key)
                data["limits"][tier.value][key] = merge.lower(
                    path, data["limits"][tier.value][key], value
                )
    if policy.access is not None:
        for key, value in _set(policy.access, by_alias=True):
            data["access"][key] = merge.permission(
                ("policy", "access", key), data["access"][key], value
            )
    if policy.gates is not None:
        merge.gates(policy.gates, data["gates"])
    if policy.fixes is not None:
        merge.fixes(policy.fixes, data["fixes"])
    if policy.quotas is not None:
        merge.quotas(policy.quotas, data["quotas"])
    if policy.budgets is not None:
        merge.budgets(policy.budgets, data["budgets"])
    return EffectivePack.model_validate({**data, "tightened": tuple(merge.tightened)})


def _set(section: Any, by_alias: bool = False) -> Iterable[tuple[str, Any]]:
    """The keys a section of `policy:` sets (None means "as the pack says")."""
    if section is None:
        return ()
    return section.model_dump(by_alias=by_alias, exclude_none=True).items()


class _Merge:
    def __init__(self, config: RepoConfig) -> None:
        self.config = config
        self.tightened: list[str] = []

    def refuse(self, path: tuple, message: str) -> RepoConfigError:
        key = ".".join(str(part) for part in path)
        return RepoConfigError(
            f"{message}; .clarity.yml can tighten the installation's policy, not loosen it",
            key,
            self.config.key_line(*path),
        )

    def note(self, path: tuple, changed: bool) -> None:
        if changed:
            self.tightened.append(".".join(str(part) for part in path))

    def lower(self, path: tuple, pack: float, repo: float | None) -> Any:
        if repo is None:
            return pack
        if repo > pack:
            show = _size if path[-1] in ("memory", "file_size") else _number
            raise self.refuse(path, f"{show(repo)} is more than the installation's {show(pack)}")
        self.note(path, repo < pack)
        return repo

    def permission(self, path: tuple, pack: str, repo: str) -> str:
        held, wanted = Permission(pack), Permission(repo)
        if wanted.rank < held.rank:
            raise self.refuse(path, f"{wanted} is weaker than the installation's {held}")
        self.note(path, wanted != held)
        return wanted.value

    def severity(self, path: tuple, pack: Severity, repo: Severity | None) -> Severity:
        # A lower threshold is stricter: more findings fail or block.
        if repo is None:
            return pack
        if Severity(repo).rank > Severity(pack).rank:
            raise self.refuse(path, f"{repo} is a higher threshold than the installation's {pack}")
        self.note(path, repo != pack)
        return Severity(repo)

    def switch_on(self, path: tuple, pack: bool, repo: bool | None) -> bool:
        """A safety switch (checkpoint always, test gate) may be turned on, not off."""
        if repo is None:
            return pack
        if pack and not repo:
            raise self.refuse(path, "the installation's pack has this on")
        self.note(path, repo and not pack)
        return pack or repo

    def tiers(self, tiers: dict) -> None:
        for tier in Tier:
            if tier.value not in self.config.tiers.model_fields_set:
                continue
            wanted = getattr(self.config.tiers, tier.value)
            if wanted and not tiers[tier.value]:
                raise self.refuse(
                    ("tiers", tier.value), f"{tier.value} is off in the installation's pack"
                )
            self.note(("tiers", tier.value), tiers[tier.value] and not wanted)
            tiers[tier.value] = tiers[tier.value] and wanted

    def commands(self, pack: Pack, overrides: CommandOverrides, commands: dict) -> None:
        if overrides.mode is not None:
            if (
                pack.commands.mode is CommandMode.ALLOWLIST
                and overrides.mode is CommandMode.DENYLIST
            ):
                raise self.refuse(
                    ("policy", "commands", "mode"), "the installation's pack is an allowlist"
                )
            self.note(("policy", "commands", "mode"), overrides.mode != pack.commands.mode)
            commands["mode"] = overrides.mode.value
        pack_ids = {rule.id for rule in pack.commands.deny}
        for index, rule in enumerate(overrides.deny):
            if rule.id in pack_ids:
                raise self.refuse(
                    ("policy", "commands", "deny", index), f"{rule.id!r} is already a deny rule"
                )
            pack_ids.add(rule.id)
            commands["deny"] = [
                *commands["deny"],
                rule.model_dump(by_alias=True, exclude_none=True),
            ]
        self.note(("policy", "commands", "deny"), bool(overrides.deny))
        if overrides.allow is not None:
            allowed = {rule.id for rule in pack.commands.allow}
            for index, rule_id in enumerate(overrides.allow):
                if rule_id not in allowed:
                    raise self.refuse(
                        ("policy", "commands", "allow", index),
                        f"{rule_id!r} is not one of the installation's allow rules",
                    )
            commands["allow"] = [r for r in commands["allow"] if r["id"] in overrides.allow]
            self.note(("policy", "commands", "allow"), len(commands["allow"]) < len(allowed))

    def network(self, overrides: NetworkOverrides, network: dict) -> None:
        for tier in ("deep_scan", "fix"):
            wanted = getattr(overrides, tier)
            if wanted is None:
                continue
            path = ("policy", "network", tier)
            if wanted is NetworkMode.ALLOWLIST and network[tier] == NetworkMode.NONE:
                raise self.refuse(path, "the installation's pack gives this tier no network")
            self.note(path, wanted != network[tier])
            network[tier] = wanted
        if overrides.allow_hosts is not None:
            for index, host in enumerate(overrides.allow_hosts):
                if not host_allowed(tuple(network["allow_hosts"]), host.removeprefix("*.")) or (
                    host.startswith("*.") and host not in network["allow_hosts"]
                ):
                    raise self.refuse(
                        ("policy", "network", "allow_hosts", index),
                        f"{host} is not among the installation's allowed hosts",
                    )
            self.note(
                ("policy", "network", "allow_hosts"),
                set(overrides.allow_hosts) != set(network["allow_hosts"]),
            )
            network["allow_hosts"] = list(overrides.allow_hosts)
        if not network["allow_hosts"]:  # no host left: no tier can have an allowlist network
            network.update(deep_scan=NetworkMode.NONE, fix=NetworkMode.NONE)

    def gates(self, overrides: GateOverrides, gates: dict) -> None:
        if overrides.security is not None:
            path = ("policy", "gates", "security", "new_findings_at_or_above")
            current = gates["security"]["new_findings_at_or_above"]
            gates["security"]["new_findings_at_or_above"] = self.severity(
                path, current, overrides.security.new_findings_at_or_above
            )
        if overrides.tests is not None:
            path = ("policy", "gates", "tests", "no_new_failures")
            current = gates["tests"]["no_new_failures"]
            gates["tests"]["no_new_failures"] = self.switch_on(
                path, current, overrides.tests.no_new_failures
            )
        if (checkpoint := overrides.checkpoint) is not None:
            base = ("policy", "gates", "checkpoint")
            current = gates["checkpoint"]
            current["always"] = self.switch_on(
                (*base, "always"), current["always"], checkpoint.always
            )
            current["files_changed_over"] = self.lower(
                (*base, "files_changed_over"),
                current["files_changed_over"],
                checkpoint.files_changed_over,
            )
            current["paths"] = [*current["paths"], *checkpoint.paths]
            self.note((*base, "paths"), bool(checkpoint.paths))

    def fixes(self, overrides: FixOverrides, fixes: dict) -> None:
        base = ("policy", "fixes")
        fixes["deny_paths"] = [*fixes["deny_paths"], *overrides.deny_paths]
        self.note((*base, "deny_paths"), bool(overrides.deny_paths))
        if overrides.allow_paths is not None:
            # Whether one glob lies within another cannot be decided in general, so the
            # repository's patterns must be the pack's own, unless the pack allows everything.
            if "**" not in fixes["allow_paths"]:
                for index, pattern in enumerate(overrides.allow_paths):
                    if pattern not in fixes["allow_paths"]:
                        raise self.refuse(
                            (*base, "allow_paths", index),
                            f"{pattern!r} is not one of the installation's allowed path patterns",
                        )
            self.note(
                (*base, "allow_paths"), set(overrides.allow_paths) != set(fixes["allow_paths"])
            )
            fixes["allow_paths"] = list(overrides.allow_paths)
        if overrides.binary is not None:
            if overrides.binary == "allow" and fixes["binary"] == "deny":
                raise self.refuse((*base, "binary"), "the installation's pack denies binary files")
            self.note((*base, "binary"), overrides.binary != fixes["binary"])
            fixes["binary"] = overrides.binary
        for key in ("max_files", "max_lines"):
            fixes[key] = self.lower((*base, key), fixes[key], getattr(overrides, key))

    def quotas(self, overrides: QuotaOverrides, quotas: dict) -> None:
        base = ("policy", "quotas")
        for scope in ("per_pull_request", "per_user"):
            for key, value in _set(getattr(overrides, scope)):
                quotas[scope][key] = self.lower((*base, scope, key), quotas[scope][key], value)
        installation = quotas["installation"]
        installation["llm_cost_usd"] = self.lower(
            (*base, "llm_cost_usd"), installation["llm_cost_usd"], overrides.llm_cost_usd
        )

    def budgets(self, overrides: BudgetOverrides, budgets: dict) -> None:
        for tier in ("deep_scan", "fix"):
            wanted = getattr(overrides, tier)
            if wanted is None:
                continue
            base, budget = ("policy", "budgets", tier), budgets[tier]
            for key in ("max_cost_usd", "confirm_over_usd"):
                budget[key] = self.lower((*base, key), budget[key], getattr(wanted, key))
            agent = budget["agent"]
            for key, value in _set(wanted.agent):
                agent[key] = self.lower((*base, "agent", key), agent[key], value)
            # No agent may spend more than its whole build: a lower build cap lowers theirs.
            if agent["max_cost_usd"] > budget["max_cost_usd"]:
                agent["max_cost_usd"] = budget["max_cost_usd"]
                self.note((*base, "agent", "max_cost_usd"), True)


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _size(value: float) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if value >= factor:
            return f"{value / factor:g}{unit}"
    return f"{value:g} bytes"
