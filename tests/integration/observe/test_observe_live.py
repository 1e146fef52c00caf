"""gather() over real PostgreSQL, Redis/Sentinel, etcd, HAProxy routers and PgBouncer on
loopback: every check green on the healthy set, then real faults named by the right checks
and warnings. Each fault test puts things back before it ends."""

from __future__ import annotations

import signal
from dataclasses import replace
from pathlib import Path

import pytest
from observe_live import (
    DOOR,
    PG,
    PG_BIN,
    REDIS,
    REDIS_PW,
    Live,
    wait_for,
    write_backup,
)

from hapair.components.common import Endpoint
from hapair.observe import Limits, PairSnapshot, evaluate, failing, gather, run_checks
from hapair.observe.gather import redis_client

pytestmark = pytest.mark.integration


def snap(live: Live, **target_changes: object) -> PairSnapshot:
    return gather(live.targets(**target_changes), live.transports())


def names(s: PairSnapshot, limits: Limits | None = None) -> list[str]:
    return [c.name for c in failing(run_checks(s, limits))]


def all_green(live: Live) -> PairSnapshot:
    """Sentinels need a few seconds to find each other and the routers `rise` checks."""
    found: list[PairSnapshot] = []

    def green() -> bool:
        found[:] = [snap(live)]
        return not names(found[0])

    try:
        wait_for("every check green", green, 90)
    except AssertionError:
        still = [(c.name, c.reason) for c in failing(run_checks(found[0]))]
        raise AssertionError(f"still failing: {still}") from None
    return found[0]


def test_healthy_pair_is_all_green(live: Live) -> None:
    write_backup(live, "node2", "20250301T021500Z-logical", "2025-03-01T02:16:00Z")
    s = all_green(live)
    assert [n.role for n in s.nodes] == ["primary", "replica"]
    assert s.primary == "node1" and s.patroni_leader == "node1"
    (r,) = s.replication
    assert (r.standby, r.primary, r.state, r.sync_state) == ("node2", "node1", "streaming", "sync")
    assert r.source == "pg_stat_replication on node1" and r.lag_bytes is not None
    p1, p2 = (n.postgres.value for n in s.nodes)
    assert p1 is not None and p2 is not None
    assert p1.timeline == p2.timeline == 1
    assert [(x.name, x.active) for x in p1.slots] == [("node2", True)]
    key = s.leader_key.value
    assert key is not None and key.holder == "node1" and 0 < (key.ttl_s or 0) <= 900
    assert key.granted_ttl_s == 900 and key.seen_from == "node1"
    members = [h.etcd.value for h in s.hosts]
    assert all(m is not None and m.healthy for m in members)
    assert sum(1 for m in members if m is not None and m.is_leader) == 1
    for h in s.hosts:
        v = h.sentinel.value
        assert v is not None and v.master_node == "node1" and v.quorum_ok and v.usable == 3
    n1, n2 = s.nodes
    assert n2.redis.value is not None and n2.redis.value.link_up
    assert n1.pgbouncer.value is not None and not n1.pgbouncer.value.paused
    assert n1.disk.value is not None and n1.disk.value.total_bytes > n1.disk.value.free_bytes > 0
    assert n2.backups.value is not None and [b.id for b in n2.backups.value] == [
        "20250301T021500Z-logical"]
    assert n2.backups.value[0].verified is True
    assert n1.backups.value == ()  # no directory: no backups, not an error
    assert [w.code for w in evaluate(s)] == []


def test_idle_primary_replay_delay_is_not_now_minus_last_replay(live: Live) -> None:
    """ORIGINAL_DEFECTS #15: on an idle primary "now - last replay" keeps growing; the
    replay delay hapair shows stays ~0 because nothing is outstanding."""
    live.sql("node1", "CREATE TABLE IF NOT EXISTS tick (t timestamptz); INSERT INTO tick "
                      "VALUES (now());")
    wait_for("an idle pair", lambda: live.sql(
        "node2", "SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp()) > 2") == "t",
        20)
    s = snap(live)
    (r,) = s.replication
    assert r.lag_bytes == 0
    assert r.replay_delay_s is not None and r.replay_delay_s < 1.0
    naive = float(live.sql("node2", "SELECT extract(epoch FROM now() - "
                                    "pg_last_xact_replay_timestamp())"))
    assert naive > 2.0


def test_standby_down_degrades_sync_and_slot_holds_wal(live: Live) -> None:
    live.procs.stop("pg-node2")
    try:
        live.sql("node1", "SET synchronous_commit = local; CREATE TABLE filler AS "
                          "SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 20000) g; "
                          "SELECT pg_switch_wal();")
        s = snap(live)
        limits = Limits(slot_retained_bytes=1024 * 1024)
        failed = names(s, limits)
        assert "postgres.standby.node2" in failed and "postgres.sync" in failed
        assert "postgres.slots" in failed and "postgres.primary" not in failed
        codes = {w.code: w for w in evaluate(s, limits)}
        assert codes["sync_degraded"].message.startswith(
            "sync degraded to async on node1 (no standby connected)")
        assert "inactive replication slot 'node2' on node1 holds" in codes["slot_inactive"].message
        assert s.node("node2").postgres.error.startswith("psql:")
        (r,) = s.replication
        assert r.state == "unknown" and r.lag_bytes is None
    finally:
        live.procs.spawn("pg-node2", [
            str(PG_BIN / "postgres"), "-D", str(live.root / "pg-node2"), "-p", str(PG["node2"]),
            "-k", str(live.sock), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
            "-c", "shared_buffers=16MB", "-c", "max_connections=30", "-c", "cluster_name=node2"],
            user="postgres", stop_signal=signal.SIGINT)
        wait_for("node2 back in sync", lambda: live.sql(
            "node1", "SELECT sync_state FROM pg_stat_replication") == "sync", 60)


