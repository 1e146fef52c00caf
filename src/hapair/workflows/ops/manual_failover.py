"""`hapair failover --to NODE`: the emergency path when automatic failover cannot act.

Order (decision 0003): facts → decision (refuse with the reason, nothing changed) → fence
the old primary and PROVE it down (or the operator's statement that it is powered off) →
give the survivor a DCS (Patroni cannot promote anyone without one: a one-member etcd
formed from the survivor's own member, the others re-added when they answer) → Patroni's
own failover to NODE (POST /failover) → Redis master on NODE (SENTINEL FAILOVER on its
Sentinel, which needs no agreement) → the routers and the front door follow; timed.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis

from hapair.components.etcd.probe import (
    ETCDCTL_ENV,
    check_quorum,
    endpoint_health_argv,
    parse_endpoint_health,
)
from hapair.components.etcd.recover import serializable_get_argv
from hapair.components.redis.probe import get_master_addr, parse_master_addr
from hapair.compose.host_runtime import ComposeHostRuntime
from hapair.errors import HapairError, Refused, StepFailed
from hapair.exec.runtime import ServiceRuntime, ServiceState
from hapair.observe.probes import parse_etcd_get
from hapair.workflows.context import WorkflowContext
from hapair.workflows.ops.etcd_leader import keep_on_witness
from hapair.workflows.ops.etcd_recover import force_one_member, reseed_reachable
from hapair.workflows.ops.manual_rules import Choices, Decision, Facts, PgSide, decide, parse_lsn
from hapair.workflows.ops.pair import cluster, leader, router_backend_up, wait_for
from hapair.workflows.ops.singletons import follow_primary
from hapair.workflows.runtimes import containerised
from hapair.workflows.upgrade.params import SENTINEL_PORT, UpgradeParams
from hapair.workflows.upgrade.steps_redis import client

# The old primary's programs, stopped in this order: the VIP and the app first (no client
# reaches it), then PostgreSQL with Patroni, Redis, and its etcd member (re-added later).
FENCE_ORDER = ("keepalived", "nginx", "backend", "frontend", "patroni", "sentinel", "redis",
               "etcd")
LIVE_STATES = (ServiceState.RUNNING, ServiceState.STARTING)
CONTAINER_STOP_WAIT_S = 30.0  # after `compose stop` returned: the state is read, not awaited
PG_STATE_SQL = ("SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN "
                "greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) "
                "ELSE pg_current_wal_lsn() END")


@dataclass
class ManualFailover:
    target: str
    old: str
    decision: Decision
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = self.decision
        return {"to": self.target, "from": self.old, "mode": d.mode, "fence": d.fence,
                "in_sync": d.in_sync, "may_have_lost": d.loss or None,
                "may_have_lost_bytes": d.loss_bytes, "timings_s": self.timings,
                "notes": self.notes}


# --- facts ----------------------------------------------------------------------------------


def pg_side(ctx: WorkflowContext, p: UpgradeParams, node: str) -> PgSide:
    port = str(p.inv.services.postgres.port)
    try:
        res = ctx.shell(node, "patroni").run(["psql", "-X", "-p", port, "-Atc", PG_STATE_SQL],
                                             user="postgres", check=False, timeout=10,
                                             env={"PGCONNECT_TIMEOUT": "5"})
    except HapairError:
        return PgSide(False)
    if not res.ok or "|" not in res.stdout:
        return PgSide(False)
    rec, lsn = res.stdout.strip().split("|", 1)
    return PgSide(True, rec == "t", parse_lsn(lsn))


def reachable(ctx: WorkflowContext, host: str) -> bool:
    with contextlib.suppress(Exception):
        return ctx.transports[host].run(["true"], check=False, timeout=8).ok
    return False


def gather(ctx: WorkflowContext, p: UpgradeParams, target: str) -> Facts:
    names = tuple(n.name for n in p.data_nodes)
    old = next((n for n in names if n != target), "")
    t = ctx.transports.get(target)
    quorum, patroni_leader = False, None
    sync_key: tuple[str | None, str | None] = (None, None)
    if t is not None and target in names:
        res = ctx.shell(target, "etcd").run(endpoint_health_argv(p.etcd_members), check=False,
                                            timeout=20, env=ETCDCTL_ENV)
        health = parse_endpoint_health(res.stdout) if res.stdout.strip() else ()
        quorum = check_quorum(health, len(p.etcd_members)).ok
        if quorum:
            with contextlib.suppress(HapairError, httpx.HTTPError):
                patroni_leader = leader(cluster(p))
        sync_key = read_sync_key(ctx, p, target)
    old_up = bool(old) and reachable(ctx, old)
    return Facts(
        target=target, old=old, data_nodes=names, durability=p.inv.durability,
        witness=p.names.witness, etcd_quorum=quorum, patroni_leader=patroni_leader,
        target_pg=pg_side(ctx, p, target) if target in names else PgSide(False),
        old_reachable=old_up, old_pg=pg_side(ctx, p, old) if old_up else PgSide(False),
        sync_key=sync_key)


def read_sync_key(ctx: WorkflowContext, p: UpgradeParams, node: str
                  ) -> tuple[str | None, str | None]:
    """Patroni's /sync key as `node`'s own etcd member last saw it (no quorum needed)."""
    pat = p.patroni(node)
    key = f"{pat.namespace.rstrip('/')}/{pat.scope}/sync"
    res = ctx.shell(node, "etcd").run(serializable_get_argv(p.etcd(node).me.client_url, key),
                                      check=False, timeout=15, env=ETCDCTL_ENV)
    if not res.ok or not res.stdout.strip():
        return None, None
    value, _lease = parse_etcd_get(res.stdout)
    try:
        doc = json.loads(value or "{}")
    except json.JSONDecodeError:
        return None, None
    return doc.get("leader"), doc.get("sync_standby")


# --- the steps ------------------------------------------------------------------------------


def fence(ctx: WorkflowContext, p: UpgradeParams, old: str, keep_etcd: bool) -> list[str]:
    """Stop the old primary's services and prove its PostgreSQL is down. `keep_etcd`: its
    etcd member may be part of the majority Patroni needs (then it stays)."""
    runtime, notes = ctx.runtime(old), []
    for name in fence_order(runtime, keep_etcd):
        try:
            runtime.stop(name)
        except HapairError as exc:
            notes.append(f"{old}: stopping {name}: {exc}")
    if containerised(runtime):
        _prove_container_down(ctx, old)
    else:
        _prove_pg_ctl_down(ctx, p, old)
    if pg_side(ctx, p, old).running:
        raise StepFailed(f"{old}'s PostgreSQL still answers after it was stopped: not promoting")
    how = ("its hapair-patroni container is stopped" if containerised(runtime)
           else "`pg_ctl status` says PostgreSQL is not running")
    notes.append(f"{old} fenced: its services stopped, {how}")
    return notes


def fence_order(runtime: ServiceRuntime, keep_etcd: bool) -> list[str]:
    """FENCE_ORDER as this host has it: a compose host has no PgBouncer, and may have no
    nginx or frontend service (what its inventory does not map is not there to stop)."""
    names = [n for n in FENCE_ORDER if not (keep_etcd and n == "etcd")]
    if not isinstance(runtime, ComposeHostRuntime):
        return names
    placed = []
    for name in names:
        with contextlib.suppress(Refused):
            runtime.placement(name)
            placed.append(name)
    return placed


def _prove_pg_ctl_down(ctx: WorkflowContext, p: UpgradeParams, old: str) -> None:
    pg = p.inv.services.postgres
    status = [f"{pg.bin_dir}/pg_ctl", "status", "-D", pg.data_dir]

    def down() -> tuple[bool, str]:
        res = ctx.transports[old].run(status, user="postgres", check=False, timeout=10)
        return res.returncode == 3, f"pg_ctl status exited {res.returncode}"  # 3: not running

    try:
        wait_for(f"{old}'s PostgreSQL stopped", down, 60, 1.0)
    except StepFailed:
        ctx.transports[old].run([f"{pg.bin_dir}/pg_ctl", "stop", "-D", pg.data_dir, "-m",
                                 "immediate"], user="postgres", check=False, timeout=60)
        wait_for(f"{old}'s PostgreSQL stopped (immediate)", down, 30, 1.0)


def _prove_container_down(ctx: WorkflowContext, old: str) -> None:
    """On a compose host PostgreSQL lives and dies with hapair-patroni's container (`stop`
    waits for a clean shutdown up to its grace period, then kills): the container not
    running is the proof. The user's own postgres service was stopped by the upgrade."""
    runtime = ctx.runtime(old)

    def down() -> tuple[bool, str]:
        states = {n: runtime.status(n).state for n in ("patroni", "postgres")}
        return (all(s not in LIVE_STATES for s in states.values()),
                ", ".join(f"{n} {s}" for n, s in states.items()))

    wait_for(f"{old}'s PostgreSQL containers stopped", down, CONTAINER_STOP_WAIT_S, 1.0)


