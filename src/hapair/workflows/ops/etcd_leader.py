"""Keep etcd's raft leader on the witness (components/etcd/leader.py says why).

Used at the end of the upgrade (a step), after a failover drill, a manual failover and a
rejoin. Moving the leader is a raft leadership transfer: no write is lost, Patroni does not
notice beyond one slower request.
"""

from __future__ import annotations

from collections.abc import Sequence

from hapair.components.etcd.config import EtcdMember
from hapair.components.etcd.leader import (
    leader_id,
    member_name,
    move_leader_argv,
    plan_leader_move,
)
from hapair.components.etcd.probe import (
    ETCDCTL_ENV,
    endpoint_status_argv,
    member_list_argv,
    parse_endpoint_status,
    parse_member_list,
)
from hapair.errors import HapairError
from hapair.exec.transport import Transport
from hapair.plan.step import Check, Fn, Step, StepContext, StepKind
from hapair.workflows.context import WorkflowContext
from hapair.workflows.upgrade.params import UpgradeParams
from hapair.workflows.upgrade.stepkit import guarded


def etcd_leader(t: Transport, members: Sequence[EtcdMember]) -> str | None:
    """The name of etcd's leader, asked from `t`'s host (None: unknown or unreachable)."""
    try:
        res = t.run(endpoint_status_argv(members), check=False, timeout=20, env=ETCDCTL_ENV)
        statuses = parse_endpoint_status(res.stdout) if res.stdout.strip() else ()
        names = parse_member_list(t.run(member_list_argv(members), timeout=20,
                                         env=ETCDCTL_ENV).stdout)
    except (HapairError, OSError):
        return None
    return member_name(names, leader_id(statuses))


def place_etcd_leader(t: Transport, members: Sequence[EtcdMember], preferred: str) -> str:
    """Move etcd's leader to `preferred` if it is elsewhere; return what was done (one line).
    etcd answers `endpoint status` with exit 1 when a member is down: judge the JSON."""
    res = t.run(endpoint_status_argv(members), check=False, timeout=20, env=ETCDCTL_ENV)
    statuses = parse_endpoint_status(res.stdout) if res.stdout.strip() else ()
    names = parse_member_list(t.run(member_list_argv(members), timeout=20,
                                     env=ETCDCTL_ENV).stdout)
    move = plan_leader_move(statuses, names, preferred)
    if move.target is None:
        return move.reason
    t.run(move_leader_argv(members, move.target), timeout=30, env=ETCDCTL_ENV)
    return move.reason.replace("moving it", "moved it")


def etcd_leader_steps(p: UpgradeParams) -> list[Step]:
    """The upgrade's last step: etcd's leader on the witness (none without a witness)."""
    witness = p.names.witness
    if witness is None:
        return []
    members = p.etcd_members

    def on_witness(ctx: StepContext) -> Check:
        where = etcd_leader(ctx.transport, members)
        return Check(where == witness, f"etcd leader is {where or 'unknown'}")

    return [Step(
        id=f"upgrade/{witness}/etcd.leader", host=witness, kind=StepKind.COMMAND,
        reason="etcd's leader on the witness: losing a data node then costs no extra lease "
               "TTL before failover (decision 0002)",
        client_impact="none (a raft leadership transfer)",
        action=Fn(f"etcdctl move-leader to {witness}",
                  lambda ctx: _place(ctx, members, witness)),
        verify=guarded(f"etcd leader is {witness}", on_witness),
        settle_timeout=20, poll_interval=1)]


def _place(ctx: StepContext, members: Sequence[EtcdMember], witness: str) -> None:
    place_etcd_leader(ctx.transport, members, witness)


def keep_on_witness(ctx: WorkflowContext, p: UpgradeParams) -> str:
    """After an operation that may have moved etcd's leader: put it back on the witness.
    Best effort (the operation itself succeeded): the reason is returned, never raised."""
    witness = p.names.witness
    if witness is None:
        return "no witness: etcd leader left where it is"
    try:
        return place_etcd_leader(ctx.shell(witness, "etcd"), p.etcd_members, witness)
    except (HapairError, OSError) as exc:
        return f"etcd leader not moved to {witness}: {exc}"
