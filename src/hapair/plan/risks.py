"""Risks found before an upgrade: pure functions of the observed facts.

Each risk carries a one-line reason a human can act on. REFUSE risks stop `plan`/`upgrade`
before any host is touched; WARN risks are shown and the run may go on.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hapair.facts.probes import port_taken
from hapair.facts.snapshot import ClusterFacts

# A standby needs the primary's data plus room for WAL kept for it (max_slot_wal_keep_size).
DISK_HEADROOM_FACTOR = 1.2
DISK_MIN_SPARE_BYTES = 1 * 1024**3
CLOCK_WARN_SECONDS = 0.5
CLOCK_REFUSE_SECONDS = 5.0


class Severity(StrEnum):
    REFUSE = "refuse"
    WARN = "warn"


@dataclass(frozen=True)
class Risk:
    severity: Severity
    code: str
    host: str | None
    reason: str

    def as_dict(self) -> dict[str, str | None]:
        return {"severity": self.severity.value, "code": self.code, "host": self.host,
                "reason": self.reason}


@dataclass(frozen=True)
class PortNeed:
    """A port a new service will bind on a host (only for services not yet in place)."""

    host: str
    address: str
    port: int
    service: str


def assess(
    facts: ClusterFacts,
    *,
    primary: str,
    standby: str,
    witness: str | None,
    data_dir: str,
    port_needs: tuple[PortNeed, ...] = (),
) -> list[Risk]:
    risks: list[Risk] = []
    for name, host in facts.hosts.items():
        if not host.reachable:
            risks.append(Risk(Severity.REFUSE, "unreachable", name,
                              f"{name}: {host.unreachable_reason}"))
    if witness is None:
        risks.append(Risk(Severity.WARN, "no-witness", None,
                          "no witness: automatic failover is OFF; two nodes cannot form a "
                          "quorum, so failover is manual only (hapair failover --to NODE)"))
    if any(r.code == "unreachable" for r in risks):
        return risks  # the remaining checks need every host's facts
    risks += _postgres_risks(facts, primary, standby, data_dir)
    risks += _clock_risks(facts)
    risks += _port_risks(facts, port_needs)
    return risks


def _postgres_risks(facts: ClusterFacts, primary: str, standby: str, data_dir: str) -> list[Risk]:
    p, s = facts.host(primary), facts.host(standby)
    out: list[Risk] = []
    if p.pg_data_dir_major is None:
        out.append(Risk(Severity.REFUSE, "no-primary-data", primary,
                        f"{primary}: no PostgreSQL data directory at {data_dir}; "
                        "the inventory must point at the running server's data"))
        return out
    major = p.pg_data_dir_major
    if s.pg_major_installed is None:
        out.append(Risk(Severity.REFUSE, "standby-no-postgres", standby,
                        f"{standby}: no PostgreSQL {major} server binaries found"))
    elif s.pg_major_installed != major:
        out.append(Risk(Severity.REFUSE, "pg-major-mismatch", standby,
                        f"PostgreSQL majors differ: {primary} runs {major}, {standby} has "
                        f"{s.pg_major_installed}; streaming replication needs the same major"))
    if s.pg_data_dir_major is not None:
        out.append(Risk(Severity.REFUSE, "standby-has-data", standby,
                        f"{standby} already holds a PostgreSQL data directory at {data_dir} "
                        f"(version {s.pg_data_dir_major}); hapair never overwrites data — move "
                        "it aside first"))
    if p.pg_data_bytes is not None and s.disk_free_bytes is not None:
        needed = int(p.pg_data_bytes * DISK_HEADROOM_FACTOR) + DISK_MIN_SPARE_BYTES
        if s.disk_free_bytes < needed:
            out.append(Risk(Severity.REFUSE, "standby-disk", standby,
                            f"{standby}: {_gib(s.disk_free_bytes)} free under {data_dir}, the "
                            f"standby needs about {_gib(needed)} (data {_gib(p.pg_data_bytes)} "
                            "+ WAL headroom)"))
    return out


def _clock_risks(facts: ClusterFacts) -> list[Risk]:
    out: list[Risk] = []
    for name, host in facts.hosts.items():
        offset = host.clock_offset
        if offset is None:
            continue
        if abs(offset) > CLOCK_REFUSE_SECONDS:
            out.append(Risk(Severity.REFUSE, "clock-skew", name,
                            f"{name}: clock is {offset:+.1f} s off the controller; fix NTP "
                            "first (leases and logs depend on it)"))
        elif abs(offset) > CLOCK_WARN_SECONDS:
            out.append(Risk(Severity.WARN, "clock-skew", name,
                            f"{name}: clock is {offset:+.2f} s off the controller"))
    return out


def _port_risks(facts: ClusterFacts, needs: tuple[PortNeed, ...]) -> list[Risk]:
    out: list[Risk] = []
    for need in needs:
        holder = port_taken(facts.host(need.host).listeners, need.address, need.port)
        if holder is not None:
            out.append(Risk(Severity.REFUSE, "port-taken", need.host,
                            f"{need.host}: port {need.port} for {need.service} is already "
                            f"taken ({holder.address}:{holder.port})"))
    return out


def refusals(risks: list[Risk]) -> list[Risk]:
    return [r for r in risks if r.severity is Severity.REFUSE]


def _gib(n: int) -> str:
    return f"{n / 1024**3:.1f} GiB"
