"""Frozen snapshots of what was observed. Decisions are taken from these, never from live I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from hapair.facts.probes import Listener


@dataclass(frozen=True)
class HostFacts:
    name: str
    reachable: bool
    unreachable_reason: str = ""
    pg_major_installed: int | None = None
    pg_data_dir_major: int | None = None  # None: no data directory at the inventory path
    pg_data_bytes: int | None = None
    disk_free_bytes: int | None = None  # under the PostgreSQL data directory
    clock: float | None = None  # host clock when probed
    probed_at: float | None = None  # controller clock at the same moment (midpoint)
    listeners: tuple[Listener, ...] = ()

    @property
    def clock_offset(self) -> float | None:
        if self.clock is None or self.probed_at is None:
            return None
        return self.clock - self.probed_at


@dataclass(frozen=True)
class ClusterFacts:
    hosts: dict[str, HostFacts] = field(default_factory=dict)

    def host(self, name: str) -> HostFacts:
        return self.hosts[name]
