"""Opt-in (HAPAIR_DOCKER_E2E=1, root): `hapair status`, `check` and `monitor` on the compose
pair, after `hapair upgrade --experimental-compose` in the lab (a bare lab of this module's
own, tests/lab/compose/conftest.py).

The probes run where their servers run (psql and df in hapair-patroni, etcdctl in hapair-etcd,
the router's socket, the VIP and the backups on the host); there is no PgBouncer there. The
lab's compose stack publishes no HTTP port (its app is a busybox in the app network, there is
no nginx, nothing listens on the front door), so exactly the HTTP checks fail on the fresh
pair. Then node2's hapair-patroni is stopped (`docker stop` on node2's engine, as an operator
would) and `check` names what that breaks; it is started again at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import compose_pair as cp
import compose_stack as cs
import pytest
from lab_helpers import Lab, hapair

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.environ.get("HAPAIR_DOCKER_E2E") != "1",
                       reason="opt-in: HAPAIR_DOCKER_E2E=1 (Docker engines in the lab hosts)"),
    pytest.mark.timeout(3600),  # images loaded into three engines, then the whole upgrade
]

MiB = 1024 * 1024
# Nothing answers HTTP in the lab's compose stack (see the module doc): the only checks a
# fresh pair fails here.
NO_HTTP = {f"http.{n}.{x}" for n in ("node1", "node2") for x in ("backend", "frontend", "lb")
           } | {"front_door"}


def run_json(*args: str) -> tuple[int, dict[str, Any], str]:
    res = hapair(*args)
    try:
        doc = json.loads(res.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"exit {res.returncode}, not one JSON document:\n{res.stdout[-2000:]}"
                             f"\n{res.stderr[-4000:]}") from None
    return res.returncode, doc, res.stderr


def failing(doc: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["reason"] for c in doc["checks"] if not c["ok"]}


def test_status_shows_the_pair_the_upgrade_made(upgraded: dict, inventory: Path) -> None:
    rc, doc, err = run_json("status", "-i", str(inventory), "-o", "json")
    assert rc == 0, err[-4000:]
    assert (doc["primary"], doc["patroni_leader"]) == ("node1", "node1")
    assert [(n["name"], n["role"]) for n in doc["nodes"]] == [("node1", "primary"),
                                                              ("node2", "replica")]
    assert {m["name"]: m["role"] for m in doc["patroni"]["members"]} == {
        "node1": "leader", "node2": "sync_standby"}
    (standby,) = doc["replication"]
    assert (standby["standby"], standby["primary"], standby["state"], standby["sync_state"]) == (
        "node2", "node1", "streaming", "sync")
    assert 0 <= standby["lag_bytes"] < 16 * MiB
    etcd = {h["name"]: h["etcd"] for h in doc["hosts"]}
    assert sorted(etcd) == ["node1", "node2", "witness"]
    assert all(e["healthy"] for e in etcd.values()), etcd
    assert len({e["leader_id"] for e in etcd.values()}) == 1  # one leader, seen by all
    assert doc["leader_key"]["holder"] == "node1" and doc["leader_key"]["ttl_s"] > 0
    n1, n2 = doc["nodes"]
    assert doc["redis_masters"] == ["node1"]
    assert (n2["redis"]["role"], n2["redis"]["master_node"], n2["redis"]["link_up"]) == (
        "slave", "node1", True)
    for h in doc["hosts"]:
        s = h["sentinel"]
        assert (s["master_node"], s["quorum_ok"], s["other_sentinels"]) == ("node1", True, 2), h
    for n in (n1, n2):
        assert n["disk"]["path"] == cs.PGDATA and n["disk"]["free_bytes"] > 0, n["disk"]
        assert n["pgbouncer"] is None  # not applicable: no PgBouncer on compose hosts
        # the upgrade's dump beside them is a file, not a backup directory
        assert n["backups"] == [], n["backups"]
        assert {s["server"] for s in n["router"] if s["proxy"] == "postgres"
                and s["status"].startswith("UP")} == {"node1"}
    assert doc["storage"] is None
    assert [w for w in doc["warnings"] if w["code"] != "etcd_leader_on_primary"] == []


def test_check_fails_only_what_the_lab_stack_lacks(upgraded: dict, inventory: Path) -> None:
    rc, doc, _ = run_json("check", "-i", str(inventory), "-o", "json")
    bad = failing(doc)
    assert (rc, set(bad)) == (4, NO_HTTP), bad
    assert all(" failed: " in reason for reason in bad.values()), bad  # nothing listens
    names = {c["name"] for c in doc["checks"]}
    assert {"postgres.standby.node2", "postgres.sync", "patroni.leader", "etcd.quorum",
            "redis.replica.node2", "sentinel.quorum", "router.node2.postgres",
            "disk.node1", "disk.node2"} <= names
    assert not [n for n in names if n.startswith(("pgbouncer.", "storage."))]


def test_monitor_once_prints_the_roles(upgraded: dict, inventory: Path) -> None:
    res = hapair("monitor", "--once", "-i", str(inventory))
    assert res.returncode == 0, res.stderr[-4000:]
    metrics = res.stdout
    for line in ('hapair_pg_role{node="node1",role="primary"} 1.0',
                 'hapair_pg_role{node="node2",role="replica"} 1.0',
                 'hapair_patroni_leader{node="node1"} 1.0',
                 'hapair_pg_sync_standby{standby="node2"} 1.0',
                 'hapair_redis_master{node="node1"} 1.0',
                 'hapair_etcd_member_healthy{member="witness"} 1.0',
                 'hapair_sentinel_ckquorum_ok{sentinel="node2"} 1.0',
                 'hapair_check_ok{check="postgres.standby.node2"} 1.0'):
        assert line in metrics, line
    assert "hapair_pgbouncer_paused{" not in metrics


def _patroni_container(uri: str) -> str:
    found = subprocess.run(["docker", "-H", uri, "ps", "-aq", "--filter",
                            "label=com.docker.compose.service=hapair-patroni"],
                           capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def node2_patroni_stopped(lab: Lab, engines: dict[str, str], upgraded: dict) -> Iterator[None]:
    uri = engines["node2"]
    container = _patroni_container(uri)
    subprocess.run(["docker", "-H", uri, "stop", "-t", "120", container], check=True,
                   capture_output=True, timeout=180)
    try:
        yield
    finally:
        subprocess.run(["docker", "-H", uri, "start", container], check=True,
                       capture_output=True, timeout=120)
        cp.wait("node2 streams again", lambda: cp.members(lab, "node1").get(
            "node2", {}).get("state") == "streaming", 180)


def test_check_names_what_a_stopped_standby_breaks(node2_patroni_stopped: None,
                                                   inventory: Path) -> None:
    rc, doc, _ = run_json("check", "-i", str(inventory), "-o", "json")
    bad = set(failing(doc)) - NO_HTTP
    assert rc == 4
    certain = {"postgres.node2", "postgres.standby.node2", "disk.node2", "postgres.sync"}
    # Patroni's member key of node2 may still say `streaming` until its lease runs out
    assert certain <= bad <= certain | {"patroni.members"}, failing(doc)
    reasons = failing(doc)
    # psql's `docker compose exec` answered (the container is stopped), not a lost host
    assert reasons["postgres.node2"].startswith("PostgreSQL on node2: psql: "), reasons
    assert reasons["postgres.standby.node2"].startswith("node2 is not streaming from node1")
    status = json.loads(hapair("status", "-i", str(inventory), "-o", "json").stdout)
    n2 = status["nodes"][1]
    assert n2["role"] == "down" and isinstance(n2["router"], list) and n2["router"], n2
    assert status["hosts"][1]["ssh"] is True
    assert [w["code"] for w in status["warnings"] if w["code"] == "sync_degraded"] == [
        "sync_degraded"]
