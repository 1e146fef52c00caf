"""Metrics from snapshots (exact exposition lines), failovers counted between polls, backup
age, and one Monitor poll end to end with a recording webhook."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from observe_fakes import NOW, healthy, pg_primary, with_node
from prometheus_client import generate_latest

from hapair.monitor import (
    FailoverTracker,
    Monitor,
    Observed,
    SnapshotCollector,
    WebhookSender,
    backup_ages,
    backup_check,
    registry_with,
)
from hapair.monitor.state import load_state, save_state
from hapair.observe import Limits, PairSnapshot, evaluate, run_checks
from hapair.observe.snapshot import BackupSeen, Fact, HttpResult, LeaderKey, SlotState

GRAFANA = Path(__file__).resolve().parents[3] / "docs" / "grafana" / "hapair.json"


def exposition(s: PairSnapshot, failovers: dict[str, int] | None = None) -> str:
    c = SnapshotCollector()
    c.update(Observed(s, run_checks(s), evaluate(s), failovers or {"postgres": 0, "redis": 0},
                      backup_ages(s)))
    return generate_latest(registry_with(c)).decode()


def test_healthy_pair_metrics() -> None:
    text = exposition(healthy())
    for line in [
        'hapair_pg_primary{node="node1"} 1.0', 'hapair_pg_primary{node="node2"} 0.0',
        'hapair_pg_role{node="node2",role="replica"} 1.0',
        'hapair_pg_replication_lag_bytes{standby="node2"} 0.0',
        'hapair_pg_replay_delay_seconds{standby="node2"} 0.0',
        'hapair_pg_sync_standby{standby="node2"} 1.0',
        'hapair_pg_slot_active{node="node1",slot="node2"} 1.0',
        'hapair_patroni_leader{node="node1"} 1.0', "hapair_patroni_lease_ttl_seconds 17.0",
        'hapair_etcd_member_healthy{member="witness"} 1.0',
        'hapair_redis_master{node="node1"} 1.0', 'hapair_redis_link_up{node="node2"} 1.0',
        'hapair_sentinel_ckquorum_ok{sentinel="witness"} 1.0',
        'hapair_sentinel_master{node="node1",sentinel="node2"} 1.0',
        'hapair_router_backend_up{node="node2",proxy="postgres",server="node1"} 1.0',
        'hapair_http_up{check="lb",node="node1"} 1.0', "hapair_front_door_up 1.0",
        'hapair_vip_held{node="node1"} 1.0', 'hapair_backup_age_seconds{kind="logical"} 7000.0',
        'hapair_failovers_seen_total{service="postgres"} 0.0', "hapair_checks_failing 0.0",
        'hapair_check_ok{check="postgres.primary"} 1.0',
        "hapair_snapshot_timestamp_seconds 1.75e+09",
    ]:
        assert line in text, line


def test_series_of_a_dropped_slot_disappear() -> None:
    extra = SlotState("old", "physical", False, "extended", 5 * 1024**3)
    with_slot = with_node(healthy(), "node1", postgres=Fact(pg_primary(slots=(extra,))))
    text = exposition(with_slot)
    assert 'hapair_pg_slot_retained_bytes{node="node1",slot="old"} 5.36870912e+09' in text
    assert 'hapair_warnings{code="slot_inactive",severity="warning"} 1.0' in text
    assert 'slot="old"' not in exposition(healthy())


def test_nothing_is_served_before_the_first_poll() -> None:
    assert generate_latest(registry_with(SnapshotCollector())) == b""


def test_every_metric_in_the_dashboard_exists() -> None:
    text = exposition(healthy())
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
             if line and not line.startswith("#")}
    exprs = " ".join(t["expr"] for p in json.loads(GRAFANA.read_text())["panels"]
                     for t in p.get("targets", []))
    used = set(re.findall(r"\bhapair_[a-z_]+", exprs))
    assert used and used <= names, used - names


def moved_to_node2(s: PairSnapshot) -> PairSnapshot:
    s = replace(s, leader_key=Fact(LeaderKey("node2", 9, 20, 20, "node2")))
    s = with_node(s, "node1", postgres=Fact(error="refused"))
    return with_node(s, "node2", postgres=Fact(pg_primary(rows=())))


def test_failovers_counted_across_a_poll_without_a_leader() -> None:
    t = FailoverTracker()
    nobody = replace(healthy(), leader_key=Fact(error="no key"), patroni=Fact(error="x"))
    nobody = with_node(nobody, "node1", postgres=Fact(error="refused"))
    assert t.observe(healthy()) == []
    assert t.observe(nobody) == []  # failover in progress: no leader to compare
    assert [str(f) for f in t.observe(moved_to_node2(healthy()))] == [
        "postgres: leader changed from node1 to node2"]
    assert t.observe(moved_to_node2(healthy())) == []
    assert t.failovers == {"postgres": 1, "redis": 0}


def test_backup_age_check() -> None:
    lim = Limits(backup_max_age_s=3600)
    assert not backup_check(healthy(), lim).ok
    assert backup_check(healthy(), Limits()).reason == "newest backup (logical) is 1.9 h old " \
                                                      "(limit 26 h)"
    none = with_node(healthy(), "node2", backups=Fact(()))
    assert backup_check(none, Limits()).reason.startswith("no complete backup on any node")
    unlisted = with_node(with_node(healthy(), "node1", backups=Fact(error="denied")), "node2",
                         backups=Fact(error="denied"))
    assert backup_check(unlisted, Limits()).reason == ("backups not listed: node1: denied; "
                                                       "node2: denied")
    newer = BackupSeen("physical", "20250615T140000Z-physical", NOW - 100, None, None)
    both = with_node(healthy(), "node1", backups=Fact((newer,)))
    assert backup_ages(both) == {"logical": 7000.0, "physical": 100.0}


def test_monitor_poll_pipeline() -> None:
    sent: list[dict[str, Any]] = []

    def post(_url: str, b: dict[str, Any]) -> int:
        sent.append(b)
        return 200

    broken = replace(healthy(), front_door=HttpResult("front_door", "http://x/", 502),
                     taken_at=NOW + 10)
    fixed = replace(healthy(), taken_at=NOW + 20)
    queue = [healthy(), broken, broken, fixed]
    log: list[str] = []
    m = Monitor(lambda: queue.pop(0), WebhookSender(["http://127.0.0.1:18950/"], post),
                repeat_s=3600, log=log.append)
    results = [m.poll_once() for _ in range(4)]
    assert [len(r.notifications) for r in results] == [0, 1, 0, 1]
    assert [(b["alert"], b["status"]) for b in sent] == [("front_door", "firing"),
                                                          ("front_door", "resolved")]
    assert sent[0]["since"] == sent[1]["since"]
    assert any(line.startswith("alert firing: front_door (critical)") for line in log)


def test_state_file(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    assert load_state(path) == {}
    save_state(path, {"leaders": {"postgres": "node1"}})
    assert load_state(path)["leaders"] == {"postgres": "node1"}
    path.write_text('{"version": 99}')
    with pytest.raises(Exception, match="not a hapair monitor state file"):
        load_state(path)
