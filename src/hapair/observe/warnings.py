"""Pure rules over a PairSnapshot: one-line warnings a person should read in `status`.

Each rule returns zero or more `PairWarning`s with a stable `code` (tests, alerts and docs
refer to it), a severity and a message that says what it means for the site. The same rules
feed `check` (checks.py), so a warning and the failing check never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hapair.inventory import NO_WITNESS_WARNING
from hapair.observe.snapshot import PairSnapshot
from hapair.workflows.backup.model import fmt_bytes

GiB = 1024**3
MiB = 1024**2


@dataclass(frozen=True)
class Limits:
    """Thresholds of the rules and checks (the monitor's flags can change them)."""

    min_free_ratio: float = 0.10  # disk headroom of the PostgreSQL data directory
    min_free_bytes: int = 2 * GiB
    slot_retained_bytes: int = 64 * MiB  # an inactive slot holding more WAL than this
    max_lag_bytes: int = 16 * MiB  # a healthy standby's replay lag
    max_replay_delay_s: float = 30.0
    backup_max_age_s: float = 26 * 3600.0  # daily backups, with some slack


@dataclass(frozen=True)
class PairWarning:
    code: str
    severity: str  # warning | critical
    message: str
    node: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "severity": self.severity, "node": self.node,
                "message": self.message}


Rule = Callable[[PairSnapshot, Limits], list[PairWarning]]


def no_witness(s: PairSnapshot, _l: Limits) -> list[PairWarning]:
    return [] if s.witness else [PairWarning("no_witness", "warning", NO_WITNESS_WARNING)]


def sync_degraded(s: PairSnapshot, _l: Limits) -> list[PairWarning]:
    """sync/strict durability without a synchronous standby on the primary."""
    if s.durability not in ("sync", "strict") or s.primary is None:
        return []
    pg = s.node(s.primary).postgres.value
    if pg is None or any(r.sync_state == "sync" for r in pg.replication):
        return []
    rows = ", ".join(f"{r.application_name} {r.sync_state or r.state}" for r in pg.replication)
    if s.durability == "strict":
        seen = rows or "no standby connected"
        return [PairWarning("sync_degraded", "critical",
                            f"strict durability without a synchronous standby: commits on "
                            f"{s.primary} wait until one is back ({seen})", s.primary)]
    what = f"{rows} only" if rows else "no standby connected"
    return [PairWarning("sync_degraded", "warning",
                        f"sync degraded to async on {s.primary} ({what}): commits are "
                        "acknowledged before the standby has them; a failover now may lose "
                        "them", s.primary)]


def inactive_slots(s: PairSnapshot, lim: Limits) -> list[PairWarning]:
    out = []
    for n in s.nodes:
        pg = n.postgres.value
        for slot in pg.slots if pg else ():
            if slot.active:
                continue
            if slot.wal_status == "lost":
                out.append(PairWarning(
                    "slot_inactive", "critical",
                    f"replication slot {slot.name!r} on {n.name} lost its WAL: the standby "
                    "using it cannot catch up (rejoin it with `hapair rejoin`)", n.name))
            elif (slot.retained_bytes or 0) >= lim.slot_retained_bytes or slot.wal_status in (
                    "extended", "unreserved"):
                out.append(PairWarning(
                    "slot_inactive", "warning",
                    f"inactive replication slot {slot.name!r} on {n.name} holds "
                    f"{fmt_bytes(slot.retained_bytes)} of WAL (wal_status "
                    f"{slot.wal_status or 'unknown'}): it grows until the standby returns or "
                    "max_slot_wal_keep_size drops it", n.name))
    return out


def low_disk(s: PairSnapshot, lim: Limits) -> list[PairWarning]:
    out = []
    for n in s.nodes:
        d = n.disk.value
        if d is None:
            continue
        if d.free_ratio < lim.min_free_ratio or d.free_bytes < lim.min_free_bytes:
            severe = d.free_ratio < lim.min_free_ratio / 2 or d.free_bytes < lim.min_free_bytes / 2
            out.append(PairWarning(
                "disk_low", "critical" if severe else "warning",
                f"{n.name}: {fmt_bytes(d.free_bytes)} free under {d.path} "
                f"({d.free_ratio:.0%} of {fmt_bytes(d.total_bytes)}); PostgreSQL stops when "
                "WAL cannot be written", n.name))
    return out


