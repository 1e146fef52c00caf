"""Alerts: failing checks become alerts; the Deduper decides what to notify. Pure.

Each alert name has a Track: whether its condition failed at the last poll, since when, and
whether a `firing` notification is out. With an AlertPolicy (hapair.monitor.damping):

- it fires once its condition has failed for the rule's `for_s` (0: on the first failing
  poll), and resolves once it has passed for `clear_s` — a blip shorter than either sends
  nothing;
- again every `renotify_s` while it fires (0: never), and again when its severity changes;
- a condition that started failing `flap_failures` times within `flap_window_s` is
  flapping: it fires at once with a flapping note (even if no stretch lasted `for_s`), stays
  firing (repeats only) while it flaps, and resolves once fewer failures remain in the
  window and it has passed for `clear_s`.

A host that does not answer over SSH fails many checks at once; only its `ssh.<host>` alert
is sent while it lasts (the others of that host are inhibited), so one dead host is one
alert, not twenty.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from hapair.monitor.damping import AlertPolicy
from hapair.observe.checks import HealthCheck


@dataclass(frozen=True)
class Alert:
    alert: str  # the check's name, e.g. postgres.primary
    severity: str  # critical | warning
    node: str | None
    reason: str


@dataclass(frozen=True)
class Track:
    alert: Alert  # the newest reason seen
    failing: bool  # the condition at the last poll
    changed_at: float  # when the condition last changed (start of the current stretch)
    since: float  # start of the episode a `firing` notification went out for
    firing: bool  # a `firing` notification is out and no `resolved` yet
    last_sent: float
    sent_severity: str  # the severity last notified
    failures: tuple[float, ...] = ()  # when it started failing, within the flapping window
    flapping: bool = False  # the flapping note went out in this episode


@dataclass(frozen=True)
class Notification:
    status: str  # firing | resolved
    alert: Alert
    since: float
    at: float  # when this notification was decided
    repeat: bool = False
    note: str = ""  # set when the alert is flapping

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
        if self.note:
            body["flapping"] = True
            body["note"] = self.note
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
    """The alerts' memory between polls and the notification rules (see the module doc).
    Without a policy: no damping (fire and resolve on the first poll, no flapping)."""

    def __init__(self, repeat_s: float = 3600.0, tracks: Mapping[str, Track] | None = None,
                 *, policy: AlertPolicy | None = None) -> None:
        self.policy = policy or AlertPolicy.immediate(repeat_s)
        self.tracks: dict[str, Track] = dict(tracks or {})

    @property
    def repeat_s(self) -> float:
        return self.policy.renotify_s

    @property
    def firing(self) -> dict[str, Track]:
        return {k: t for k, t in self.tracks.items() if t.firing}

    def step(self, current: Mapping[str, Alert], now: float) -> list[Notification]:
        out: list[Notification] = []
        for key in sorted(set(self.tracks) | set(current)):
            track = self._observe(self.tracks.get(key), current.get(key), now)
            if track is None:
                continue
            track, note = self._decide(track, now)
            if note is not None:
                out.append(note)
            if track is None:
                self.tracks.pop(key, None)
            else:
                self.tracks[key] = track
        return out

    def _observe(self, prev: Track | None, alert: Alert | None, now: float) -> Track | None:
        """The track after this poll's observation (None: nothing to remember)."""
        failing = alert is not None
        if prev is None:
            if alert is None:
                return None
            return Track(alert, True, now, now, False, now, alert.severity,
                         (now,) if self.policy.flap_failures else ())
        changed = failing != prev.failing
        window_start = now - self.policy.flap_window_s
        failures = tuple(c for c in prev.failures if c > window_start)
        if changed and failing and self.policy.flap_failures:
            failures += (now,)
        return replace(prev, alert=alert or prev.alert, failing=failing,
                       changed_at=now if changed else prev.changed_at, failures=failures)

    def _decide(self, t: Track, now: float) -> tuple[Track | None, Notification | None]:
        p = self.policy
        timing = p.timing(t.alert.alert, t.alert.severity)
        flapping = bool(p.flap_failures) and len(t.failures) >= p.flap_failures
        note = self._flap_note(t, timing.clear_s) if flapping else ""
        if not t.firing:
            if t.failing and (now - t.changed_at >= timing.for_s or flapping):
                since = t.failures[0] if flapping else t.changed_at
                fired = replace(t, firing=True, since=since, last_sent=now,
                                sent_severity=t.alert.severity, flapping=flapping)
                return fired, Notification("firing", t.alert, since, now, note=note)
            keep = t.failing or bool(t.failures)  # pending, or flapping memory
            return (t if keep else None), None
        if not t.failing and now - t.changed_at >= timing.clear_s and not flapping:
            quiet = replace(t, firing=False, flapping=False)
            return (quiet if t.failures else None), Notification("resolved", t.alert, t.since,
                                                               now)
        if t.failing and t.alert.severity != t.sent_severity:
            return (replace(t, last_sent=now, sent_severity=t.alert.severity),
                    Notification("firing", t.alert, t.since, now, note=note))
        if flapping and not t.flapping:
            return (replace(t, last_sent=now, flapping=True),
                    Notification("firing", t.alert, t.since, now, note=note))
        if p.renotify_s > 0 and now - t.last_sent >= p.renotify_s:
            return (replace(t, last_sent=now),
                    Notification("firing", t.alert, t.since, now, repeat=True, note=note))
        return t, None

    def _flap_note(self, t: Track, clear_s: float) -> str:
        return (f"flapping: failed {len(t.failures)} times in the last "
                f"{self.policy.flap_window_s:g} s; kept firing until it has been clear for "
                f"{clear_s:g} s and stops flapping")

    # --- persistence (the state file: a restart keeps its memory) ------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {key: {"alert": vars(t.alert), "failing": t.failing, "changed_at": t.changed_at,
                      "since": t.since, "firing": t.firing, "last_sent": t.last_sent,
                      "sent_severity": t.sent_severity, "failures": list(t.failures),
                      "flapping": t.flapping}
                for key, t in self.tracks.items()}

    @classmethod
    def from_dict(cls, repeat_s: float, data: Mapping[str, Any], *,
                  policy: AlertPolicy | None = None) -> Deduper:
        tracks = {}
        for key, f in data.items():
            try:
                tracks[key] = _track(f)
            except (KeyError, TypeError, ValueError):
                continue  # an entry we cannot read is forgotten: it fires again if still true
        return cls(repeat_s, tracks, policy=policy)


def _track(f: Mapping[str, Any]) -> Track:
    """A state file entry; entries written before damping ({alert, since, last_sent}) were
    all firing."""
    alert = Alert(**f["alert"])
    since, last_sent = float(f["since"]), float(f["last_sent"])
    return Track(alert, bool(f.get("failing", True)), float(f.get("changed_at", since)), since,
                 bool(f.get("firing", True)), last_sent,
                 str(f.get("sent_severity", alert.severity)),
                 tuple(float(c) for c in f.get("failures", ())), bool(f.get("flapping", False)))
