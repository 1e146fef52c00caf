"""The compose upgrade's steps, in the native plan's order (ARCHITECTURE.md §3, decision 0001),
each journaled, verified, with its undo."""

from __future__ import annotations

from hapair.plan.step import Plan
from hapair.workflows.ops.etcd_leader import etcd_leader_steps
from hapair.workflows.upgrade_compose.incontainer import in_container
from hapair.workflows.upgrade_compose.setup import ComposeUpgrade
from hapair.workflows.upgrade_compose.steps_handover import (
    app_repoint_step,
    final_compose_steps,
    node2_app_step,
    pg_handover_step,
    prepare_steps,
    standby_clone_step,
)
from hapair.workflows.upgrade_compose.steps_prepare import (
    backup_step,
    bundle_step,
    images_step,
    node2_created_step,
    node2_project_step,
    volumes_step,
)
from hapair.workflows.upgrade_compose.steps_services import (
    etcd_steps,
    keepalived_steps,
    redis_handover_step,
    redis_replica_step,
    router_step,
    sentinel_steps,
)


def build_compose_plan(cu: ComposeUpgrade) -> Plan:
    primary, standby, witness = cu.primary, cu.standby, cu.witness
    steps = [
        backup_step(cu),
        *(bundle_step(cu, h) for h in (primary, standby, witness)),
        node2_project_step(cu),
        *(images_step(cu, h) for h in (primary, standby)),
        volumes_step(cu),
        node2_created_step(cu),
        *etcd_steps(cu),
        *prepare_steps(cu),
        # Sentinel and the router first: they need no Redis or Patroni to start, and the
        # app's outage runs from the Redis hand-over to the app's re-point (bench/upgrade-compose)
        *sentinel_steps(cu),
        router_step(cu, primary),
        redis_handover_step(cu),
        pg_handover_step(cu),
        app_repoint_step(cu),
        standby_clone_step(cu),
        redis_replica_step(cu),
        router_step(cu, standby),
        node2_app_step(cu),
        *keepalived_steps(cu),
        *final_compose_steps(cu),
        # last: nothing after it restarts an etcd member
        *(in_container(s, lambda ctx: cu.runtime(ctx, ctx.host).shell("etcd"), "hapair-etcd")
          for s in etcd_leader_steps(cu.p)),
    ]
    return Plan("upgrade", tuple(steps))
