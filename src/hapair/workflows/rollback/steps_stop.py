"""Rollback phase: every program only the pair runs is stopped and its supervisor definition
removed (data directories and config files stay), on every host."""

from __future__ import annotations

from hapair.plan.step import Fn, Step, StepKind
from hapair.workflows.rollback.params import RollbackParams, sid
from hapair.workflows.upgrade.stepkit import service_absent

WHY = {
    "hapair-s3-router": "the app reads and writes its own S3 site directly now",
    "hapair-s3-replicate": "no second site to replicate to",
    "hapair-s3-writer": "uploads go to the single server's own site",
    "pgbouncer": "the app connects to PostgreSQL directly now",
    "router": "nothing to route: the data is on this node",
    "s3": "the peer's S3 site serves nobody (its objects were copied; its files are kept)",
    "etcd": "no Patroni left to keep a leader key (the data directory is kept)",
}


def remove_step(rp: RollbackParams, host: str, program: str) -> Step:
    return Step(id=sid(host, f"{program}.stopped"), host=host, kind=StepKind.COMMAND,
                reason=WHY[program],
                action=Fn(f"stop and remove `{program}`",
                          lambda ctx: rp.runtime(ctx, host).remove(program)),
                verify=service_absent(rp.runtime_for, program))


def stop_steps(rp: RollbackParams) -> list[Step]:
    steps: list[Step] = []
    for host in (rp.target, rp.peer):
        for program in ("hapair-s3-router", "hapair-s3-writer", "hapair-s3-replicate",
                        "pgbouncer", "router"):
            steps.append(remove_step(rp, host, program))
    steps.append(remove_step(rp, rp.peer, "s3"))
    steps += [remove_step(rp, h, "etcd") for h in rp.all_hosts]
    return steps
