"""What the compose lab tests share: the images, the single-server stack's rows, and small
probes of the pair on the hosts' engines (psql in a Patroni container, Patroni's REST, waits).
The fixtures that build the pair are in conftest.py (one pair per test module)."""

from __future__ import annotations

import subprocess
import sys
import time

import compose_stack as cs
import httpx
import psycopg
import redis
from lab_helpers import REPO, Lab

from hapair.compose.generate_configs import patroni_dockerfile

sys.path.insert(0, str(REPO / "tests" / "integration" / "compose"))
from image_recipes import ImageSpec  # noqa: E402

HOSTS = ("node1", "node2", "witness")
PATRONI = ImageSpec(("hapair/patroni:pg17",), cs.PG_IMAGE,
                    patroni_dockerfile(cs.PG_IMAGE, alpine=False))
NODE_IMAGES = (cs.PG_IMAGE, cs.REDIS_IMAGE, "quay.io/coreos/etcd:v3.5.17", "haproxy:2.6",
               PATRONI.names[0])
WITNESS_IMAGES = (cs.REDIS_IMAGE, "quay.io/coreos/etcd:v3.5.17")
ROWS = 500
UPGRADE_TIMEOUT = 1800.0


def secret(lab: Lab, name: str) -> str:
    return (lab.cfg.secrets_dir / name).read_text().strip()


def wait(what: str, predicate, timeout: float = 120.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (OSError, psycopg.Error, redis.RedisError, httpx.HTTPError):
            pass
        time.sleep(1)
    raise AssertionError(f"not true after {timeout:g} s: {what}")


def pg(lab: Lab, host: str) -> psycopg.Connection:
    return psycopg.connect(host=lab.address(host), port=5432, dbname="cms", user="cms",
                           password=secret(lab, "postgres_password"), connect_timeout=5,
                           autocommit=True)


def container_logs(engines: dict[str, str], lines: int = 40) -> str:
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


def container(engines: dict[str, str], host: str, service: str) -> str:
    """The id of the one container of compose service `service` on `host`'s engine."""
    found = subprocess.run(["docker", "-H", engines[host], "ps", "-q", "--filter",
                            f"label=com.docker.compose.service={service}"],
                           capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert len(found) == 1, f"{host}: {service} containers {found}"
    return found[0]


def psql(engines: dict[str, str], host: str, sql: str) -> list[list[str]]:
    """psql in the host's Patroni container, as its OS user postgres (peer-mapped to the
    image's superuser): after the upgrade PostgreSQL takes connections from the nodes and the
    app's networks only, not from the controller."""
    uri = engines[host]
    cid = container(engines, host, "hapair-patroni")
    res = subprocess.run(["docker", "-H", uri, "exec", "-i", "-u", "postgres", cid, "psql",
                          "-X", "-At", "-F", "|", "-v", "ON_ERROR_STOP=1", "-U", "cms", "-d",
                          "cms"], input=sql, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return [line.split("|") for line in res.stdout.splitlines()]


def patroni(lab: Lab, host: str, path: str) -> httpx.Response:
    return httpx.get(f"http://{lab.address(host)}:8008{path}", timeout=3, trust_env=False)


def members(lab: Lab, via: str) -> dict[str, dict]:
    return {m["name"]: m for m in patroni(lab, via, "/cluster").json()["members"]}