def split_brain(s: PairSnapshot, _l: Limits) -> list[PairWarning]:
    out = []
    if len(s.writable) > 1:
        out.append(PairWarning(
            "split_brain_postgres", "critical",
            f"{' and '.join(s.writable)} are both writable PostgreSQL primaries (split brain): "
            "writes diverge; fence one now"))
    if len(s.redis_masters) > 1:
        out.append(PairWarning(
            "split_brain_redis", "critical",
            f"{' and '.join(s.redis_masters)} are both Redis masters (split brain): sessions "
            "and cache diverge"))
    return out


def vip_holders(s: PairSnapshot, _l: Limits) -> list[PairWarning]:
    if s.front_door_kind != "vip" or not s.vip:
        return []
    held = [n.name for n in s.nodes if n.vip.value is True]
    unknown = [n.name for n in s.nodes if n.vip.value is None]
    if len(held) > 1:
        return [PairWarning("vip_split", "critical",
                            f"VIP {s.vip} is on {' and '.join(held)} at once (split brain): "
                            "clients reach either node at random")]
    if not held and not unknown:
        return [PairWarning("vip_none", "critical",
                            f"VIP {s.vip} is on no node: the front door is down")]
    if not held:
        return [PairWarning("vip_none", "warning",
                            f"VIP {s.vip} is not on a reachable node ({', '.join(unknown)} "
                            "could not be asked)")]
    return []


def patroni_paused(s: PairSnapshot, _l: Limits) -> list[PairWarning]:
    view = s.patroni.value
    if view is not None and view.paused:
        return [PairWarning("patroni_paused", "warning",
                            "Patroni is paused (maintenance mode): no automatic failover until "
                            "`patronictl resume`")]
    return []


def pgbouncer_paused(s: PairSnapshot, _l: Limits) -> list[PairWarning]:
    out = []
    for n in s.nodes:
        pb = n.pgbouncer.value
        if pb is not None and (pb.paused or pb.disabled):
            state = "PAUSED" if pb.paused else "DISABLED"
            out.append(PairWarning(
                "pgbouncer_paused", "critical",
                f"PgBouncer on {n.name} is {state} for {pb.database}: the app's queries wait "
                "(an interrupted switchover? RESUME it)", n.name))
    return out


def etcd_leader_on_primary(s: PairSnapshot, _l: Limits) -> list[PairWarning]:
    """etcd's leader on the PostgreSQL primary's host: losing that host makes etcd refresh
    every lease, Patroni's leader key included, so failover waits up to one TTL more."""
    if s.witness is None or s.primary is None:
        return []
    host = next((h for h in s.hosts if h.name == s.primary), None)
    member = host.etcd.value if host is not None else None
    if member is None or not member.is_leader:
        return []
    return [PairWarning("etcd_leader_on_primary", "warning",
                        f"etcd's leader is on {s.primary}, the PostgreSQL primary's host: "
                        "losing that host adds up to one leader-key TTL (~20 s) to the "
                        f"failover; move it to {s.witness} (`etcdctl move-leader`, or "
                        f"`hapair rejoin` of the standby does it)", s.primary)]


def missing_secrets(s: PairSnapshot, _l: Limits) -> list[PairWarning]:
    if not s.missing_secrets:
        return []
    return [PairWarning("secrets_missing", "warning",
                        f"generated secrets not found beside the inventory "
                        f"({', '.join(s.missing_secrets)}): run hapair from the controller "
                        "that did the upgrade; probes that need them are skipped")]


RULES: tuple[Rule, ...] = (no_witness, split_brain, vip_holders, sync_degraded, inactive_slots,
                           low_disk, patroni_paused, pgbouncer_paused, etcd_leader_on_primary,
                           missing_secrets)


def evaluate(s: PairSnapshot, limits: Limits | None = None) -> list[PairWarning]:
    lim = limits or Limits()
    return [w for rule in RULES for w in rule(s, lim)]
