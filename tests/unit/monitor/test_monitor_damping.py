"""Alert damping over sequences of polls with explicit timestamps: `for_s` before firing,
`clear_s` before resolving, renotify, severity changes, flapping, a restart through the state
file — and the policy's rule lookup and the inventory's `monitor:` section."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from hapair.errors import InventoryError
from hapair.inventory import load_inventory
from hapair.monitor.alerts import Alert, Deduper, iso
from hapair.monitor.damping import AlertPolicy, Rule, Timing

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backup"))
from backup_fakes import write_inventory  # noqa: E402

T0 = 1_750_000_000.0
SEVERITY = {"front_door": "critical", "postgres.primary": "critical",
            "postgres.standby.node2": "warning", "disk.node1": "warning"}

# The defaults, but renotify every 5 minutes so that repeats show in short sequences.
POLICY = AlertPolicy(renotify_s=300)

Poll = tuple[float, set[str]]  # (seconds after T0, failing alert names)


def alert(name: str, severity: str | None = None) -> Alert:
    node = name.rsplit(".", 1)[1] if name.startswith(("postgres.standby", "disk")) else None
    return Alert(name, severity or SEVERITY[name], node, f"{name} fails")


def run(polls: list[Poll], policy: AlertPolicy = POLICY,
        d: Deduper | None = None) -> list[tuple[float, str, str, str]]:
    """Every notification as (t, status, alert, extra): extra 'repeat', 'flapping' or ''."""
    d = d or Deduper(policy=policy)
    out = []
    for t, failing in polls:
        for n in d.step({name: alert(name) for name in failing}, T0 + t):
            extra = "repeat" if n.repeat else ("flapping" if n.note else "")
            out.append((t, n.status, n.alert.alert, extra))
    return out


def every(step: float, start: float, stop: float, failing: set[str]) -> list[Poll]:
    """Polls every `step` s from start (inclusive) to stop (exclusive)."""
    n = int((stop - start) / step)
    return [(start + i * step, failing) for i in range(n)]


LAG = {"postgres.standby.node2"}
DOOR = {"front_door"}

CASES: list[tuple[str, list[Poll], list[tuple[float, str, str, str]]]] = [
    ("a lag blip shorter than 30 s sends nothing",
     every(10, 0, 30, LAG) + every(10, 30, 200, set()), []),
    ("lag held 30 s fires; clear 60 s resolves",
     every(10, 0, 40, LAG) + every(10, 40, 200, set()),
     [(30, "firing", "postgres.standby.node2", ""),
      (100, "resolved", "postgres.standby.node2", "")]),
    ("split brain fires on the first failing poll",
     [(0, set()), (10, {"postgres.primary"}), (20, set())],
     [(10, "firing", "postgres.primary", "")]),
    ("a short clear while firing does not resolve",
     every(10, 0, 40, LAG) + [(40, set()), (50, LAG)] + every(10, 60, 200, set()),
     [(30, "firing", "postgres.standby.node2", ""),
      (120, "resolved", "postgres.standby.node2", "")]),
    ("a critical default: 15 s",
     every(5, 0, 20, DOOR) + every(5, 20, 100, set()),
     [(15, "firing", "front_door", ""), (80, "resolved", "front_door", "")]),
    ("renotify every 300 s while it fires",
     every(10, 0, 700, LAG),
     [(30, "firing", "postgres.standby.node2", ""),
      (330, "firing", "postgres.standby.node2", "repeat"),
      (630, "firing", "postgres.standby.node2", "repeat")]),
    ("independent alerts, each its own clock",
     [(0, LAG), (10, LAG | DOOR), (20, LAG | DOOR), (30, LAG | DOOR), (40, LAG)],
     [(30, "firing", "front_door", ""), (30, "firing", "postgres.standby.node2", "")]),
]


@pytest.mark.parametrize(("polls", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_damping(polls: list[Poll], expected: list[tuple[float, str, str, str]]) -> None:
    assert run(polls) == expected


def test_flapping_fires_once_with_a_note_then_only_repeats_and_resolves_once() -> None:
    # Fails for 10 s every 20 s: never 15 s in a row, so `for` alone would never fire.
    flap = [(t, DOOR if (t // 10) % 2 == 0 else set()) for t in range(0, 900, 5)]
    quiet = every(5, 900, 1700, set())
    notes = run(flap + quiet)
    # the third failure starts at t=40 (0, 20, 40): flapping, fires; since = the first
    assert notes == [(40, "firing", "front_door", "flapping"),
                     (340, "firing", "front_door", "repeat"),
                     (640, "firing", "front_door", "repeat"),
                     (940, "firing", "front_door", "repeat"),  # still flapping in the window
                     (1240, "firing", "front_door", "repeat"),
                     # clear since 890; the failures of 840, 860, 880 leave the 600 s window
                     # one by one: at 1440 fewer than 3 remain
                     (1440, "resolved", "front_door", "")]


def test_flapping_payload_says_so() -> None:
    d = Deduper(policy=POLICY)
    notes = []
    for t, failing in [(0, DOOR), (10, set()), (20, DOOR), (30, set()), (40, DOOR)]:
        notes += d.step({n: alert(n) for n in failing}, T0 + t)
    (n,) = notes
    body = n.payload("cms")
    assert body["flapping"] is True and body["since"] == iso(T0)
    assert body["note"] == ("flapping: failed 3 times in the last 600 s; kept firing until it "
                            "has been clear for 60 s and stops flapping")


def test_severity_change_while_firing_notifies_once() -> None:
    d = Deduper(policy=POLICY)
    sev = {0: "warning", 60: "warning", 70: "critical", 80: "critical"}
    out = []
    for t, s in sev.items():
        for n in d.step({"disk.node1": alert("disk.node1", s)}, T0 + t):
            out.append((t, n.status, n.alert.severity, n.since))
    assert out == [(60, "firing", "warning", T0), (70, "firing", "critical", T0)]


def test_a_restart_keeps_the_clocks() -> None:
    d = Deduper(policy=POLICY)
    assert run([(0, LAG), (10, LAG)], d=d) == []
    again = Deduper.from_dict(300, d.to_dict(), policy=POLICY)  # the monitor restarted
    assert run([(30, LAG), (40, set()), (100, set())], d=again) == [
        (30, "firing", "postgres.standby.node2", ""),
        (100, "resolved", "postgres.standby.node2", "")]


def test_state_written_before_damping_loads_as_firing() -> None:
    old = {"front_door": {"alert": vars(alert("front_door")), "since": T0, "last_sent": T0}}
    d = Deduper.from_dict(300, old, policy=POLICY)
    assert list(d.firing) == ["front_door"]
    assert run([(10, DOOR), (20, set()), (80, set())], d=d) == [
        (80, "resolved", "front_door", "")]


def test_immediate_policy_is_the_undamped_behaviour() -> None:
    assert run([(0, LAG), (10, set()), (20, LAG)], policy=AlertPolicy.immediate(0)) == [
        (0, "firing", "postgres.standby.node2", ""),
        (10, "resolved", "postgres.standby.node2", ""),
        (20, "firing", "postgres.standby.node2", "")]


# --- the policy ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "severity", "timing"),
    [
        ("postgres.primary", "critical", Timing(0, 60)),
        ("redis.master", "critical", Timing(0, 60)),
        ("postgres.standby.node2", "warning", Timing(30, 60)),
        ("postgres.sync", "critical", Timing(30, 60)),  # strict durability: critical
        ("front_door", "critical", Timing(15, 60)),
        ("disk.node1", "warning", Timing(60, 60)),
        ("router.node2.postgres", "critical", Timing(30, 60)),
    ],
)
def test_builtin_timing(name: str, severity: str, timing: Timing) -> None:
    assert AlertPolicy().timing(name, severity) == timing


def test_user_rules_come_first_and_fill_in_per_value() -> None:
    p = AlertPolicy(rules=(Rule("postgres.standby.*", clear_s=300), Rule("front_door", for_s=0),
                           *AlertPolicy().rules))
    assert p.timing("postgres.standby.node1", "warning") == Timing(30, 300)
    assert p.timing("front_door", "critical") == Timing(0, 60)


# --- the inventory's monitor section ------------------------------------------------------------


def inventory_with(tmp_path: Path, monitor: Any) -> Path:
    """examples/inventory.yaml with its `monitor:` section replaced (None: removed)."""
    path = write_inventory(tmp_path)
    yaml = YAML(typ="safe", pure=True)
    data = yaml.load(path.read_text())
    data["monitor"] = monitor
    if monitor is None:  # no section at all
        del data["monitor"]
    buf = io.StringIO()
    yaml.dump(data, buf)
    path.write_text(buf.getvalue())
    return path


def test_monitor_section_builds_the_policy(tmp_path: Path) -> None:
    inv = load_inventory(inventory_with(tmp_path, {
        "renotify_s": 1800, "clear_s": 120, "flapping": {"window_s": 300, "failures": 6},
        "alerts": [{"match": "postgres.standby.*", "for_s": 90}]}))
    p = AlertPolicy.from_settings(inv.monitor)
    assert (p.renotify_s, p.clear_s, p.flap_window_s, p.flap_failures) == (1800, 120, 300, 6)
    assert p.timing("postgres.standby.node2", "warning") == Timing(90, 120)
    assert p.timing("postgres.primary", "critical") == Timing(0, 120)
    assert AlertPolicy.from_settings(inv.monitor, renotify_s=60).renotify_s == 60  # the CLI


def test_no_monitor_section_means_the_defaults(tmp_path: Path) -> None:
    inv = load_inventory(inventory_with(tmp_path, None))
    assert AlertPolicy.from_settings(inv.monitor) == AlertPolicy()


@pytest.mark.parametrize(
    ("monitor", "message"),
    [
        ({"alerts": [{"match": "front_door", "for_s": -1}]},
         "monitor.alerts[0].for_s: "),
        ({"alerts": [{"match": "front_door"}]},
         "monitor.alerts[0].for_s: give for_s or clear_s (or both) for this pattern"),
        ({"alerts": [{"match": "x", "for_s": 1}, {"match": "x", "clear_s": 5}]},
         "monitor.alerts[1].match: pattern 'x' is also alerts[0].match"),
        ({"alerts": [{"match": "Front Door", "for_s": 1}]},
         "monitor.alerts[0].match: 'Front Door' is not an alert name pattern"),
        ({"flapping": {"failures": 1}}, "monitor.flapping.failures: "),
        ({"renotify": 60}, "monitor.renotify: unknown key 'renotify'"),
        ({"clear_s": "60s"}, "monitor.clear_s: "),
    ],
)
def test_monitor_section_errors_name_file_and_key(tmp_path: Path, monitor: Any,
                                                  message: str) -> None:
    path = inventory_with(tmp_path, monitor)
    with pytest.raises(InventoryError) as err:
        load_inventory(path)
    assert str(err.value).startswith(f"{path}: {message}")
