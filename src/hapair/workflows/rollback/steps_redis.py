"""Rollback phase for Redis: the target becomes (or stays) the master while Sentinel still
runs (the upgrade's lossless switchover), and — once the app no longer goes through the
router — the Sentinels and the peer's replica stop and the target's redis.conf is a single
master's again (no replicaof line; on the first node the pre-upgrade file itself)."""

from __future__ import annotations

from hapair.plan.step import Check, Fn, Step, StepContext, StepKind
from hapair.workflows.context import WorkflowContext
from hapair.workflows.ops.pair import sentinel_master
from hapair.workflows.ops.switchover import redis_switchover
from hapair.workflows.rollback import backup
from hapair.workflows.rollback.model import redis_replicaof_lines
from hapair.workflows.rollback.params import RollbackParams, sid
from hapair.workflows.upgrade.stepkit import all_checks, guarded, service_absent
from hapair.workflows.upgrade.steps_redis import client


def _role(rp: RollbackParams, node: str) -> str:
    r = rp.up.inv.services.redis
    with client(rp.host(node).address, r.port, r.password) as c:
        return str(c.info("replication").get("role"))


def master_steps(rp: RollbackParams) -> list[Step]:
    t = rp.target

    def is_master(_ctx: StepContext) -> Check:
        role = _role(rp, t)
        return Check(role == "master", f"{t}: Redis role {role}")

    def move(ctx: StepContext) -> None:
        if sentinel_master(rp.up) not in (None, t):
            wctx = WorkflowContext(rp.up.inv, dict(ctx.transports))
            redis_switchover(wctx, rp.up, to=t)  # writes paused, replica caught up: lossless

    return [Step(
        id=sid(t, "redis.master"), host=t, kind=StepKind.COMMAND,
        reason=f"the single server's Redis must be the master holding the latest cache and "
               f"sessions: a lossless Sentinel switchover to {t} if it is not",
        client_impact="Redis writes wait a few seconds if a switchover is needed",
        action=Fn(f"Sentinel switchover of the Redis master to {t} (if needed)", move),
        verify=guarded(f"{t} is the Redis master", is_master), settle_timeout=30)]


def standalone_steps(rp: RollbackParams) -> list[Step]:
    """After the app talks to the target's Redis directly: Sentinels and the replica go."""
    t, peer = rp.target, rp.peer
    steps = [Step(
        id=sid(h, "sentinel.stopped"), host=h, kind=StepKind.COMMAND,
        reason="no Sentinel may fail the cache over any more (config and data files kept)",
        action=Fn("stop and remove the `sentinel` program",
                  lambda ctx: rp.runtime(ctx, ctx.host).remove("sentinel")),
        verify=service_absent(rp.runtime_for, "sentinel")) for h in rp.all_hosts]
    steps.append(Step(
        id=sid(peer, "redis.stopped"), host=peer, kind=StepKind.COMMAND,
        reason=f"{peer}'s Redis replica serves nobody now (its data files are kept)",
        action=Fn("stop and remove the `redis` program",
                  lambda ctx: rp.runtime(ctx, peer).remove("redis")),
        verify=service_absent(rp.runtime_for, "redis")))
    r = rp.up.inv.services.redis

    def single(ctx: StepContext) -> None:
        with client(rp.host(t).address, r.port, r.password) as c:
            if c.info("replication").get("role") != "master":
                c.execute_command("REPLICAOF", "NO", "ONE")
            if t == rp.first:
                # The pre-upgrade file itself (what a restart of the single server reads).
                backup.install(ctx, rp, backup.find(rp, r.config),
                               keep_as=f"{r.config}.hapair-pair")
            else:
                c.execute_command("CONFIG", "REWRITE")  # persist "master" in its own file

    def file_is_single(ctx: StepContext) -> Check:
        text = ctx.on(t).read_file(r.config).decode()
        bad = redis_replicaof_lines(text)
        if t == rp.first:
            want = backup.restored(ctx, rp, backup.find(rp, r.config))
            return Check(text == want and not bad,
                         f"{t}: {r.config} " + ("is the pre-upgrade file" if text == want
                                                 else "differs from the pre-upgrade file"))
        return Check(not bad, f"{t}: {r.config} " + (f"still has {bad[0].split()[0]}" if bad
                                                       else "has no replicaof line"))

    def is_master(_ctx: StepContext) -> Check:
        role = _role(rp, t)
        return Check(role == "master", f"{t}: Redis role {role}")

    steps.append(Step(
        id=sid(t, "redis.single"), host=t, kind=StepKind.FILE,
        reason="the single server's Redis is a master and its config says so (a restart "
               "must not make it follow the retired replica)",
        action=Fn(f"REPLICAOF NO ONE if needed; {r.config}: pre-upgrade file on {rp.first}, "
                  "CONFIG REWRITE elsewhere", single),
        verify=all_checks("Redis is a standalone master",
                          guarded("role master", is_master),
                          guarded("no replicaof in redis.conf", file_is_single))))
    return steps
