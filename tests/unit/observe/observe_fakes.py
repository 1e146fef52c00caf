"""Builders of PairSnapshots for the pure tests: `healthy()` is the lab pair after the
upgrade (node1 primary, node2 sync standby, witness, VIP on node1); tests change one thing
with `dataclasses.replace` through the helpers below."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hapair.components.patroni.probe import ClusterView, Member
from hapair.components.router.stats import ServerStat
from hapair.observe.snapshot import (
    BackupSeen,
    Disk,
    EtcdMemberState,
    Fact,
    HostSnapshot,
    HttpResult,
    LeaderKey,
    NodeSnapshot,
    PairSnapshot,
    PatroniNode,
    PgBouncerState,
    PgStatus,
    RedisState,
    ReplicationRow,
    SentinelState,
    SlotState,
    derive_replication,
)

NOW = 1_750_000_000.0
GiB = 1024**3
ADDR = {"node1": "10.99.0.11", "node2": "10.99.0.12", "witness": "10.99.0.13"}


def pg_primary(*, rows: tuple[ReplicationRow, ...] | None = None,
               slots: tuple[SlotState, ...] | None = None, timeline: int = 1) -> PgStatus:
    if rows is None:
        rows = (ReplicationRow("node2", ADDR["node2"], "streaming", "sync", 0, None),)
    if slots is None:
        slots = (SlotState("node2", "physical", True, "reserved", 0),)
    return PgStatus(False, timeline, 0x3000000, None, None, None, None, "node2", rows, slots,
                    150018)


def pg_replica(*, replay: int = 0x3000000, delay: float | None = 0.0,
               timeline: int = 1) -> PgStatus:
    return PgStatus(True, timeline, None, replay, replay, "streaming", delay, "", (), (), 150018)


def router(pg: str = "node1", redis: str = "node1") -> tuple[ServerStat, ...]:
    out = []
    for n in ("node1", "node2"):
        out.append(ServerStat("postgres", n, "UP" if n == pg else "DOWN", "L7OK", "", 0))
        out.append(ServerStat(f"redis_{n}", n, "UP" if n == redis else "DOWN", "L7OK", "", 0))
    return tuple(out)


def http(node: str, status: int = 200) -> tuple[HttpResult, ...]:
    a = ADDR[node]
    return (HttpResult("backend", f"http://{a}:8000/health/", status),
            HttpResult("frontend", f"http://{a}:3000/api/health", status),
            HttpResult("lb", f"http://{a}:80/health/", status))


def node(name: str, **kw: Any) -> NodeSnapshot:
    primary = name == "node1"
    base = NodeSnapshot(
        name, ADDR[name],
        postgres=Fact(pg_primary() if primary else pg_replica()),
        patroni=Fact(PatroniNode("primary" if primary else "replica",
                                 "running" if primary else "streaming", 1, False)),
        disk=Fact(Disk("/var/lib/postgresql/15/main", 100 * GiB, 60 * GiB)),
        redis=Fact(RedisState("master", None, None, False, False, 1) if primary else
                   RedisState("slave", f"{ADDR['node1']}:6379", "node1", True, False, 0)),
        router=Fact(router()),
        pgbouncer=Fact(PgBouncerState("cms", False, False)),
        http=http(name),
        vip=Fact(primary),
        backups=Fact((BackupSeen("logical", "20250615T020000Z-logical", NOW - 7200,
                                 NOW - 7000, True),) if not primary else ()),
    )
    return replace(base, **kw)


def etcd(name: str, healthy: bool = True) -> EtcdMemberState:
    ids = {"node1": 11, "node2": 12, "witness": 13}
    return EtcdMemberState(healthy, "" if healthy else "context deadline exceeded",
                           ids[name], 13, 4, "3.4.23")  # leader on the witness


def sentinel(master: str = "node1", ok: bool = True) -> SentinelState:
    msg = ("OK 3 usable Sentinels. Quorum and failover authorization can be reached" if ok
           else "NOQUORUM 1 usable Sentinels. Not enough available Sentinels to reach the "
                "majority and authorize a failover")
    return SentinelState(f"{ADDR[master]}:6379", master, ok, 3 if ok else 1, msg, 2)


def host(name: str, **kw: Any) -> HostSnapshot:
    return replace(HostSnapshot(name, Fact(True), Fact(etcd(name)), Fact(sentinel())), **kw)


def cluster(leader: str = "node1", paused: bool = False) -> ClusterView:
    other = "node2" if leader == "node1" else "node1"
    return ClusterView("cms", (Member(leader, "leader", "running", timeline=1),
                               Member(other, "sync_standby", "streaming", timeline=1,
                                      lag_bytes=0)), paused=paused)


def pair(nodes: tuple[NodeSnapshot, ...] | None = None, **kw: Any) -> PairSnapshot:
    """A snapshot; replication is derived from the nodes as gather() does."""
    nodes = nodes or (node("node1"), node("node2"))
    hosts = kw.pop("hosts", None) or (host("node1"), host("node2"), host("witness"))
    base = PairSnapshot(
        cluster="cms", durability="sync", taken_at=NOW, duration_s=0.4, witness="witness",
        hosts=hosts, nodes=nodes, patroni=Fact(cluster()),
        leader_key=Fact(LeaderKey("node1", 0x1234, 17, 20, "node1")),
        front_door=HttpResult("front_door", "http://10.99.0.10:80/health/", 200),
        front_door_kind="vip", vip="10.99.0.10", replication=derive_replication(nodes))
    return replace(base, **kw)


def healthy() -> PairSnapshot:
    return pair()


def with_node(s: PairSnapshot, name: str, **kw: Any) -> PairSnapshot:
    """`s` with one node changed (replication re-derived)."""
    nodes = tuple(replace(n, **kw) if n.name == name else n for n in s.nodes)
    return replace(s, nodes=nodes, replication=derive_replication(nodes))


def with_host(s: PairSnapshot, name: str, **kw: Any) -> PairSnapshot:
    return replace(s, hosts=tuple(replace(h, **kw) if h.name == name else h for h in s.hosts))
