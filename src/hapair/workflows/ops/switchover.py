"""`hapair switchover`: a planned, lossless change of primary.

PostgreSQL: refuse unless the candidate streams with no lag (and is the sync standby in sync
mode); PgBouncer PAUSE on both nodes (queries wait, none fail); Patroni's own switchover;
wait until both routers send PostgreSQL to the new primary; RESUME. The old primary follows
as a standby without a rewind (a clean demotion).
Redis (`--redis`): CLIENT PAUSE WRITE on the master, wait until the replica has the master's
offset, SENTINEL FAILOVER, wait until the routers follow, CLIENT UNPAUSE. Nothing is lost.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from hapair.errors import Refused, StepFailed
from hapair.workflows.context import WorkflowContext
from hapair.workflows.ops.pair import (
    cluster,
    leader,
    pause_pgbouncers,
    resume_pgbouncers,
    router_backend_up,
    sentinel_master,
    wait_for,
)
from hapair.workflows.upgrade.params import SENTINEL_PORT, UpgradeParams
from hapair.workflows.upgrade.steps_redis import client

MAX_LAG_BYTES = 1024 * 1024
SENTINEL_SETTLE_S = 2.0


@dataclass
class SwitchoverResult:
    service: str
    old: str
    new: str
    paused_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"service": self.service, "from": self.old, "to": self.new,
                "write_pause_s": round(self.paused_s, 3), "notes": self.notes}


def postgres_switchover(ctx: WorkflowContext, p: UpgradeParams,
                        to: str | None = None) -> SwitchoverResult:
    sync = p.inv.durability in ("sync", "strict")
    members = cluster(p)
    if sync and not any(m.role == "sync_standby" for m in members):
        # Right after a switchover or a rejoin Patroni takes a loop or two to name the
        # synchronous standby again: wait for it (bounded) instead of refusing at once.
        with contextlib.suppress(StepFailed):  # the check below refuses with the reason
            wait_for("a synchronous standby", lambda: (
                any(m.role == "sync_standby" for m in cluster(p)), "not yet"), 30, 1.0)
        members = cluster(p)
    old = leader(members)
    if old is None:
        raise Refused("no PostgreSQL leader: nothing to switch over (see `hapair status`)")
    candidate = to or next((m.name for m in members if m.name != old), None)
    cand = next((m for m in members if m.name == candidate), None)
    if cand is None or candidate == old:
        raise Refused(f"--to {candidate}: not a standby of the cluster (leader is {old})")
    lag = cand.lag_bytes
    if cand.state != "streaming" or lag is None or lag > MAX_LAG_BYTES:
        raise Refused(f"{candidate} is {cand.state} with lag {lag} bytes: a switchover "
                      "now could lose writes; wait until it streams and has caught up")
    if sync and cand.role != "sync_standby":
        raise Refused(f"{candidate} is {cand.role}, not the synchronous standby: refusing a "
                      "switchover that could lose acknowledged commits")
    nodes = [n.name for n in p.data_nodes]
    new_node = p.host(candidate)
    started = time.monotonic()
    pause_pgbouncers(ctx, p, nodes)
    try:
        r = httpx.post(f"http://{p.host(old).address}:8008/switchover",
                       json={"leader": old, "candidate": candidate}, timeout=60, trust_env=False)
        if r.status_code != 200:
            raise StepFailed(f"Patroni refused the switchover ({r.status_code}): {r.text[:200]}")
        wait_for(f"{candidate} answers /primary",
                 lambda: (httpx.get(f"http://{new_node.address}:8008/primary", timeout=2,
                                    trust_env=False).status_code == 200, "waiting"), 60)
        for n in nodes:
            wait_for(f"{n}'s router sends PostgreSQL to {candidate}",
                     lambda n=n: (router_backend_up(ctx, n, "postgres", candidate),
                                  "router check pending"), 30, 0.25)
    finally:
        failed = resume_pgbouncers(ctx, p, nodes)
        paused = time.monotonic() - started
    if failed:
        raise StepFailed(f"switched over, but RESUME failed on {', '.join(failed)}: run "
                         "`RESUME` on their PgBouncer admin console")
    result = SwitchoverResult("postgres", old, candidate, paused)
    detail = wait_for(f"{old} follows {candidate} as a standby", lambda: _follows(p, old), 120)
    result.notes.append(detail)
    return result


def _follows(p: UpgradeParams, old: str) -> tuple[bool, str]:
    me = next((m for m in cluster(p) if m.name == old), None)
    if me is None:
        return False, f"{old} not in the cluster yet"
    want = "sync_standby" if p.inv.durability in ("sync", "strict") else me.role
    return (me.state == "streaming" and me.role == want,
            f"{old}: {me.role} {me.state}, lag {me.lag_bytes}")


def redis_switchover(ctx: WorkflowContext, p: UpgradeParams,
                     to: str | None = None) -> SwitchoverResult:
    r = p.inv.services.redis
    old = sentinel_master(p)
    if old is None:
        raise Refused("no Sentinel names a Redis master")
    new = to or next(n.name for n in p.data_nodes if n.name != old)
    if new == old:
        raise Refused(f"--to {new}: it is already the master")
    sentinel = p.sentinel_hosts[0]
    with client(p.host(new).address, r.port, r.password) as replica:
        # Sentinel only promotes a replica whose link is up: check before pausing anyone
        # (right after a previous switchover the demoted node may still be resyncing).
        wait_for(f"{new} is a replica with its link up", lambda: (
            replica.info("replication").get("master_link_status") == "up", "resyncing"), 60, 0.5)
        time.sleep(SENTINEL_SETTLE_S)  # let the Sentinels refresh their view of it
    started = time.monotonic()
    with client(p.host(old).address, r.port, r.password) as master:
        master.execute_command("CLIENT", "PAUSE", "10000", "WRITE")
        try:
            target = int(master.info("replication")["master_repl_offset"])
            with client(p.host(new).address, r.port, r.password) as replica:
                wait_for(f"{new} has the master's offset", lambda: (
                    int(replica.info("replication").get("slave_repl_offset", -1)) >= target,
                    "catching up"), 10, 0.05)
            with client(sentinel.address, SENTINEL_PORT, p.sentinel_password) as s:
                s.execute_command("SENTINEL", "FAILOVER", p.sentinel_master_name)
            # Bounded tightly: clients wait while writes are paused (the finally releases).
            wait_for(f"the Sentinels name {new}", lambda: (sentinel_master(p) == new,
                                                           "failover running"), 10, 0.1)
            # Writes stay paused until no router sends to the old master any more (HAProxy
            # also cuts the sessions it had there): a write released onto the old master
            # while it is still a master would be acknowledged, then discarded when Sentinel
            # demotes it. (Sentinel's own REPLICAOF waits behind the pause, so the demotion
            # itself is confirmed after it.)
            for n in p.data_nodes:
                wait_for(f"{n.name}'s router sends Redis to {new} only", lambda n=n: (
                    router_backend_up(ctx, n.name, f"redis_{new}", new)
                    and not router_backend_up(ctx, n.name, f"redis_{old}", old),
                    "router check pending"), 30, 0.25)
        finally:
            master.execute_command("CLIENT", "UNPAUSE")
        paused = time.monotonic() - started
        demoted = wait_for(f"{old} is demoted to a replica", lambda: (
            master.info("replication").get("role") == "slave",
            f"{old}: {master.info('replication').get('role')}"), 60, 0.2)
    result = SwitchoverResult("redis", old, new, paused)
    result.notes.append(demoted or f"{old} is a replica of {new}")
    return result
