"""The failovers-seen counter over sequences of snapshots: a change of PostgreSQL primary or
Redis master between polls counts once (also across a poll without a leader), the first
observation never counts (also after a restart without the state file), a restart with the
state file compares with the leader seen before it, and each failover is one webhook naming
the old and the new primary."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from monitor_fakes import NOW, led_by, no_leader
from prometheus_client import generate_latest

from hapair.monitor import FailoverTracker, Monitor, SnapshotCollector, WebhookSender, registry_with
from hapair.monitor.alerts import iso
from hapair.observe import Limits, PairSnapshot

URL = "http://127.0.0.1:48999/hook"  # never contacted: `post` is a recorder


def counts(seq: list[PairSnapshot], t: FailoverTracker | None = None) -> list[dict[str, int]]:
    t = t or FailoverTracker()
    out = []
    for s in seq:
        t.observe(s)
        out.append(dict(t.failovers))
    return out


def c(pg: int, redis: int) -> dict[str, int]:
    return {"postgres": pg, "redis": redis}


CASES: list[tuple[str, list[PairSnapshot], list[dict[str, int]]]] = [
    ("steady: nothing counted", [led_by("node1")] * 3, [c(0, 0)] * 3),
    ("first observation led by node2 is not a failover", [led_by("node2"), led_by("node2")],
     [c(0, 0), c(0, 0)]),
    ("both move", [led_by("node1"), led_by("node2"), led_by("node2")],
     [c(0, 0), c(1, 1), c(1, 1)]),
    ("only Redis moves", [led_by("node1"), led_by("node1", "node2")], [c(0, 0), c(0, 1)]),
    ("there and back: two", [led_by("node1"), led_by("node2"), led_by("node1")],
     [c(0, 0), c(1, 1), c(2, 2)]),
    ("a poll without a leader in between counts once",
     [led_by("node1"), no_leader(), no_leader(), led_by("node2")],
     [c(0, 0), c(0, 0), c(0, 0), c(1, 1)]),
    ("a poll without a leader, then the same leader: none",
     [led_by("node1"), no_leader(), led_by("node1")], [c(0, 0)] * 3),
    ("nothing known yet, then a leader: none", [no_leader(), led_by("node2")], [c(0, 0)] * 2),
]


@pytest.mark.parametrize(("seq", "expected"), [x[1:] for x in CASES], ids=[x[0] for x in CASES])
def test_failovers_counted(seq: list[PairSnapshot], expected: list[dict[str, int]]) -> None:
    assert counts(seq) == expected


def recorder() -> tuple[list[dict[str, Any]], Callable[[str, dict[str, Any]], int]]:
    sent: list[dict[str, Any]] = []

    def post(_url: str, body: dict[str, Any]) -> int:
        sent.append(body)
        return 204

    return sent, post


def monitor(queue: list[PairSnapshot]) -> tuple[Monitor, list[dict[str, Any]], list[str]]:
    sent, post = recorder()
    log: list[str] = []
    m = Monitor(lambda: queue.pop(0), WebhookSender([URL], post),
                limits=Limits(backup_max_age_s=0), log=log.append, collector=SnapshotCollector())
    return m, sent, log


def metric(m: Monitor, service: str) -> str:
    text = generate_latest(registry_with(m.collector)).decode()
    line = f'hapair_failovers_seen_total{{service="{service}"}} '
    return next(ln for ln in text.splitlines() if ln.startswith(line)).split()[-1]


def test_a_failover_is_one_webhook_naming_old_and_new() -> None:
    m, sent, log = monitor([led_by("node1"), led_by("node2", at=10), led_by("node2", at=20)])
    results = [m.poll_once() for _ in range(3)]
    assert [len(r.changes) for r in results] == [0, 2, 0]
    assert sent == [
        {"alert": "failover.postgres", "severity": "warning", "node": "node2",
         "reason": "postgres primary moved from node1 to node2 (failover 1 seen by this "
                   "monitor)", "since": iso(NOW + 10), "status": "event", "cluster": "cms",
         "service": "postgres", "old_primary": "node1", "new_primary": "node2"},
        {"alert": "failover.redis", "severity": "warning", "node": "node2",
         "reason": "redis master moved from node1 to node2 (failover 1 seen by this monitor)",
         "since": iso(NOW + 10), "status": "event", "cluster": "cms", "service": "redis",
         "old_primary": "node1", "new_primary": "node2"},
    ]
    assert "failover seen: postgres: leader changed from node1 to node2" in log
    assert (metric(m, "postgres"), metric(m, "redis")) == ("1.0", "1.0")


def test_restart_without_state_does_not_count_the_first_observation() -> None:
    m, sent, _ = monitor([led_by("node1")])
    m.poll_once()
    fresh, sent2, _ = monitor([led_by("node2"), led_by("node2", at=10)])  # no state file
    fresh.poll_once()
    fresh.poll_once()
    assert fresh.tracker.failovers == {"postgres": 0, "redis": 0} and sent2 == []
    assert metric(fresh, "postgres") == "0.0"


def test_restart_with_state_compares_with_the_leader_seen_before() -> None:
    m, _, _ = monitor([led_by("node1"), led_by("node2", at=10)])
    m.poll_once()
    m.poll_once()
    state = m.state()
    same, sent_same, _ = monitor([led_by("node2", at=20)])
    same.restore(state)
    same.poll_once()
    assert sent_same == [] and same.tracker.failovers == {"postgres": 1, "redis": 1}
    moved, sent_moved, _ = monitor([led_by("node1", at=20)])  # it moved while we were down
    moved.restore(state)
    moved.poll_once()
    assert [(b["alert"], b["old_primary"], b["new_primary"]) for b in sent_moved] == [
        ("failover.postgres", "node2", "node1"), ("failover.redis", "node2", "node1")]
    assert (metric(moved, "postgres"), metric(moved, "redis")) == ("2.0", "2.0")
    assert "failover 2 seen" in sent_moved[0]["reason"]


def test_restore_ignores_junk() -> None:
    m, _, _ = monitor([led_by("node1")])
    m.restore({"leaders": {"postgres": 7, "redis": "node2"},
               "failovers": {"postgres": "3", "redis": True}})
    assert m.tracker.leaders == {"postgres": None, "redis": "node2"}
    assert m.tracker.failovers == {"postgres": 0, "redis": 0}
