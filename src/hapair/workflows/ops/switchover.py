"""`hapair switchover`: a planned, lossless change of primary, with a short write pause.

PostgreSQL: refuse unless the candidate streams with no lag (and is the sync standby in sync
mode); PgBouncer PAUSE on both nodes at once (queries wait, none fail); Patroni's REST
`POST /switchover` (the leader demotes cleanly, then the candidate promotes); as soon as the
candidate answers `/primary` 200, tell both routers through the HAProxy runtime API (old
server down, new up; health checks confirm); RESUME. The old primary follows as a standby.
Redis (`--redis`): CLIENT PAUSE WRITE on the master, wait until the replica has the master's
offset, SENTINEL FAILOVER, wait until the replica is master and every Sentinel names it,
demote the old master ourselves (REPLICAOF, what Sentinel would do ~8 s later), tell both
routers, CLIENT UNPAUSE. Writes held by the pause then fail over to the new master (their
connections are cut, or READONLY) and the app retries them. Nothing acknowledged is lost.
The report carries the write pause and where its time went (`breakdown`).
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis

from hapair.components.redis.probe import get_master_addr, parse_master_addr
from hapair.errors import Refused, StepFailed
from hapair.workflows.context import WorkflowContext
from hapair.workflows.native_only import compose_hosts
from hapair.workflows.ops.pair import (
    cluster,
    leader,
    pause_pgbouncers,
    resume_pgbouncers,
    sentinel_master,
    wait_for,
)
from hapair.workflows.ops.routing import in_parallel, switch_routers
from hapair.workflows.ops.singletons import follow_primary
from hapair.workflows.ops.timeline import Timeline
from hapair.workflows.upgrade.params import SENTINEL_PORT, UpgradeParams
from hapair.workflows.upgrade.steps_redis import client

MAX_LAG_BYTES = 1024 * 1024
SENTINEL_SETTLE_S = 2.0
# The Redis pause's own bound (Redis lifts it by itself if we die). Our waits inside it add
# up to less (3 + 8 + 5 s + router calls), so it is lifted by us, after the demotion.
REDIS_PAUSE_MS = 20000
POLL_S = 0.05


@dataclass
class SwitchoverResult:
    service: str
    old: str
    new: str
    paused_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    timeline: Timeline = field(default_factory=Timeline)

    def as_dict(self) -> dict[str, Any]:
        return {"service": self.service, "from": self.old, "to": self.new,
                "write_pause_s": round(self.paused_s, 3), "breakdown": self.timeline.as_dict(),
                "notes": self.notes}


class _PatroniRefused(Exception):
    """Patroni answered the switchover request with an error: stop waiting for /primary."""


def _pg_candidate(p: UpgradeParams, to: str | None) -> tuple[str, str]:
    """(leader, candidate), or Refused with the reason."""
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
    if cand is None or candidate is None or candidate == old:
        raise Refused(f"--to {candidate}: not a standby of the cluster (leader is {old})")
    lag = cand.lag_bytes
    if cand.state != "streaming" or lag is None or lag > MAX_LAG_BYTES:
        raise Refused(f"{candidate} is {cand.state} with lag {lag} bytes: a switchover "
                      "now could lose writes; wait until it streams and has caught up")
    if sync and cand.role == "sync_standby" and candidate:
        _leader_agrees(p, old, candidate)
    if sync and cand.role != "sync_standby":
        raise Refused(f"{candidate} is {cand.role}, not the synchronous standby: refusing a "
                      "switchover that could lose acknowledged commits")
    return old, candidate


def _leader_agrees(p: UpgradeParams, old: str, candidate: str) -> None:
    """The leader checks the candidate against ITS view of Patroni's sync key, which may be
    one HA loop behind the view we read (right after a rejoin: a 412 "candidate name does
    not match with sync_standby"). Wait, bounded, until the leader's own view names it."""
    def named() -> tuple[bool, str]:
        role = next((m.role for m in cluster(p, prefer=old) if m.name == candidate), None)
        return role == "sync_standby", f"{old} sees {candidate} as {role}"

    with contextlib.suppress(StepFailed):  # Patroni's own answer then says why
        wait_for(f"{old} names {candidate} its synchronous standby", named, 30, 1.0)


def _warm(ctx: WorkflowContext, nodes: list[str]) -> None:
    """Open the SSH connections now, not inside the pause (the first command opens one)."""
    in_parallel(lambda n: ctx.transports[n].run(["true"], check=False, timeout=10), nodes)


def _patroni_switchover(address: str, old: str, candidate: str,
                        tl: Timeline) -> tuple[int, str]:
    # Patroni REST API `POST /switchover` {"leader", "candidate"}: what patronictl calls,
    # without its process start. It answers once it sees the new leader (it polls the DCS
    # once a second), so /primary on the candidate is watched in parallel.
    r = httpx.post(f"http://{address}:8008/switchover",
                   json={"leader": old, "candidate": candidate}, timeout=60, trust_env=False)
    tl.mark("patroni_answered")
    return r.status_code, r.text[:200]


def _primary_now(address: str, post: Future[tuple[int, str]]) -> tuple[bool, str]:
    if post.done() and post.exception() is None:  # a lost answer: /primary still tells
        status, text = post.result()
        if status != 200:
            raise _PatroniRefused(f"Patroni refused the switchover ({status}): {text}")
    code = httpx.get(f"http://{address}:8008/primary", timeout=2, trust_env=False).status_code
    return code == 200, f"/primary answered {code}"


UNPOOLED = ("compose hosts have no PgBouncer: the app's queries in flight at the switch failed "
            "and its new ones reached the new primary through the router")


def postgres_switchover(ctx: WorkflowContext, p: UpgradeParams,
                        to: str | None = None) -> SwitchoverResult:
    old, candidate = _pg_candidate(p, to)
    nodes = [n.name for n in p.data_nodes]
    # The compose layout has no PgBouncer: nothing holds the app's queries during the switch.
    pooled = not compose_hosts(p.inv)
    _warm(ctx, nodes)
    tl = Timeline()
    notes: list[str] = [] if pooled else [UNPOOLED]
    paused: list[str] = []
    failed: list[str] = []

    def pause(n: str) -> None:
        if pooled:
            pause_pgbouncers(ctx, p, [n])
        paused.append(n)

    def resume(n: str) -> list[str]:
        return resume_pgbouncers(ctx, p, [n]) if pooled else []

    tl.start()
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        in_parallel(pause, nodes)
        tl.mark("pause_done")
        post = pool.submit(_patroni_switchover, p.host(old).address, old, candidate, tl)
        try:
            wait_for(f"{candidate} answers /primary",
                     lambda: _primary_now(p.host(candidate).address, post), 60, POLL_S)
        except _PatroniRefused as exc:
            raise StepFailed(str(exc)) from None
        tl.mark("new_primary_200")

        def route_then_resume(n: str) -> str:
            # A node's PgBouncer reaches the primary through that node's router only: resume
            # it as soon as its own router is switched, without waiting for the other node.
            note = switch_routers(ctx, p, [n], ("postgres", old), ("postgres", candidate), tl)
            paused.remove(n)
            if resume(n):
                failed.append(n)
            tl.mark(f"resume_{n}")
            return note[0]

        notes += in_parallel(route_then_resume, nodes).values()
    finally:
        in_parallel(lambda n: failed.extend(resume(n)), list(paused))
        tl.mark("resume_done")
        pool.shutdown(wait=True)  # the POST is bounded by its own timeout
    if failed:
        raise StepFailed(f"switched over, but RESUME failed on {', '.join(failed)}: run "
                         "`RESUME` on their PgBouncer admin console")
    if post.exception() is not None:
        notes.append(f"Patroni's answer to POST /switchover was lost: {post.exception()}")
    elif (answer := post.result())[0] != 200:
        notes.append(f"Patroni answered {answer[0]} ({answer[1]}) after {candidate} became "
                     "primary")
    result = SwitchoverResult("postgres", old, candidate, tl.seconds("resume_done") or 0.0,
                              notes, tl)
    result.notes.append(wait_for(f"{old} follows {candidate} as a standby",
                                 lambda: _follows(p, old), 120))
    scheduler = follow_primary(ctx, p, candidate, old)  # after the switch: not in the pause
    if scheduler:
        result.notes.append(scheduler)
    return result


def _follows(p: UpgradeParams, old: str) -> tuple[bool, str]:
    me = next((m for m in cluster(p) if m.name == old), None)
    if me is None:
        return False, f"{old} not in the cluster yet"
    want = "sync_standby" if p.inv.durability in ("sync", "strict") else me.role
    return (me.state == "streaming" and me.role == want,
            f"{old}: {me.role} {me.state}, lag {me.lag_bytes}")


def _local_sentinel_names(p: UpgradeParams, node: str) -> str | None:
    """The master that `node`'s own Sentinel names (its router's Redis check asks it)."""
    with client(p.host(node).address, SENTINEL_PORT, p.sentinel_password) as c:
        addr = parse_master_addr(c.execute_command(*get_master_addr(p.sentinel_master_name).words))
    return next((n.name for n in p.data_nodes if addr and n.address == addr.host), None)


def _routers_sentinels_name(p: UpgradeParams, want: str) -> tuple[bool, str]:
    names = in_parallel(lambda n: _local_sentinel_names(p, n), [n.name for n in p.data_nodes])
    return all(v == want for v in names.values()), f"local Sentinels name {names}"


def redis_switchover(ctx: WorkflowContext, p: UpgradeParams,
                     to: str | None = None) -> SwitchoverResult:
    r = p.inv.services.redis
    old = sentinel_master(p)
    if old is None:
        raise Refused("no Sentinel names a Redis master")
    new = to or next(n.name for n in p.data_nodes if n.name != old)
    if new == old:
        raise Refused(f"--to {new}: it is already the master")
    nodes = [n.name for n in p.data_nodes]
    new_addr = p.host(new).address
    with client(new_addr, r.port, r.password) as replica:
        # Sentinel only promotes a replica whose link is up: check before pausing anyone
        # (right after a previous switchover the demoted node may still be resyncing).
        wait_for(f"{new} is a replica with its link up", lambda: (
            replica.info("replication").get("master_link_status") == "up", "resyncing"), 60, 0.5)
    time.sleep(SENTINEL_SETTLE_S)  # let the Sentinels refresh their view of it (not paused)
    _warm(ctx, nodes)
    wait_for(f"the data nodes' Sentinels name {old}", lambda: _routers_sentinels_name(p, old),
             30, 0.5)
    tl = Timeline()
    try:
        notes = _redis_paused_switch(ctx, p, old, new, nodes, tl)
    except redis.RedisError as exc:
        raise StepFailed(f"Redis switchover {old} -> {new}: {exc}") from None
    with client(p.host(old).address, r.port, r.password) as demoted:
        note = wait_for(f"{old} replicates from {new}", lambda: (
            (i := demoted.info("replication")).get("role") == "slave"
            and i.get("master_link_status") == "up",
            f"{old}: role {i.get('role')}, link {i.get('master_link_status')}"), 60, 0.2)
    return SwitchoverResult("redis", old, new, tl.seconds("resume_done") or 0.0,
                            [*notes, note], tl)


def _redis_paused_switch(ctx: WorkflowContext, p: UpgradeParams, old: str, new: str,
                         nodes: list[str], tl: Timeline) -> list[str]:
    """The paused part of the Redis switchover; returns the routers' notes."""
    r = p.inv.services.redis
    new_addr = p.host(new).address
    with (client(p.host(old).address, r.port, r.password) as master,
          client(new_addr, r.port, r.password) as replica):
        tl.start()
        # CLIENT PAUSE WRITE: writes wait, reads go on; REPLICAOF/CONFIG are not write
        # commands, so they still run while paused (checked on Redis 7.0.15: a held SET
        # then failed READONLY, unexecuted). Redis docs, CLIENT PAUSE; Redis's own FAILOVER
        # command does the same but Sentinel would fail back over (redis/redis#13118).
        master.execute_command("CLIENT", "PAUSE", str(REDIS_PAUSE_MS), "WRITE")
        tl.mark("pause_done")
        try:
            target = int(master.info("replication")["master_repl_offset"])
            wait_for(f"{new} has the master's offset", lambda: (
                int(replica.info("replication").get("slave_repl_offset", -1)) >= target,
                "catching up"), 3, 0.02)
            tl.mark("offset_matched")
            sentinel = p.sentinel_hosts[0]
            with client(sentinel.address, SENTINEL_PORT, p.sentinel_password) as s:
                s.execute_command("SENTINEL", "FAILOVER", p.sentinel_master_name)
            tl.mark("sentinel_failover_sent")
            wait_for(f"{new} is master", lambda: (
                replica.info("replication").get("role") == "master", "promoting"), 8, POLL_S)
            tl.mark("new_master")
            # Sentinel promoted `new`: demote the old master now rather than ~8 s later, when
            # Sentinel would send the same REPLICAOF: from here no write can be acknowledged
            # there (held writes fail READONLY when the pause ends, and the app retries).
            master.execute_command("REPLICAOF", new_addr, str(r.port))
            with contextlib.suppress(redis.RedisError):  # best effort; Sentinel rewrites too
                master.execute_command("CONFIG", "REWRITE")
            tl.mark("old_master_demoted")
            # Each router's Redis check also asks its node's Sentinel: forcing the router
            # before that Sentinel names `new` would be overturned by the next check.
            wait_for(f"the data nodes' Sentinels name {new}",
                     lambda: _routers_sentinels_name(p, new), 5, POLL_S)
            tl.mark("sentinels_name_new")
            return switch_routers(ctx, p, nodes, (f"redis_{old}", old), (f"redis_{new}", new),
                                  tl)
        finally:
            master.execute_command("CLIENT", "UNPAUSE")
            tl.mark("resume_done")
