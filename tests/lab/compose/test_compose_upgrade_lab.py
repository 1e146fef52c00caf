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
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import compose_stack as cs
import engines as eng
import httpx
import psycopg
import pytest
import redis
from lab_helpers import REPO, Lab, hapair
from ruamel.yaml import YAML

from hapair.compose.generate_configs import patroni_dockerfile
from hapair.lab.transport import LabHostTransport

sys.path.insert(0, str(REPO / "tests" / "integration" / "compose"))
import image_kit  # noqa: E402
import private_engine  # noqa: E402
from image_recipes import ImageSpec  # noqa: E402

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.environ.get("HAPAIR_DOCKER_E2E") != "1",
                       reason="opt-in: HAPAIR_DOCKER_E2E=1 (Docker engines in the lab hosts)"),
    pytest.mark.timeout(3600),  # images loaded into three engines, then the whole upgrade
]

HOSTS = ("node1", "node2", "witness")
PATRONI = ImageSpec(("hapair/patroni:pg17",), cs.PG_IMAGE,
                    patroni_dockerfile(cs.PG_IMAGE, alpine=False))
NODE_IMAGES = (cs.PG_IMAGE, cs.REDIS_IMAGE, "quay.io/coreos/etcd:v3.5.17", "haproxy:2.6",
               PATRONI.names[0])
WITNESS_IMAGES = (cs.REDIS_IMAGE, "quay.io/coreos/etcd:v3.5.17")
ROWS = 500
UPGRADE_TIMEOUT = 1800.0


def _secret(lab: Lab, name: str) -> str:
    return (lab.cfg.secrets_dir / name).read_text().strip()


@pytest.fixture(scope="module")
def image_cache() -> None:
    """Every image built (or found) in the kit's cache, in a private engine that has network."""
    for why in (private_engine.available(), image_kit.available()):
        if why is not None:
            pytest.skip(why)
    with private_engine.private_engine() as uri:
        image_kit.ensure_images(uri, names=NODE_IMAGES, extra=(PATRONI,))


@pytest.fixture(scope="module")
def engines(lab: Lab, image_cache: None) -> Iterator[dict[str, str]]:
    uris = eng.start_engines(lab, HOSTS, iptables=True)
    try:
        for host, uri in uris.items():
            image_kit.ensure_images(uri, names=WITNESS_IMAGES if host == "witness"
                                    else NODE_IMAGES, extra=(PATRONI,))
        for host in ("node1", "node2"):
            eng.import_busybox(uris[host])
        yield uris
    finally:
        eng.stop_engines(lab, HOSTS)


