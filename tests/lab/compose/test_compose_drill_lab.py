"""Opt-in (HAPAIR_DOCKER_E2E=1, root): the failover drill, `hapair failover --test`, on the
compose pair with the reference CMS as the app.

node1 runs the `cms` stack (compose_stack.py: PostgreSQL 17, Redis, an S3 stand-in, the CMS
backend published on port 80), made a pair by `hapair upgrade --experimental-compose`. The
inventory's front door is node2's app (node2:80), which reaches the primary through node2's
router; the fault is a real power loss of node1's host (the drill's lab fault: this module
writes the compose inventory where the lab keeps its own, so hapair knows it drills the lab).
Then: the drill passes (writes back, every acknowledged write found through the front door,
Sentinel names node2, node1 back as a streaming standby once booted), the roles are right in
Patroni and in PostgreSQL itself, every article the drill acknowledged is in both databases,
and node1's PostgreSQL never took a write after the fault — sampled here, in its Patroni
container, all through the drill (the drill's own lab probe runs psql on the host, where
there is no PostgreSQL on compose hosts).

The drill's load runs without media uploads (each node's S3 stand-in is its own: no object
replication in the compose layout) and asks for the front page too, which this stack has no
frontend for: those requests fail with 404 and are not what is asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cms_app
import compose_pair as cp
import compose_stack as cs
import engines as eng
import pytest
from lab_helpers import Lab, hapair
from ruamel.yaml import YAML

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.environ.get("HAPAIR_DOCKER_E2E") != "1",
                       reason="opt-in: HAPAIR_DOCKER_E2E=1 (Docker engines in the lab hosts)"),
    pytest.mark.timeout(3600),
]

DRILL_TIMEOUT = 900.0


@pytest.fixture(scope="module")
def cms_engines(lab: Lab) -> Iterator[dict[str, str]]:
    """An engine on each host with the images of hapair's services and the CMS (built in a
    private engine first when the kit's cache lacks one)."""
    cms_app.ensure_cache((*cp.NODE_IMAGES, *cp.WITNESS_IMAGES), [cp.PATRONI])
    uris = eng.start_engines(lab, cp.HOSTS, iptables=True)
    try:
        cms_app.load_images(uris)
        yield uris
    finally:
        eng.stop_engines(lab, cp.HOSTS)


@pytest.fixture(scope="module")
def cms_pair(lab: Lab, cms_engines: dict[str, str]) -> Path:
    """The CMS stack on node1, upgraded into the pair; the compose inventory (front door:
    node2's app) written over the lab's own, which makes `failover --test` use the lab's
    faults."""
    cms_app.start_single_server(lab)
    yaml = YAML(typ="safe", pure=True)
    path = lab.cfg.inventory_file
    data = cs.compose_inventory(yaml.load(path.read_text()), lab.address("node1"))
    data["front_door"] = {"kind": "static", "address": lab.address("node2"),
                          "port": cs.APP_PORT}
    with path.open("w") as fh:
        yaml.dump(data, fh)
    path.chmod(0o600)
    res = hapair("upgrade", "-i", str(path), "-y", "--experimental-compose", "-o", "json",
                 timeout=cp.UPGRADE_TIMEOUT)
    assert res.returncode == 0, res.stderr[-6000:] + cp.container_logs(cms_engines)
    return path


def writable(uri: str) -> bool | None:
    """Does this engine's PostgreSQL (in hapair-patroni) take writes? None: no answer."""
    try:
        found = subprocess.run(["docker", "-H", uri, "ps", "-q", "--filter",
                                "label=com.docker.compose.service=hapair-patroni"],
                               capture_output=True, text=True, timeout=5).stdout.split()
        if len(found) != 1:
            return None
        res = subprocess.run(["docker", "-H", uri, "exec", "-u", "postgres", found[0], "psql",
                              "-XAt", "-U", "cms", "-d", "cms", "-c",
                              "SELECT NOT pg_is_in_recovery()"],
                             capture_output=True, text=True, timeout=5)
    except subprocess.TimeoutExpired:
        return None
    return {"t": True, "f": False}.get(res.stdout.strip()) if res.returncode == 0 else None


