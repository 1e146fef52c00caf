"""Scripted snapshots for the monitor's tests: the healthy lab pair (observe_fakes) led by
either node, with the PostgreSQL primary and the Redis master chosen separately."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "observe"))
from observe_fakes import (  # noqa: E402
    ADDR,
    NOW,
    cluster,
    host,
    node,
    pair,
    pg_primary,
    pg_replica,
    router,
    sentinel,
)

from hapair.observe.snapshot import (  # noqa: E402
    Fact,
    LeaderKey,
    NodeSnapshot,
    PairSnapshot,
    PatroniNode,
    RedisState,
    ReplicationRow,
    SlotState,
)

__all__ = ["NOW", "led_by", "no_leader", "pg_primary"]


def _other(name: str) -> str:
    return "node2" if name == "node1" else "node1"


def led_by(pg: str = "node1", redis: str | None = None, at: float = 0.0) -> PairSnapshot:
    """A healthy pair whose PostgreSQL primary (and Patroni leader) is `pg` and whose Redis
    master is `redis` (default: the same node), taken `at` seconds after NOW."""
    redis = redis or pg
    standby = _other(pg)
    rows = (ReplicationRow(standby, ADDR[standby], "streaming", "sync", 0, None),)
    slots = (SlotState(standby, "physical", True, "reserved", 0),)

    def one(name: str) -> NodeSnapshot:
        primary = name == pg
        master = name == redis
        return node(
            name,
            postgres=Fact(pg_primary(rows=rows, slots=slots) if primary else pg_replica()),
            patroni=Fact(PatroniNode("primary" if primary else "replica",
                                     "running" if primary else "streaming", 1, False)),
            redis=Fact(RedisState("master", None, None, False, False, 1) if master else
                       RedisState("slave", f"{ADDR[redis]}:6379", redis, True, False, 0)),
            router=Fact(router(pg=pg, redis=redis)),
            vip=Fact(primary),
        )

    hosts = tuple(host(h, sentinel=Fact(sentinel(redis))) for h in ("node1", "node2", "witness"))
    s = pair(nodes=(one("node1"), one("node2")), hosts=hosts, patroni=Fact(cluster(pg)),
             leader_key=Fact(LeaderKey(pg, 0x1234, 17, 20, pg)))
    return replace(s, taken_at=NOW + at)


def no_leader(at: float = 0.0) -> PairSnapshot:
    """The middle of a failover: no leader key, no writable node, no Redis master."""
    s = led_by("node1", at=at)
    nodes = tuple(replace(n, postgres=Fact(pg_replica()),
                          redis=Fact(RedisState("slave", None, None, False, False, 0)))
                  for n in s.nodes)
    return replace(s, nodes=nodes, leader_key=Fact(error="key not found"),
                   patroni=Fact(error="no leader"))
