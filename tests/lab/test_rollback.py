"""`hapair rollback` on the lab (issue 4 item 7): back to one server — the node that holds
the data — under load, with every write since the upgrade, nothing of the pair running, the
single-node checks green, and `hapair plan` usable again.

Each case builds its own lab: `lab up` → refusal before any upgrade → `hapair upgrade` →
writes under the drill load → (node2: switchover of PostgreSQL and Redis) → rollback under
the drill load → assertions → `lab down` (logs kept on failure by the conftest helper).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_helpers import CLI_TIMEOUT, UP_TIMEOUT, Lab, hapair, keep_logs, run_cli

from hapair.drill import LoadConfig, LoadGenerator, check_writes
from hapair.lab.config import config_from_env
from hapair.workflows.rollback.model import PAIR_PROGRAMS, PEER_PROGRAMS, leftovers

pytestmark = pytest.mark.lab

# One lab cycle takes about 5 minutes: by default only the harder case (rollback to node2
# after a switchover) runs, to stay under 8 minutes; HAPAIR_ROLLBACK_TARGETS=node1,node2
# runs both.
TARGETS = os.environ.get("HAPAIR_ROLLBACK_TARGETS", "node2").split(",")
CTL = "supervisorctl -c /etc/supervisor/supervisord.conf"


@pytest.fixture
def fresh_lab(request: pytest.FixtureRequest) -> Iterator[tuple[Lab, Path]]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    cfg = config_from_env()
    failed_before = request.session.testsfailed
    try:
        run_cli("up", timeout=UP_TIMEOUT)
        lab = Lab(cfg)
        yield lab, Path(lab.status()["inventory"])
    finally:
        try:
            if request.session.testsfailed > failed_before:
                keep_logs(cfg, "rollback")
        finally:
            run_cli("down", timeout=CLI_TIMEOUT)


def programs(lab: Lab, host: str) -> list[tuple[str, str]]:
    out = lab.sh(host, f"{CTL} status", check=False).stdout
    return [(line.split()[0], line.split()[1]) for line in out.splitlines() if line.split()]


def leader(lab: Lab) -> str | None:
    for node in ("node1", "node2"):
        out = lab.sh(node, "curl -s -o /dev/null -w '%{http_code}' "
                           "http://$(hostname -I | cut -d' ' -f1):8008/primary", check=False)
        if out.stdout.strip() == "200":
            return node
    return None


def assert_refused_before_any_upgrade(lab: Lab, inventory: Path) -> None:
    before = {h: programs(lab, h) for h in ("node1", "node2", "witness")}
    res = hapair("rollback", "-i", str(inventory), "-y")
    assert res.returncode == 3, res.stderr[-2000:]
    assert "no completed `hapair upgrade`" in res.stderr
    assert {h: programs(lab, h) for h in before} == before  # nothing touched
    assert not (inventory.parent / "runs" / "rollback").exists()


@pytest.mark.parametrize("target", TARGETS)
def test_rollback_keeps_every_write(fresh_lab: tuple[Lab, Path], target: str) -> None:
    lab, inventory = fresh_lab
    assert_refused_before_any_upgrade(lab, inventory)
    res = hapair("upgrade", "-i", str(inventory), "-y")
    assert res.returncode == 0, res.stderr[-3000:]

    # Writes made on the pair (articles, media, sessions) before the rollback starts.
    load = LoadGenerator(LoadConfig(url=lab.cfg.front_door_url, duration=None, rate=20,
                                    timeout=15)).start()
    try:
        if target == "node2":
            res = hapair("switchover", "-i", str(inventory), "--to", "node2", "--redis")
            assert res.returncode == 0, res.stderr[-3000:]
        else:
            time.sleep(15)
    finally:
        load.stop()
        on_pair = load.wait()
    assert leader(lab) == target
    assert on_pair.acks

    dry = hapair("rollback", "-i", str(inventory), "--dry-run", "-o", "json")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert json.loads(dry.stdout)["target"] == target

    res = hapair("rollback", "-i", str(inventory), "-y", "--drill-load", "-o", "json")
    assert res.returncode == 0, res.stderr[-4000:]
    doc = json.loads(res.stdout)
    impact = doc["client_impact"]
    sys.stderr.write(f"\nrollback to {target}: {impact['summary']}; write pause "
                     f"{impact['write_pause']}\n")
    assert impact["writes"]["lost"] == [] and impact["writes"]["unverified"] == []
    assert doc["target"] == target

    # Every write acknowledged on the pair is on the single server.
    since_upgrade = check_writes(on_pair, retry_for=10)
    assert since_upgrade.ok, (since_upgrade.lost, since_upgrade.unverified)

    # Nothing of the pair runs anywhere; the peer serves nothing.
    peer = "node2" if target == "node1" else "node1"
    for host in ("node1", "node2", "witness"):
        forbidden = PAIR_PROGRAMS + (PEER_PROGRAMS if host == peer else ())
        assert leftovers(programs(lab, host), forbidden) == [], host
    single = dict(programs(lab, target))
    assert all(single.get(p) == "RUNNING" for p in ("postgres", "redis", "s3", "backend",
                                                   "frontend", "nginx")), single

    # The service address is the target's, statically; PostgreSQL is a plain primary.
    vip = lab.cfg.service_address
    assert vip in lab.sh(target, "ip -o addr show").stdout
    assert vip not in lab.sh(peer, "ip -o addr show").stdout
    assert f"{vip}/32" in lab.sh(target, "cat /etc/hapair/static-addresses").stdout
    psql = ("runuser -u postgres -- psql -XAtc \"SELECT pg_is_in_recovery(), "
            "current_setting('synchronous_standby_names'), "
            "(SELECT count(*) FROM pg_replication_slots)\"")
    assert lab.sh(target, psql).stdout.strip() == "f||0"
    # ... running on the pre-upgrade config (adapted to the target's address), not Patroni's.
    conf = ("runuser -u postgres -- psql -XAtc \"SELECT current_setting('listen_addresses'), "
            "current_setting('cluster_name'), (SELECT count(*) FROM pg_hba_file_rules WHERE "
            "address IS NOT NULL AND 'replication' = ANY(database))\"")
    assert lab.sh(target, conf).stdout.strip() == f"localhost,{lab.address(target)}||0"
    assert "replicaof" not in lab.sh(target, "cat /etc/redis/redis.conf").stdout
    assert lab.sh(peer, "test -d /var/lib/postgresql/15/main", check=False).returncode == 0

    # `hapair plan` works from the rolled-back state: no upgrade in progress, not "done".
    plan = hapair("plan", "-i", str(inventory), "-o", "json")
    pdoc = json.loads(plan.stdout)
    assert pdoc["resuming"] is False
    again = hapair("upgrade", "-i", str(inventory), "--dry-run", "-o", "json")
    assert "already_upgraded" not in again.stdout
    # A second rollback has nothing to roll back.
    assert hapair("rollback", "-i", str(inventory), "-y").returncode == 3
