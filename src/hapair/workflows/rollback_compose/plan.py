"""The compose rollback plan: the pair back to one compose server, in an order where only the
target serves from the start and each service is handed back exactly once:

1. the Redis master on the target (Sentinel's lossless switchover, if needed);
2. with a VIP: keepalived stops on the peer, then on the target, the address staying there;
3. the peer's app stops;
4. Sentinels and the peer's Redis stop; synchronous replication off, the peer's Patroni stops;
5. the user's compose file restored (nothing recreated yet), then the two hand-backs — Redis,
   then PostgreSQL — to the user's services on the same volumes, and the app recreated from
   the original file right after (the app's outage spans these three steps only);
6. the peer's slot, the replication role and the upgrade's slot cap go;
7. hapair's project down on every host, the peer's copy of the user's project removed;
8. the single-server checks, nothing of hapair running, the upgrade journal retired.
"""

from __future__ import annotations

from pathlib import Path

from hapair.plan.step import Plan
from hapair.workflows.rollback_compose import steps_pg, steps_redis
from hapair.workflows.rollback_compose.setup import ComposeRollback
from hapair.workflows.rollback_compose.steps_app import app_step, down_steps, file_step
from hapair.workflows.rollback_compose.steps_front import (
    keepalived_steps,
    master_step,
    peer_app_step,
)
from hapair.workflows.rollback_compose.verify import verify_steps


def build_compose_rollback_plan(cr: ComposeRollback, runs_root: Path) -> Plan:
    steps = [
        master_step(cr),
        *(keepalived_steps(cr) if cr.has_vip else []),
        peer_app_step(cr),
        *steps_redis.retire_steps(cr),
        steps_pg.async_step(cr),
        steps_pg.peer_patroni_step(cr),
        file_step(cr),
        steps_redis.handback_step(cr),
        steps_pg.handback_step(cr),
        app_step(cr),
        *steps_pg.cleanup_steps(cr),
        *down_steps(cr),
        *verify_steps(cr, runs_root),
    ]
    return Plan("rollback", tuple(steps))
