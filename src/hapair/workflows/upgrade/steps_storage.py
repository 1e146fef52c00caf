"""Upgrade phase for media (issue 5): node2 gets its own S3 site, existing objects are copied
there (by checksum) before node2 serves traffic, a supervised rclone loop on node2 pulls new
objects from the writing site, and each node's app reaches storage through a local router
(writes to the writing site, reads local with a fallback to the peer)."""

from __future__ import annotations

from collections.abc import Callable

from hapair.components.storage import router as s3router
from hapair.components.storage.site import Site, SiteServer
from hapair.exec.runtime import ServiceState
from hapair.plan.step import Check, Fn, Step, StepContext, StepKind
from hapair.workflows import storage as st
from hapair.workflows.context import WorkflowContext
from hapair.workflows.upgrade.params import UpgradeParams
from hapair.workflows.upgrade.stepkit import guarded

PLAN = "upgrade"
SEED_YOUNG_S = 120.0  # after the seed, only uploads younger than this may still be missing
REPLICATED_YOUNG_S = 60.0  # once the loop runs, it takes them within seconds


def sid(host: str, name: str) -> str:
    return f"{PLAN}/{host}/{name}"


def storage_steps(p: UpgradeParams) -> list[Step]:
    inv = p.inv
    setup, (site1, site2) = st.setup_from_inventory(inv)
    primary, standby = p.names.primary, p.names.standby

    def nodes(ctx: StepContext) -> tuple[st.StorageNode, st.StorageNode]:
        wctx = WorkflowContext(inv, dict(ctx.transports))
        return st.storage_nodes(wctx)[1]

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
        loop = st.replication_status(setup, nodes(ctx)[1], primary)
        return loop if not loop.ok else seeded(ctx, young_s=REPLICATED_YOUNG_S)

    def router_running(ctx: StepContext) -> Check:
        node = nodes(ctx)[0 if ctx.host == primary else 1]
        state = node.runtime.status(s3router.PROGRAM).state
        return Check(state is ServiceState.RUNNING, f"{ctx.host}: S3 router {state.value}")

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
        Step(id=sid(standby, "storage.replication"), host=standby, kind=StepKind.NEW_SERVICE,
             reason="a supervised rclone loop on node2 pulls new objects from the writing site",
             action=Fn("define and start hapair-s3-replicate on node2",
                       lambda ctx: st.start_replication(setup, *nodes(ctx))),
             verify=guarded("replication loop completed a pass", pulling),
             settle_timeout=90, poll_interval=2),
    ]
    for host in (primary, standby):
        steps.append(Step(
            id=sid(host, "storage.router"), host=host, kind=StepKind.NEW_SERVICE,
            reason="the app reaches object storage through a local router: writes to the "
                   "writing site, reads local with a fallback to the peer",
            action=Fn(f"install the S3 router on {host} (writer {primary})",
                      lambda ctx, h=host: _install_router(ctx, nodes, h, primary, site1,
                                                          site2)),
            verify=guarded("S3 router running", router_running), settle_timeout=20))
    return steps


def _install_router(ctx: StepContext, nodes: Callable[[StepContext], tuple[st.StorageNode, ...]],
                    host: str, writer: str, site1: Site, site2: Site) -> None:
    first, second = nodes(ctx)
    if host == first.name:
        st.install_router(first, site2, writer)
    else:
        st.install_router(second, site1, writer)


def router_endpoint() -> str:
    return f"127.0.0.1:{s3router.DEFAULT_PORT}"
