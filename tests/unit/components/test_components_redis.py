import json
from pathlib import Path

import pytest

from hapair.components.common import Endpoint, Plain
from hapair.components.redis import (
    INFO_REPLICATION,
    QuorumStatus,
    RedisParams,
    ReplicationInfo,
    SentinelParams,
    check_ckquorum,
    check_is_master,
    check_peers_up,
    check_replica_of,
    check_single_master,
    ckquorum,
    config_set_secret,
    get_master_addr,
    ha_settings_commands,
    parse_ckquorum,
    parse_info_replication,
    parse_master_addr,
    parse_sentinel_entries,
    parse_sentinel_master,
    redis_argv,
    redis_quote,
    render_redis_config,
    render_sentinel_config,
    replicaof,
    sentinel_argv,
)
from hapair.errors import StepFailed, UsageError

DATA = Path(__file__).parent / "data" / "redis"
PW = Plain("redis-pw")
MASTER = Endpoint("10.99.0.11", 6379)


def lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


def test_replica_config_lines() -> None:
    f = render_redis_config(RedisParams("node2", "10.99.0.12", PW, master=MASTER))
    assert (f.path, f.mode, f.owner, f.secret) == ("/etc/redis/redis.conf", 0o600, "redis", True)
    assert lines(f.content) == [
        "bind 127.0.0.1 10.99.0.12",
        "port 6379",
        "protected-mode yes",
        "daemonize no",
        "dir /var/lib/redis",
        "dbfilename dump.rdb",
        "appendonly yes",
        "appendfsync everysec",
        'requirepass "redis-pw"',
        'masterauth "redis-pw"',
        "replica-read-only yes",
        "replica-serve-stale-data yes",
        "replica-announce-ip 10.99.0.12",
        "replica-announce-port 6379",
        "repl-diskless-sync yes",
        "replicaof 10.99.0.11 6379",
    ]


def test_master_config_with_min_replicas() -> None:
    text = render_redis_config(RedisParams("node1", "10.99.0.11", PW, min_replicas_to_write=1,
                                           min_replicas_max_lag=5)).content
    assert "replicaof" not in text
    assert "min-replicas-to-write 1\nmin-replicas-max-lag 5\n" in text


@pytest.mark.parametrize(
    ("value", "quoted"),
    [("plain", '"plain"'), ('a "b" \\c', '"a \\"b\\" \\\\c"'), ("tab\there", '"tab\\x09here"'),
     ("é", '"\\xc3\\xa9"')],
)
def test_redis_quote(value: str, quoted: str) -> None:
    assert redis_quote(value) == quoted


def test_sentinel_config_lines() -> None:
    p = SentinelParams("witness", "10.99.0.13", "cms-cache", MASTER, PW, Plain("sent-pw"))
    f = render_sentinel_config(p)
    assert (f.path, f.mode, f.secret) == ("/etc/redis/sentinel.conf", 0o600, True)
    assert lines(f.content) == [
        "port 26379",
        "bind 127.0.0.1 10.99.0.13",
        "protected-mode yes",
        "daemonize no",
        "dir /var/lib/redis",
        "sentinel announce-ip 10.99.0.13",
        "sentinel announce-port 26379",
        "sentinel resolve-hostnames no",
        'requirepass "sent-pw"',
        "sentinel monitor cms-cache 10.99.0.11 6379 2",
        'sentinel auth-pass cms-cache "redis-pw"',
        "sentinel down-after-milliseconds cms-cache 4000",
        "sentinel failover-timeout cms-cache 10000",
        "sentinel parallel-syncs cms-cache 1",
    ]
    assert "writable" in f.content  # the file says why it must stay writable
    assert sentinel_argv(p) == ["redis-server", "/etc/redis/sentinel.conf", "--sentinel"]
    assert redis_argv(RedisParams("n", "10.0.0.1", PW)) == ["redis-server", "/etc/redis/redis.conf"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"quorum": 1}, "isolated sentinel"), ({"down_after_ms": 500}, "1000-30000"),
     ({"failover_timeout_ms": 5000}, "2 x down_after_ms"), ({"master_name": "a b"}, "master_name")],
)
def test_sentinel_invalid(kwargs: dict, message: str) -> None:
    base = dict(name="node1", address="10.99.0.11", master_name="cms-cache", master=MASTER,
                redis_password=PW, sentinel_password=PW)
    with pytest.raises(UsageError, match=message):
        SentinelParams(**{**base, **kwargs})


def test_replica_of_itself_refused() -> None:
    with pytest.raises(UsageError, match="itself"):
        RedisParams("node1", "10.99.0.11", PW, master=MASTER)


