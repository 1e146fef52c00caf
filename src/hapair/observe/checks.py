"""`hapair check`: the pair's health as a list of named checks, each with a one-line reason.

Pure: a PairSnapshot in, HealthChecks out. Names are stable (`postgres.primary`,
`router.node1.redis`, …): `check` prints every failing one, `monitor` turns them into alerts
and metrics. Where a warning rule covers the same condition (split brain, sync degraded,
slots, disk, VIP), the check fails with the warning's own message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hapair.check import Check
from hapair.observe.snapshot import Fact, NodeSnapshot, PairSnapshot, StandbyReplication
from hapair.observe.warnings import (
    Limits,
    PairWarning,
    inactive_slots,
    low_disk,
    pgbouncer_paused,
    split_brain,
    sync_degraded,
    vip_holders,
)
from hapair.workflows.backup.model import fmt_bytes

CRITICAL, WARNING = "critical", "warning"


@dataclass(frozen=True)
class HealthCheck:
    name: str
    check: Check
    severity: str = WARNING  # how bad a failure is (alerts use it)
    node: str | None = None

    @property
    def ok(self) -> bool:
        return self.check.ok

    @property
    def reason(self) -> str:
        return self.check.reason

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "severity": self.severity, "node": self.node,
                "reason": self.reason}


def _hc(name: str, ok: bool, reason: str, severity: str = WARNING,
        node: str | None = None) -> HealthCheck:
    return HealthCheck(name, Check(ok, reason), severity, node)


def _from_warnings(name: str, found: list[PairWarning], passed: str,
                   node: str | None = None) -> HealthCheck:
    if not found:
        return _hc(name, True, passed, node=node)
    severity = CRITICAL if any(w.severity == CRITICAL for w in found) else WARNING
    return _hc(name, False, "; ".join(w.message for w in found), severity, node)


def _why(fact: Fact[object]) -> str:
    return fact.error or "not observed"


# --- hosts, PostgreSQL, Patroni, etcd -----------------------------------------------------------


def host_checks(s: PairSnapshot) -> list[HealthCheck]:
    return [_hc(f"ssh.{h.name}", h.ssh.ok, f"{h.name} answers over SSH" if h.ssh.ok
                else h.ssh.error, CRITICAL if h.name != s.witness else WARNING, h.name)
            for h in s.hosts]


def postgres_checks(s: PairSnapshot, lim: Limits) -> list[HealthCheck]:
    out = [_answers(n) for n in s.nodes]
    out.append(_primary(s))
    out += [_standby(s, r, lim) for r in s.replication]
    out.append(_timelines(s))
    out.append(_from_warnings("postgres.sync", sync_degraded(s, lim),
                              f"durability {s.durability}: " + (
                                  "a synchronous standby confirms every commit"
                                  if s.durability != "async" else "no synchronous standby "
                                  "expected")))
    out.append(_from_warnings("postgres.slots", inactive_slots(s, lim),
                              "no inactive replication slot holds WAL"))
    return out


def _answers(n: NodeSnapshot) -> HealthCheck:
    pg = n.postgres.value
    if pg is None:
        return _hc(f"postgres.{n.name}", False, f"PostgreSQL on {n.name}: {_why(n.postgres)}",
                   WARNING, n.name)
    return _hc(f"postgres.{n.name}", True, f"PostgreSQL on {n.name} answers: {pg.role}, "
                                           f"timeline {pg.timeline}", WARNING, n.name)


def _primary(s: PairSnapshot) -> HealthCheck:
    split = [w for w in split_brain(s, Limits()) if w.code == "split_brain_postgres"]
    if split:
        return _from_warnings("postgres.primary", split, "")
    if s.primary:
        return _hc("postgres.primary", True, f"{s.primary} is the only writable node", CRITICAL)
    seen = "; ".join(f"{n.name} {n.role}" + (f" ({n.postgres.error})" if n.postgres.error else "")
                     for n in s.nodes)
    return _hc("postgres.primary", False, f"no writable PostgreSQL node: {seen}", CRITICAL)


def _standby(s: PairSnapshot, r: StandbyReplication, lim: Limits) -> HealthCheck:
    name = f"postgres.standby.{r.standby}"
    if r.state != "streaming":
        why = s.node(r.standby).postgres.error or r.state
        return _hc(name, False, f"{r.standby} is not streaming from "
                                f"{r.primary or 'a primary'}: {why}", CRITICAL, r.standby)
    lag = f"lag {fmt_bytes(r.lag_bytes)}, replay delay {_secs(r.replay_delay_s)}"
    if r.lag_bytes is None or r.lag_bytes > lim.max_lag_bytes:
        return _hc(name, False, f"{r.standby} streams but lags: {lag} (limit "
                                f"{fmt_bytes(lim.max_lag_bytes)})", WARNING, r.standby)
    if r.replay_delay_s is not None and r.replay_delay_s > lim.max_replay_delay_s:
        return _hc(name, False, f"{r.standby} replays late: {lag} (limit "
                                f"{lim.max_replay_delay_s:g} s)", WARNING, r.standby)
    sync = f" ({r.sync_state})" if r.sync_state else ""
    return _hc(name, True, f"{r.standby} streams from {r.primary}{sync}: {lag}", node=r.standby)


def _secs(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.1f} s"


def _timelines(s: PairSnapshot) -> HealthCheck:
    tls = {n.name: n.postgres.value.timeline for n in s.nodes if n.postgres.value}
    if len(set(tls.values())) <= 1:
        which = next(iter(tls.values()), None)
        return _hc("postgres.timeline", True, f"timeline {which} on " +
                   (", ".join(tls) or "no node answering"))
    detail = ", ".join(f"{k} {v}" for k, v in tls.items())
    return _hc("postgres.timeline", False, f"nodes on different timelines ({detail}): the "
                                           "one behind must be rejoined (pg_rewind)", WARNING)


def patroni_checks(s: PairSnapshot) -> list[HealthCheck]:
    key, view = s.leader_key, s.patroni
    if not key.ok:
        lead = _hc("patroni.leader", False, f"leader key unreadable: {_why(key)}", CRITICAL)
    elif key.value is None or not key.value.holder:
        lead = _hc("patroni.leader", False, "no Patroni leader key in etcd: no node may be "
                                            "primary", CRITICAL)
    else:
        k = key.value
        ttl = f"lease {k.ttl_s} s of {k.granted_ttl_s} s" if k.ttl_s is not None else "no lease"
        rogue = [n for n in s.writable if n != k.holder]
        if rogue:
            lead = _hc("patroni.leader", False, f"{' and '.join(rogue)} writable without the "
                                                f"leader key ({k.holder} holds it, {ttl})",
                       CRITICAL)
        elif k.ttl_s is not None and k.ttl_s <= 0:
            lead = _hc("patroni.leader", False, f"{k.holder}'s leader lease has expired",
                       CRITICAL)
        else:
            lead = _hc("patroni.leader", True, f"{k.holder} holds the leader key ({ttl}, seen "
                                               f"from {k.seen_from})", CRITICAL)
    if not view.ok:
        members = _hc("patroni.members", False, f"Patroni REST: {_why(view)}")
    else:
        assert view.value is not None
        bad = [f"{m.name} {m.role} {m.state}" for m in view.value.members
               if m.state not in ("running", "streaming")]
        names = {m.name for m in view.value.members}
        missing = [n.name for n in s.nodes if n.name not in names]
        paused = " (PAUSED: no automatic failover)" if view.value.paused else ""
        ok = not bad and not missing and not paused
        reason = ("; ".join(bad + [f"{m} missing" for m in missing]) or "all members running"
                  ) + paused
        members = _hc("patroni.members", ok, f"Patroni: {reason}")
    return [lead, members]


def etcd_checks(s: PairSnapshot) -> list[HealthCheck]:
    members = [h for h in s.hosts if h.etcd.ok or h.etcd.error]
    if not members:
        return []
    healthy = [h.name for h in members if h.etcd.value is not None and h.etcd.value.healthy]
    need = len(members) // 2 + 1
    down = [f"{h.name} ({h.etcd.error or (h.etcd.value.error if h.etcd.value else '')})"
            for h in members if h.name not in healthy]
    quorum = _hc("etcd.quorum", len(healthy) >= need,
                 f"etcd: {len(healthy)}/{len(members)} members healthy, {need} needed"
                 + (f"; down: {', '.join(down)}" if down else ""), CRITICAL)
    every = _hc("etcd.members", not down, "every etcd member healthy" if not down else
                f"etcd members down: {', '.join(down)} (one more loss stops failover)")
    return [quorum, every]


# --- Redis, Sentinel ----------------------------------------------------------------------------


def redis_checks(s: PairSnapshot) -> list[HealthCheck]:
    masters = s.redis_masters
    out = []
    if len(masters) == 1:
        out.append(_hc("redis.master", True, f"{masters[0]} is the only Redis master", CRITICAL))
    elif masters:
        out.append(_from_warnings("redis.master", [w for w in split_brain(s, Limits())
                                                   if w.code == "split_brain_redis"], ""))
    else:
        seen = "; ".join(f"{n.name}: " + (n.redis.value.role if n.redis.value else _why(n.redis))
                         for n in s.nodes)
        out.append(_hc("redis.master", False, f"no Redis master: {seen}", CRITICAL))
    master = masters[0] if len(masters) == 1 else None
    for n in s.nodes:
        if n.name == master:
            continue
        r = n.redis.value
        if r is None:
            out.append(_hc(f"redis.replica.{n.name}", False, f"{n.name}: {_why(n.redis)}",
                           WARNING, n.name))
        elif r.role == "master":
            continue  # reported by redis.master
        else:
            ok = r.link_up and (master is None or r.master_node == master)
            link = "up" if r.link_up else ("syncing" if r.sync_in_progress else "down")
            out.append(_hc(f"redis.replica.{n.name}", ok, f"{n.name} replicates from "
                           f"{r.master_node or r.master}, link {link}", WARNING, n.name))
    return out + _sentinel_checks(s, master)


def _sentinel_checks(s: PairSnapshot, master: str | None) -> list[HealthCheck]:
    views = [(h.name, h.sentinel) for h in s.hosts if h.sentinel.ok or h.sentinel.error]
    if not views:
        return []
    named = {name: f.value.master_node for name, f in views if f.value is not None}
    wrong = [f"{name}: {named.get(name) or f.error or 'no master'}" for name, f in views
             if f.value is None or master is None or f.value.master_node != master]
    agree = _hc("sentinel.master", not wrong,
                f"every Sentinel names {master} master" if not wrong else
                f"Sentinels disagree with the Redis master ({master or 'none'}): "
                + "; ".join(wrong), CRITICAL)
    bad = [f"{name}: {f.value.message if f.value else f.error}" for name, f in views
           if f.value is None or not f.value.quorum_ok or f.value.usable < len(views)]
    quorum = _hc("sentinel.quorum", not bad,
                 f"CKQUORUM OK on all {len(views)} Sentinels" if not bad else "; ".join(bad),
                 CRITICAL if len(bad) == len(views) else WARNING)
    return [agree, quorum]


# --- router, PgBouncer, HTTP, front door, disk --------------------------------------------------


def router_checks(s: PairSnapshot) -> list[HealthCheck]:
    out = []
    for n in s.nodes:
        if not n.router.ok:
            out.append(_hc(f"router.{n.name}", False, f"router on {n.name}: {_why(n.router)}",
                           CRITICAL, n.name))
            continue
        stats = n.router.value or ()
        pg_up = [x.server for x in stats if x.proxy == "postgres" and x.up]
        redis_up = sorted({x.server for x in stats if x.proxy.startswith("redis_") and x.up})
        out.append(_route(n, "postgres", pg_up, s.primary))
        out.append(_route(n, "redis", redis_up, s.redis_masters[0]
                          if len(s.redis_masters) == 1 else None))
    return out


def _route(n: NodeSnapshot, what: str, up: list[str], expected: str | None) -> HealthCheck:
    name = f"router.{n.name}.{what}"
    if up == [expected] and expected:
        return _hc(name, True, f"router on {n.name} sends {what} to {expected}", CRITICAL, n.name)
    got = ", ".join(up) or "no backend"
    return _hc(name, False, f"router on {n.name} sends {what} to {got}, expected "
                            f"{expected or 'a single primary'}", CRITICAL, n.name)


def pgbouncer_checks(s: PairSnapshot, lim: Limits) -> list[HealthCheck]:
    out = []
    for n in s.nodes:
        if n.pgbouncer.value is None and not n.pgbouncer.error:
            continue  # not applicable: no PgBouncer on this node (compose hosts)
        if not n.pgbouncer.ok:
            out.append(_hc(f"pgbouncer.{n.name}", False, f"PgBouncer on {n.name}: "
                           f"{_why(n.pgbouncer)}", CRITICAL, n.name))
        else:
            found = [w for w in pgbouncer_paused(s, lim) if w.node == n.name]
            out.append(_from_warnings(f"pgbouncer.{n.name}", found,
                                      f"PgBouncer on {n.name} serves queries", n.name))
    return out


def http_checks(s: PairSnapshot) -> list[HealthCheck]:
    out = [_http(f"http.{n.name}.{h.name}", h.url, h.status, h.error, n.name,
                 CRITICAL if h.name == "lb" else WARNING)
           for n in s.nodes for h in n.http]
    d = s.front_door
    out.append(_http("front_door", d.url, d.status, d.error, None, CRITICAL))
    out += [_from_warnings("front_door.vip", vip_holders(s, Limits()),
                           f"VIP {s.vip} on exactly one node")] if s.front_door_kind == "vip" \
        and s.vip else []
    return out


def _http(name: str, url: str, status: int | None, error: str, node: str | None,
          severity: str) -> HealthCheck:
    if status == 200:
        return _hc(name, True, f"GET {url} answered 200", severity, node)
    got = f"answered {status}" if status is not None else f"failed: {error}"
    return _hc(name, False, f"GET {url} {got}", severity, node)


def disk_checks(s: PairSnapshot, lim: Limits) -> list[HealthCheck]:
    out = []
    for n in s.nodes:
        if not n.disk.ok:
            out.append(_hc(f"disk.{n.name}", False, f"{n.name}: disk not observed: "
                           f"{_why(n.disk)}", WARNING, n.name))
            continue
        d = n.disk.value
        assert d is not None
        found = [w for w in low_disk(s, lim) if w.node == n.name]
        out.append(_from_warnings(
            f"disk.{n.name}", found,
            f"{n.name}: {fmt_bytes(d.free_bytes)} free under {d.path} ({d.free_ratio:.0%})",
            n.name))
    return out


def storage_checks(s: PairSnapshot) -> list[HealthCheck]:
    """Object storage: storage.routes.NODE, storage.replication.NODE, storage.canary,
    storage.consistency (observe/storage.py)."""
    from hapair.observe.storage import storage_checks as checks_of

    return [HealthCheck(name, check, severity, node) for name, check, severity, node
            in checks_of(s)]


CheckGroup = Callable[[PairSnapshot, Limits], Iterable[HealthCheck]]

GROUPS: tuple[CheckGroup, ...] = (
    lambda s, _l: host_checks(s),
    postgres_checks,
    lambda s, _l: patroni_checks(s),
    lambda s, _l: etcd_checks(s),
    lambda s, _l: redis_checks(s),
    lambda s, _l: router_checks(s),
    pgbouncer_checks,
    lambda s, _l: http_checks(s),
    disk_checks,
    lambda s, _l: storage_checks(s),
)


def run_checks(s: PairSnapshot, limits: Limits | None = None) -> list[HealthCheck]:
    lim = limits or Limits()
    return [c for group in GROUPS for c in group(s, lim)]


def failing(checks: Iterable[HealthCheck]) -> list[HealthCheck]:
    return [c for c in checks if not c.ok]