def promote(p: UpgradeParams, target: str) -> str:
    """Patroni's own failover to `target` (it takes the leader key when the old one expires)."""
    api = f"http://{p.host(target).address}:8008"

    def ask() -> tuple[bool, str]:
        r = httpx.post(f"{api}/failover", json={"candidate": target}, timeout=40,
                       trust_env=False)
        # 200: done; 503 "status unknown": registered, not done yet (we wait for /primary
        # below); another 503: the failover key could not be written yet (no DCS yet): retry.
        if r.status_code == 412:
            raise StepFailed(f"Patroni refused the failover: {r.text[:200]}")
        registered = r.status_code == 200 or (r.status_code == 503 and "unknown" in r.text)
        return registered, f"{r.status_code} {r.text[:120]}"

    said = wait_for(f"Patroni on {target} accepts the failover", ask, 60, 2.0)
    wait_for(f"{target} answers /primary (Patroni holds the leader key)", lambda: (
        httpx.get(f"{api}/primary", timeout=3, trust_env=False).status_code == 200,
        "old leader key not expired yet"), 90, 0.5)
    return f"Patroni failed over to {target} ({said})"


def redis_master(p: UpgradeParams, target: str) -> str:
    """SENTINEL FAILOVER on the target's Sentinel: a forced failover needs no agreement."""
    r = p.inv.services.redis
    host = p.host(target)
    name = p.sentinel_master_name
    with client(host.address, SENTINEL_PORT, p.sentinel_password) as s:
        addr = parse_master_addr(s.execute_command(*get_master_addr(name).words))
        if addr is None or addr.host != host.address:
            s.execute_command("SENTINEL", "FAILOVER", name)

        def named() -> tuple[bool, str]:
            a = parse_master_addr(s.execute_command(*get_master_addr(name).words))
            with client(host.address, r.port, r.password) as me:
                role = me.info("replication").get("role")
            return (a is not None and a.host == host.address and role == "master",
                    f"Sentinel names {a.host if a else None}, {target} is {role}")

        return wait_for(f"{target}'s Sentinel names it master", named, 45, 0.5)