def test_commands_are_words_and_hide_secrets() -> None:
    assert INFO_REPLICATION.words == ("INFO", "replication")
    assert ckquorum("cms-cache").words == ("SENTINEL", "CKQUORUM", "cms-cache")
    assert get_master_addr("m").words == ("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "m")
    assert replicaof(None).words == ("REPLICAOF", "NO", "ONE")
    assert replicaof(MASTER).words == ("REPLICAOF", "10.99.0.11", "6379")
    cmd = config_set_secret("masterauth", PW)
    assert cmd.words[-1] == "redis-pw"
    assert cmd.describe() == "CONFIG SET masterauth ***" and "redis-pw" not in repr(cmd)
    described = [c.describe() for c in ha_settings_commands("10.99.0.11", 6379, PW)]
    assert described == ["CONFIG SET masterauth ***",
                         "CONFIG SET replica-announce-ip 10.99.0.11",
                         "CONFIG SET replica-announce-port 6379",
                         "CONFIG SET replica-read-only yes", "CONFIG REWRITE"]


@pytest.mark.parametrize("form", ["txt", "redispy.json"])
def test_info_replication_samples(form: str) -> None:
    def load(name: str) -> object:
        text = (DATA / f"{name}_{form}" if form != "txt" else DATA / f"{name}.txt").read_text()
        return json.loads(text) if form.endswith("json") else text

    master = parse_info_replication(load("info_master"))
    assert master.is_master and master.connected_replicas == 1
    assert master.replicas[0].ip == "127.0.0.1" and master.replicas[0].port == 18521
    assert master.replicas[0].state == "online" and master.replicas[0].lag == 0
    replica = parse_info_replication(load("info_replica"))
    assert replica.role == "slave" and replica.master == Endpoint("127.0.0.1", 18520)
    assert replica.master_link_up and not replica.master_sync_in_progress
    assert check_is_master(master, "node1", min_replicas=1).reason == (
        "node1 is master with 1 online replica(s)")
    assert check_replica_of(replica, Endpoint("127.0.0.1", 18520), "node2").ok
    assert not check_replica_of(replica, MASTER, "node2").ok
    assert not check_is_master(replica, "node2").ok
    assert check_single_master({"node1": master, "node2": replica}).reason == (
        "Redis master is node1")
    assert not check_single_master({"node1": master, "node2": master}).ok


def test_info_bytes_and_garbage() -> None:
    info = parse_info_replication(b"# Replication\r\nrole:master\r\nconnected_slaves:0\r\n")
    assert info.is_master and info.replicas == ()
    with pytest.raises(StepFailed, match="no role"):
        parse_info_replication("ERR unknown")


def test_replica_link_down_reason() -> None:
    info = ReplicationInfo("slave", MASTER, master_link_up=False, master_sync_in_progress=True)
    assert check_replica_of(info, MASTER, "node2").reason == (
        "node2: link to master 10.99.0.11:6379 is syncing")


def test_ckquorum_sample_and_error() -> None:
    replies = json.loads((DATA / "ckquorum.json").read_text())
    ok = parse_ckquorum(replies["ok"])
    assert ok == QuorumStatus(True, 3, replies["ok"])
    assert check_ckquorum(ok, 3).reason == "Sentinel quorum reachable: 3 usable Sentinels"
    assert not check_ckquorum(QuorumStatus(True, 2, "OK 2 usable Sentinels."), 3).ok
    no = parse_ckquorum("NOQUORUM 1 usable Sentinels. Not enough available Sentinels to reach "
                        "the specified quorum for this master")
    assert not no.ok and no.usable == 1
    assert check_ckquorum(no, 3).reason.startswith("Sentinel quorum cannot be reached: NOQUORUM 1")
    assert not parse_ckquorum(replies["unknown_master_error"]).ok


def test_master_addr() -> None:
    addr = json.loads((DATA / "master_addr.json").read_text())
    assert parse_master_addr(addr) == Endpoint("127.0.0.1", 18520)
    assert parse_master_addr([b"10.99.0.12", b"6379"]) == Endpoint("10.99.0.12", 6379)
    assert parse_master_addr(None) is None


def test_sentinel_entries_samples() -> None:
    replicas = parse_sentinel_entries(json.loads((DATA / "sentinel_replicas.json").read_text()))
    assert [(r.ip, r.port, r.master_link_status) for r in replicas] == [
        ("127.0.0.1", 18521, "ok")]
    sentinels = parse_sentinel_entries(json.loads((DATA / "sentinel_sentinels.json").read_text()))
    assert sorted(s.port for s in sentinels) == [18523, 18524]
    assert check_peers_up(sentinels, 2, "other sentinels").reason == "2 other sentinels up"
    master = parse_sentinel_master(json.loads((DATA / "sentinel_master.json").read_text()))
    assert master.name == "cms-cache" and master.flags == frozenset({"master"})


def test_sentinel_entries_resp2_flat_and_down_flags() -> None:
    flat = [["name", "x", "ip", "10.99.0.13", "port", "26379", "flags", "s_down,sentinel"]]
    (peer,) = parse_sentinel_entries(flat)
    assert peer.down and peer.ip == "10.99.0.13"
    check = check_peers_up([peer], 2, "other sentinels")
    assert check.reason == "0/2 other sentinels up; down: 10.99.0.13:26379 (s_down,sentinel)"
