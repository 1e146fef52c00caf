"""Opt-in (HAPAIR_DOCKER_E2E=1, root): `hapair rollback` on Docker engines in the lab's hosts,
after `hapair upgrade --experimental-compose` (conftest.py's `upgraded`).

Rows and a Redis key are written to the pair after the upgrade (through the primary); the
rollback then brings node1 back to the single compose server it was: the user's own postgres
container holds every row (the 500 written before the upgrade and those written on the pair),
takes the stack's own logins from the controller (its published port, its password) and
writes; the user's own redis holds the keys written before and after; no container of
hapair's project runs on any host; the user's compose file is byte for byte the original.
A second `hapair rollback` refuses cleanly (exit 3): there is no pair any more.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import compose_pair as cp
import compose_stack as cs
import engines as eng
import pytest
import redis
from lab_helpers import Lab, hapair

from hapair.lab.transport import LabHostTransport

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.environ.get("HAPAIR_DOCKER_E2E") != "1",
                       reason="opt-in: HAPAIR_DOCKER_E2E=1 (Docker engines in the lab hosts)"),
    pytest.mark.timeout(3600),  # images loaded into three engines, the upgrade, the rollback
]

AFTER_ROWS = 100
ROLLBACK_TIMEOUT = 900.0


def _containers(uri: str, project: str, service: str | None = None, *,
                all_: bool = False) -> list[str]:
    argv = ["docker", "-H", uri, "ps", "--format", "{{.Names}}", "--filter",
            f"label=com.docker.compose.project={project}"]
    if service:
        argv += ["--filter", f"label=com.docker.compose.service={service}"]
    if all_:
        argv.insert(4, "-a")
    return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          check=True).stdout.split()


def _user_redis(lab: Lab, engines: dict[str, str], *commands: str) -> list[str]:
    """redis-cli in the user's own redis container on node1 (it publishes no port); the
    password on stdin."""
    found = _containers(engines["node1"], cs.PROJECT, "redis")
    assert len(found) == 1, f"the user's redis containers on node1: {found}"
    text = "\n".join([f"AUTH {cp.secret(lab, 'redis_password')}", *commands, ""])
    res = subprocess.run(["docker", "-H", engines["node1"], "exec", "-i", found[0],
                          "redis-cli"], input=text, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    return [line.strip() for line in res.stdout.splitlines()]


@pytest.fixture(scope="module")
def rolled_back(lab: Lab, engines: dict[str, str], upgraded: dict, inventory: Path) -> dict:
    """Writes made on the pair after the upgrade, then `hapair rollback -y -o json`."""
    assert upgraded["run"]["result"] == "ok"
    cp.psql(engines, "node1", "CREATE TABLE after_upgrade (id int PRIMARY KEY, v text)")
    for i in range(1, AFTER_ROWS + 1):  # one acknowledged (synchronous) commit each
        cp.psql(engines, "node1", f"INSERT INTO after_upgrade VALUES ({i}, 'pair')")
    master = redis.Redis(host=lab.address("node1"), port=6379,
                         password=cp.secret(lab, "redis_password"), socket_timeout=5)
    with master:
        assert master.info("replication")["role"] == "master"
        master.set("after-upgrade", "on the pair")
    res = hapair("rollback", "-i", str(inventory), "-y", "-o", "json",
                 timeout=ROLLBACK_TIMEOUT)
    assert res.returncode == 0, res.stderr[-6000:] + cp.container_logs(engines)
    return json.loads(res.stdout)


def test_the_user_s_postgres_has_every_row_and_takes_writes(
        lab: Lab, engines: dict[str, str], rolled_back: dict) -> None:
    assert rolled_back["target"] == "node1" and rolled_back["run"]["result"] == "ok"
    assert rolled_back["single_server"]["postgres"] == {
        "in_recovery": "f", "synchronous_standby_names": "", "slots": "0", "writable": "t"}
    # the user's own container runs the data; hapair's Patroni does not
    assert len(_containers(engines["node1"], cs.PROJECT, "postgres")) == 1
    # the stack's own login from outside (published port, POSTGRES_PASSWORD, pg_hba as the
    # image writes it), as the app had before the upgrade
    with cp.pg(lab, "node1") as c:
        assert c.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        assert c.execute("SELECT count(*), sum(id) FROM before_upgrade").fetchone() == (
            cp.ROWS, cp.ROWS * (cp.ROWS + 1) // 2)
        assert c.execute("SELECT count(*) FROM after_upgrade WHERE v = 'pair'").fetchone() == (
            AFTER_ROWS,)
        c.execute(f"INSERT INTO after_upgrade VALUES ({AFTER_ROWS + 1}, 'single')")
        assert c.execute("SELECT count(*) FROM after_upgrade").fetchone() == (AFTER_ROWS + 1,)
        # nothing of the pair left in the server: no slot, no replication role
        assert c.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (0,)
        assert c.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'replicator'"
                         ).fetchone() == (0,)


def test_the_user_s_redis_has_the_keys_written_before_and_after(
        lab: Lab, engines: dict[str, str], rolled_back: dict) -> None:
    assert rolled_back["single_server"]["redis"] == {"pong": True, "role": "master"}
    out = _user_redis(lab, engines, "GET before-upgrade", "GET after-upgrade",
                      "INFO replication")
    assert out[:3] == ["OK", "kept", "on the pair"] and "role:master" in out


def test_nothing_of_hapair_runs_and_the_compose_file_is_the_original(
        lab: Lab, engines: dict[str, str], rolled_back: dict) -> None:
    for host in cp.HOSTS:
        assert _containers(engines[host], f"{cs.PROJECT}-hapair", all_=True) == [], host
    assert _containers(engines["node2"], cs.PROJECT, all_=True) == []
    assert rolled_back["hapair_containers_running"] == {h: [] for h in cp.HOSTS}
    t = LabHostTransport("node1", lab.cfg.lab_dir)
    assert t.read_file(cs.COMPOSE_FILE).decode() == cs.compose_file(eng.IMAGE)
    assert rolled_back["single_server"]["compose_file_restored"] is True
    assert rolled_back["single_server"]["app"] == {"backend": True}
    assert len(_containers(engines["node1"], cs.PROJECT, "backend")) == 1
    # the data the upgrade gave node2 stays until its owner removes it (docs/rollback.md)
    assert set(rolled_back["volumes_left"]["node2"]) >= {"cms_pgdata", "cms_redis_data"}


def test_a_second_rollback_refuses_cleanly(rolled_back: dict, inventory: Path) -> None:
    res = hapair("rollback", "-i", str(inventory), "-y", "-o", "json")
    assert res.returncode == 3, res.stderr[-3000:]
    assert res.stdout == ""
    assert "no completed `hapair upgrade`" in res.stderr
