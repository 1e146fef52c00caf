"""Object storage in `status`, `check` and `monitor`: what is observed (gather_storage, I/O),
the frozen model (StorageSnapshot), the named checks and the status lines (pure).

Observed, per pass:
- the writer: the node whose Patroni answers GET /primary with 200 — the site the write
  selectors must send writes to;
- per node: where its write selector sends writes (HAProxy `show stat`), and its pull loop's
  state file (last good pass, from which peer, whether that peer was the writer);
- both sites' listings, compared: the backlog (objects of the writer the other lacks or holds
  differently, with the oldest age) and, for `storage.consistency`, the part of it older than
  the promised delay (`max_delay_s`): named objects missing, corrupt (MD5) or truncated;
- a canary: written on the writer's site, read back on the other's within `max_delay_s`
  (the measured replication delay). It is a write (then deleted from both sites); `gather`
  runs it unless told not to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hapair.check import Check
from hapair.components.router.stats import parse_show_stat, show_stat_argv
from hapair.components.storage import canary as canary_mod
from hapair.components.storage import writer as s3writer
from hapair.components.storage.backlog import (
    compare,
    consistency_check,
    only_on,
    settled,
)
from hapair.components.storage.probe import ReplicationState, parse_state
from hapair.components.storage.replication import ReplicationSettings
from hapair.components.storage.site import Site
from hapair.errors import StepFailed
from hapair.observe.snapshot import Fact, observe
from hapair.workflows import storage as st

if TYPE_CHECKING:
    from hapair.observe.gather import HostSession
    from hapair.observe.snapshot import PairSnapshot
    from hapair.workflows.upgrade.params import UpgradeParams

PREFIX = "storage"
Listing = Mapping[tuple[str, str], Any]  # (bucket, key) -> ObjectInfo
LOOP_SLACK_S = 60.0  # a loop's last good pass may be this much older than 3 intervals


# --- what to probe ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StorageNodeTarget:
    name: str
    site: Site
    primary_url: str  # its Patroni's GET /primary
    writer_socket: str  # its write selector's stats socket
    state_path: str  # its pull loop's state file


@dataclass(frozen=True)
class StorageTargets:
    setup: st.StorageSetup = field(repr=False)
    nodes: tuple[StorageNodeTarget, ...]
    interval_s: int = 5

    def node(self, name: str) -> StorageNodeTarget:
        return next(n for n in self.nodes if n.name == name)


def storage_targets(p: UpgradeParams) -> StorageTargets:
    setup, sites = st.setup_from_inventory(p.inv)
    inv = p.inv.services.storage
    settings = ReplicationSettings(interval_s=inv.replication_interval_s)
    nodes = []
    for site in sites:
        url = s3writer.WriteTarget(site, site.address).primary_url
        nodes.append(StorageNodeTarget(site.name, site, url, s3writer.STATS_SOCKET,
                                       settings.state_path))
    return StorageTargets(setup, tuple(nodes), inv.replication_interval_s)


# --- the model ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectProblem:
    bucket: str
    key: str
    problem: str  # missing | size | md5
    age_s: float  # by the writer's LastModified


@dataclass(frozen=True)
class SitesCompared:
    writer: str
    other: str
    writer_objects: int
    other_objects: int
    backlog_objects: int  # missing or different on the other site, any age
    backlog_bytes: int
    oldest_age_s: float | None  # the oldest of them
    only_on_other: int  # on the other site only (deletes are not replicated)
    size_only: int  # compared by size only (multipart ETags)
    compared: int
    settled: tuple[ObjectProblem, ...]  # older than max_delay_s: replication failed for them


@dataclass(frozen=True)
class CanarySeen:
    writer: str
    reader: str
    ok: bool
    delay_s: float | None
    last_seen: str
    waited_s: float


@dataclass(frozen=True)
class LoopSeen:
    source: str
    target: str
    ok: bool  # the last pass
    mode: str
    last_ok_age_s: float | None  # None: no good pass since the loop started
    source_writer: bool | None


@dataclass(frozen=True)
class NodeStorage:
    name: str
    writes_to: Fact[tuple[str, ...]] = field(default_factory=Fact)  # sites the selector picks
    loop: Fact[LoopSeen] = field(default_factory=Fact)


@dataclass(frozen=True)
class StorageSnapshot:
    backend: str
    max_delay_s: float
    interval_s: int
    writer: Fact[str] = field(default_factory=Fact)
    nodes: tuple[NodeStorage, ...] = ()
    compared: Fact[SitesCompared] = field(default_factory=Fact)
    canary: Fact[CanarySeen] = field(default_factory=Fact)  # neither value nor error: not run


# --- pure: from observations to the model -------------------------------------------------------


def loop_seen(state: ReplicationState, now: float) -> LoopSeen:
    age = now - state.last_ok if state.last_ok else None
    return LoopSeen(state.source, state.target, state.ok, state.mode,
                    round(age, 1) if age is not None else None, state.source_writer)


def sites_compared(writer: str, w: Listing, other: str, o: Listing, *, now: float,
                   max_delay_s: float) -> SitesCompared:
    b = compare(writer, w, other, o, now=now, ignore_prefix=canary_mod.PREFIX)
    old = settled(b, now=now, min_age_s=max_delay_s)
    return SitesCompared(
        writer=writer, other=other,
        writer_objects=sum(1 for k in w if not k[1].startswith(canary_mod.PREFIX)),
        other_objects=sum(1 for k in o if not k[1].startswith(canary_mod.PREFIX)),
        backlog_objects=len(b.differences), backlog_bytes=b.bytes,
        oldest_age_s=round(b.oldest_age_s, 1) if b.oldest_age_s is not None else None,
        only_on_other=only_on(o, w, canary_mod.PREFIX), size_only=b.size_only,
        compared=b.compared,
        settled=tuple(ObjectProblem(d.bucket, d.key, d.problem,
                                    round(now - d.writer.last_modified, 1))
                      for d in old.differences))


# --- I/O ----------------------------------------------------------------------------------------

HttpGet = Callable[[str, float], tuple[int, str]]
Lister = Callable[[Site], Listing]
Canary = Callable[[Site, Site], canary_mod.ReadBack]


def find_writer(http: HttpGet, targets: StorageTargets, timeout: float) -> str:
    """The node whose Patroni answers GET /primary with 200 (exactly one)."""
    found, errors = [], []
    for n in targets.nodes:
        try:
            if http(n.primary_url, timeout)[0] == 200:
                found.append(n.name)
        except Exception as exc:  # noqa: BLE001 - an unreachable node is not the writer
            errors.append(f"{n.name}: {type(exc).__name__}")
    if len(found) == 1:
        return found[0]
    why = f"{' and '.join(found)} both answer" if found else "no node answers"
    raise StepFailed(f"{why} GET /primary" + (f" ({'; '.join(errors)})" if errors else ""))


def node_storage(s: HostSession, n: StorageNodeTarget, now: float) -> NodeStorage:
    routes = observe(lambda: tuple(s3writer.writes_to(parse_show_stat(
        s.output(show_stat_argv(n.writer_socket), "write selector stats socket")))))
    loop = observe(lambda: loop_seen(parse_state(s.read(n.state_path)), now))
    return NodeStorage(n.name, routes, loop)


def gather_storage(
    targets: StorageTargets, http: HttpGet, nodes: Mapping[str, NodeStorage], *,
    now: float, timeout: float, canary: bool = True, lister: Lister | None = None,
    run_canary: Canary | None = None,
) -> StorageSnapshot:
    """The controller's part: who writes, the two listings compared, the canary."""
    setup = targets.setup
    lister = lister or (lambda site: st.listing(setup, site))
    run_canary = run_canary or (lambda w, r: st.check_replication(setup, w, r))
    writer = observe(lambda: find_writer(http, targets, timeout))
    base = dict(backend=setup.backend, max_delay_s=setup.max_delay_s,
                interval_s=targets.interval_s, writer=writer,
                nodes=tuple(nodes.get(n.name, NodeStorage(n.name)) for n in targets.nodes))
    if writer.value is None:
        why: Fact[Any] = Fact(error=f"no writer: {writer.error}")
        return StorageSnapshot(**base, compared=why, canary=why if canary else Fact())
    w = targets.node(writer.value)
    o = next(n for n in targets.nodes if n.name != w.name)
    compared = observe(lambda: sites_compared(
        w.name, lister(w.site), o.name, lister(o.site), now=now,
        max_delay_s=setup.max_delay_s))
    seen: Fact[CanarySeen] = Fact()
    if canary:
        seen = observe(lambda: _canary(run_canary(w.site, o.site)))
    return StorageSnapshot(**base, compared=compared, canary=seen)


