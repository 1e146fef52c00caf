from pathlib import Path

import pytest
from ruamel.yaml import YAML

from hapair.components.etcd import (
    EndpointHealth,
    EtcdMember,
    EtcdParams,
    check_leader,
    check_members,
    check_quorum,
    endpoint_health_argv,
    etcd_argv,
    member_list_argv,
    parse_endpoint_health,
    parse_endpoint_status,
    parse_member_list,
    render_etcd_config,
)
from hapair.errors import StepFailed, UsageError

DATA = Path(__file__).parent / "data" / "etcd"
MEMBERS = (
    EtcdMember("node1", "10.99.0.11"),
    EtcdMember("node2", "10.99.0.12"),
    EtcdMember("witness", "10.99.0.13"),
)
LOOPBACK = tuple(
    EtcdMember(n, "127.0.0.1", 18500 + i, 18503 + i)
    for i, n in enumerate(["node1", "node2", "witness"])
)


def _load(text: str) -> dict:
    return YAML(typ="safe").load(text)


def test_config_for_node2() -> None:
    f = render_etcd_config(EtcdParams("node2", MEMBERS, "cms-etcd"))
    assert f.path == "/etc/hapair/etcd.yaml" and f.mode == 0o644 and not f.secret
    cfg = _load(f.content)
    assert cfg["name"] == "node2"
    assert cfg["data-dir"] == "/var/lib/etcd/node2"
    assert cfg["listen-peer-urls"] == "http://10.99.0.12:2380"
    assert cfg["listen-client-urls"] == "http://10.99.0.12:2379,http://127.0.0.1:2379"
    assert cfg["advertise-client-urls"] == "http://10.99.0.12:2379"
    assert cfg["initial-cluster"] == (
        "node1=http://10.99.0.11:2380,node2=http://10.99.0.12:2380,"
        "witness=http://10.99.0.13:2380"
    )
    assert cfg["initial-cluster-state"] == "new"
    assert cfg["initial-cluster-token"] == "cms-etcd"
    assert cfg["enable-grpc-gateway"] is True  # Patroni's etcd3 client needs it
    assert cfg["enable-v2"] is False
    assert "initial-cluster: node1=" in f.content  # one line, not folded


def test_argv() -> None:
    p = EtcdParams("witness", MEMBERS, "t", config_path="/etc/etcd/m.yaml")
    assert etcd_argv(p) == ["etcd", "--config-file", "/etc/etcd/m.yaml"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"members": MEMBERS[:2]}, "odd number >= 3"),
        ({"name": "node9"}, "not one of the members"),
        ({"heartbeat_ms": 500, "election_ms": 1000}, "5 x heartbeat"),
        ({"members": (*MEMBERS[:2], EtcdMember("node2", "10.99.0.14"))}, "appears twice"),
        ({"cluster_token": "two words"}, "cluster_token"),
    ],
)
def test_invalid_params(kwargs: dict, message: str) -> None:
    base = {"name": "node1", "members": MEMBERS, "cluster_token": "t"}
    with pytest.raises(UsageError, match=message):
        EtcdParams(**{**base, **kwargs})


def test_etcdctl_builders_are_bounded_and_json() -> None:
    assert endpoint_health_argv(LOOPBACK[:2]) == [
        "etcdctl", "--endpoints=http://127.0.0.1:18500,http://127.0.0.1:18501",
        "--dial-timeout=2s", "--command-timeout=3s", "endpoint", "health", "-w", "json",
    ]
    assert member_list_argv(["http://127.0.0.1:2379"])[-4:] == ["member", "list", "-w", "json"]


@pytest.mark.parametrize(
    ("sample", "healthy", "ok", "reason"),
    [
        ("health_ok.json", 3, True, "etcd quorum: 3/3 healthy"),
        ("health_one_down.json", 2, True, "etcd quorum: 2/3 healthy; down: http://127.0.0.1:18502 "
                                          "(context deadline exceeded)"),
        ("health_no_quorum.json", 0, False, "etcd has no quorum: 0/3 healthy, 2 needed"),
    ],
)
def test_endpoint_health_samples(sample: str, healthy: int, ok: bool, reason: str) -> None:
    health = parse_endpoint_health((DATA / sample).read_text())
    assert sum(h.healthy for h in health) == healthy
    check = check_quorum(health, 3)
    assert check.ok is ok
    assert check.reason.startswith(reason)


def test_quorum_counts_members_that_did_not_answer() -> None:
    one = (EndpointHealth("http://a:2379", True),)
    check = check_quorum(one, 3)
    assert not check.ok and "2 not probed" in check.reason


def test_endpoint_status_sample_and_leader() -> None:
    statuses = parse_endpoint_status((DATA / "status_ok.json").read_text())
    assert [s.endpoint for s in statuses] == [m.client_url for m in LOOPBACK]
    assert {s.leader_id for s in statuses} == {17287054664727844949}
    assert statuses[0].version == "3.4.23" and statuses[0].raft_term == 2
    check = check_leader(statuses)
    assert check.ok and check.reason.startswith("etcd leader is http://127.0.0.1:18501")
    partial = parse_endpoint_status((DATA / "status_one_down.json").read_text())
    assert len(partial) == 2 and check_leader(partial).ok


def test_leader_disagreement() -> None:
    statuses = parse_endpoint_status((DATA / "status_ok.json").read_text())
    split = (statuses[0], statuses[1].__class__(**{**statuses[1].__dict__, "leader_id": 7}))
    assert not check_leader(split).ok
    assert check_leader(()).reason == "etcd: no member answered endpoint status"


def test_member_list_sample() -> None:
    members = parse_member_list((DATA / "members.json").read_text())
    assert sorted(m.name for m in members) == ["node1", "node2", "witness"]
    assert check_members(members, LOOPBACK).ok
    check = check_members(members[:2], LOOPBACK)
    assert not check.ok and "missing" in check.reason


def test_garbage_output_is_a_step_failure() -> None:
    with pytest.raises(StepFailed, match="not JSON"):
        parse_endpoint_health("Error: context deadline exceeded")
