"""Rollback preflight (read-only): the upgrade completed, which node holds the data (Patroni's
one running leader), that node is healthy, every host answers, and the upgrade's backup can
give the single-node configs back. A rollback that stopped half-way resumes on the target it
had chosen (Patroni may already be gone there)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import redis

from hapair.errors import HapairError
from hapair.exec.journal import History
from hapair.workflows.context import WorkflowContext
from hapair.workflows.native_only import native_only_refusal
from hapair.workflows.ops.pair import cluster
from hapair.workflows.rollback.backup import files_to_restore
from hapair.workflows.rollback.model import Target, choose_target, missing_members
from hapair.workflows.rollback.params import CONFIGS_ARCHIVE, PLAN, RollbackParams
from hapair.workflows.upgrade.params import UpgradeParams
from hapair.workflows.upgrade.steps_redis import client

FIRST_STEP = "redis.master"  # every rollback plan starts with this step, on the target


@dataclass(frozen=True)
class RollbackPreflight:
    target: str | None
    resuming: bool
    refusals: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "resuming": self.resuming, "refusals": self.refusals,
                "facts": self.facts}


def upgrade_completed(h: History) -> str | None:
    return next((r.run_id for r in reversed(h.runs) if r.mode == "apply" and r.result == "ok"),
                None)


def resume_target(h: History) -> str | None:
    """The target of a rollback that started after the last completed one, if any."""
    last_ok = max((i for i, r in enumerate(h.runs) if r.result == "ok"), default=-1)
    later = {r.run_id for r in h.runs[last_ok + 1:]}
    for sid, state in h.steps.items():
        parts = sid.split("/")
        if len(parts) == 3 and parts[2] == FIRST_STEP and state.run_id in later:
            return parts[1]
    return None


def decide(upgrade_run: str | None, resuming: str | None, target: Target,
           problems: list[str]) -> tuple[str | None, list[str]]:
    """(the target, refusals). Pure: every reason is one line."""
    if upgrade_run is None and resuming is None:
        return None, ["no completed `hapair upgrade` in the journal: there is no pair to roll "
                      "back (nothing changed)"]
    chosen = resuming or target.node
    refusals = [] if chosen else [target.reason]
    return chosen, refusals + problems


def _target_problems(ctx: WorkflowContext, rp: RollbackParams, *,
                     resuming: bool) -> list[str]:
    """Hosts reachable, the backup usable and — on a first run only — the target healthy
    (a resumed rollback may have stopped half-way with the app degraded: finishing it is
    the way back to health)."""
    problems = []
    for name, t in ctx.transports.items():
        try:
            t.run(["true"], timeout=20)
        except HapairError as exc:
            problems.append(f"{name} does not answer: {exc}")
    if problems:
        return problems
    problems = _backup_problems(ctx, rp)
    if resuming:
        return problems
    s, node = rp.up.inv.services, rp.host(rp.target)
    url = f"http://{node.address}:{s.backend.port}{s.backend.health}"
    status: int | str
    try:
        status = httpx.get(url, timeout=5, trust_env=False).status_code
    except httpx.HTTPError as exc:
        status = f"error {exc}"
    if status != 200:
        problems.append(f"{rp.target} is not healthy: GET {url} → {status}")
    try:
        with client(node.address, s.redis.port, s.redis.password) as c:
            c.ping()
    except (redis.RedisError, OSError) as exc:
        problems.append(f"{rp.target}: Redis does not answer: {exc}")
    return problems


def _backup_problems(ctx: WorkflowContext, rp: RollbackParams) -> list[str]:
    problems: list[str] = []
    first = ctx.transports[rp.first]
    listing = first.run(["tar", "-tzf", CONFIGS_ARCHIVE], check=False, timeout=60)
    if not listing.ok:
        problems.append(f"{rp.first}: the upgrade's config backup {CONFIGS_ARCHIVE} is "
                        "missing or unreadable: the single-node configs cannot be restored")
    else:
        gone = missing_members(listing.stdout, [f.member for f in files_to_restore(rp)])
        if gone:
            problems.append(f"{rp.first}: {CONFIGS_ARCHIVE} lacks {', '.join(gone)}")
    if not first.run(["test", "-s", rp.saved_env_path], check=False).ok:
        problems.append(f"{rp.first}: {rp.saved_env_path} (the app's pre-upgrade env) is "
                        "missing")
    return problems


def run_preflight(ctx: WorkflowContext, p: UpgradeParams,
                  wanted: str | None = None) -> RollbackPreflight:
    refusal = native_only_refusal(p.inv, "`hapair rollback`")
    if refusal is not None:
        return RollbackPreflight(None, False, [refusal])
    upgrade_run = upgrade_completed(History.load(ctx.runs_root, "upgrade"))
    resuming = resume_target(History.load(ctx.runs_root, PLAN)) if upgrade_run else None
    if upgrade_run is None:
        _, refusals = decide(None, None, Target(None, ""), [])
        return RollbackPreflight(None, False, refusals)
    target = Target(resuming, "resuming")
    facts: dict[str, Any] = {"upgrade_run": upgrade_run}
    if resuming is None:
        try:
            members = cluster(p)
        except HapairError as exc:
            return RollbackPreflight(None, False, [str(exc)], facts)
        facts["patroni"] = [{"name": m.name, "role": m.role, "state": m.state} for m in members]
        target = choose_target(members, wanted)
    elif wanted is not None and wanted != resuming:
        return RollbackPreflight(None, True, [f"--to {wanted}: the rollback in progress "
                                              f"targets {resuming}; finish it first"], facts)
    problems: list[str] = []
    if target.node is not None:
        problems = _target_problems(ctx, RollbackParams(p, target.node),
                                    resuming=resuming is not None)
    chosen, refusals = decide(upgrade_run, resuming, target, problems)
    facts["target_reason"] = target.reason
    return RollbackPreflight(chosen, resuming is not None, refusals, facts)
