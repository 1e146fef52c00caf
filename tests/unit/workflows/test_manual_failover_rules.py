"""`failover --to NODE`: every refusal and every go-ahead, from frozen facts (table-driven)."""

from dataclasses import replace

import pytest

from hapair.workflows.ops.manual_rules import (
    Choices,
    Facts,
    PgSide,
    decide,
    fmt_lsn,
    parse_lsn,
)

STANDBY = PgSide(True, True, 0x3000060)
# node1 crashed, the witness is gone too: no etcd majority, nobody holds the leader key.
BASE = Facts(target="node2", old="node1", data_nodes=("node1", "node2"), durability="sync",
             witness="witness", etcd_quorum=False, patroni_leader=None, target_pg=STANDBY,
             old_reachable=False, old_pg=PgSide(False), sync_key=("node1", "node2"))
DOWN = Choices(old_primary_is_down=True)
LOSS = Choices(allow_data_loss=True, old_primary_is_down=True)

REFUSALS = {
    "not a data node": (replace(BASE, target="witness"), DOWN,
                        "witness is not a data node (node1, node2)"),
    "automatic failover is on": (replace(BASE, etcd_quorum=True, patroni_leader="node1"), DOWN,
                                 "use `hapair switchover --to node2`"),
    "already primary": (replace(BASE, target_pg=PgSide(True, False, 5)), DOWN,
                        "node2 is already a writable primary"),
    "target PostgreSQL down": (replace(BASE, target_pg=PgSide(False)), DOWN,
                               "node2's PostgreSQL is not running as a standby"),
    "old primary unreachable, no statement": (BASE, Choices(),
                                              "Power it off, then say so with "
                                              "--old-primary-is-down"),
    "sync key names nobody": (replace(BASE, sync_key=("node1", None)), DOWN,
                              "names no standby as synchronous standby, not node2; commits "
                              "after 0/3000060 may be lost"),
    "async, old position unknown": (replace(BASE, durability="async"), DOWN,
                                    "async replication and node1's position is unknown"),
    "old primary reachable and ahead": (
        replace(BASE, old_reachable=True, old_pg=PgSide(True, False, 0x3000160)), Choices(),
        "WAL 0/3000060..0/3000160 (256 bytes) not on node2"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refusals_name_their_reason(case: str) -> None:
    facts, choices, reason = REFUSALS[case]
    d = decide(facts, choices)
    assert not d.ok and reason in (d.refused or "")


GO = {
    # (facts, choices) → (mode, in_sync, fence, loss bytes, loss text contains)
    "sync standby named in /sync, operator fenced": (BASE, DOWN, "forced-dcs", True,
                                                     "operator statement", 0, ""),
    "reachable old primary caught up (async)": (
        replace(BASE, durability="async", old_reachable=True,
                old_pg=PgSide(True, False, 0x3000060)), Choices(), "forced-dcs", True, "stop", 0,
        ""),
    "reachable old primary ahead, loss accepted": (
        replace(BASE, old_reachable=True, old_pg=PgSide(True, False, 0x3000160)),
        Choices(allow_data_loss=True), "forced-dcs", False, "stop", 256, "256 bytes"),
    "not in /sync, loss accepted: window named": (
        replace(BASE, sync_key=("node1", None)), LOSS, "forced-dcs", False,
        "operator statement", None, "after 0/3000060 may be lost"),
    "etcd has quorum but no leader: Patroni's own failover": (
        replace(BASE, etcd_quorum=True), DOWN, "patroni", True, "operator statement", 0, ""),
    "old primary reachable but stopped: /sync decides": (
        replace(BASE, old_reachable=True), Choices(), "forced-dcs", True, "stop", 0, ""),
}


@pytest.mark.parametrize("case", GO)
def test_go_ahead(case: str) -> None:
    facts, choices, mode, in_sync, fence, loss_bytes, loss = GO[case]
    d = decide(facts, choices)
    assert d.ok, d.refused
    assert (d.mode, d.in_sync, d.fence, d.loss_bytes) == (mode, in_sync, fence, loss_bytes)
    assert loss in d.loss and (d.loss == "") == in_sync


@pytest.mark.parametrize(("text", "lsn"), [("0/3000060", 0x3000060), ("1/0", 1 << 32),
                                           ("", None), ("garbage", None)])
def test_lsn_round_trip(text: str, lsn: int | None) -> None:
    assert parse_lsn(text) == lsn
    if lsn is not None:
        assert fmt_lsn(lsn) == text.upper()
