"""`hapair rollback` on the lab (issue 4 item 7): back to one server — the node that holds
the data — under load, with every write since the upgrade, nothing of the pair running, the
single-node checks green, and `hapair plan` usable again.

Last module of the package: it ends the pair test_1 upgraded and the others used (the
refusal before any upgrade is test_1's first test). Writes under the drill load → (node2:
switchover of PostgreSQL and Redis) → rollback under the drill load → assertions; the
package's fixture takes the lab down (logs kept on failure).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from lab_helpers import Lab, hapair, programs

from hapair.drill import LoadConfig, LoadGenerator, check_writes
from hapair.workflows.rollback.model import PAIR_PROGRAMS, PEER_PROGRAMS, leftovers

pytestmark = pytest.mark.lab

# The package's one pair is rolled back once: by default the harder case (to node2, after a
# switchover); HAPAIR_ROLLBACK_TARGET=node1 runs the other.
TARGET = os.environ.get("HAPAIR_ROLLBACK_TARGET", "node2")


def leader(lab: Lab) -> str | None:
    for node in ("node1", "node2"):
        out = lab.sh(node, "curl -s -o /dev/null -w '%{http_code}' "
                           "http://$(hostname -I | cut -d' ' -f1):8008/primary", check=False)
        if out.stdout.strip() == "200":
            return node
    return None


@pytest.mark.parametrize("target", [TARGET])
def test_rollback_keeps_every_write(healthy_pair: tuple[Lab, Path], target: str) -> None:
    lab, inventory = healthy_pair
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
