"""`hapair monitor`: poll the pair, publish metrics, notify webhooks. One poll is a pure
pipeline around one gather: snapshot → checks, warnings, failovers → metrics, alerts →
damped, de-duplicated notifications (and one event per failover) → deliveries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hapair.monitor.alerts import Deduper, Notification, alerts_from
from hapair.monitor.damping import AlertPolicy
from hapair.monitor.metrics import Observed, SnapshotCollector
from hapair.monitor.state import Failover, FailoverTracker, backup_ages, backup_check
from hapair.monitor.webhook import Report, WebhookSender
from hapair.observe.checks import run_checks
from hapair.observe.snapshot import PairSnapshot, redact_tree
from hapair.observe.warnings import Limits, evaluate

Log = Callable[[str], None]


@dataclass
class PollResult:
    observed: Observed
    notifications: list[Notification]
    delivery: Report
    changes: list[Failover]


class Monitor:
    def __init__(self, poll: Callable[[], PairSnapshot], sender: WebhookSender, *,
                 limits: Limits | None = None, repeat_s: float = 3600.0,
                 redact: Callable[[str], str] = lambda s: s, log: Log = lambda _s: None,
                 collector: SnapshotCollector | None = None,
                 policy: AlertPolicy | None = None) -> None:
        """`policy` None: no damping (every change is notified at the next poll)."""
        self.poll = poll
        self.sender = sender
        self.limits = limits or Limits()
        self.redact = redact
        self.log = log
        self.collector = collector or SnapshotCollector()
        self.tracker = FailoverTracker()
        self.policy = policy
        self.deduper = Deduper(repeat_s, policy=policy)

    def poll_once(self) -> PollResult:
        s = self.poll()
        checks = run_checks(s, self.limits)
        if self.limits.backup_max_age_s > 0:  # 0: backups are not this monitor's business
            checks.append(backup_check(s, self.limits))
        changes = self.tracker.observe(s)
        for line in changes:
            self.log(f"failover seen: {line}")
        observed = Observed(s, checks, evaluate(s, self.limits), dict(self.tracker.failovers),
                            backup_ages(s))
        self.collector.update(observed)
        notes = self.deduper.step(alerts_from(checks), now=s.taken_at)
        events = [f.payload(s.cluster) for f in changes] + [n.payload(s.cluster) for n in notes]
        bodies = [redact_tree(b, self.redact) for b in events]
        report = self.sender.send(bodies)
        for n in notes:
            flap = " [flapping]" if n.note else ""
            self.log(self.redact(f"alert {n.status}{flap}: {n.alert.alert} "
                                 f"({n.alert.severity}) {n.alert.reason}"))
        for line in report.failed:
            self.log(f"webhook not delivered (retried next poll): {line}")
        if report.dropped:
            self.log(f"webhook: gave up on {report.dropped} notification(s)")
        return PollResult(observed, notes, report, changes)

    def run(self, interval: float, stop: threading.Event) -> None:
        """Poll every `interval` seconds until `stop` is set. A poll that raises (a bug) is
        logged and the next one runs: hapair_snapshot_timestamp_seconds then goes stale,
        which is what a Prometheus rule should watch."""
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.poll_once()
            except Exception as exc:  # noqa: BLE001 - keep exporting; see the docstring
                self.log(self.redact(f"poll failed: {type(exc).__name__}: {exc}"))
            stop.wait(max(0.0, interval - (time.monotonic() - started)))

    # --- state kept between `--once` runs ----------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {"leaders": self.tracker.leaders, "failovers": self.tracker.failovers,
                "alerts": self.deduper.to_dict(), "outbox": self.sender.to_list()}

    def restore(self, data: dict[str, Any]) -> None:
        leaders, failovers = data.get("leaders"), data.get("failovers")
        if isinstance(leaders, dict):
            self.tracker.leaders.update({k: v for k, v in leaders.items()
                                         if isinstance(v, str | None)})
        if isinstance(failovers, dict):
            self.tracker.failovers.update({k: v for k, v in failovers.items()
                                           if isinstance(v, int) and not isinstance(v, bool)})
        if isinstance(data.get("alerts"), dict):
            self.deduper = Deduper.from_dict(self.deduper.repeat_s, data["alerts"],
                                             policy=self.policy)
        if isinstance(data.get("outbox"), list):
            self.sender.restore(data["outbox"])
