"""Compose rollback, Redis: the Sentinels stop on all three hosts (nothing may fail the cache
over any more), the peer's replica stops, then the target's hapair-redis stops cleanly (it
saves its data on the way out) and the user's own redis service starts on the same volume
from its original definition: a plain master with every key."""

from __future__ import annotations

import time

from hapair.errors import StepFailed
from hapair.plan.step import Check, Fn, Step, StepContext, StepKind
from hapair.workflows.rollback_compose.model import info_field, last_int, sid
from hapair.workflows.rollback_compose.setup import ComposeRollback, containers, none_running
from hapair.workflows.upgrade.stepkit import all_checks, guarded

READY_TIMEOUT_S = 120.0  # Redis loads its whole data set before it answers


def _stopped(cr: ComposeRollback, host: str, service: str, reason: str, name: str) -> Step:
    program = service.removeprefix("hapair-")
    return Step(id=sid(host, name), host=host, kind=StepKind.COMMAND, reason=reason,
                action=Fn(f"rm -s -f {service} (project {cr.hapair_project(host)}; volumes "
                          "kept)", lambda ctx: cr.runtime(ctx, host).remove(program)),
                verify=guarded(f"{service} stopped on {host}", lambda ctx: none_running(
                    ctx, host, cr.hapair_project(host), service, what=service)))


def retire_steps(cr: ComposeRollback) -> list[Step]:
    steps = [_stopped(cr, h, "hapair-sentinel", "no Sentinel may fail the cache over any "
                      "more (its config volume is kept)", "sentinel-stopped")
             for h in cr.all_hosts]
    steps.append(_stopped(cr, cr.peer, "hapair-redis", f"{cr.peer}'s Redis replica serves "
                          "nobody now (its data volume is kept)", "redis-stopped"))
    return steps


def _wait_ready(ctx: StepContext, cr: ComposeRollback) -> str:
    """The user's Redis answers PONG to the password (not LOADING): its INFO replication."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        out = cr.redis_cli(ctx, "app", "PING", "INFO replication")
        if "PONG" in out.split():
            return out
        if time.monotonic() > deadline:
            raise StepFailed(f"{cr.target}: {cr.redis_service} did not answer PONG within "
                             f"{READY_TIMEOUT_S:g} s: {out.strip()[:200]}")
        time.sleep(1)


def handback_step(cr: ComposeRollback) -> Step:
    t, service = cr.target, cr.redis_service

    def hand_back(ctx: StepContext) -> None:
        rt = cr.runtime(ctx, t)
        keys = None
        if containers(ctx, t, cr.hapair_project(t), "hapair-redis"):
            if cr.redis_role(ctx, "hapair") not in ("master", None):
                cr.redis_cli(ctx, "hapair", "REPLICAOF NO ONE")
            keys = last_int(cr.redis_cli(ctx, "hapair", "DBSIZE"))
        rt.stop("redis")  # SIGTERM: Redis writes its AOF/RDB before it exits
        rt.project("app").start(service)  # up -d --no-deps: the original definition
        _wait_ready(ctx, cr)
        now = last_int(cr.redis_cli(ctx, "app", "DBSIZE"))
        if keys and not now:
            raise StepFailed(f"{t}: {service} started EMPTY although hapair-redis held {keys} "
                             "keys: its persistence settings (dir, appendonly, file names) "
                             "differ from hapair-redis's; the data is still on the volume")

    def handed_back(ctx: StepContext) -> Check:
        gone = none_running(ctx, t, cr.hapair_project(t), "hapair-redis", what="hapair-redis")
        if not gone.ok:
            return gone
        out = cr.redis_cli(ctx, "app", "PING", "INFO replication")
        role = info_field(out, "role")
        ok = "PONG" in out.split() and role == "master"
        return Check(ok, f"{t}: {service} " + ("answers as the master" if ok else
                                               f"answers {out.strip()[:100] or 'nothing'}"))

    return Step(id=sid(t, "redis-handback"), host=t, kind=StepKind.RESTART,
                reason=f"the user's {service} takes its volume back from hapair-redis (which "
                       "saves on a clean stop) and starts from its original definition",
                client_impact="the app's Redis calls fail from this stop until its containers "
                              "are recreated from the original file (seconds)",
                action=Fn(f"DBSIZE; stop -t 60 hapair-redis; up -d --no-deps {service}; "
                          "PONG with the password; the same keys", hand_back),
                verify=all_checks(f"{service} serves the data as a master",
                                  guarded("handed back", handed_back)),
                settle_timeout=60)
