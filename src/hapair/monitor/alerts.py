"""Alerts: failing checks become alerts; the Deduper decides what to notify. Pure.

Notification rules: once when an alert starts firing, again every `repeat_s` while it fires
(0: never), again when its severity changes, and once when it resolves. A host that does not
answer over SSH fails many checks at once; only its `ssh.<host>` alert is sent while it lasts
(the others of that host are inhibited), so one dead host is one alert, not twenty.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from hapair.observe.checks import HealthCheck


@dataclass(frozen=True)
class Alert:
    alert: str  # the check's name, e.g. postgres.primary
    severity: str  # critical | warning
    node: str | None
    reason: str


@dataclass(frozen=True)
class Firing:
    alert: Alert
    since: float
    last_sent: float


@dataclass(frozen=True)
class Notification:
    status: str  # firing | resolved
    alert: Alert
    since: float
    at: float  # when this notification was decided
    repeat: bool = False

    def payload(self, cluster: str) -> dict[str, Any]:
        """The webhook body: {alert, severity, node, reason, since} plus status and cluster."""
        body: dict[str, Any] = {
            "alert": self.alert.alert,
            "severity": self.alert.severity,
            "node": self.alert.node,
            "reason": self.alert.reason,
            "since": iso(self.since),
            "status": self.status,
            "cluster": cluster,
        }
        if self.status == "resolved":
            body["resolved_at"] = iso(self.at)
        if self.repeat:
            body["repeat"] = True
        return body


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def alerts_from(checks: Iterable[HealthCheck]) -> dict[str, Alert]:
    """Failing checks → alerts, minus those inhibited by their host's failing SSH check."""
    checks = list(checks)
    dead = {c.node for c in checks if c.name.startswith("ssh.") and not c.ok}
    return {
        c.name: Alert(c.name, c.severity, c.node, c.reason)
        for c in checks
        if not c.ok and (c.name.startswith("ssh.") or c.node not in dead)
    }


class Deduper:
    def __init__(self, repeat_s: float, firing: Mapping[str, Firing] | None = None) -> None:
        self.repeat_s = repeat_s
        self.firing: dict[str, Firing] = dict(firing or {})

    def step(self, current: Mapping[str, Alert], now: float) -> list[Notification]:
        out = []
        for key, alert in sorted(current.items()):
            prev = self.firing.get(key)
            if prev is None:
                self.firing[key] = Firing(alert, now, now)
                out.append(Notification("firing", alert, now, now))
            elif alert.severity != prev.alert.severity:
                self.firing[key] = Firing(alert, prev.since, now)
                out.append(Notification("firing", alert, prev.since, now))
            elif self.repeat_s > 0 and now - prev.last_sent >= self.repeat_s:
                self.firing[key] = Firing(alert, prev.since, now)
                out.append(Notification("firing", alert, prev.since, now, repeat=True))
            else:  # keep the newest reason for the resolve message and the next repeat
                self.firing[key] = replace(prev, alert=alert)
        for key in sorted(set(self.firing) - set(current)):
            gone = self.firing.pop(key)
            out.append(Notification("resolved", gone.alert, gone.since, now))
        return out

    # --- persistence (monitor --once from cron keeps its state in a file) --------------------

    def to_dict(self) -> dict[str, Any]:
        return {key: {"alert": vars(f.alert), "since": f.since, "last_sent": f.last_sent}
                for key, f in self.firing.items()}

    @classmethod
    def from_dict(cls, repeat_s: float, data: Mapping[str, Any]) -> Deduper:
        firing = {}
        for key, f in data.items():
            try:
                firing[key] = Firing(Alert(**f["alert"]), float(f["since"]),
                                     float(f["last_sent"]))
            except (KeyError, TypeError, ValueError):
                continue  # an entry we cannot read is forgotten: it fires again if still true
        return cls(repeat_s, firing)