def test_two_redis_masters_is_split_brain(live: Live) -> None:
    with redis_client(Endpoint("127.0.0.1", REDIS["node2"]), REDIS_PW) as c:
        c.execute_command("REPLICAOF", "NO", "ONE")
        try:
            s = snap(live)
            assert s.redis_masters == ["node1", "node2"]
            failed = names(s)
            assert "redis.master" in failed
            (w,) = [w for w in evaluate(s) if w.code == "split_brain_redis"]
            assert w.severity == "critical" and "node1 and node2" in w.message
        finally:
            c.execute_command("REPLICAOF", "127.0.0.1", str(REDIS["node1"]))
            wait_for("node2 replica again", lambda: c.info("replication")
                     ["master_link_status"] == "up", 30)


def test_etcd_member_down_keeps_quorum(live: Live) -> None:
    live.procs.stop("etcd-witness")
    try:
        s = snap(live)
        failed = names(s)
        assert "etcd.members" in failed and "etcd.quorum" not in failed
        assert s.host("witness").etcd.value is not None
        assert not s.host("witness").etcd.value.healthy
        assert s.leader_key.ok and s.leader_key.value.holder == "node1"  # type: ignore[union-attr]
    finally:
        from observe_live import ETCD

        from hapair.components.etcd import EtcdMember, EtcdParams, etcd_argv

        members = tuple(EtcdMember(h, "127.0.0.1", c, p) for h, (c, p) in ETCD.items())
        params = EtcdParams("witness", members, "hapair-observe-test",
                            config_path=f"{live.root}/etcd-witness.yaml",
                            data_dir=f"{live.root}/etcd-witness", listen_loopback=False)
        live.procs.spawn("etcd-witness", etcd_argv(params))
        wait_for("witness etcd healthy", lambda: snap(live).host("witness").etcd.value.healthy,
                 60)  # type: ignore[union-attr]


def test_front_door_down_and_router_socket_missing(live: Live) -> None:
    live.stubs.set(DOOR, "/health/", 503)
    try:
        s = snap(live, nodes=tuple(
            n if n.name == "node1" else replace(n, router_socket=str(live.root / "no.sock"))
            for n in live.targets().nodes))
        failed = names(s)
        assert "front_door" in failed and "router.node2" in failed
        assert "router.node1.postgres" not in failed
        assert s.node("node2").router.error.startswith("router stats socket:")
    finally:
        live.stubs.set(DOOR, "/health/", 200)


def test_stopped_host_costs_one_timeout(live: Live) -> None:
    """A host that hangs: its first command times out and no other probe is tried on it."""
    from hapair.exec.local import LocalTransport

    class Hanging(LocalTransport):
        def __init__(self) -> None:
            super().__init__("witness", prefix=["sh", "-c", "sleep 30", "--"])
            self.calls = 0

        def run(self, argv, **kw):  # type: ignore[no-untyped-def, override]
            self.calls += 1
            return super().run(argv, **kw)

    t = live.transports()
    hanging = Hanging()
    t["witness"] = hanging  # type: ignore[assignment]
    s = gather(live.targets(), t, ssh_timeout=1.0)
    assert s.host("witness").ssh.error.startswith("witness: `true` timed out")
    assert s.host("witness").etcd.error.startswith("witness unreachable:")
    assert hanging.calls == 1
    assert "ssh.witness" in names(s) and "etcd.members" in names(s)


def test_check_and_status_cli_on_the_live_set(live: Live, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import sys
    from contextlib import contextmanager

    import click

    from hapair.cli.observe import Source, check_cmd, status_cmd
    from hapair.errors import HapairError

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "backup"))
    from backup_fakes import write_inventory

    inv = str(write_inventory(tmp_path))

    @contextmanager
    def source(_inv: object):  # type: ignore[no-untyped-def]
        targets, transports = live.targets(), live.transports()
        yield Source(lambda: gather(targets, transports), lambda s: s)

    def cli(*args: str) -> int:
        root = click.Group("hapair")
        root.add_command(check_cmd)
        root.add_command(status_cmd)
        try:
            root.main(args=list(args), prog_name="hapair", standalone_mode=False,
                      obj={"observe_source": source})
        except HapairError as exc:
            return exc.exit_code
        return 0

    all_green(live)
    assert cli("check", "-i", inv, "-o", "json") == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert cli("status", "-i", inv, "-o", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["primary"] == "node1" and doc["replication"][0]["sync_state"] == "sync"
    live.stubs.set(DOOR, "/health/", 503)
    try:
        assert cli("check", "-i", inv, "-o", "json") == 4
        assert json.loads(capsys.readouterr().out)["failing"] == ["front_door"]
    finally:
        live.stubs.set(DOOR, "/health/", 200)
