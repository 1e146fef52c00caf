"""Derived replication (byte lag and replay delay, ORIGINAL_DEFECTS #15) and the JSON form of
a snapshot."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from observe_fakes import ADDR, node, pair, pg_primary, pg_replica

from hapair.observe.snapshot import (
    Fact,
    ReplicationRow,
    derive_replication,
    observe,
    plain,
    redact_tree,
)


def row(lag: int | None = 0, delay: float | None = None, state: str = "streaming",
        sync: str = "sync", name: str = "node2", addr: str = "") -> ReplicationRow:
    return ReplicationRow(name, addr, state, sync, lag, delay)


@pytest.mark.parametrize(
    ("primary_rows", "standby", "expect"),
    [
        # PostgreSQL's own numbers from the primary
        ((row(4096, 0.25),), pg_replica(),
         ("streaming", "sync", 4096, 0.25, "pg_stat_replication on node1")),
        # idle primary: replay_lag NULL, nothing outstanding -> 0 s, never "now - last replay"
        ((row(0, None),), pg_replica(delay=None),
         ("streaming", "sync", 0, 0.0, "pg_stat_replication on node1")),
        # WAL outstanding but no measurement yet: the standby's own estimate
        ((row(8192, None),), pg_replica(delay=1.5),
         ("streaming", "sync", 8192, 1.5, "pg_stat_replication on node1; delay estimated on "
                                          "node2")),
        # matched by address when application_name differs
        ((row(10, 0.1, name="walreceiver", addr=ADDR["node2"]),), pg_replica(),
         ("streaming", "sync", 10, 0.1, "pg_stat_replication on node1")),
        # not connected: LSNs of both nodes (primary at 0x3000000)
        ((), pg_replica(replay=0x3000000 - 100, delay=None),
         ("not connected", None, 100, None, "LSNs of node1 and node2")),
    ],
)
def test_derive_replication(primary_rows: tuple[ReplicationRow, ...], standby: object,
                            expect: tuple[object, ...]) -> None:
    nodes = (node("node1", postgres=Fact(pg_primary(rows=primary_rows))),
             node("node2", postgres=Fact(standby)))
    (r,) = derive_replication(nodes)
    assert (r.state, r.sync_state, r.lag_bytes, r.replay_delay_s, r.source) == expect
    assert (r.standby, r.primary) == ("node2", "node1")


def test_derive_replication_standby_down_and_no_primary() -> None:
    down = node("node2", postgres=Fact(error="psql: connection refused"))
    alone = node("node1", postgres=Fact(pg_primary(rows=())))
    (r,) = derive_replication((alone, down))
    assert (r.state, r.lag_bytes, r.replay_delay_s) == ("unknown", None, None)
    # the primary's pg_stat_replication is authoritative even when the standby's psql fails
    (r,) = derive_replication((node("node1"), down))
    assert (r.state, r.lag_bytes) == ("streaming", 0)
    nodes = (node("node1", postgres=Fact(error="refused")), node("node2"))
    out = derive_replication(nodes)
    assert [(x.standby, x.primary, x.state) for x in out] == [
        ("node1", None, "unknown"), ("node2", None, "no primary (streaming)")]


def test_two_primaries_have_no_standby() -> None:
    nodes = (node("node1"), node("node2", postgres=Fact(pg_primary(rows=()))))
    assert derive_replication(nodes) == ()
    assert pair(nodes).primary is None and pair(nodes).writable == ["node1", "node2"]


def test_to_dict_is_plain_json_with_errors_inline() -> None:
    s = pair((node("node1", postgres=Fact(pg_primary(rows=()))),
              node("node2", postgres=Fact(error="psql: refused"))))
    doc = json.loads(json.dumps(s.to_dict()))
    n1, n2 = doc["nodes"]
    assert n1["role"] == "primary" and n2["role"] == "down"
    assert n2["postgres"] == {"error": "psql: refused"}
    assert n1["disk"]["free_ratio"] == 0.6
    assert doc["primary"] == "node1" and doc["patroni_leader"] == "node1"
    assert doc["leader_key"]["expires_at"] == s.taken_at + 17
    assert doc["replication"][0]["state"] == "unknown"
    assert n1["router"][0] == {"proxy": "postgres", "server": "node1", "status": "UP",
                               "check_status": "L7OK", "last_check": "", "current_sessions": 0}


def test_observe_turns_exceptions_into_one_line_facts() -> None:
    def boom() -> int:
        raise OSError("line one\nline two")

    assert observe(boom) == Fact(error="line one line two")
    assert observe(lambda: 3) == Fact(3)
    assert not Fact().ok and Fact(False).ok


def test_redact_tree() -> None:
    doc = {"a": ["x secret y", {"b": "secret"}], "n": 3, "k": None}
    assert redact_tree(doc, lambda s: s.replace("secret", "***")) == {
        "a": ["x *** y", {"b": "***"}], "n": 3, "k": None}
    assert plain(replace(node("node1"), http=()))["http"] == []
