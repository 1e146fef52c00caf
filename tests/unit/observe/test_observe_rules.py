"""Warnings and named checks, table-driven over snapshots that differ from the healthy pair
in one way each. Every case asserts the exact failing check names and warning codes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from observe_fakes import (
    GiB,
    cluster,
    etcd,
    healthy,
    host,
    node,
    pair,
    pg_primary,
    pg_replica,
    router,
    sentinel,
    with_host,
    with_node,
)

from hapair.components.patroni.probe import ClusterView
from hapair.observe import Limits, PairSnapshot, evaluate, failing, run_checks
from hapair.observe.snapshot import (
    Disk,
    Fact,
    HttpResult,
    LeaderKey,
    PgBouncerState,
    RedisState,
    ReplicationRow,
    SlotState,
)


def failed(s: PairSnapshot, limits: Limits | None = None) -> list[str]:
    return [c.name for c in failing(run_checks(s, limits))]


def codes(s: PairSnapshot, limits: Limits | None = None) -> list[str]:
    return [w.code for w in evaluate(s, limits)]


def test_healthy_pair_passes_everything() -> None:
    s = healthy()
    checks = run_checks(s)
    assert failing(checks) == [] and evaluate(s) == []
    assert len({c.name for c in checks}) == len(checks)  # names are unique


def no_standby() -> PairSnapshot:
    s = with_node(healthy(), "node1", postgres=Fact(pg_primary(rows=())))
    return with_node(s, "node2", postgres=Fact(error="psql: could not connect"))


CASES: dict[str, tuple[Callable[[], PairSnapshot], list[str], list[str]]] = {
    "split brain postgres": (
        lambda: with_node(healthy(), "node2", postgres=Fact(pg_primary(rows=()))),
        ["postgres.primary", "patroni.leader", "router.node1.postgres",
         "router.node2.postgres"],  # router.* expect a single primary
        ["split_brain_postgres"]),
    "standby down": (
        no_standby,
        ["postgres.node2", "postgres.standby.node2", "postgres.sync"], ["sync_degraded"]),
    "async standby in sync mode": (
        lambda: with_node(healthy(), "node1", postgres=Fact(pg_primary(rows=(
            ReplicationRow("node2", "", "streaming", "async", 0, None),)))),
        ["postgres.sync"], ["sync_degraded"]),
    "lagging standby": (
        lambda: with_node(healthy(), "node1", postgres=Fact(pg_primary(rows=(
            ReplicationRow("node2", "", "streaming", "sync", 64 * 1024**2, 2.0),)))),
        ["postgres.standby.node2"], []),
    "inactive slot holding WAL": (
        lambda: with_node(healthy(), "node1", postgres=Fact(pg_primary(slots=(
            SlotState("node2", "physical", True, "reserved", 0),
            SlotState("old", "physical", False, "extended", 3 * GiB))))),
        ["postgres.slots"], ["slot_inactive"]),
    "timelines differ": (
        lambda: with_node(healthy(), "node2", postgres=Fact(pg_replica(timeline=2))),
        ["postgres.timeline"], []),
    "low disk": (
        lambda: with_node(healthy(), "node2", disk=Fact(Disk("/pg", 100 * GiB, 3 * GiB))),
        ["disk.node2"], ["disk_low"]),
    "two redis masters": (
        lambda: with_node(healthy(), "node2", redis=Fact(RedisState("master", None, None,
                                                                     False, False, 0)),
                          router=Fact(router(redis="node2"))),
        ["redis.master", "sentinel.master", "router.node1.redis", "router.node2.redis"],
        ["split_brain_redis"]),
    "replica link down": (
        lambda: with_node(healthy(), "node2", redis=Fact(RedisState(
            "slave", "10.99.0.11:6379", "node1", False, True, 0))),
        ["redis.replica.node2"], []),
    "VIP on both nodes": (
        lambda: with_node(healthy(), "node2", vip=Fact(True)), ["front_door.vip"],
        ["vip_split"]),
    "VIP on no node": (
        lambda: with_node(healthy(), "node1", vip=Fact(False)), ["front_door.vip"],
        ["vip_none"]),
    "no witness": (
        lambda: replace(healthy(), witness=None, hosts=(host("node1"), host("node2"))),
        [], ["no_witness"]),
    "patroni paused": (
        lambda: replace(healthy(), patroni=Fact(cluster(paused=True))),
        ["patroni.members"], ["patroni_paused"]),
    "leader key lost": (
        lambda: replace(healthy(), leader_key=Fact(LeaderKey(None, None, None, None, "node1"))),
        ["patroni.leader"], []),
    "leader key on the other node": (
        lambda: replace(healthy(), leader_key=Fact(LeaderKey("node2", 5, 12, 20, "node2"))),
        ["patroni.leader"], []),
    "etcd member down": (
        lambda: with_host(healthy(), "witness", etcd=Fact(etcd("witness", healthy=False))),
        ["etcd.members"], []),
    "etcd quorum lost": (
        lambda: with_host(with_host(healthy(), "witness", etcd=Fact(error="unreachable")),
                          "node2", etcd=Fact(etcd("node2", healthy=False))),
        ["etcd.quorum", "etcd.members"], []),
    "sentinel noquorum": (
        lambda: with_host(healthy(), "witness", sentinel=Fact(sentinel(ok=False))),
        ["sentinel.quorum"], []),
    "pgbouncer paused": (
        lambda: with_node(healthy(), "node2", pgbouncer=Fact(PgBouncerState("cms", True,
                                                                            False))),
        ["pgbouncer.node2"], ["pgbouncer_paused"]),
    "router stats unreadable": (
        lambda: with_node(healthy(), "node1", router=Fact(error="router stats socket: No such "
                                                          "file")),
        ["router.node1"], []),
    "front door 502": (
        lambda: replace(healthy(), front_door=HttpResult("front_door", "http://x/", 502)),
        ["front_door"], []),
    "secrets missing": (
        lambda: replace(healthy(), missing_secrets=("sentinel_password",)), [],
        ["secrets_missing"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_fault_names_its_checks_and_warnings(case: str) -> None:
    build, want_checks, want_codes = CASES[case]
    s = build()
    assert sorted(failed(s)) == sorted(want_checks)
    assert codes(s) == want_codes


def test_host_unreachable_fails_its_checks_with_the_reason() -> None:
    why = Fact(error="node2 unreachable: unreachable over SSH: timed out")
    s = with_node(no_standby(), "node2", postgres=why, disk=why, router=why, pgbouncer=why,
                  backups=why, redis=Fact(error="timed out after 3s"),
                  http=tuple(replace(h, status=None, error="timed out") for h in
                             node("node2").http))
    s = with_host(s, "node2", ssh=Fact(error="unreachable over SSH: timed out"),
                  etcd=why, sentinel=Fact(error="timed out"))
    checks = {c.name: c for c in run_checks(s)}
    assert not checks["ssh.node2"].ok and checks["ssh.node2"].severity == "critical"
    assert checks["postgres.standby.node2"].reason.endswith(why.error)
    assert checks["etcd.quorum"].ok and not checks["etcd.members"].ok
    assert checks["router.node2"].reason == f"router on node2: {why.error}"
    assert not checks["http.node2.lb"].ok and checks["front_door"].ok


def test_sync_degraded_wording() -> None:
    (w,) = evaluate(no_standby())
    assert w.message.startswith("sync degraded to async on node1 (no standby connected)")
    strict = replace(no_standby(), durability="strict")
    (w,) = [x for x in evaluate(strict) if x.code == "sync_degraded"]
    assert w.severity == "critical" and "commits on node1 wait" in w.message
    assert "postgres.sync" not in failed(replace(no_standby(), durability="async"))


def test_slot_limits_and_lost_slots() -> None:
    small = SlotState("old", "physical", False, "reserved", 2 * 1024**2)
    s = with_node(healthy(), "node1", postgres=Fact(pg_primary(slots=(small,))))
    assert codes(s) == [] and codes(s, Limits(slot_retained_bytes=1024**2)) == ["slot_inactive"]
    lost = SlotState("old", "physical", False, "lost", None)
    s = with_node(healthy(), "node1", postgres=Fact(pg_primary(slots=(lost,))))
    (w,) = evaluate(s)
    assert w.severity == "critical" and "lost its WAL" in w.message


def test_disk_severity() -> None:
    s = with_node(healthy(), "node1", disk=Fact(Disk("/pg", 100 * GiB, 8 * GiB)))
    assert [(w.code, w.severity) for w in evaluate(s)] == [("disk_low", "warning")]
    s = with_node(healthy(), "node1", disk=Fact(Disk("/pg", 100 * GiB, 4 * GiB)))
    assert [(w.code, w.severity) for w in evaluate(s)] == [("disk_low", "critical")]


def test_vip_not_probed_on_one_node_is_a_warning() -> None:
    s = with_node(with_node(healthy(), "node1", vip=Fact(error="unreachable")), "node2",
                  vip=Fact(False))
    (w,) = evaluate(s)
    assert (w.code, w.severity) == ("vip_none", "warning")
    static = replace(healthy(), front_door_kind="static", vip=None)
    assert "front_door.vip" not in {c.name for c in run_checks(static)}


def test_no_patroni_rest_is_a_failing_check_but_leader_key_still_counts() -> None:
    s = replace(healthy(), patroni=Fact(error="Patroni /cluster not answering"))
    assert failed(s) == ["patroni.members"]
    assert s.patroni_leader == "node1"
    s = replace(s, leader_key=Fact(error="its etcd member is not healthy"),
                patroni=Fact(ClusterView("cms", ())))
    assert s.patroni_leader is None


def test_pair_builder_defaults() -> None:
    assert pair().primary == "node1" and pair().redis_masters == ["node1"]


@pytest.mark.parametrize(("leader", "primary", "witness", "warned"), [
    (13, "node1", "witness", False),  # on the witness: as the upgrade leaves it
    (11, "node1", "witness", True),  # on the primary's host
    (12, "node1", "witness", False),  # on the standby's host: its loss costs no failover
    (12, "node2", "witness", True),
    (11, "node1", None, False),  # no witness: no automatic failover to slow down
])
def test_etcd_leader_on_the_primarys_host(leader: int, primary: str, witness: str | None,
                                          warned: bool) -> None:
    s = healthy()
    if primary == "node2":
        s = with_node(s, "node1", postgres=Fact(pg_replica()))
        s = with_node(s, "node2", postgres=Fact(pg_primary()))
    hosts = tuple(replace(h, etcd=Fact(replace(h.etcd.value, leader_id=leader)))
                  for h in s.hosts)
    s = replace(s, hosts=hosts, witness=witness)
    found = [w for w in evaluate(s) if w.code == "etcd_leader_on_primary"]
    assert bool(found) == warned
    if warned:
        assert found[0].node == primary and "one leader-key TTL" in found[0].message
