from dataclasses import replace

import pytest

from hapair.facts.probes import Listener
from hapair.facts.snapshot import ClusterFacts, HostFacts
from hapair.plan.risks import PortNeed, Severity, assess, refusals

GIB = 1024**3
DATA = "/var/lib/postgresql/15/main"


def healthy() -> dict[str, HostFacts]:
    return {
        "node1": HostFacts("node1", True, pg_major_installed=15, pg_data_dir_major=15,
                           pg_data_bytes=2 * GIB, disk_free_bytes=50 * GIB, clock=100.0,
                           probed_at=100.0,
                           listeners=(Listener("10.99.0.11", 5432), Listener("0.0.0.0", 22))),
        "node2": HostFacts("node2", True, pg_major_installed=15, pg_data_dir_major=None,
                           disk_free_bytes=50 * GIB, clock=100.1, probed_at=100.0),
        "witness": HostFacts("witness", True, clock=99.9, probed_at=100.0),
    }


def run(hosts: dict[str, HostFacts], witness: str | None = "witness", needs=()) -> list:
    return assess(ClusterFacts(hosts), primary="node1", standby="node2", witness=witness,
                  data_dir=DATA, port_needs=tuple(needs))


def codes(risks) -> list[tuple[str, str]]:
    return [(r.severity.value, r.code) for r in risks]


def test_healthy_pair_has_no_risk() -> None:
    assert run(healthy()) == []


def test_no_witness_is_a_plain_warning_not_a_refusal() -> None:
    risks = run(healthy(), witness=None)
    assert codes(risks) == [("warn", "no-witness")]
    assert "manual" in risks[0].reason


@pytest.mark.parametrize(
    ("host", "change", "expected"),
    [
        ("node2", {"pg_major_installed": 16}, ("refuse", "pg-major-mismatch")),
        ("node2", {"pg_major_installed": None}, ("refuse", "standby-no-postgres")),
        ("node2", {"pg_data_dir_major": 15}, ("refuse", "standby-has-data")),
        ("node2", {"disk_free_bytes": 2 * GIB}, ("refuse", "standby-disk")),
        ("node1", {"pg_data_dir_major": None}, ("refuse", "no-primary-data")),
        ("node2", {"clock": 100.8}, ("warn", "clock-skew")),
        ("witness", {"clock": 90.0}, ("refuse", "clock-skew")),
        ("node2", {"reachable": False, "unreachable_reason": "unreachable over SSH"},
         ("refuse", "unreachable")),
    ],
)
def test_each_risk(host: str, change: dict, expected: tuple[str, str]) -> None:
    hosts = healthy()
    hosts[host] = replace(hosts[host], **change)
    assert codes(run(hosts)) == [expected]


def test_major_mismatch_names_both_versions() -> None:
    hosts = healthy()
    hosts["node2"] = replace(hosts["node2"], pg_major_installed=16)
    (risk,) = run(hosts)
    assert "node1 runs 15" in risk.reason and "node2 has 16" in risk.reason


def test_port_taken_only_for_needed_ports() -> None:
    needs = [PortNeed("node1", "10.99.0.11", 22, "etcd"), PortNeed("node1", "10.99.0.11", 2379,
                                                                   "etcd")]
    risks = run(healthy(), needs=needs)
    assert codes(risks) == [("refuse", "port-taken")]
    assert "port 22 for etcd" in risks[0].reason


def test_refusals_filters() -> None:
    hosts = healthy()
    hosts["node2"] = replace(hosts["node2"], pg_data_dir_major=15, clock=100.8)
    risks = run(hosts)
    assert [r.code for r in refusals(risks)] == ["standby-has-data"]
    assert {r.severity for r in risks} == {Severity.REFUSE, Severity.WARN}
