"""Where etcd's raft leader sits, and moving it (pure: command builders and decisions).

etcd refreshes every lease when its own raft leader changes (decision 0002): when the host
that dies holds both the PostgreSQL primary and etcd's leader, Patroni's leader key gets a
fresh TTL from the new etcd leader and the failover waits up to one TTL more. Keeping etcd's
leader on the witness (no database there) takes that extra TTL out of a data node's loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hapair.components.etcd.config import EtcdMember
from hapair.components.etcd.probe import EndpointStatus, MemberInfo


def move_leader_argv(endpoints: Sequence[EtcdMember] | Sequence[str], member_id: int) -> list[str]:
    """`etcdctl move-leader ID`: etcdctl finds the current leader among the endpoints and asks
    it to hand over (a raft leadership transfer: no election timeout, no lost write)."""
    urls = [e.client_url if isinstance(e, EtcdMember) else e for e in endpoints]
    return ["etcdctl", f"--endpoints={','.join(urls)}", "--dial-timeout=2s",
            "--command-timeout=10s", "move-leader", f"{member_id:x}"]


def leader_id(statuses: Sequence[EndpointStatus]) -> int | None:
    """The leader the answering members agree on (None: none known, or they disagree)."""
    ids = {s.leader_id for s in statuses if s.leader_id}
    return ids.pop() if len(ids) == 1 else None


def member_name(members: Sequence[MemberInfo], member_id: int | None) -> str | None:
    return next((m.name for m in members if m.member_id == member_id), None)


@dataclass(frozen=True)
class LeaderMove:
    """What to do about etcd's leader: `target` is the member id to move it to, or None."""

    target: int | None
    reason: str


def plan_leader_move(statuses: Sequence[EndpointStatus], members: Sequence[MemberInfo],
                     preferred: str) -> LeaderMove:
    """Move the leader to `preferred` (the witness) unless it is there already or cannot be."""
    current = leader_id(statuses)
    if current is None:
        return LeaderMove(None, "etcd members do not agree on a leader: not moving it")
    here = member_name(members, current) or f"id {current:x}"
    want = next((m for m in members if m.name == preferred), None)
    if want is None:
        return LeaderMove(None, f"etcd has no member {preferred}: the leader stays on {here}")
    if want.member_id == current:
        return LeaderMove(None, f"etcd leader is already {preferred}")
    answering = {s.member_id for s in statuses}
    if want.member_id not in answering:
        return LeaderMove(None, f"etcd member {preferred} did not answer: the leader stays on "
                                f"{here}")
    return LeaderMove(want.member_id, f"etcd leader is {here}: moving it to {preferred}")