def manual_failover(ctx: WorkflowContext, p: UpgradeParams, target: str, choices: Choices,
                    say: Any = print) -> ManualFailover:
    t0 = time.monotonic()
    facts = gather(ctx, p, target)
    decision = decide(facts, choices)
    if not decision.ok:
        raise Refused(decision.refused or "refused")
    out = ManualFailover(target, facts.old, decision)
    if facts.old_reachable:
        say(f"fencing {facts.old}: stopping its services")
        out.notes += fence(ctx, p, facts.old, keep_etcd=decision.mode == "patroni")
    else:
        out.notes.append(f"{facts.old} unreachable: fenced by the operator's statement that it "
                         "is powered off (--old-primary-is-down)")
    out.timings["fenced"] = _since(t0)
    if decision.mode == "forced-dcs":
        say(f"etcd has no majority: re-forming it on {target}")
        out.notes.append(force_one_member(ctx, p, target))
        out.notes += reseed_reachable(ctx, p, target)
        out.timings["dcs_ready"] = _since(t0)
    say(f"promoting {target} through Patroni")
    out.notes.append(promote(p, target))
    out.timings["postgres_primary"] = _since(t0)
    scheduler = follow_primary(ctx, p, target, facts.old if facts.old_reachable else None)
    if scheduler:
        out.notes.append(scheduler)
    say(f"Redis: making {target} the master")
    try:
        out.notes.append(redis_master(p, target))
    except (StepFailed, redis.RedisError, OSError) as exc:
        out.notes.append(f"Redis master NOT moved: {exc}")
    out.timings["redis_master"] = _since(t0)
    wait_for(f"{target}'s router sends PostgreSQL to {target}", lambda: (
        router_backend_up(ctx, target, "postgres", target), "router check pending"), 30, 0.5)
    door = p.inv.front_door
    if door.kind == "static" and door.address != p.host(target).address:
        out.notes.append(f"the front door is a static address ({door.address}): it does not "
                         f"follow the primary; point it at {target} "
                         f"({p.host(target).address})")
    else:
        wait_for("the front door answers /health/ (the database accepts writes)", lambda: (
            httpx.get(f"http://{door.address}:{door.port}/health/", timeout=5,
                      trust_env=False).status_code == 200, "not yet"), 60, 0.5)
        out.timings["front_door_writable"] = _since(t0)
    out.notes.append(keep_on_witness(ctx, p))
    return out


def _since(t0: float) -> float:
    return round(time.monotonic() - t0, 2)
