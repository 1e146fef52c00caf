"""Opt-in (HAPAIR_DOCKER_E2E=1, root): `hapair upgrade --experimental-compose` end to end on
Docker engines in the lab's hosts.

node1 runs a single-server compose stack (compose_stack.py: PostgreSQL 17, Redis, an app
service); node2 and the witness run an empty engine each. The upgrade runs over SSH as a user
would run it, and then: every row written before is on node2's streaming standby, a write on
the primary reaches it, a Redis key written before is on node2's replica, the backup dump is on
node1, a second run has nothing to do. Then operations on the pair: node1's host crashes and
node2 takes over with every acknowledged write (Patroni and Sentinel in containers), and
`hapair rejoin node1` brings it back as a streaming standby.

Images come from the image kit (tests/integration/compose/image_kit.py): built once in a
private engine with network (the kit's cache, /var/cache/hapair-e2e), then loaded into each
host's engine; nothing is pulled. A bare lab of this module's own (tests/lab/compose/conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import compose_pair as cp
import engines as eng
import pytest
import redis
from lab_helpers import Lab, hapair

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.environ.get("HAPAIR_DOCKER_E2E") != "1",
                       reason="opt-in: HAPAIR_DOCKER_E2E=1 (Docker engines in the lab hosts)"),
    pytest.mark.timeout(3600),  # images loaded into three engines, then the whole upgrade
]


def test_every_row_reaches_node2_and_new_writes_follow(engines: dict[str, str],
                                                       upgraded: dict) -> None:
    assert upgraded["run"]["result"] == "ok"
    assert cp.psql(engines, "node2", "SELECT pg_is_in_recovery()") == [["t"]]
    assert cp.psql(engines, "node2", "SELECT count(*), sum(id) FROM before_upgrade") == [
        [str(cp.ROWS), str(cp.ROWS * (cp.ROWS + 1) // 2)]]
    assert cp.psql(engines, "node1", "SELECT application_name, sync_state FROM "
                 "pg_stat_replication") == [["node2", "sync"]]
    cp.psql(engines, "node1", f"INSERT INTO before_upgrade VALUES ({cp.ROWS + 1}, 'after')")
    # flushed on node2 before the commit returned; replayed (readable) moments later
    cp.wait("the new row readable on node2", lambda: cp.psql(
        engines, "node2", f"SELECT v FROM before_upgrade WHERE id = {cp.ROWS + 1}") == [["after"]],
        30)


def test_the_redis_key_written_before_is_on_node2_s_replica(lab: Lab, upgraded: dict) -> None:
    replica = redis.Redis(host=lab.address("node2"), port=6379,
                          password=cp.secret(lab, "redis_password"), socket_timeout=5)
    with replica:
        assert replica.info("replication")["role"] == "slave"
        cp.wait("the key replicated", lambda: replica.get("before-upgrade") == b"kept", 30)


def test_the_dump_taken_before_is_on_node1(lab: Lab, upgraded: dict) -> None:
    dump = (lab.cfg.host_root("node1") / "var/lib/hapair/backups/cms-before-upgrade.dump")
    assert dump.stat().st_mode & 0o077 == 0
    assert dump.read_bytes()[:5] == b"PGDMP"


def test_a_second_run_has_nothing_to_do(upgraded: dict, inventory: Path) -> None:
    res = hapair("upgrade", "-i", str(inventory), "-y", "--experimental-compose", "-o", "json")
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout)["already_upgraded"] is True


# --- operations on the compose pair -----------------------------------------------------------

FAILOVER_ROWS = 200


def test_a_crash_of_node1_promotes_node2_with_every_acknowledged_write(
        lab: Lab, engines: dict[str, str], upgraded: dict) -> None:
    """Patroni and Sentinel in containers fail over by themselves: every row whose commit
    returned on node1 (synchronous replication) is on node2, which takes writes."""
    cp.psql(engines, "node1", "CREATE TABLE during_failover (id int PRIMARY KEY)")
    for i in range(FAILOVER_ROWS):  # one acknowledged commit each
        cp.psql(engines, "node1", f"INSERT INTO during_failover VALUES ({i})")
    lab.cli("crash", "node1")
    cp.wait("node2 is the PostgreSQL primary",
            lambda: cp.patroni(lab, "node2", "/primary").status_code == 200, 180)
    assert cp.psql(engines, "node2", "SELECT count(*) FROM during_failover") == [
        [str(FAILOVER_ROWS)]]
    cp.psql(engines, "node2", f"INSERT INTO during_failover VALUES ({FAILOVER_ROWS})")
    redis2 = redis.Redis(host=lab.address("node2"), port=6379,
                         password=cp.secret(lab, "redis_password"), socket_timeout=5)
    with redis2:
        cp.wait("Sentinel promoted node2's Redis",
                lambda: redis2.info("replication")["role"] == "master", 120)
        assert redis2.get("before-upgrade") == b"kept"


def test_rejoin_brings_node1_back_as_a_streaming_standby(
        lab: Lab, engines: dict[str, str], inventory: Path) -> None:
    lab.cli("boot", "node1")
    cp.wait("node1's engine answers", lambda: eng.answers(engines["node1"]), 120)
    res = hapair("rejoin", "-i", str(inventory), "node1", "-o", "json")
    assert res.returncode == 0, res.stderr[-4000:] + cp.container_logs(engines)
    redis_notes = [n for n in json.loads(res.stdout)["notes"] if n.startswith("Redis on node1")]
    assert len(redis_notes) == 1 and redis_notes[0].endswith("a replica of node2, link up")
    members = cp.members(lab, "node2")
    assert (members["node2"]["role"], members["node1"]["state"]) == ("leader", "streaming")
    cp.wait("node1 has every row", lambda: cp.psql(
        engines, "node1", "SELECT count(*) FROM during_failover") == [[str(FAILOVER_ROWS + 1)]],
        60)
    assert cp.psql(engines, "node1", "SELECT pg_is_in_recovery()") == [["t"]]
    cp.wait("Patroni names node1 the synchronous standby", lambda: cp.members(
        lab, "node2")["node1"]["role"] == "sync_standby", 60)


def test_switchover_back_to_node1_moves_postgres_and_redis(
        lab: Lab, engines: dict[str, str], inventory: Path) -> None:
    """`hapair switchover --to node1 --redis` on compose hosts: Patroni moves the primary,
    the routers follow (their runtime API in the router containers), Sentinel moves Redis;
    no PgBouncer there, and the report says so."""
    res = hapair("switchover", "-i", str(inventory), "--to", "node1", "--redis", "-o", "json")
    assert res.returncode == 0, res.stderr[-4000:] + cp.container_logs(engines)
    pg, rd = json.loads(res.stdout)["switchovers"]
    assert (pg["service"], pg["to"], rd["service"], rd["to"]) == (
        "postgres", "node1", "redis", "node1")
    assert any("no PgBouncer" in note for note in pg["notes"])
    members = cp.members(lab, "node1")
    assert (members["node1"]["role"], members["node2"]["role"]) == ("leader", "sync_standby")
    cp.psql(engines, "node1", f"INSERT INTO during_failover VALUES ({FAILOVER_ROWS + 1})")
    cp.wait("node2 has the row written after the switchover", lambda: cp.psql(
        engines, "node2", f"SELECT count(*) FROM during_failover WHERE id = {FAILOVER_ROWS + 1}"
    ) == [["1"]], 30)


MANUAL_ROWS = 50


def test_failover_to_node2_when_the_witness_and_node1_are_lost(
        lab: Lab, engines: dict[str, str], inventory: Path) -> None:
    """No etcd majority, no Sentinel quorum: nothing fails over by itself. `failover --to
    node2 --old-primary-is-down` re-forms etcd on node2 (its container's config file), lets
    Patroni promote it, and node2 has every row whose commit returned on node1."""
    cp.psql(engines, "node1", "CREATE TABLE before_manual_failover (id int PRIMARY KEY)")
    for i in range(MANUAL_ROWS):  # one acknowledged (synchronous) commit each
        cp.psql(engines, "node1", f"INSERT INTO before_manual_failover VALUES ({i})")
    lab.cli("crash", "witness")
    lab.cli("crash", "node1")
    res = hapair("failover", "-i", str(inventory), "--to", "node2", "--old-primary-is-down",
                 "-y", "-o", "json", timeout=600)
    assert res.returncode == 0, res.stderr[-4000:] + cp.container_logs(
        {"node2": engines["node2"]})
    report = json.loads(res.stdout)
    assert (report["mode"], report["to"], report["fence"]) == (
        "forced-dcs", "node2", "operator statement")
    assert cp.patroni(lab, "node2", "/primary").status_code == 200
    assert cp.psql(engines, "node2", "SELECT count(*) FROM before_manual_failover") == [
        [str(MANUAL_ROWS)]]
    cp.psql(engines, "node2", f"INSERT INTO before_manual_failover VALUES ({MANUAL_ROWS})")
    with redis.Redis(host=lab.address("node2"), port=6379,
                     password=cp.secret(lab, "redis_password"), socket_timeout=5) as r:
        assert r.info("replication")["role"] == "master"


def test_rejoin_after_the_manual_failover_re_adds_the_stale_etcd_members(
        lab: Lab, engines: dict[str, str], inventory: Path) -> None:
    """The witness and node1 come back holding the OLD etcd cluster: rejoin re-adds both
    (fresh data directories, the old ones kept), then node1 streams from node2."""
    for host in ("witness", "node1"):
        lab.cli("boot", host)
        cp.wait(f"{host}'s engine answers", lambda h=host: eng.answers(engines[h]), 120)
    res = hapair("rejoin", "-i", str(inventory), "node1", "-o", "json", timeout=900)
    assert res.returncode == 0, res.stderr[-4000:] + cp.container_logs(engines)
    notes = json.loads(res.stdout)["notes"]
    assert [n for n in notes if n.startswith("etcd member")] == [
        "etcd member witness wiped (old data kept aside) and re-added via node2",
        "etcd member node1 wiped (old data kept aside) and re-added via node2"]
    members = cp.members(lab, "node2")
    assert (members["node2"]["role"], members["node1"]["state"]) == ("leader", "streaming")
    cp.wait("node1 has every row", lambda: cp.psql(
        engines, "node1", "SELECT count(*) FROM before_manual_failover") == [
        [str(MANUAL_ROWS + 1)]], 60)
    etcd = cp.container(engines, "witness", "hapair-etcd")
    health = subprocess.run(["docker", "-H", engines["witness"], "exec", etcd, "etcdctl",
                             "endpoint", "health", "--cluster"], capture_output=True, text=True,
                            timeout=60)
    assert (health.stdout + health.stderr).count("is healthy") == 3, health.stderr