def _wait(what: str, predicate, timeout: float = 120.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (OSError, psycopg.Error, redis.RedisError, httpx.HTTPError):
            pass
        time.sleep(1)
    raise AssertionError(f"not true after {timeout:g} s: {what}")


def _pg(lab: Lab, host: str) -> psycopg.Connection:
    return psycopg.connect(host=lab.address(host), port=5432, dbname="cms", user="cms",
                           password=_secret(lab, "postgres_password"), connect_timeout=5,
                           autocommit=True)


@pytest.fixture(scope="module")
def single_server(lab: Lab, engines: dict[str, str]) -> None:
    """The stack up on node1 (docker-compose run on the host, as its admin would), rows and a
    Redis key written to it."""
    t = LabHostTransport("node1", lab.cfg.lab_dir)
    t.run(["mkdir", "-p", cs.APP_DIR])
    t.write_file(cs.COMPOSE_FILE, cs.compose_file(eng.IMAGE), mode=0o644)
    t.write_file(f"{cs.APP_DIR}/.env.node1", cs.env_file(
        _secret(lab, "postgres_password"), _secret(lab, "redis_password")), mode=0o600)
    lab.sh("node1", f"cd {cs.APP_DIR} && docker-compose -p {cs.PROJECT} up -d")

    def writable() -> bool:
        with _pg(lab, "node1") as c:
            c.execute("CREATE TABLE IF NOT EXISTS before_upgrade (id int PRIMARY KEY, v text)")
            return True

    _wait("PostgreSQL answers on node1", writable)
    with _pg(lab, "node1") as c:
        c.execute("INSERT INTO before_upgrade SELECT g, md5(g::text) FROM "
                  "generate_series(1, %s) g ON CONFLICT DO NOTHING", (ROWS,))
    # the password on stdin, never in argv
    out = t.run(["docker-compose", "-p", cs.PROJECT, "-f", cs.COMPOSE_FILE, "--env-file",
                 f"{cs.APP_DIR}/.env.node1", "exec", "-T", "redis", "redis-cli"],
                input=f"AUTH {_secret(lab, 'redis_password')}\nSET before-upgrade kept\n")
    assert out.stdout.split() == ["OK", "OK"], out.stdout


@pytest.fixture(scope="module")
def inventory(lab: Lab) -> Path:
    yaml = YAML(typ="safe", pure=True)
    data = cs.compose_inventory(yaml.load(lab.cfg.inventory_file.read_text()),
                                lab.address("node1"))
    path = lab.cfg.lab_dir / "compose-inventory.yaml"  # beside the key and secrets it names
    with path.open("w") as fh:
        yaml.dump(data, fh)
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def upgraded(single_server: None, inventory: Path, engines: dict[str, str]) -> dict:
    res = hapair("upgrade", "-i", str(inventory), "-y", "--experimental-compose", "-o", "json",
                 timeout=UPGRADE_TIMEOUT)
    assert res.returncode == 0, res.stderr[-6000:] + _container_logs(engines)
    return json.loads(res.stdout)


def _container_logs(engines: dict[str, str], lines: int = 40) -> str:
    """The last lines of every container's log on every host (the engines and their logs
    are gone once the module ends)."""
    out = []
    for host, uri in engines.items():
        names = subprocess.run(["docker", "-H", uri, "ps", "-a", "--format", "{{.Names}}"],
                               capture_output=True, text=True, timeout=60).stdout.split()
        for name in names:
            log = subprocess.run(["docker", "-H", uri, "logs", "--tail", str(lines), name],
                                 capture_output=True, text=True, timeout=60)
            out.append(f"\n--- {host}: {name}\n{log.stdout}{log.stderr}")
    return "".join(out)


def _psql(engines: dict[str, str], host: str, sql: str) -> list[list[str]]:
    """psql in the host's Patroni container, as its OS user postgres (peer-mapped to the
    image's superuser): after the upgrade PostgreSQL takes connections from the nodes and the
    app's networks only, not from the controller."""
    uri = engines[host]
    found = subprocess.run(["docker", "-H", uri, "ps", "-q", "--filter",
                            "label=com.docker.compose.service=hapair-patroni"],
                           capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert len(found) == 1, f"{host}: hapair-patroni containers {found}"
    res = subprocess.run(["docker", "-H", uri, "exec", "-i", "-u", "postgres", found[0], "psql",
                          "-X", "-At", "-F", "|", "-v", "ON_ERROR_STOP=1", "-U", "cms", "-d",
                          "cms"], input=sql, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return [line.split("|") for line in res.stdout.splitlines()]


def test_every_row_reaches_node2_and_new_writes_follow(engines: dict[str, str],
                                                       upgraded: dict) -> None:
    assert upgraded["run"]["result"] == "ok"
    assert _psql(engines, "node2", "SELECT pg_is_in_recovery()") == [["t"]]
    assert _psql(engines, "node2", "SELECT count(*), sum(id) FROM before_upgrade") == [
        [str(ROWS), str(ROWS * (ROWS + 1) // 2)]]
    assert _psql(engines, "node1", "SELECT application_name, sync_state FROM "
                 "pg_stat_replication") == [["node2", "sync"]]
    _psql(engines, "node1", f"INSERT INTO before_upgrade VALUES ({ROWS + 1}, 'after')")
    # flushed on node2 before the commit returned; replayed (readable) moments later
    _wait("the new row readable on node2", lambda: _psql(
        engines, "node2", f"SELECT v FROM before_upgrade WHERE id = {ROWS + 1}") == [["after"]],
        30)


def test_the_redis_key_written_before_is_on_node2_s_replica(lab: Lab, upgraded: dict) -> None:
    replica = redis.Redis(host=lab.address("node2"), port=6379,
                          password=_secret(lab, "redis_password"), socket_timeout=5)
    with replica:
        assert replica.info("replication")["role"] == "slave"
        _wait("the key replicated", lambda: replica.get("before-upgrade") == b"kept", 30)


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


def _patroni(lab: Lab, host: str, path: str) -> httpx.Response:
    return httpx.get(f"http://{lab.address(host)}:8008{path}", timeout=3, trust_env=False)


def _members(lab: Lab, via: str) -> dict[str, dict]:
    return {m["name"]: m for m in _patroni(lab, via, "/cluster").json()["members"]}


def test_a_crash_of_node1_promotes_node2_with_every_acknowledged_write(
        lab: Lab, engines: dict[str, str], upgraded: dict) -> None:
    """Patroni and Sentinel in containers fail over by themselves: every row whose commit
    returned on node1 (synchronous replication) is on node2, which takes writes."""
    _psql(engines, "node1", "CREATE TABLE during_failover (id int PRIMARY KEY)")
    for i in range(FAILOVER_ROWS):  # one acknowledged commit each
        _psql(engines, "node1", f"INSERT INTO during_failover VALUES ({i})")
    lab.cli("crash", "node1")
    _wait("node2 is the PostgreSQL primary",
          lambda: _patroni(lab, "node2", "/primary").status_code == 200, 180)
    assert _psql(engines, "node2", "SELECT count(*) FROM during_failover") == [
        [str(FAILOVER_ROWS)]]
    _psql(engines, "node2", f"INSERT INTO during_failover VALUES ({FAILOVER_ROWS})")
    redis2 = redis.Redis(host=lab.address("node2"), port=6379,
                         password=_secret(lab, "redis_password"), socket_timeout=5)
    with redis2:
        _wait("Sentinel promoted node2's Redis",
              lambda: redis2.info("replication")["role"] == "master", 120)
        assert redis2.get("before-upgrade") == b"kept"


def test_rejoin_brings_node1_back_as_a_streaming_standby(
        lab: Lab, engines: dict[str, str], inventory: Path) -> None:
    lab.cli("boot", "node1")
    _wait("node1's engine answers", lambda: eng.answers(engines["node1"]), 120)
    res = hapair("rejoin", "-i", str(inventory), "node1", "-o", "json")
    assert res.returncode == 0, res.stderr[-4000:] + _container_logs(engines)
    members = _members(lab, "node2")
    assert (members["node2"]["role"], members["node1"]["state"]) == ("leader", "streaming")
    _wait("node1 has every row", lambda: _psql(
        engines, "node1", "SELECT count(*) FROM during_failover") == [[str(FAILOVER_ROWS + 1)]],
        60)
    assert _psql(engines, "node1", "SELECT pg_is_in_recovery()") == [["t"]]


def test_switchover_back_to_node1_moves_postgres_and_redis(
        lab: Lab, engines: dict[str, str], inventory: Path) -> None:
    """`hapair switchover --to node1 --redis` on compose hosts: Patroni moves the primary,
    the routers follow (their runtime API in the router containers), Sentinel moves Redis;
    no PgBouncer there, and the report says so."""
    res = hapair("switchover", "-i", str(inventory), "--to", "node1", "--redis", "-o", "json")
    assert res.returncode == 0, res.stderr[-4000:] + _container_logs(engines)
    pg, rd = json.loads(res.stdout)["switchovers"]
    assert (pg["service"], pg["to"], rd["service"], rd["to"]) == (
        "postgres", "node1", "redis", "node1")
    assert any("no PgBouncer" in note for note in pg["notes"])
    members = _members(lab, "node1")
    assert (members["node1"]["role"], members["node2"]["role"]) == ("leader", "sync_standby")
    _psql(engines, "node1", f"INSERT INTO during_failover VALUES ({FAILOVER_ROWS + 1})")
    _wait("node2 has the row written after the switchover", lambda: _psql(
        engines, "node2", f"SELECT count(*) FROM during_failover WHERE id = {FAILOVER_ROWS + 1}"
    ) == [["1"]], 30)
