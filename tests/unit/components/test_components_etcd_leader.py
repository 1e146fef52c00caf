"""etcd leader placement: the move-leader command and the decision, table-driven."""

import pytest

from hapair.components.etcd import EndpointStatus, EtcdMember, MemberInfo
from hapair.components.etcd.leader import (
    leader_id,
    move_leader_argv,
    plan_leader_move,
)

MEMBERS = (MemberInfo(0x11, "node1", ("http://10.99.0.11:2380",), ()),
           MemberInfo(0x12, "node2", ("http://10.99.0.12:2380",), ()),
           MemberInfo(0x13, "witness", ("http://10.99.0.13:2380",), ()))


def st(member: int, leader: int) -> EndpointStatus:
    return EndpointStatus(f"http://m{member:x}:2379", member, leader, 4, "3.4.23", 1)


def test_move_leader_argv_uses_hex_ids_and_all_endpoints() -> None:
    argv = move_leader_argv([EtcdMember("node1", "10.99.0.11"), "http://10.99.0.13:2379"],
                            0xF00DCAFE12345678)
    assert argv == ["etcdctl", "--endpoints=http://10.99.0.11:2379,http://10.99.0.13:2379",
                    "--dial-timeout=2s", "--command-timeout=10s", "move-leader",
                    "f00dcafe12345678"]


@pytest.mark.parametrize(("statuses", "want"), [
    ((st(0x11, 0x11), st(0x12, 0x11)), 0x11),
    ((st(0x11, 0x11), st(0x12, 0x12)), None),  # disagree
    ((st(0x11, 0),), None),  # no leader known
    ((), None),
])
def test_leader_id(statuses: tuple[EndpointStatus, ...], want: int | None) -> None:
    assert leader_id(statuses) == want


ALL_ON_NODE1 = (st(0x11, 0x11), st(0x12, 0x11), st(0x13, 0x11))


@pytest.mark.parametrize(("statuses", "preferred", "target", "reason"), [
    (ALL_ON_NODE1, "witness", 0x13, "etcd leader is node1: moving it to witness"),
    (tuple(st(m, 0x13) for m in (0x11, 0x12, 0x13)), "witness", None,
     "etcd leader is already witness"),
    ((st(0x11, 0x11), st(0x12, 0x11)), "witness", None,
     "etcd member witness did not answer: the leader stays on node1"),
    (ALL_ON_NODE1, "lb", None, "etcd has no member lb: the leader stays on node1"),
    ((st(0x11, 0x11), st(0x12, 0x12)), "witness", None,
     "etcd members do not agree on a leader: not moving it"),
])
def test_plan_leader_move(statuses: tuple[EndpointStatus, ...], preferred: str,
                          target: int | None, reason: str) -> None:
    move = plan_leader_move(statuses, MEMBERS, preferred)
    assert (move.target, move.reason) == (target, reason)
