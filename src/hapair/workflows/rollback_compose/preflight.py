"""Compose rollback preflight (read-only; refusals are exit 3 with nothing touched): every
host runs compose and answers; the upgrade completed; exactly one running Patroni leader, and
it is the node the upgrade started from (its original compose file is there); `--to`, when
given, names it; the original file `<file>.hapair-before` exists there and defines the
user's postgres and redis services; the leader's hapair-redis and hapair-patroni run. A
rollback that stopped half-way resumes on the node it had chosen (read from its journal:
Patroni may be gone) without asking the target to be healthy first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hapair.compose.host_runtime import ComposeHostRuntime
from hapair.errors import HapairError
from hapair.exec.journal import History
from hapair.plan.step import StepContext
from hapair.workflows.context import WorkflowContext
from hapair.workflows.ops.pair import cluster
from hapair.workflows.rollback.model import Target, choose_target
from hapair.workflows.rollback.preflight import RollbackPreflight, decide, upgrade_completed
from hapair.workflows.rollback_compose.model import (
    BEFORE_SUFFIX,
    PAIR_SUFFIX,
    PLAN,
    compose_resume_target,
    service_names,
)
from hapair.workflows.rollback_compose.setup import ComposeRollback, containers
from hapair.workflows.upgrade.params import UpgradeParams


def prepare_compose_rollback(ctx: WorkflowContext, p: UpgradeParams, wanted: str | None
                             ) -> tuple[RollbackPreflight, ComposeRollback | None]:
    """The preflight, and — when nothing refuses — what the plan is built from."""
    layout = _layout_problems(p)
    if layout:
        return RollbackPreflight(None, False, layout), None
    upgrade_run = upgrade_completed(History.load(ctx.runs_root, "upgrade"))
    if upgrade_run is None:
        return RollbackPreflight(None, False, decide(None, None, Target(None, ""), [])[1]), None
    facts: dict[str, Any] = {"upgrade_run": upgrade_run}
    unreachable = _hosts_problems(ctx, p)
    if unreachable:
        return RollbackPreflight(None, False, unreachable, facts), None
    resuming = compose_resume_target(History.load(ctx.runs_root, PLAN))
    if resuming is not None and wanted not in (None, resuming):
        return RollbackPreflight(None, True, [f"--to {wanted}: the rollback in progress "
                                              f"targets {resuming}; finish it first"],
                                 facts), None
    target = Target(resuming, "resuming")
    if resuming is None:
        try:
            members = cluster(p)
        except HapairError as exc:
            return RollbackPreflight(None, False, [str(exc)], facts), None
        facts["patroni"] = [{"name": m.name, "role": m.role, "state": m.state}
                            for m in members]
        target = choose_target(members, wanted)
    facts["target_reason"] = target.reason
    if target.node is None:
        return RollbackPreflight(None, False, [target.reason], facts), None
    problems, cr = _target_problems(ctx, p, target.node, resuming=resuming is not None)
    chosen, refusals = decide(upgrade_run, resuming, target, problems)
    if cr is not None:
        facts["recreate"] = cr.recreate
    return (RollbackPreflight(chosen, resuming is not None, refusals, facts),
            cr if not refusals else None)


def _layout_problems(p: UpgradeParams) -> list[str]:
    native = [h.name for h in p.inv.hosts if h.compose is None]
    if native:
        return [f"the compose rollback needs every host on compose; {', '.join(native)} "
                "run the native layout"]
    if p.names.witness is None:
        return ["the compose rollback needs the witness of the pair (its hapair project)"]
    return []


def _hosts_problems(ctx: WorkflowContext, p: UpgradeParams) -> list[str]:
    problems = []
    for h in p.inv.hosts:
        try:
            ComposeHostRuntime(ctx.transports[h.name], h).project("hapair").cli()
        except HapairError as exc:
            text = str(exc)
            problems.append(text if text.startswith(f"{h.name}:") else f"{h.name}: {text}")
    return problems


def _target_problems(ctx: WorkflowContext, p: UpgradeParams, target: str, *, resuming: bool
                     ) -> tuple[list[str], ComposeRollback | None]:
    first = p.names.primary
    if target != first:
        return [f"{target} holds the data, but a compose rollback goes back to {first}, the "
                f"server the upgrade started from (its original compose file is there): run "
                f"`hapair switchover --to {first} --redis` first"], None
    host = p.host(target)
    assert host.compose is not None  # _layout_problems
    services = host.compose.services
    missing = [role for role in ("postgres", "redis") if not getattr(services, role)]
    if missing:
        return [f"{target}: no compose.services.{r} in the inventory (the user's service "
                "that gets the data back)" for r in missing], None
    sctx = StepContext(target, ctx.transports)
    t = ctx.transports[target]
    path = host.compose.files[0]
    try:
        original = t.read_file(path + BEFORE_SUFFIX).decode()
    except FileNotFoundError:
        return [f"{target}: {path}{BEFORE_SUFFIX} (the compose file before the upgrade) is "
                "missing: the single server's definition is unknown"], None
    absent = {services.postgres, services.redis} - service_names(original)
    if absent:
        return [f"{target}: {path}{BEFORE_SUFFIX} defines no service "
                f"{', '.join(sorted(s for s in absent if s))}"], None
    edited = _read_either(t.read_file, path + PAIR_SUFFIX, path)
    cr = ComposeRollback(p, target, original, edited)
    if resuming:
        return [], cr
    problems = []
    for service, what in (("hapair-patroni", "Patroni"), ("hapair-redis", "the pair's Redis")):
        try:
            found = containers(sctx, target, cr.hapair_project(target), service)
        except (HapairError, OSError) as exc:
            found, what = [], f"{what}; {exc}"
        if not found:
            problems.append(f"{target}: {service} does not run ({what} holds the data until "
                            "the rollback hands it back)")
    if not problems and cr.redis_role(sctx, "hapair") is None:
        problems.append(f"{target}: hapair-redis does not answer the inventory's password")
    return problems, cr


def _read_either(read: Callable[[str], bytes], *paths: str) -> str:
    for path in paths:
        try:
            return read(path).decode()
        except FileNotFoundError:
            continue
    return ""