def _canary(rb: canary_mod.ReadBack) -> CanarySeen:
    return CanarySeen(rb.writer, rb.reader, rb.ok,
                      round(rb.delay_s, 2) if rb.delay_s is not None else None,
                      rb.last_seen, round(rb.waited_s, 2))


# --- checks (pure) ------------------------------------------------------------------------------


def _c(name: str, ok: bool, reason: str, severity: str, node: str | None = None
       ) -> tuple[str, Check, str, str | None]:
    return (name, Check(ok, reason), severity, node)


def storage_checks(s: PairSnapshot) -> list[tuple[str, Check, str, str | None]]:
    """(name, check, severity, node) for checks.py to wrap: storage.routes.NODE,
    storage.replication.NODE, storage.canary, storage.consistency."""
    snap = s.storage.value if s.storage.ok else None
    if snap is None:
        if not s.storage.error:
            return []  # storage not observed in this pass (no targets)
        return [_c(f"{PREFIX}.canary", False, f"storage: {s.storage.error}", "critical")]
    out = [*_route_checks(snap), *_loop_checks(snap)]
    out.append(_canary_check(snap))
    out.append(_consistency_check(snap))
    return out


def _route_checks(snap: StorageSnapshot) -> list[tuple[str, Check, str, str | None]]:
    out = []
    writer = snap.writer.value
    for n in snap.nodes:
        name = f"{PREFIX}.routes.{n.name}"
        if n.writes_to.value is None:
            out.append(_c(name, False, f"write selector on {n.name}: "
                          f"{n.writes_to.error or 'not observed'}", "critical", n.name))
            continue
        up = list(n.writes_to.value)
        ok = writer is not None and up == [writer]
        reason = (f"uploads on {n.name} go to {writer}'s site" if ok else
                  f"uploads on {n.name} go to {', '.join(up) or 'no site'}, expected "
                  f"{writer or 'the primary'}'s site only")
        out.append(_c(name, ok, reason, "critical", n.name))
    return out