class Sampler:
    """(wall time, writable) of one engine's PostgreSQL, once a second, in a thread."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.samples: list[tuple[datetime, bool | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((datetime.now(UTC), writable(self.uri)))
            self._stop.wait(1.0)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture(scope="module")
def node1_samples() -> list[tuple[datetime, bool | None]]:
    return []


@pytest.fixture(scope="module")
def drill(lab: Lab, cms_engines: dict[str, str], cms_pair: Path,
          node1_samples: list[tuple[datetime, bool | None]]) -> dict:
    cp.wait("node2's app answers /health/ 200 through its router",
            lambda: cms_app.health(lab.address("node2")).status_code == 200, 120)
    with Sampler(cms_engines["node1"]) as sampler:
        res = hapair("failover", "-i", str(cms_pair), "--test", "--without-media", "-o",
                     "json", timeout=DRILL_TIMEOUT)
    node1_samples.extend(sampler.samples)
    logs = cp.container_logs(cms_engines)
    assert res.stdout.strip(), f"no report (exit {res.returncode}):\n{res.stderr[-6000:]}{logs}"
    doc = json.loads(res.stdout)
    assert res.returncode == 0 and doc["ok"], (
        json.dumps({k: v for k, v in doc.items() if k != "drill"}, indent=1)
        + json.dumps(doc.get("drill", {}).get("writes"), indent=1) + res.stderr[-4000:] + logs)
    print(summary(doc), file=sys.stderr)  # shown with -s: what the drill measured
    return doc


def summary(doc: dict) -> str:
    d = doc["drill"]
    keys = ("postgres_leader_after_s", "redis_master_after_s", "writes_back_after_s",
            "any_write_back_after_s", "rejoin_s")
    return json.dumps({**{k: doc[k] for k in keys}, "requests": d["requests"],
                       "longest_error_window": d["longest_error_window"],
                       "writes": {k: d["writes"][k] for k in ("acknowledged", "checked",
                                                              "verified")}})


def test_the_drill_fails_node1_over_to_node2_and_loses_no_acknowledged_write(
        drill: dict) -> None:
    assert (drill["fault"], drill["old_primary"], drill["new_primary"]) == (
        "crash", "node1", "node2")
    assert drill["sentinel_master"] == "node2"
    writes = drill["drill"]["writes"]
    assert writes["acknowledged"]["article"] > 0
    assert writes["checked"] == writes["verified"] == writes["acknowledged"]["article"]
    assert (writes["lost"], writes["unverified"]) == ([], [])
    assert drill["writes_back_after_s"] is not None and drill["rejoined"]
    # the drill's own verdict, which includes its sampling of node1 through Patroni's
    # container (never writable after the fault)
    assert drill["old_primary_writable_samples"] == 0 and drill["ok"] is True


def test_node2_leads_and_node1_streams_from_it_afterwards(
        lab: Lab, cms_engines: dict[str, str], drill: dict) -> None:
    members = cp.members(lab, "node2")
    assert members["node2"]["role"] == "leader"
    assert (members["node1"]["role"], members["node1"]["state"]) in (
        ("sync_standby", "streaming"), ("replica", "streaming"))
    assert cp.psql(cms_engines, "node2", "SELECT pg_is_in_recovery()") == [["f"]]
    assert cp.psql(cms_engines, "node1", "SELECT pg_is_in_recovery()") == [["t"]]


def test_every_article_the_drill_acknowledged_is_in_both_databases(
        cms_engines: dict[str, str], drill: dict) -> None:
    """The drill checked its acknowledged articles through the front door; here the
    databases are asked directly: at least as many of its articles on the new primary, and
    the same ones on the rejoined standby."""
    run_id = drill["drill"]["run"]["id"]
    acked = drill["drill"]["writes"]["acknowledged"]["article"]
    sql = (f"SELECT count(*), coalesce(sum(id), 0) FROM articles_article "
           f"WHERE title LIKE 'drill {run_id} w%'")
    [[count, ids]] = cp.psql(cms_engines, "node2", sql)
    assert int(count) >= acked
    cp.wait("node1 has replayed the drill's articles",
            lambda: cp.psql(cms_engines, "node1", sql) == [[count, ids]], 60)


def test_node1_never_took_a_write_after_the_fault(
        drill: dict, node1_samples: list[tuple[datetime, bool | None]]) -> None:
    run = drill["drill"]["run"]
    fault_at = (datetime.fromisoformat(run["started_at"])
                + timedelta(seconds=drill["drill"]["recovery"]["crash node1"]["fault_at_s"]))
    before = [w for at, w in node1_samples if at < fault_at]
    after = [w for at, w in node1_samples if at > fault_at + timedelta(seconds=1)]
    assert True in before  # the probe saw the primary before the fault: it can say "yes"
    assert False in after  # node1 answered again after its boot: as a standby
    assert True not in after


def test_migrate_runs_the_migrations_once_on_the_new_primary_s_node(
        cms_pair: Path, drill: dict) -> None:
    """The upgrade moved `migrate` out of the backend's start command into a one-shot
    service; `hapair migrate` runs it where the primary is now (node2, after the drill)."""
    res = hapair("migrate", "-i", str(cms_pair), "-o", "json", timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads(res.stdout)
    assert (doc["node"], doc["ran"], doc["returncode"]) == ("node2", True, 0)
    assert "No migrations to apply" in doc["output"], doc["output"]

