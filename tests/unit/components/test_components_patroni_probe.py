import json
from pathlib import Path

import pytest

from hapair.components.patroni import (
    ClusterView,
    Member,
    PatroniNode,
    check_cluster,
    check_leader_is,
    check_no_pending_restart,
    config_drift,
    list_argv,
    parse_cluster,
    parse_config,
    parse_node_status,
    parse_patronictl_list,
    rest_get_argv,
    split_curl_status,
    switchover_argv,
)
from hapair.errors import StepFailed

DATA = Path(__file__).parent / "data" / "patroni"


def sample(name: str) -> str:
    return (DATA / name).read_text()


def test_cluster_sync_sample() -> None:
    view = parse_cluster(sample("cluster_sync.json"))
    assert view.scope == "cms"
    leader = view.leader()
    assert leader is not None and leader.name == "node1" and leader.state == "running"
    node2 = view.member("node2")
    assert node2 == Member("node2", "sync_standby", "streaming", "127.0.0.1", 18511, 1, 0)
    assert leader.pending_restart
    assert leader.pending_reason == ("cluster_name: ->cms", "wal_log_hints: off->on")
    check = check_cluster(view, ["node1", "node2"], "sync", 1024 * 1024)
    assert check.ok and check.reason == "patroni cms: leader node1, sync standby node2"


def test_patronictl_list_agrees_with_rest() -> None:
    rest = parse_cluster(sample("cluster_sync.json"))
    ctl = parse_patronictl_list(sample("list_sync.json"))
    assert [(m.name, m.role, m.state, m.host, m.port, m.timeline) for m in ctl.members] == [
        (m.name, m.role, m.state, m.host, m.port, m.timeline) for m in rest.members]
    assert ctl.member("node1").pending_reason == ("cluster_name: ->cms", "wal_log_hints: off->on")
    assert ctl.member("node2").lag_bytes == 0


@pytest.mark.parametrize("sample_name", ["cluster_replica_leaving.json",
                                         "list_replica_leaving.json"])
def test_sync_mode_degraded_when_no_sync_standby(sample_name: str) -> None:
    text = sample(sample_name)
    view = parse_cluster(text) if sample_name.startswith("cluster") else parse_patronictl_list(text)
    assert view.member("node2").nosync
    check = check_cluster(view, ["node1", "node2"], "sync", 1024 * 1024)
    assert not check.ok and "no synchronous standby" in check.reason
    assert check_cluster(view, ["node1", "node2"], "async", 1024 * 1024).ok


def _view(*members: Member) -> ClusterView:
    return ClusterView("cms", members)


LEADER = Member("node1", "leader", "running", timeline=2, lag_bytes=None)


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ((Member("node2", "replica", "streaming", timeline=2, lag_bytes=0),),
         "patroni cms: no leader"),
        ((LEADER, Member("node2", "leader", "running")), "several leaders"),
        ((Member("node1", "leader", "stopped"),), "leader node1 is stopped, not running"),
        ((LEADER,), "patroni member node2 is missing"),
        ((LEADER, Member("node2", "replica", "stopped", timeline=2)), "node2 is stopped"),
        ((LEADER, Member("node2", "sync_standby", "streaming", timeline=1, lag_bytes=0)),
         "node2 is on timeline 1, leader on 2"),
        ((LEADER, Member("node2", "sync_standby", "streaming", timeline=2, lag_bytes=9 << 20)),
         "node2 lags 9437184 bytes (limit 1048576)"),
        ((LEADER, Member("node2", "sync_standby", "streaming", timeline=2, lag_bytes=None)),
         "node2 lags None bytes"),
    ],
)
def test_cluster_failures(members: tuple[Member, ...], reason: str) -> None:
    check = check_cluster(_view(*members), ["node1", "node2"], "sync", 1 << 20)
    assert not check.ok
    assert reason in check.reason


def test_paused_cluster_is_said() -> None:
    view = ClusterView("cms", (LEADER, Member("node2", "sync_standby", "streaming", timeline=2,
                                              lag_bytes=0)), paused=True)
    assert "PAUSED" in check_cluster(view, ["node1", "node2"], "sync", 0).reason


def test_node_status_samples() -> None:
    primary = parse_node_status(sample("patroni_primary.json"))
    assert (primary.name, primary.role, primary.state, primary.timeline) == (
        "node1", "primary", "running", 1)
    assert primary.server_version == 150018
    assert primary.replication[0].application_name == "node2"
    assert primary.replication[0].sync_state == "sync"
    assert "wal_log_hints: off->on" in primary.pending_reason
    replica = parse_node_status(sample("patroni_replica.json"))
    assert replica.role == "replica" and replica.replication_state == "streaming"
    assert replica.system_identifier == primary.system_identifier


def test_leader_and_restart_checks() -> None:
    view = parse_cluster(sample("cluster_sync.json"))
    assert check_leader_is(view, "node1").ok
    assert check_leader_is(view, "node2").reason == "patroni leader is node1, expected node2"
    pending = check_no_pending_restart(view)
    assert not pending.ok
    assert pending.reason == (
        "restart pending on node1 (cluster_name: ->cms; wal_log_hints: off->on)")


def test_config_drift_against_sample() -> None:
    observed = parse_config(sample("config.json"))
    desired = json.loads(sample("config.json"))
    assert config_drift(desired, observed) == []
    desired["ttl"] = 30
    desired["postgresql"]["parameters"]["max_slot_wal_keep_size"] = "8GB"
    assert config_drift(desired, observed) == [
        "ttl: 20 != 30", "postgresql.parameters.max_slot_wal_keep_size: '4GB' != '8GB'"]


def test_builders() -> None:
    node = PatroniNode("node1", "10.99.0.11")
    assert rest_get_argv(node, "/cluster") == [
        "curl", "-sS", "--max-time", "3", "-o", "-", "-w", "\n%{http_code}",
        "http://10.99.0.11:8008/cluster"]
    assert split_curl_status('{"a": 1}\n503') == (503, '{"a": 1}')
    with pytest.raises(StepFailed):
        split_curl_status("curl: (7) Failed to connect")
    assert list_argv("/etc/hapair/patroni.yml") == [
        "patronictl", "-c", "/etc/hapair/patroni.yml", "list", "-f", "json"]
    assert switchover_argv("/p.yml", "node1", "node2") == [
        "patronictl", "-c", "/p.yml", "switchover", "--leader", "node1", "--candidate", "node2",
        "--force"]


def test_bad_json() -> None:
    with pytest.raises(StepFailed, match="not JSON"):
        parse_cluster("<html>")
    with pytest.raises(StepFailed, match="members list"):
        parse_cluster("{}")
