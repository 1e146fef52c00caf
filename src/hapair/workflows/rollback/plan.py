"""The rollback plan: the pair back to one server — the node that holds the data — in an
order where the front door never stops answering:

1. Redis master on the target (lossless switchover while Sentinel still runs);
2. front door: the service address static on the target, keepalived off on both nodes,
   single-node nginx on the target, the peer's HTTP stack stopped;
3. media copied from the peer, then the app on Redis and its own S3 site directly
   (PostgreSQL still behind PgBouncer), a last media copy;
4. Sentinels and the peer's Redis stop; the target's Redis is a plain master;
5. PostgreSQL: sync off, the standby's Patroni stopped, the target's hand-back behind PAUSE,
   the peer's slot and the replication role dropped; the app on PostgreSQL directly;
6. routers, PgBouncer, replication, the peer's site, etcd stop;
7. the single-node checks, nothing of the pair running, the upgrade journal retired.
"""

from __future__ import annotations

from pathlib import Path

from hapair.plan.step import Plan
from hapair.workflows.rollback.params import RollbackParams
from hapair.workflows.rollback.steps_app import cache_media_steps, direct_steps
from hapair.workflows.rollback.steps_front import front_steps
from hapair.workflows.rollback.steps_pg import pg_steps
from hapair.workflows.rollback.steps_redis import master_steps, standalone_steps
from hapair.workflows.rollback.steps_stop import stop_steps
from hapair.workflows.rollback.verify import verify_steps


def build_plan(rp: RollbackParams, runs_root: Path) -> Plan:
    steps = [
        *master_steps(rp),
        *front_steps(rp),
        *cache_media_steps(rp),
        *standalone_steps(rp),
        *pg_steps(rp),
        *direct_steps(rp),
        *stop_steps(rp),
        *verify_steps(rp, runs_root),
    ]
    return Plan("rollback", tuple(steps))
