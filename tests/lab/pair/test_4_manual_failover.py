"""`hapair failover --to NODE` on the lab's upgraded pair (issue 4 item 5, decision 0003).

First: with a healthy witness, the manual path refuses (automatic failover is on). Then "no
automatic failover": the witness's etcd member and Sentinel are stopped and node1 (the
primary) loses power, under load through the front door. `failover --to node2` fences by the
operator's statement, re-forms etcd on node2, promotes it through Patroni, moves the Redis
master: writes come back, nothing acknowledged is lost (sync mode). Last: the witness's
Sentinel is started again, node1 boots and `rejoin` brings it back as a standby; node1 is
sampled all along and is never writable.

The pair test_1 upgraded (conftest.py), the tests in file order; node2 ends primary, node1
its rejoined standby, etcd re-formed with all three members (the next module's fixture moves
the roles back).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from lab_helpers import CLI_TIMEOUT, Lab, hapair, run_cli

from hapair.drill import LoadConfig, LoadGenerator, build_report, check_writes
from hapair.workflows.ops.failover import MIX_WITHOUT_MEDIA, WritableSampler
from hapair.workflows.ops.faults import LabInjector

pytestmark = pytest.mark.lab

SUPERVISORCTL = "supervisorctl -c /etc/supervisor/supervisord.conf"


@pytest.fixture(scope="module")
def pair(healthy_pair: tuple[Lab, Path]) -> tuple[Lab, Path]:
    return healthy_pair


def primary_answer(lab: Lab, node: str) -> str:
    return lab.sh(node, "curl -s -o /dev/null -m 3 -w '%{http_code}' "
                        f"http://{lab.address(node)}:8008/primary", check=False).stdout.strip()


def etcd_members(lab: Lab, via: str) -> list[dict]:
    out = lab.sh(via, f"ETCDCTL_API=3 etcdctl --endpoints=http://{lab.address(via)}:2379 "
                      "member list -w json").stdout
    return json.loads(out)["members"]


def test_refused_while_automatic_failover_can_act(pair: tuple[Lab, Path]) -> None:
    _lab, inventory = pair
    res = hapair("failover", "-i", str(inventory), "--to", "node2", "-y", "-o", "json")
    assert res.returncode == 3, res.stderr[-2000:]
    assert "automatic failover is on" in res.stderr and "hapair switchover" in res.stderr
    # The upgrade left etcd's leader on the witness, not on the primary's host (decision 0002).
    status = json.loads(hapair("status", "-i", str(inventory), "-o", "json").stdout)
    assert status["primary"] == "node1"
    assert not [w for w in status["warnings"] if w["code"] == "etcd_leader_on_primary"]


def test_manual_failover_without_quorum_loses_nothing(pair: tuple[Lab, Path]) -> None:
    lab, inventory = pair
    load = LoadGenerator(LoadConfig(url="http://10.99.0.10/", duration=None, rate=10,
                                    timeout=10, mix=MIX_WITHOUT_MEDIA)).start()
    try:
        time.sleep(3)
        lab.sh("witness", f"{SUPERVISORCTL} stop sentinel etcd")
        t_fault = time.monotonic()
        run_cli("crash", "node1")
        time.sleep(5)
        # Nothing fails over by itself: no etcd majority, no Sentinel quorum.
        assert primary_answer(lab, "node2") != "200"
        res = hapair("failover", "-i", str(inventory), "--to", "node2", "--old-primary-is-down",
                     "-y", "-o", "json")
        assert res.returncode == 0, res.stderr[-3000:]
        doc = json.loads(res.stdout)
        time.sleep(8)
    finally:
        load.stop()
        run = load.wait()
    report = build_report(run, check_writes(run, retry_for=20, check_sessions=False)).to_dict()
    writes = report["writes"]
    assert writes["lost"] == [] and writes["unverified"] == []
    assert writes["acknowledged_total"] > 0
    assert run.recovery_after(t_fault, "article.create") is not None
    assert doc["in_sync"] is True and doc["may_have_lost"] is None
    assert doc["mode"] == "forced-dcs" and doc["fence"] == "operator statement"
    assert not [n for n in doc["notes"] if "NOT moved" in n]
    assert primary_answer(lab, "node2") == "200"
    # etcd: node2 plus the re-added witness; node1's member is left out until its rejoin.
    names = sorted(m.get("name", "") for m in etcd_members(lab, "node2"))
    assert names == ["node2", "witness"]
    print(f"manual failover: {doc['timings_s']}; report {report['requests']}", file=sys.stderr)


def test_rejoin_after_manual_failover_and_old_primary_never_writable(
        pair: tuple[Lab, Path]) -> None:
    lab, inventory = pair
    lab.sh("witness", f"{SUPERVISORCTL} start sentinel")
    sampler = WritableSampler(LabInjector("crash"), "node1").start()
    try:
        run_cli("boot", "node1", timeout=CLI_TIMEOUT)
        res = hapair("rejoin", "-i", str(inventory), "node1", "-o", "json")
        assert res.returncode == 0, res.stderr[-3000:]
        assert "streaming" in json.loads(res.stdout)["state"]
    finally:
        sampler.stop()
    assert sampler.samples and sampler.writable_after(0) == 0
    state = lab.sh("node1", "runuser -u postgres -- psql -Atc 'SELECT pg_is_in_recovery()'")
    assert state.stdout.strip() == "t"
    assert primary_answer(lab, "node2") == "200" and primary_answer(lab, "node1") != "200"
    members = etcd_members(lab, "node2")
    assert sorted(m.get("name", "") for m in members) == ["node1", "node2", "witness"]
    assert not any(m.get("isLearner") for m in members)
