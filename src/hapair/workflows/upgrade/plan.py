"""The upgrade plan: every phase's steps in ARCHITECTURE.md §3 order (refined by decision
0001: Redis HA before the router, so the router is rendered once)."""

from __future__ import annotations

from hapair.exec.runtime import ServiceRuntime
from hapair.plan.step import Plan, StepContext
from hapair.workflows.native_only import native_only_refusal
from hapair.workflows.ops.etcd_leader import etcd_leader_steps
from hapair.workflows.runtimes import runtime_for as host_runtime
from hapair.workflows.upgrade.params import UpgradeParams
from hapair.workflows.upgrade.steps_app import deploy_app_steps, repoint_app_steps
from hapair.workflows.upgrade.steps_base import backup_steps, etcd_steps, software_steps
from hapair.workflows.upgrade.steps_front import lb_steps, vip_steps
from hapair.workflows.upgrade.steps_pg import (
    handover_steps,
    prepare_primary_steps,
    router_steps,
    standby_steps,
)
from hapair.workflows.upgrade.steps_redis import redis_steps
from hapair.workflows.upgrade.steps_storage import storage_steps
from hapair.workflows.upgrade.verify import final_steps


def build_plan(p: UpgradeParams) -> Plan:
    if native_only_refusal(p.inv, "`hapair upgrade`"):
        return Plan("upgrade", ())  # the native steps mean nothing there; preflight refuses
    def runtime_for(ctx: StepContext, host: str) -> ServiceRuntime:
        return host_runtime(p.host(host), ctx.on(host))

    primary, standby = p.names.primary, p.names.standby
    steps = [
        *software_steps(p),
        *backup_steps(p),
        *etcd_steps(p, runtime_for),
        *prepare_primary_steps(p),
        *redis_steps(p, runtime_for),
        *storage_steps(p),
        *router_steps(p, primary, runtime_for, direct=True),
        *repoint_app_steps(p, runtime_for),
        *handover_steps(p, runtime_for),
        *router_steps(p, standby, runtime_for, direct=False),
        *standby_steps(p, runtime_for),
        *deploy_app_steps(p, runtime_for),
        *lb_steps(p, runtime_for),
        *vip_steps(p, runtime_for),
        *final_steps(p),
        *etcd_leader_steps(p),  # last: nothing after it restarts an etcd member
    ]
    return Plan("upgrade", tuple(steps))
