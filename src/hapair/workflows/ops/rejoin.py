"""`hapair rejoin NODE`: an old primary back as a standby. Patroni rewinds it (pg_rewind)
when it restarts; when a rewind is impossible, the node is re-cloned from the primary
(`patronictl reinit`), keeping the diverged data directory aside with --keep-old-data.

After a manual failover (`failover --to`) etcd was re-formed without the lost members: every
etcd member that is not in the live cluster is wiped and re-added first (the witness before
the node), so no two old members can ever make a majority of the old cluster again; then
the programs the fencing stopped are started again.
"""

from __future__ import annotations

from hapair.compose.generate_configs import PATRONI_VENV
from hapair.errors import HapairError, Refused
from hapair.workflows.context import WorkflowContext
from hapair.workflows.ops.etcd_leader import keep_on_witness
from hapair.workflows.ops.etcd_recover import reseed_reachable
from hapair.workflows.ops.manual_failover import fence_order
from hapair.workflows.ops.pair import cluster, leader, wait_for
from hapair.workflows.ops.singletons import stop_on_standby
from hapair.workflows.runtimes import containerised, native_only
from hapair.workflows.upgrade.params import PATRONI_CONFIG, PATRONICTL_BIN, UpgradeParams


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
    if (note := stop_on_standby(ctx, p, node)) is not None:
        notes.append(note)
    notes.append(keep_on_witness(ctx, p))
    return {"state": state, "notes": notes}


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
