"""What the monitor remembers between polls: leaders seen (to count failovers), the alerts
firing, undelivered notifications. Pure, except load/save of the optional state file that
lets `hapair monitor --once` from cron keep its de-duplication between runs.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hapair.check import Check
from hapair.errors import UsageError
from hapair.monitor.alerts import iso
from hapair.observe.checks import WARNING, HealthCheck
from hapair.observe.snapshot import PairSnapshot
from hapair.observe.warnings import Limits

SERVICES = ("postgres", "redis")
STATE_VERSION = 1


@dataclass(frozen=True)
class Failover:
    """The leader of a service changed between two polls."""

    service: str  # postgres | redis
    old: str
    new: str
    at: float  # the poll that saw the new leader
    count: int  # failovers of this service seen so far, this one included

    def __str__(self) -> str:
        return f"{self.service}: leader changed from {self.old} to {self.new}"

    def payload(self, cluster: str) -> dict[str, Any]:
        """The webhook body of a failover: an event (no `resolved` follows)."""
        what = "primary" if self.service == "postgres" else "master"
        return {
            "alert": f"failover.{self.service}",
            "severity": "warning",
            "node": self.new,
            "reason": f"{self.service} {what} moved from {self.old} to {self.new} "
                      f"(failover {self.count} seen by this monitor)",
            "since": iso(self.at),
            "status": "event",
            "cluster": cluster,
            "service": self.service,
            "old_primary": self.old,
            "new_primary": self.new,
        }


@dataclass
class FailoverTracker:
    """A failover seen = the leader changed between two polls (a poll without a leader, the
    failover in progress, keeps the last known one). The first leader ever seen is not a
    failover; with the state file, the leader seen before a restart is the one compared."""

    leaders: dict[str, str | None] = field(default_factory=lambda: dict.fromkeys(SERVICES))
    failovers: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SERVICES, 0))

    def observe(self, s: PairSnapshot) -> list[Failover]:
        now = {"postgres": s.patroni_leader or s.primary,
               "redis": s.redis_masters[0] if len(s.redis_masters) == 1 else None}
        changes = []
        for service, leader in now.items():
            before = self.leaders.get(service)
            if leader is None:
                continue
            if before is not None and leader != before:
                self.failovers[service] = self.failovers.get(service, 0) + 1
                changes.append(Failover(service, before, leader, s.taken_at,
                                        self.failovers[service]))
            self.leaders[service] = leader
        return changes


def backup_ages(s: PairSnapshot) -> dict[str, float]:
    """Seconds since the newest complete backup of each kind finished (any node)."""
    newest: dict[str, float] = {}
    for n in s.nodes:
        for b in n.backups.value or ():
            t = b.finished_at if b.finished_at is not None else b.taken_at
            newest[b.kind] = max(newest.get(b.kind, t), t)
    return {kind: max(0.0, s.taken_at - t) for kind, t in newest.items()}


def backup_check(s: PairSnapshot, lim: Limits) -> HealthCheck:
    """The monitor's own check: a complete backup newer than `backup_max_age_s` exists."""
    ages = backup_ages(s)
    limit_h = lim.backup_max_age_s / 3600
    if ages:
        kind, age = min(ages.items(), key=lambda kv: kv[1])
        ok = age <= lim.backup_max_age_s
        return HealthCheck("backup.age", Check(ok, f"newest backup ({kind}) is {age / 3600:.1f} h "
                                                   f"old (limit {limit_h:g} h)"), WARNING)
    errors = [f"{n.name}: {n.backups.error}" for n in s.nodes if n.backups.error]
    if len(errors) == len(s.nodes):
        return HealthCheck("backup.age", Check(False, "backups not listed: " + "; ".join(errors)),
                           WARNING)
    return HealthCheck("backup.age", Check(False, "no complete backup on any node (see "
                                                  "`hapair backup`)"), WARNING)


# --- the state file -------------------------------------------------------------------------


def load_state(path: Path) -> dict[str, Any]:
    """{} when the file does not exist yet."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UsageError(f"--state {path}: unreadable ({exc}); remove it to start afresh"
                         ) from None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise UsageError(f"--state {path}: not a hapair monitor state file (version "
                         f"{STATE_VERSION}); remove it to start afresh")
    return data


def save_state(path: Path, data: dict[str, Any]) -> None:
    """Atomically, 0600 (reasons may name hosts and paths)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump({**data, "version": STATE_VERSION}, fh, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
