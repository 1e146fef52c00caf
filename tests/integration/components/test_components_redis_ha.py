"""Real Redis master + replica + 3 Sentinels from rendered configs, and the real local router
(HAProxy) in front: CKQUORUM, get-master-addr-by-name, a SENTINEL FAILOVER, and the router
following the master. Passwords go to redis-py, never into argv. Ports 18520-18533."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from hapair.components.common import Endpoint, Plain
from hapair.components.redis import (
    INFO_REPLICATION,
    RedisCommand,
    RedisParams,
    SentinelParams,
    check_ckquorum,
    check_is_master,
    check_peers_up,
    check_replica_of,
    ckquorum,
    get_master_addr,
    parse_ckquorum,
    parse_info_replication,
    parse_master_addr,
    parse_sentinel_entries,
    redis_argv,
    render_redis_config,
    render_sentinel_config,
    replicaof,
    sentinel_argv,
    sentinel_failover,
    sentinel_replicas,
    sentinel_sentinels,
)
from hapair.components.router import (
    RouterBackend,
    RouterParams,
    RouterSentinel,
    check_single_up,
    parse_show_stat,
    redis_proxies,
    render_router_config,
    router_argv,
    show_stat_argv,
)

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("haproxy") is None,
    reason="redis-server and haproxy needed",
)

PW = Plain('redis "pw" yes')  # quotes and a YAML-ish word: quoting is exercised for real
SPW = Plain("sentinel-pw")
NAME = "cms-cache"


def client(port: int, password: Plain = PW) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, password=password.reveal(),
                       decode_responses=True, socket_timeout=5)


def send(conn: redis.Redis, cmd: RedisCommand) -> object:
    return conn.execute_command(*cmd.words)


def start_pair(procs, workdir: Path, write_file, ports: tuple[int, int]) -> None:
    master = RedisParams("node1", "127.0.0.1", PW, port=ports[0], bind_loopback=False,
                         config_path=f"{workdir}/r{ports[0]}/redis.conf",
                         data_dir=f"{workdir}/r{ports[0]}", appendonly=False)
    replica = RedisParams("node2", "127.0.0.1", PW, master=Endpoint("127.0.0.1", ports[0]),
                          port=ports[1], bind_loopback=False, appendonly=False,
                          config_path=f"{workdir}/r{ports[1]}/redis.conf",
                          data_dir=f"{workdir}/r{ports[1]}")
    for p in (master, replica):
        write_file(render_redis_config(p))
        procs.spawn(redis_argv(p), f"redis-{p.port}")


def start_router(procs, workdir: Path, write_file, redis_ports: tuple[int, int],
                 router_port: int, sentinel: RouterSentinel | None) -> RouterParams:
    backends = tuple(RouterBackend(n, "127.0.0.1", pg_port=18512 + i, patroni_port=18514 + i,
                                   redis_port=redis_ports[i])
                     for i, n in enumerate(["node1", "node2"]))
    params = RouterParams("node1", backends, PW, sentinel=sentinel, pg_port=router_port + 1,
                          redis_port=router_port, config_path=f"{workdir}/router-{router_port}.cfg",
                          stats_socket=f"{workdir}/router-{router_port}.sock", user=None,
                          group=None, inter_ms=500, fastinter_ms=250)
    write_file(render_router_config(params))
    procs.spawn(router_argv(params), f"router-{router_port}")
    return params


def router_check(params: RouterParams):
    out = subprocess.run(show_stat_argv(params.stats_socket), capture_output=True, text=True,
                         timeout=10, check=True).stdout
    return check_single_up(parse_show_stat(out), redis_proxies(params), "redis")


def run_id(conn: redis.Redis) -> str:
    return conn.info("server")["run_id"]


def test_sentinels_failover_and_router_follows_sentinel(
        procs, workdir: Path, wait: Callable[..., object],
        write_file: Callable[..., Path]) -> None:
    start_pair(procs, workdir, write_file, (18520, 18521))
    for i, name in enumerate(["node1", "node2", "witness"]):
        params = SentinelParams(name, "127.0.0.1", NAME, Endpoint("127.0.0.1", 18520), PW, SPW,
                                port=18522 + i, bind_loopback=False, down_after_ms=3000,
                                config_path=f"{workdir}/s{i}/sentinel.conf",
                                data_dir=f"{workdir}/s{i}")
        write_file(render_sentinel_config(params))
        procs.spawn(sentinel_argv(params), f"sentinel-{name}")
    node1, node2, s1 = client(18520), client(18521), client(18522, SPW)

    wait(lambda: check_replica_of(parse_info_replication(send(node2, INFO_REPLICATION)),
                                  Endpoint("127.0.0.1", 18520), "node2").ok, 30, "replica link")
    wait(lambda: parse_ckquorum(send(s1, ckquorum(NAME))).usable == 3, 60, "3 sentinels")
    quorum = parse_ckquorum(send(s1, ckquorum(NAME)))
    assert check_ckquorum(quorum, 3).reason == "Sentinel quorum reachable: 3 usable Sentinels"
    assert parse_master_addr(send(s1, get_master_addr(NAME))) == Endpoint("127.0.0.1", 18520)
    assert check_peers_up(parse_sentinel_entries(send(s1, sentinel_sentinels(NAME))), 2,
                          "other sentinels").ok
    # Sentinel discovers replicas from the master's INFO (every 10 s): wait, bounded
    replicas = wait(lambda: parse_sentinel_entries(send(s1, sentinel_replicas(NAME))), 30,
                    "sentinel sees the replica")
    assert [(r.ip, r.port) for r in replicas] == [("127.0.0.1", 18521)]
    wait(lambda: check_is_master(parse_info_replication(send(node1, INFO_REPLICATION)), "node1",
                                 min_replicas=1).ok, 30, "node1 master with an online replica")

    router = start_router(procs, workdir, write_file, (18520, 18521), 18530,
                          RouterSentinel(Endpoint("127.0.0.1", 18522), NAME, SPW))
    wait(lambda: router_check(router).reason == "router redis -> node1", 30, "router -> node1")
    app = client(18530)
    app.set("session:1", "before")
    assert run_id(app) == run_id(node1)

    assert send(s1, sentinel_failover(NAME)) == "OK"
    wait(lambda: parse_master_addr(send(s1, get_master_addr(NAME))) == Endpoint("127.0.0.1",
                                                                                18521),
         30, "sentinel names node2")
    # The router follows Sentinel, not merely role:master (the old master may still claim it)
    wait(lambda: router_check(router).reason == "router redis -> node2", 30, "router -> node2")
    app = client(18530)
    assert run_id(app) == run_id(node2)
    app.set("session:2", "after")
    assert check_is_master(parse_info_replication(send(node2, INFO_REPLICATION)), "node2").ok
    wait(lambda: check_replica_of(parse_info_replication(send(node1, INFO_REPLICATION)),
                                  Endpoint("127.0.0.1", 18521), "node1").ok, 60,
         "sentinel turns node1 into a replica of node2")
    wait(lambda: node1.get("session:2") == "after", 10, "write replicated to node1")
    assert router_check(router).ok
    assert "MASTER <-> REPLICA sync: Finished with success" in procs.log("redis-18520")


def test_router_follows_replicaof_switch_without_sentinel(
        procs, workdir: Path, wait: Callable[..., object],
        write_file: Callable[..., Path]) -> None:
    start_pair(procs, workdir, write_file, (18525, 18526))
    node1, node2 = client(18525), client(18526)
    wait(lambda: parse_info_replication(send(node2, INFO_REPLICATION)).master_link_up, 30,
         "replica link")
    router = start_router(procs, workdir, write_file, (18525, 18526), 18532, None)
    wait(lambda: router_check(router).reason == "router redis -> node1", 30, "router -> node1")
    assert run_id(client(18532)) == run_id(node1)

    send(node2, replicaof(None))
    send(node1, replicaof(Endpoint("127.0.0.1", 18526)))
    wait(lambda: router_check(router).reason == "router redis -> node2", 30, "router -> node2")
    app = client(18532)
    assert run_id(app) == run_id(node2)
    app.set("k", "v")  # a replica would answer READONLY
    assert parse_info_replication(send(node1, INFO_REPLICATION)).role == "slave"
