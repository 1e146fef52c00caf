"""Day-2 operations on the lab's upgraded pair (issue 4): switchover there and back with no
failed request, then the guide's own failover check — crash the primary's host under load,
the site keeps answering, Sentinel names node2, nothing acknowledged is lost, and node1 comes
back as a standby that never accepted a write.

The pair test_1 upgraded (conftest.py), the tests in file order; node2 ends primary, node1
its rejoined standby (the next module's fixture moves the roles back).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lab_helpers import Lab, hapair

from hapair.drill import LoadConfig, LoadGenerator, build_report, check_writes

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def pair(healthy_pair: tuple[Lab, Path]) -> tuple[Lab, Path]:
    return healthy_pair


def leader(lab: Lab) -> str:
    for node in ("node1", "node2"):
        out = lab.sh(node, "curl -s -o /dev/null -w '%{http_code}' "
                           "http://$(hostname -I | cut -d' ' -f1):8008/primary", check=False)
        if out.stdout.strip() == "200":
            return node
    raise AssertionError("no node answers /primary")


def switchover(inventory: Path, to: str, *flags: str) -> dict:
    res = hapair("switchover", "-i", str(inventory), "--to", to, *flags, "-o", "json")
    assert res.returncode == 0, res.stderr[-3000:]
    return {s["service"]: s for s in json.loads(res.stdout)["switchovers"]}


def under_load(action) -> tuple[object, dict]:  # type: ignore[no-untyped-def]
    load = LoadGenerator(LoadConfig(url="http://10.99.0.10/", duration=None, rate=20,
                                    timeout=15)).start()
    try:
        out = action()
    finally:
        load.stop()
        result = load.wait()
    return out, build_report(result, check_writes(result, retry_for=10)).to_dict()


def test_check_and_status_on_the_healthy_pair(pair: tuple[Lab, Path]) -> None:
    _lab, inventory = pair
    res = hapair("check", "-i", str(inventory), "-o", "json")
    doc = json.loads(res.stdout)  # one JSON document, even when a check fails
    assert res.returncode == 0, [c for c in doc["checks"] if not c["ok"]]
    assert doc["checks"] and all(c["ok"] for c in doc["checks"])
    status = json.loads(hapair("status", "-i", str(inventory), "-o", "json").stdout)
    assert status["primary"] == "node1"
    assert not [w for w in status["warnings"] if w["code"] == "sync_degraded"]


def test_postgres_switchover_there_and_back_fails_no_request(pair: tuple[Lab, Path]) -> None:
    lab, inventory = pair

    def there_and_back() -> list[dict]:
        there = switchover(inventory, "node2")
        assert leader(lab) == "node2"
        back = switchover(inventory, "node1")
        assert leader(lab) == "node1"
        return [there["postgres"], back["postgres"]]

    moves, report = under_load(there_and_back)
    assert report["requests"]["failed"] == 0, report["failure_reasons"]
    assert report["writes"]["lost"] == [] and report["writes"]["unverified"] == []
    assert [m["to"] for m in moves] == ["node2", "node1"]  # type: ignore[index]
    assert all(any("streaming" in n for n in m["notes"]) for m in moves)  # type: ignore[union-attr]


def test_redis_switchover_there_and_back_fails_no_request(pair: tuple[Lab, Path]) -> None:
    _lab, inventory = pair

    def there_and_back() -> list[dict]:
        return [switchover(inventory, "node2", "--redis-only")["redis"],
                switchover(inventory, "node1", "--redis-only")["redis"]]

    moves, report = under_load(there_and_back)
    # Writes wait behind CLIENT PAUSE WRITE; the old master is demoted and every router is
    # switched before they resume, so no request fails (no stale session read either: reads
    # can no longer reach the old master once writes go to the new one) and nothing
    # acknowledged is lost; the roles end where they were sent.
    assert report["requests"]["failed"] == 0, report["failure_reasons"]
    assert report["writes"]["lost"] == [] and report["writes"]["unverified"] == []
    assert [m["to"] for m in moves] == ["node2", "node1"]  # type: ignore[index]
    assert all(any("slave" in n or "replica" in n for n in m["notes"])  # type: ignore[union-attr]
               for m in moves)


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



def test_backup_verify_and_restore_on_the_pair(pair: tuple[Lab, Path]) -> None:
    """The guide's daily backup and monthly backup check, on the real pair: taken from the
    healthy standby, verified by a scratch restore, restored only into a NEW database."""
    lab, inventory = pair
    inv = str(inventory)
    standby = "node1" if leader(lab) == "node2" else "node2"
    for kind in ("logical", "physical"):
        res = hapair("backup", "-i", inv, "--kind", kind, "-o", "json")
        assert res.returncode == 0, res.stderr[-3000:]
        res = hapair("backup", "verify", "-i", inv, "latest", "--kind", kind, "-o", "json")
        assert res.returncode == 0, (kind, res.stdout[-2000:], res.stderr[-2000:])
    listed = json.loads(hapair("backup", "list", "-i", inv, "-o", "json").stdout)["backups"]
    assert {b["kind"] for b in listed} >= {"logical", "physical"}, listed
    assert all(b["node"] == standby and b["source_role"] == "standby"
               and b["verification"] == "passed" for b in listed), (standby, listed)
    logical = next(b["id"] for b in listed if b["kind"] == "logical")
    res = hapair("restore", "-i", inv, logical, "--into", "cms_restore_check", "-y",
                 "-o", "json")
    assert res.returncode == 0, res.stderr[-3000:]
    # never on top of an existing database: refused, nothing touched
    again = hapair("restore", "-i", inv, logical, "--into", "cms_restore_check", "-y")
    assert again.returncode == 3, again.stderr[-2000:]
