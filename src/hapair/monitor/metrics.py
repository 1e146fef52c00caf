"""Prometheus metrics from a PairSnapshot: a collector that yields gauges for the latest
snapshot, so a series that disappears (a dropped slot, a renamed standby) disappears from
/metrics too instead of freezing at its last value.

Names are documented in docs/monitoring.md and used by docs/grafana/hapair.json; renaming one
breaks dashboards and alert rules: do it in all three places.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from hapair.observe.checks import HealthCheck
from hapair.observe.snapshot import PairSnapshot
from hapair.observe.warnings import PairWarning

PREFIX = "hapair"


def _g(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=list(labels))


def _b(value: bool | None) -> float:
    return 1.0 if value else 0.0


@dataclass
class Observed:
    """What /metrics shows: the latest pass and what the monitor counted so far."""

    snapshot: PairSnapshot
    checks: list[HealthCheck]
    warnings: list[PairWarning]
    failovers: dict[str, int]
    backup_age_s: dict[str, float]  # newest complete backup per kind, seconds old


def pg_families(s: PairSnapshot) -> list[Metric]:
    up = _g("pg_up", "PostgreSQL answered the probe on the node (1/0)", ["node"])
    primary = _g("pg_primary", "The node is a writable PostgreSQL primary (1/0)", ["node"])
    role = _g("pg_role", "PostgreSQL role of the node: 1 for the current role",
              ["node", "role"])
    tl = _g("pg_timeline", "PostgreSQL timeline of the node", ["node"])
    free = _g("pg_disk_free_bytes", "Free bytes under the PostgreSQL data directory", ["node"])
    total = _g("pg_disk_total_bytes", "Size of the file system of the data directory", ["node"])
    active = _g("pg_slot_active", "Replication slot in use (1/0)", ["node", "slot"])
    kept = _g("pg_slot_retained_bytes", "WAL bytes a replication slot holds back",
              ["node", "slot"])
    for n in s.nodes:
        pg = n.postgres.value
        up.add_metric([n.name], _b(pg is not None))
        primary.add_metric([n.name], _b(n.role == "primary"))
        role.add_metric([n.name, n.role], 1.0)
        if pg is not None and pg.timeline is not None:
            tl.add_metric([n.name], pg.timeline)
        for slot in pg.slots if pg else ():
            active.add_metric([n.name, slot.name], _b(slot.active))
            if slot.retained_bytes is not None:
                kept.add_metric([n.name, slot.name], slot.retained_bytes)
        if n.disk.value is not None:
            free.add_metric([n.name], n.disk.value.free_bytes)
            total.add_metric([n.name], n.disk.value.total_bytes)
    lag = _g("pg_replication_lag_bytes", "Standby replay lag behind the primary, from LSNs",
             ["standby"])
    delay = _g("pg_replay_delay_seconds", "Standby replay delay in seconds (PostgreSQL's "
               "replay_lag; 0 when nothing is outstanding)", ["standby"])
    streaming = _g("pg_standby_streaming", "The standby streams from the primary (1/0)",
                   ["standby"])
    sync = _g("pg_sync_standby", "The standby is synchronous (sync_state = sync) (1/0)",
              ["standby"])
    for r in s.replication:
        if r.lag_bytes is not None:
            lag.add_metric([r.standby], r.lag_bytes)
        if r.replay_delay_s is not None:
            delay.add_metric([r.standby], r.replay_delay_s)
        streaming.add_metric([r.standby], _b(r.state == "streaming"))
        sync.add_metric([r.standby], _b(r.sync_state == "sync"))
    return [up, primary, role, tl, lag, delay, streaming, sync, active, kept, free, total]


def ha_families(s: PairSnapshot) -> list[Metric]:
    leader = _g("patroni_leader", "The node holds Patroni's leader key (1/0)", ["node"])
    holder = s.patroni_leader
    for n in s.nodes:
        leader.add_metric([n.name], _b(holder == n.name))
    ttl = _g("patroni_lease_ttl_seconds", "Seconds until the leader key's lease expires")
    key = s.leader_key.value
    if key is not None and key.ttl_s is not None:
        ttl.add_metric([], key.ttl_s)
    host_up = _g("host_up", "The host answers over SSH (1/0)", ["host"])
    etcd = _g("etcd_member_healthy", "The etcd member answers a quorum read (1/0)", ["member"])
    for h in s.hosts:
        host_up.add_metric([h.name], _b(h.ssh.ok))
        if h.etcd.ok or h.etcd.error:
            etcd.add_metric([h.name], _b(h.etcd.value is not None and h.etcd.value.healthy))
    master = _g("redis_master", "The node's Redis says role:master (1/0)", ["node"])
    link = _g("redis_link_up", "The node's Redis replica link to its master is up (1/0)",
              ["node"])
    for n in s.nodes:
        r = n.redis.value
        master.add_metric([n.name], _b(r is not None and r.role == "master"))
        if r is not None and r.role != "master":
            link.add_metric([n.name], _b(r.link_up))
    quorum = _g("sentinel_ckquorum_ok", "SENTINEL CKQUORUM answered OK (1/0)", ["sentinel"])
    usable = _g("sentinel_usable", "Usable Sentinels as this Sentinel sees them", ["sentinel"])
    names = _g("sentinel_master", "The node this Sentinel names master: 1", ["sentinel", "node"])
    for h in s.hosts:
        v = h.sentinel.value
        if v is None and not h.sentinel.error:
            continue
        quorum.add_metric([h.name], _b(v is not None and v.quorum_ok))
        if v is not None:
            usable.add_metric([h.name], max(v.usable, 0))
            names.add_metric([h.name, v.master_node or v.master or "none"], 1.0)
    return [leader, ttl, host_up, etcd, master, link, quorum, usable, names]


def edge_families(s: PairSnapshot) -> list[Metric]:
    backend = _g("router_backend_up", "Local router (HAProxy) backend state: 1 up",
                 ["node", "proxy", "server"])
    paused = _g("pgbouncer_paused", "PgBouncer holds the app database paused (1/0)", ["node"])
    http = _g("http_up", "Health endpoint answered 200 (1/0)", ["node", "check"])
    vip = _g("vip_held", "The node holds the front-door VIP (1/0)", ["node"])
    for n in s.nodes:
        for x in n.router.value or ():
            backend.add_metric([n.name, x.proxy, x.server], _b(x.up))
        if n.pgbouncer.value is not None:
            pb = n.pgbouncer.value
            paused.add_metric([n.name], _b(pb.paused or pb.disabled))
        for h in n.http:
            http.add_metric([n.name, h.name], _b(h.ok))
        if n.vip.value is not None:
            vip.add_metric([n.name], _b(n.vip.value))
    door = _g("front_door_up", "The front door's health endpoint answered 200 (1/0)")
    door.add_metric([], _b(s.front_door.ok))
    return [backend, paused, http, vip, door]


def families(o: Observed) -> list[Metric]:
    s = o.snapshot
    stamp = _g("snapshot_timestamp_seconds", "When the last snapshot was taken (epoch)")
    stamp.add_metric([], s.taken_at)
    took = _g("snapshot_duration_seconds", "How long the last snapshot took")
    took.add_metric([], s.duration_s)
    checks = _g("check_ok", "A named health check passes (1/0)", ["check"])
    for c in o.checks:
        checks.add_metric([c.name], _b(c.ok))
    failing = _g("checks_failing", "Number of failing health checks")
    failing.add_metric([], sum(1 for c in o.checks if not c.ok))
    warns = _g("warnings", "Warnings of `hapair status` by code", ["code", "severity"])
    counts: dict[tuple[str, str], int] = {}
    for w in o.warnings:
        counts[(w.code, w.severity)] = counts.get((w.code, w.severity), 0) + 1
    for (code, sev), count in sorted(counts.items()):
        warns.add_metric([code, sev], count)
    age = _g("backup_age_seconds", "Age of the newest complete backup of each kind", ["kind"])
    for kind, seconds in sorted(o.backup_age_s.items()):
        age.add_metric([kind], seconds)
    failovers = CounterMetricFamily(f"{PREFIX}_failovers_seen",
                                    "Leader changes this monitor observed between polls",
                                    labels=["service"])
    for service, count in sorted(o.failovers.items()):
        failovers.add_metric([service], count)
    return [stamp, took, *pg_families(s), *ha_families(s), *edge_families(s), checks, failing,
            warns, age, failovers]


class SnapshotCollector(Collector):
    """Serves the latest Observed; nothing until the first pass is done."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: Observed | None = None

    def update(self, observed: Observed) -> None:
        with self._lock:
            self._latest = observed

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            latest = self._latest
        if latest is not None:
            yield from families(latest)


def registry_with(collector: SnapshotCollector) -> CollectorRegistry:
    """A registry of its own (not the process-global one): only hapair's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
