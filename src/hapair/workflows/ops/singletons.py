"""One scheduler (Celery beat) for the pair, on the PostgreSQL primary's node.

Two schedulers would run every periodic task twice; none would run none. The edited compose
files start it by default on node1 only (`profiles: [scheduler]` on node2, docs/compose.md);
when the primary moves, the scheduler follows it: stopped on the old node FIRST, then started
on the new one, so two never run at once (a few seconds without one only delays a tick).
A node whose runtime has no scheduler (native hosts, or no `compose.services.scheduler`) is
left alone.
"""

from __future__ import annotations

from hapair.errors import HapairError
from hapair.workflows.context import WorkflowContext
from hapair.workflows.upgrade.params import UpgradeParams

PROGRAM = "scheduler"


def scheduler_nodes(p: UpgradeParams) -> list[str]:
    return [h.name for h in p.data_nodes
            if h.runtime == "compose" and h.compose is not None and h.compose.services.scheduler]


def follow_primary(ctx: WorkflowContext, p: UpgradeParams, new: str,
                   old: str | None = None) -> str | None:
    """Move the scheduler to `new` (the primary now). A note for the report, or None when
    the pair has no scheduler to move. Best effort: the failover itself already succeeded."""
    nodes = scheduler_nodes(p)
    if new not in nodes:
        return None
    done = []
    if old is not None and old != new and old in nodes:
        done.append(stop_on(ctx, old))
    try:
        ctx.runtime(new).start(PROGRAM)
        done.append(f"running on {new}")
    except HapairError as exc:
        done.append(f"NOT started on {new} ({exc}): start it by hand")
    return "scheduler (Celery beat): " + "; ".join(done)


def stop_on(ctx: WorkflowContext, node: str) -> str:
    try:
        ctx.runtime(node).stop(PROGRAM)
        return f"stopped on {node}"
    except HapairError as exc:
        return f"NOT stopped on {node} ({exc}): `hapair rejoin {node}` stops it"


def stop_on_standby(ctx: WorkflowContext, p: UpgradeParams, node: str) -> str | None:
    """A node rejoining as standby runs no scheduler (a rebooted old primary's Docker may have
    started it again)."""
    if node not in scheduler_nodes(p):
        return None
    return "scheduler (Celery beat): " + stop_on(ctx, node)
