"""Alert damping policy: how long a condition must hold before its alert fires (`for_s`), how
long it must be clear before it resolves (`clear_s`), how often a firing alert is sent again,
and when it counts as flapping. Pure; the inventory's `monitor:` section configures it.

Rules match alert names (the check names, e.g. `postgres.standby.node2`) with shell-style
patterns; the inventory's rules come first, then the built-in ones below, then the default
by severity. Why these defaults, for a team of a few people:

- two writable primaries, two Redis masters, no writable primary at all: at once — every
  second of it is lost or refused writes, and a failover's own gap is shorter than a poll;
- lag, a sync standby missing, a Sentinel or router following late: 30 s — a switchover,
  a standby restart or a burst of writes cause them for a few seconds by design;
- anything else critical 15 s, warning 60 s; an alert resolves after 60 s clear.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from hapair.inventory.monitor import MonitorSettings


@dataclass(frozen=True)
class Rule:
    match: str
    for_s: float | None = None  # None: the next matching rule (or the default) decides
    clear_s: float | None = None


BUILTIN: tuple[Rule, ...] = (
    Rule("postgres.primary", for_s=0),  # split brain or no writable primary
    Rule("redis.master", for_s=0),  # two masters or none
    Rule("front_door.vip", for_s=0),  # the VIP on both nodes (or none) — split brain
    Rule("postgres.standby.*", for_s=30),  # lag, not streaming
    Rule("postgres.sync", for_s=30),  # sync degraded
    Rule("postgres.timeline", for_s=30),
    Rule("sentinel.*", for_s=30),
    Rule("router.*", for_s=30),  # routers follow a switchover within two health checks
    Rule("patroni.*", for_s=30),
    Rule("backup.age", for_s=0),  # moves in hours; nothing to damp
)
DEFAULT_FOR_S = {"critical": 15.0, "warning": 60.0}
DEFAULT_CLEAR_S = 60.0


@dataclass(frozen=True)
class Timing:
    for_s: float
    clear_s: float


@dataclass(frozen=True)
class AlertPolicy:
    rules: tuple[Rule, ...] = BUILTIN
    default_for_s: tuple[tuple[str, float], ...] = tuple(DEFAULT_FOR_S.items())
    clear_s: float = DEFAULT_CLEAR_S
    renotify_s: float = 3600.0  # 0: never
    flap_window_s: float = 600.0
    flap_failures: int = 3  # started failing this often within the window; 0: off

    def timing(self, alert: str, severity: str) -> Timing:
        """The first rule that sets a value wins, per value; then the defaults."""
        for_s = clear_s = None
        for rule in self.rules:
            if not fnmatchcase(alert, rule.match):
                continue
            for_s = rule.for_s if for_s is None else for_s
            clear_s = rule.clear_s if clear_s is None else clear_s
            if for_s is not None and clear_s is not None:
                break
        default_for = dict(self.default_for_s).get(severity, max(DEFAULT_FOR_S.values()))
        return Timing(default_for if for_s is None else for_s,
                      self.clear_s if clear_s is None else clear_s)

    @classmethod
    def immediate(cls, renotify_s: float) -> AlertPolicy:
        """No damping: fire on the first failing poll, resolve on the first passing one, no
        flapping detection (the behaviour before damping; `--once` without `--state`)."""
        return cls(rules=(), default_for_s=(("critical", 0.0), ("warning", 0.0)), clear_s=0.0,
                   renotify_s=renotify_s, flap_failures=0)

    @classmethod
    def from_settings(cls, m: MonitorSettings, renotify_s: float | None = None) -> AlertPolicy:
        """The inventory's rules before the built-in ones; `renotify_s` (the CLI's
        --repeat-minutes, when given) overrides the inventory's renotify_s."""
        mine = tuple(Rule(r.match, r.for_s, r.clear_s) for r in m.alerts)
        return cls(rules=mine + BUILTIN, clear_s=float(m.clear_s),
                   renotify_s=float(m.renotify_s if renotify_s is None else renotify_s),
                   flap_window_s=float(m.flapping.window_s),
                   flap_failures=m.flapping.failures)

    def describe(self) -> str:
        """One line for the monitor's start-up log."""
        fors = dict(self.default_for_s)
        flap = (f"flapping at {self.flap_failures} failures in {self.flap_window_s:g} s"
                if self.flap_failures else "no flapping detection")
        return (f"alerts fire after {fors.get('critical', 0):g} s (critical) / "
                f"{fors.get('warning', 0):g} s (warning) unless a rule says otherwise, resolve "
                f"after {self.clear_s:g} s clear, renotify every {self.renotify_s:g} s, {flap}")