def _loop_checks(snap: StorageSnapshot) -> list[tuple[str, Check, str, str | None]]:
    if snap.backend == "minio":
        return []
    out = []
    limit = 3 * snap.interval_s + LOOP_SLACK_S
    for n in snap.nodes:
        name = f"{PREFIX}.replication.{n.name}"
        loop = n.loop.value
        if loop is None:
            out.append(_c(name, False, f"replication into {n.name}: "
                          f"{n.loop.error or 'not observed'}", "warning", n.name))
            continue
        if loop.last_ok_age_s is None:
            out.append(_c(name, False, f"replication {loop.source}->{loop.target}: no good "
                          f"pass since the loop started (last {loop.mode} pass "
                          f"{'ok' if loop.ok else 'failed'})", "warning", n.name))
            continue
        ok = loop.last_ok_age_s <= limit
        role = {True: " (from the writer)", False: " (add only)", None: ""}[loop.source_writer]
        out.append(_c(name, ok, f"replication {loop.source}->{loop.target}{role}: last good "
                      f"pass {loop.last_ok_age_s:.0f}s ago" + ("" if ok else
                                                               f" (limit {limit:.0f}s)"),
                      "warning", n.name))
    return out


def _canary_check(snap: StorageSnapshot) -> tuple[str, Check, str, str | None]:
    name = f"{PREFIX}.canary"
    c = snap.canary
    if c.value is None:
        if not c.error:
            return _c(name, True, "canary not run in this pass", "warning")
        return _c(name, False, f"canary: {c.error}", "critical")
    v = c.value
    if v.ok:
        return _c(name, True, f"canary written on {v.writer} read back intact on {v.reader} "
                  f"after {v.delay_s:.2f}s (limit {snap.max_delay_s:g}s)", "critical")
    return _c(name, False, f"canary written on {v.writer} not read back intact on {v.reader} "
              f"within {snap.max_delay_s:g}s ({v.last_seen})", "critical")


