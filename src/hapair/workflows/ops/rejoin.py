"""`hapair rejoin NODE`: an old primary back as a standby. Patroni rewinds it (pg_rewind)
when it restarts; when a rewind is impossible, the node is re-cloned from the primary
(`patronictl reinit`), keeping the diverged data directory aside with --keep-old-data.

After a manual failover (`failover --to`) etcd was re-formed without the lost members: every
etcd member that is not in the live cluster is wiped and re-added first (the witness before
the node), so no two old members can ever make a majority of the old cluster again; then
the programs the fencing stopped are started again. Last, NODE's Redis follows the master the
Sentinels name (hapair sends the REPLICAOF when no Sentinel has yet).
"""

from __future__ import annotations

import contextlib

import redis

from hapair.compose.generate_configs import PATRONI_VENV
from hapair.errors import HapairError, Refused, StepFailed
from hapair.workflows.context import WorkflowContext
from hapair.workflows.ops.etcd_leader import keep_on_witness
from hapair.workflows.ops.etcd_recover import reseed_reachable
from hapair.workflows.ops.manual_failover import fence_order
from hapair.workflows.ops.pair import cluster, leader, sentinel_master, wait_for
from hapair.workflows.ops.singletons import stop_on_standby
from hapair.workflows.runtimes import containerised, native_only
from hapair.workflows.upgrade.params import PATRONI_CONFIG, PATRONICTL_BIN, UpgradeParams
from hapair.workflows.upgrade.steps_redis import client


def rejoin(ctx: WorkflowContext, p: UpgradeParams, node: str, *, keep_old_data: bool = False,
           timeout: float = 300) -> dict[str, object]:
    """Returns {"state": …, "notes": […]}."""
    members = cluster(p)
    lead = leader(members)
    if lead is None:
        raise Refused("no PostgreSQL leader to rejoin: fix the primary first")
    if node == lead:
        raise Refused(f"{node} is the primary; rejoin is for a standby or an old primary")
    runtime = ctx.runtime(node)
    notes = reseed_reachable(ctx, p, lead)
    # What a manual failover's fencing stopped, started again (running ones are left alone);
    # a rebooted node's Patroni rewinds and follows by itself.
    for name in reversed(fence_order(runtime, keep_etcd=False)):
        try:
            runtime.start(name)
        except HapairError as exc:
            notes.append(f"{node}: starting {name}: {exc}")
    state = _stream(ctx, p, node, lead, keep_old_data, timeout)
    notes.append(_redis_follows(ctx, p, node))
    if (note := stop_on_standby(ctx, p, node)) is not None:
        notes.append(note)
    notes.append(keep_on_witness(ctx, p))
    return {"state": state, "notes": notes}


def _redis_follows(ctx: WorkflowContext, p: UpgradeParams, node: str) -> str:
    """NODE's Redis a replica of the master the Sentinels name. An old master that comes back
    reports itself master until a Sentinel converts it, which can take minutes after a
    reboot (seen on Docker engines) or not happen while a Sentinel is in TILT: hapair sends
    the REPLICAOF the Sentinel would (its diverged writes, if any, are dropped either way)."""
    master = sentinel_master(p, exclude=(node,))
    if master is None or master == node:
        return f"Redis on {node}: the Sentinels name {master or 'no master'}; left alone"
    r, to = p.inv.services.redis, p.host(master).address
    restarted = _answering(ctx, p, node)
    try:
        with client(p.host(node).address, r.port, r.password) as me:
            if me.info("replication").get("role") == "master":
                me.execute_command("REPLICAOF", to, str(r.port))
                me.execute_command("CONFIG", "REWRITE")  # a restart keeps following
            wait_for(f"{node}'s Redis replicates from {master}", lambda: (
                me.info("replication").get("master_link_status") == "up", "link not up yet"),
                60, 0.5)
    except (redis.RedisError, OSError) as exc:
        raise StepFailed(f"{node}'s Redis does not answer ({exc}): PostgreSQL rejoined; "
                         "start it and run `hapair rejoin` again") from None
    return f"Redis on {node}: {restarted}a replica of {master}, link up"


def _answering(ctx: WorkflowContext, p: UpgradeParams, node: str) -> str:
    """Wait (bounded) until NODE's Redis answers on its address; restart it once if it does
    not (after a reboot on Docker engines its published port stayed closed for over a
    minute while the container ran). Returns what was done, for the report."""
    r = p.inv.services.redis

    def pong() -> tuple[bool, str]:
        with client(p.host(node).address, r.port, r.password) as me:
            return bool(me.ping()), "PONG"

    try:
        wait_for(f"{node}'s Redis answers", pong, 30, 1.0)
        return ""
    except StepFailed:
        ctx.runtime(node).restart("redis")
    with contextlib.suppress(StepFailed):  # the caller's first command then says why
        wait_for(f"{node}'s Redis answers after a restart", pong, 60, 1.0)
    return "restarted (it did not answer on its address), "


def _stream(ctx: WorkflowContext, p: UpgradeParams, node: str, lead: str, keep_old_data: bool,
            timeout: float) -> str:
    runtime = ctx.runtime(node)

    def following() -> tuple[bool, str]:
        me = next((m for m in cluster(p) if m.name == node), None)
        if me is None:
            return False, f"{node} not in the cluster"
        return me.state == "streaming", f"{node}: {me.role} {me.state}"

    try:
        return wait_for(f"{node} streams from {lead}", following, min(timeout, 120), 1.0)
    except Exception:  # noqa: BLE001 — rewind impossible or stuck: clone afresh
        pass
    data_dir = p.inv.services.postgres.data_dir
    if keep_old_data:
        native_only(runtime, node, "--keep-old-data")
        runtime.stop("patroni")
        t = ctx.transports[node]
        t.run(["sh", "-c", 'mv "$1" "$1.diverged-$(date +%Y%m%dT%H%M%S)"', "sh", data_dir])
        runtime.start("patroni")  # an empty data directory: Patroni clones the leader
    else:
        ctl = f"{PATRONI_VENV}/bin/patronictl" if containerised(runtime) else PATRONICTL_BIN
        ctx.shell(node, "patroni").run([ctl, "-c", PATRONI_CONFIG, "reinit", p.inv.cluster,
                                        node, "--force", "--wait"], user="postgres",
                                       timeout=timeout)
    return wait_for(f"{node} streams from {lead} after a fresh clone", following, timeout, 2.0)
