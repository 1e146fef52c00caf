"""Alert de-duplication (once on entering, once on resolve, repeat every N while firing,
again on a severity change), inhibition by a dead host, payload shape, and persistence."""

from __future__ import annotations

from hapair.check import Check
from hapair.monitor.alerts import Alert, Deduper, alerts_from, iso
from hapair.observe.checks import HealthCheck

T0 = 1_750_000_000.0


def a(name: str = "front_door", severity: str = "critical", reason: str = "GET / answered 502",
      node: str | None = None) -> Alert:
    return Alert(name, severity, node, reason)


def steps(d: Deduper, *rounds: tuple[float, dict[str, Alert]]) -> list[list[tuple[str, str]]]:
    return [[(n.status, n.alert.alert) for n in d.step(cur, T0 + t)] for t, cur in rounds]


def test_fires_once_repeats_after_n_and_resolves_once() -> None:
    d = Deduper(repeat_s=600)
    firing = {"front_door": a()}
    assert steps(d, (0, firing), (10, firing), (599, firing), (600, firing), (610, firing),
                 (1200, firing), (1210, {}), (1220, {})) == [
        [("firing", "front_door")], [], [], [("firing", "front_door")], [],
        [("firing", "front_door")], [("resolved", "front_door")], []]


def test_repeat_zero_never_repeats_and_a_new_reason_does_not_refire() -> None:
    d = Deduper(repeat_s=0)
    assert steps(d, (0, {"x": a("x")}), (5000, {"x": a("x", reason="other words")}),
                 (9000, {})) == [[("firing", "x")], [], [("resolved", "x")]]


def test_severity_change_notifies_and_resolve_keeps_since() -> None:
    d = Deduper(repeat_s=3600)
    d.step({"disk.node1": a("disk.node1", "warning")}, T0)
    (n,) = d.step({"disk.node1": a("disk.node1", "critical")}, T0 + 60)
    assert (n.status, n.alert.severity, n.since, n.repeat) == ("firing", "critical", T0, False)
    (r,) = d.step({}, T0 + 120)
    body = r.payload("cms")
    assert body == {"alert": "disk.node1", "severity": "critical", "node": None,
                    "reason": "GET / answered 502", "since": iso(T0), "status": "resolved",
                    "cluster": "cms", "resolved_at": iso(T0 + 120)}


def test_payload_of_a_firing_alert() -> None:
    (n,) = Deduper(3600).step({"postgres.standby.node2": a("postgres.standby.node2", "warning",
                                                           "node2 lags", "node2")}, T0)
    assert n.payload("cms") == {"alert": "postgres.standby.node2", "severity": "warning",
                                "node": "node2", "reason": "node2 lags",
                                "since": "2025-06-15T15:06:40Z", "status": "firing",
                                "cluster": "cms"}


def hc(name: str, ok: bool, node: str | None = None) -> HealthCheck:
    return HealthCheck(name, Check(ok, f"{name} reason"), "critical", node)


def test_a_dead_host_inhibits_its_other_alerts() -> None:
    checks = [hc("ssh.node2", False, "node2"), hc("router.node2", False, "node2"),
              hc("postgres.standby.node2", False, "node2"), hc("front_door", False),
              hc("ssh.node1", True, "node1"), hc("router.node1.postgres", False, "node1")]
    assert sorted(alerts_from(checks)) == ["front_door", "router.node1.postgres", "ssh.node2"]


def test_state_round_trip() -> None:
    d = Deduper(600)
    d.step({"x": a("x")}, T0)
    again = Deduper.from_dict(600, d.to_dict())
    assert steps(again, (100, {"x": a("x")}), (600, {"x": a("x")}), (700, {})) == [
        [], [("firing", "x")], [("resolved", "x")]]
    broken = Deduper.from_dict(600, {"x": {"alert": {"nope": 1}}, "y": "junk"})
    assert broken.firing == {}