def _consistency_check(snap: StorageSnapshot) -> tuple[str, Check, str, str | None]:
    name = f"{PREFIX}.consistency"
    c = snap.compared
    if c.value is None:
        return _c(name, False, f"sites not compared: {c.error or 'not observed'}", "warning")
    v = c.value
    check = consistency_check(v.writer, v.other, [(p.bucket, p.key, p.problem)
                                                  for p in v.settled],
                              compared=v.compared, size_only=v.size_only,
                              min_age_s=snap.max_delay_s)
    return _c(name, check.ok, check.reason, "warning")


# --- status lines (from the JSON document) ------------------------------------------------------


def status_lines(doc: Mapping[str, Any]) -> list[str]:
    """`hapair status`: who writes, backlog and oldest age, measured delay, loops, routes."""
    sto = doc.get("storage")
    if not sto:
        return []
    if "error" in sto:
        return [f"storage: not observed ({sto['error']})"]
    writer = sto.get("writer")
    w = writer if isinstance(writer, str) else f"unknown ({(writer or {}).get('error')})"
    lines = [f"storage ({sto['backend']}): writes go to {w}'s site; promised delay "
             f"{sto['max_delay_s']:g}s, pulls every {sto['interval_s']}s"]
    comp = sto.get("compared") or {}
    if "error" in comp:
        lines.append(f"storage backlog: not compared ({comp['error']})")
    elif comp:
        oldest = comp["oldest_age_s"]
        lines.append(
            f"storage backlog: {comp['backlog_objects']} object(s), {comp['backlog_bytes']} "
            f"bytes of {comp['writer']} not on {comp['other']}"
            + (f", oldest {oldest:.0f}s" if oldest is not None else "")
            + f"; {comp['writer']} {comp['writer_objects']} objects, {comp['other']} "
              f"{comp['other_objects']} ({comp['only_on_other']} only there)")
    can = sto.get("canary") or {}
    if "error" in can:
        lines.append(f"storage delay: canary failed ({can['error']})")
    elif can:
        lines.append(f"storage delay: canary {can['writer']}->{can['reader']} "
                     + (f"{can['delay_s']:.2f}s" if can["ok"] else
                        f"NOT back after {can['waited_s']:.0f}s ({can['last_seen']})"))
    for n in sto.get("nodes") or ():
        loop, routes = n.get("loop") or {}, n.get("writes_to")
        pulled = (f"pulls from {loop['source']}, last good pass "
                  + (f"{loop['last_ok_age_s']:.0f}s ago" if loop.get("last_ok_age_s")
                     is not None else "never")) if loop and "error" not in loop else \
            f"loop: {loop.get('error', 'not observed')}"
        sel = ", ".join(routes) if isinstance(routes, list) else \
            f"? {(routes or {}).get('error', 'not observed')}"
        lines.append(f"storage on {n['name']}: {pulled}; uploads go to {sel or 'no site'}")
    return lines
