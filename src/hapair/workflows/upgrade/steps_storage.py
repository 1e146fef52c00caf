"""Upgrade phase for media (issue 5): node2 gets its own S3 site, existing objects are copied
there (by checksum) before node2 serves traffic, each node runs a supervised rclone loop
pulling from its peer (only the writer's copies overwrite), and each node's app reaches
storage through a local router: reads local with a fallback to the peer, writes through a
write selector to the site of the node Patroni names primary — so writes follow a failover
without anyone changing a config."""

from __future__ import annotations

from collections.abc import Callable

from hapair.components.router.stats import parse_show_stat, show_stat_argv
from hapair.components.storage import router as s3router
from hapair.components.storage import writer as s3writer
from hapair.components.storage.site import SiteServer
from hapair.exec.runtime import ServiceState
from hapair.plan.step import Check, Fn, Step, StepContext, StepKind
from hapair.workflows import storage as st
from hapair.workflows.context import WorkflowContext
from hapair.workflows.upgrade.params import UpgradeParams
from hapair.workflows.upgrade.stepkit import guarded

PLAN = "upgrade"
SEED_YOUNG_S = 120.0  # after the seed, only uploads younger than this may still be missing
REPLICATED_YOUNG_S = 60.0  # once the loop runs, it takes them within seconds

Nodes = Callable[[StepContext], tuple[st.StorageNode, st.StorageNode]]


def sid(host: str, name: str) -> str:
    return f"{PLAN}/{host}/{name}"


def storage_steps(p: UpgradeParams) -> list[Step]:
    inv = p.inv
    setup, (site1, site2) = st.setup_from_inventory(inv)
    primary, standby = p.names.primary, p.names.standby

    def nodes(ctx: StepContext) -> tuple[st.StorageNode, st.StorageNode]:
        wctx = WorkflowContext(inv, dict(ctx.transports))
        return st.storage_nodes(wctx)[1]

    def mine(ctx: StepContext) -> tuple[st.StorageNode, st.StorageNode]:
        """(this step's node, its peer)."""
        first, second = nodes(ctx)
        return (first, second) if ctx.host == first.name else (second, first)

    server = SiteServer(listen=(site2.address, "127.0.0.1"), port=inv.services.storage.port,
                        data_dir=inv.services.storage.data_dir)

    def site_answers(_ctx: StepContext) -> Check:
        totals = st.site_totals(setup, [site2])[0]
        return Check(True, f"{standby}'s site answers ({totals.total_objects} objects)")

    def seeded(_ctx: StepContext, young_s: float = SEED_YOUNG_S) -> Check:
        # Uploads keep arriving while the site is seeded: only objects older than a couple of
        # minutes must be there (the replication loop takes the young ones).
        gap = st.backlog(setup, site1, site2)
        age = gap.oldest_age_s or 0.0
        ok = not gap.missing or age <= young_s
        return Check(ok, f"{len(gap.missing)} objects of {primary}'s site missing on "
                         f"{standby}'s (oldest {age:.0f} s)")

    def pulling(ctx: StepContext) -> Check:
        me, peer = mine(ctx)
        loop = st.replication_status(setup, me, peer.name)
        return loop if not loop.ok or me.name == primary else seeded(
            ctx, young_s=REPLICATED_YOUNG_S)

    steps = [
        Step(id=sid(standby, "storage.site"), host=standby, kind=StepKind.NEW_SERVICE,
             reason="node2's own S3 site (two sites joined by replication, not one 2-node "
                    "erasure set that cannot write with a node down)",
             action=Fn("define and start `s3` (rclone serve s3) on node2; create the buckets",
                       lambda ctx: st.start_site(setup, nodes(ctx)[1], server)),
             verify=guarded("node2's S3 site answers", site_answers), settle_timeout=30),
        Step(id=sid(standby, "storage.seed"), host=standby, kind=StepKind.COMMAND,
             reason="existing media copied to node2's site (rclone copy --checksum) before "
                    "node2 serves traffic",
             client_impact="none (node1's site is read)",
             action=Fn("rclone copy --checksum node1 → node2, every bucket",
                       lambda ctx: st.seed_site(setup, site1, nodes(ctx)[1])),
             verify=guarded("node2's site has every object of node1's", seeded)),
    ]
    for host in (standby, primary):
        steps.append(Step(
            id=sid(host, "storage.replication"), host=host, kind=StepKind.NEW_SERVICE,
            reason="a supervised rclone loop pulls the peer's new objects into this node's "
                   "site (only the writer's copies overwrite; copy, never sync)",
            action=Fn(f"define and start hapair-s3-replicate on {host}",
                      lambda ctx: st.start_replication(setup, mine(ctx)[1], mine(ctx)[0])),
            verify=guarded("replication loop completed a pass", pulling),
            settle_timeout=90, poll_interval=2))
    for host in (primary, standby):
        steps.append(Step(
            id=sid(host, "storage.router"), host=host, kind=StepKind.NEW_SERVICE,
            reason="the app reaches object storage through a local router: reads local with "
                   "a fallback to the peer; writes to the site of the node Patroni names "
                   "primary (HAProxy GET /primary), so they follow a failover",
            action=Fn(f"install the S3 write selector and router on {host}",
                      lambda ctx: st.install_routing(*mine(ctx))),
            verify=guarded("S3 router running, writes to the primary's site",
                           lambda ctx: routed(ctx, mine, primary)),
            settle_timeout=30, poll_interval=1))
    return steps


def routed(ctx: StepContext, mine: Nodes, primary: str) -> Check:
    me, peer = mine(ctx)
    for program in (s3writer.PROGRAM, s3router.PROGRAM):
        state = me.runtime.status(program).state
        if state is not ServiceState.RUNNING:
            return Check(False, f"{me.name}: {program} {state.value}")
    p = st.writer_params(me, peer)
    stats = parse_show_stat(me.transport.run(show_stat_argv(p.stats_socket), timeout=10).stdout)
    if not any(s.proxy == s3writer.PROXY and s.check_status.startswith("L7OK") for s in stats):
        # Patroni is not in charge yet (this phase runs before the handover): no node
        # answers GET /primary: writes land on this node's own site (the selector's
        # fallback) and the selector picks the primary's site as soon as Patroni leads.
        return Check(True, f"{me.name}: write selector and router run; no node answers GET "
                           "/primary yet (Patroni not in charge): writes go to its own site")
    verdict = s3writer.writes_follow(me.name, stats, primary)
    return Check(verdict.ok, verdict.reason)


def router_endpoint(port: int = s3router.DEFAULT_PORT) -> str:
    return f"127.0.0.1:{port}"
