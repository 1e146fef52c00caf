"""Day-2 operations on the lab's upgraded pair (issue 4): switchover there and back with no
failed request, then the guide's own failover check — crash the primary's host under load,
the site keeps answering, Sentinel names node2, nothing acknowledged is lost, and node1 comes
back as a standby that never accepted a write.

One module-scoped lab: `lab up` + `hapair upgrade`, then the tests in file order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_helpers import CLI_TIMEOUT, UP_TIMEOUT, Lab, run_cli

from hapair.drill import LoadConfig, LoadGenerator, build_report, check_writes
from hapair.lab.config import config_from_env

pytestmark = pytest.mark.lab

SLOW = 900.0


def hapair(*args: str, timeout: float = SLOW) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hapair.cli.main", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Lab, Path]]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    run_cli("up", timeout=UP_TIMEOUT)
    try:
        lab = Lab(config_from_env())
        inventory = Path(lab.status()["inventory"])
        res = hapair("upgrade", "-i", str(inventory), "-y")
        assert res.returncode == 0, res.stderr[-3000:]
        yield lab, inventory
    finally:
        run_cli("down", timeout=CLI_TIMEOUT)


def leader(lab: Lab) -> str:
    for node in ("node1", "node2"):
        out = lab.sh(node, "curl -s -o /dev/null -w '%{http_code}' "
                           "http://$(hostname -I | cut -d' ' -f1):8008/primary", check=False)
        if out.stdout.strip() == "200":
            return node
    raise AssertionError("no node answers /primary")


def switchover(inventory: Path, to: str) -> dict:
    res = hapair("switchover", "-i", str(inventory), "--to", to, "--redis", "-o", "json")
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


def test_switchover_there_and_back_loses_no_request(pair: tuple[Lab, Path]) -> None:
    lab, inventory = pair
    load = LoadGenerator(LoadConfig(url="http://10.99.0.10/", duration=None, rate=20,
                                    timeout=15)).start()
    try:
        there = switchover(inventory, "node2")
        assert leader(lab) == "node2"
        back = switchover(inventory, "node1")
        assert leader(lab) == "node1"
    finally:
        load.stop()
        result = load.wait()
    report = build_report(result, check_writes(result, retry_for=10)).to_dict()
    assert report["requests"]["failed"] == 0, report["failure_reasons"]
    assert report["writes"]["lost"] == [] and report["writes"]["unverified"] == []
    for doc, target in ((there, "node2"), (back, "node1")):
        services = {s["service"]: s for s in doc["switchovers"]}
        assert services["postgres"]["to"] == target and services["redis"]["to"] == target
        assert any("streaming" in n for n in services["postgres"]["notes"])


def test_crash_of_the_primary_under_load(pair: tuple[Lab, Path]) -> None:
    lab, inventory = pair
    res = hapair("failover", "-i", str(inventory), "--test", "--fault", "crash", "-o", "json")
    doc = json.loads(res.stdout) if res.stdout.strip() else {}
    assert res.returncode == 0, (res.stderr[-3000:], doc)
    assert doc["old_primary"] == "node1" and doc["new_primary"] == "node2"
    assert doc["sentinel_master"] == "node2"  # Sentinel's get-master-addr-by-name
    assert doc["old_primary_writable_samples"] == 0 and doc["old_primary_samples"] > 0
    assert doc["writes_back_after_s"] is not None
    writes = doc["drill"]["writes"]
    assert writes["lost"] == [] and writes["unverified"] == []
    assert writes["acknowledged_total"] > 0
    # node1 came back as a standby following node2.
    assert leader(lab) == "node2"
    state = lab.sh("node1", "runuser -u postgres -- psql -Atc 'SELECT pg_is_in_recovery()'")
    assert state.stdout.strip() == "t"


def test_rejoin_reports_a_streaming_standby(pair: tuple[Lab, Path]) -> None:
    _lab, inventory = pair
    res = hapair("rejoin", "-i", str(inventory), "node1", "-o", "json")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "streaming" in json.loads(res.stdout)["state"]
