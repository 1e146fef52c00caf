"""The pair as observed in one pass: a frozen PairSnapshot. Warnings, checks and metrics are
pure functions of it (Patroni's rule: decide from a frozen view, never from live I/O).

Every observed item is a `Fact`: a value, or the one-line reason it could not be observed.
An unreachable host is a fact like any other, never an exception.

Replication is shown two ways (ORIGINAL_DEFECTS #15): the byte lag from LSNs, and the replay
delay in seconds. The delay is PostgreSQL's own measurement on the primary
(pg_stat_replication.replay_lag); when that is empty, 0 if no byte is outstanding, else the
standby's estimate (0 when it has replayed all it received, else now − last replayed commit).
Never "now − last replay time" alone: that grows on an idle primary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from hapair.components.patroni.probe import ClusterView
from hapair.components.router.stats import ServerStat

if TYPE_CHECKING:
    from hapair.observe.storage import StorageSnapshot

T = TypeVar("T")


@dataclass(frozen=True)
class Fact(Generic[T]):
    """An observation: `value`, or `error` saying why there is none. Neither: not applicable."""

    value: T | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.value is not None and not self.error


def observe(fn: Callable[[], T], on_error: Callable[[Exception], str] = str) -> Fact[T]:
    """Run one probe; any exception becomes the Fact's error (one line)."""
    try:
        return Fact(fn())
    except Exception as exc:  # noqa: BLE001 - an unanswered probe is an observation
        return Fact(error=" ".join(on_error(exc).split()) or type(exc).__name__)


# --- PostgreSQL ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicationRow:
    """A row of pg_stat_replication on a primary."""

    application_name: str
    client_addr: str
    state: str  # streaming | catchup | startup | backup
    sync_state: str  # sync | async | potential | quorum
    lag_bytes: int | None  # current WAL position − replay_lsn
    replay_lag_s: float | None  # PostgreSQL's measured replay delay; NULL when idle


@dataclass(frozen=True)
class SlotState:
    name: str
    slot_type: str
    active: bool
    wal_status: str | None  # reserved | extended | unreserved | lost
    retained_bytes: int | None  # WAL the slot holds back


@dataclass(frozen=True)
class PgStatus:
    in_recovery: bool
    timeline: int | None
    current_lsn: int | None  # primary only
    receive_lsn: int | None  # standby only
    replay_lsn: int | None
    receiver: str | None  # a standby's WAL receiver status (streaming, …)
    replay_delay_s: float | None  # a standby's own estimate (see the module doc)
    sync_standby_names: str
    replication: tuple[ReplicationRow, ...] = ()
    slots: tuple[SlotState, ...] = ()
    server_version_num: int = 0

    @property
    def role(self) -> str:
        return "replica" if self.in_recovery else "primary"


@dataclass(frozen=True)
class Disk:
    path: str
    total_bytes: int
    free_bytes: int

    @property
    def free_ratio(self) -> float:
        return self.free_bytes / self.total_bytes if self.total_bytes else 0.0


@dataclass(frozen=True)
class PatroniNode:
    """GET /patroni on one node."""

    role: str
    state: str
    timeline: int | None
    pending_restart: bool


@dataclass(frozen=True)
class LeaderKey:
    """Patroni's leader key in etcd and the lease it is attached to."""

    holder: str | None  # None: no key (no leader)
    lease_id: int | None
    ttl_s: int | None  # seconds until the lease expires unless renewed; -1: expired
    granted_ttl_s: int | None
    seen_from: str  # the host whose etcd member answered


# --- Redis, etcd, router, PgBouncer, HTTP, backups --------------------------------------------


@dataclass(frozen=True)
class RedisState:
    role: str  # master | slave
    master: str | None  # a replica's master "ip:port"
    master_node: str | None
    link_up: bool
    sync_in_progress: bool
    connected_replicas: int


@dataclass(frozen=True)
class SentinelState:
    master: str | None  # get-master-addr-by-name: "ip:port"
    master_node: str | None
    quorum_ok: bool
    usable: int  # CKQUORUM's usable Sentinels (-1 when unknown)
    message: str
    other_sentinels: int


@dataclass(frozen=True)
class EtcdMemberState:
    healthy: bool
    error: str  # etcdctl's reason when not healthy
    member_id: int | None
    leader_id: int | None
    raft_term: int | None
    version: str

    @property
    def is_leader(self) -> bool:
        return self.member_id is not None and self.member_id == self.leader_id


@dataclass(frozen=True)
class PgBouncerState:
    database: str
    paused: bool
    disabled: bool


@dataclass(frozen=True)
class HttpResult:
    name: str  # backend | frontend | lb | front_door
    url: str
    status: int | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class BackupSeen:
    kind: str
    id: str
    taken_at: float  # epoch seconds, from the id
    finished_at: float | None  # from the manifest
    verified: bool | None
    problem: str = ""


# --- per host / node / pair -----------------------------------------------------------------


@dataclass(frozen=True)
class HostSnapshot:
    """Every host (witness included): SSH, its etcd member and its Sentinel."""

    name: str
    ssh: Fact[bool] = field(default_factory=Fact)
    etcd: Fact[EtcdMemberState] = field(default_factory=Fact)
    sentinel: Fact[SentinelState] = field(default_factory=Fact)


@dataclass(frozen=True)
class NodeSnapshot:
    name: str
    address: str
    postgres: Fact[PgStatus] = field(default_factory=Fact)
    patroni: Fact[PatroniNode] = field(default_factory=Fact)
    disk: Fact[Disk] = field(default_factory=Fact)
    redis: Fact[RedisState] = field(default_factory=Fact)
    router: Fact[tuple[ServerStat, ...]] = field(default_factory=Fact)
    pgbouncer: Fact[PgBouncerState] = field(default_factory=Fact)
    http: tuple[HttpResult, ...] = ()
    vip: Fact[bool] = field(default_factory=Fact)  # holds the VIP; no value: not a VIP
    backups: Fact[tuple[BackupSeen, ...]] = field(default_factory=Fact)

    @property
    def role(self) -> str:
        """primary | replica | down (PostgreSQL as the node itself reports it)."""
        return self.postgres.value.role if self.postgres.value else "down"

    def http_result(self, name: str) -> HttpResult | None:
        return next((h for h in self.http if h.name == name), None)


@dataclass(frozen=True)
class StandbyReplication:
    """How far one standby is behind the primary (derived, see derive_replication)."""

    standby: str
    primary: str | None
    state: str  # streaming | catchup | not connected | unknown
    sync_state: str | None
    lag_bytes: int | None
    replay_delay_s: float | None
    source: str  # where the numbers come from


@dataclass(frozen=True)
class PairSnapshot:
    cluster: str
    durability: str
    taken_at: float  # controller clock, epoch seconds
    duration_s: float
    witness: str | None
    hosts: tuple[HostSnapshot, ...]
    nodes: tuple[NodeSnapshot, ...]
    patroni: Fact[ClusterView] = field(default_factory=Fact)
    leader_key: Fact[LeaderKey] = field(default_factory=Fact)
    front_door: HttpResult = HttpResult("front_door", "")
    front_door_kind: str = "vip"
    vip: str | None = None
    replication: tuple[StandbyReplication, ...] = ()
    missing_secrets: tuple[str, ...] = ()
    storage: Fact[StorageSnapshot] = field(default_factory=Fact)  # object storage

    def node(self, name: str) -> NodeSnapshot:
        return next(n for n in self.nodes if n.name == name)

    def host(self, name: str) -> HostSnapshot:
        return next(h for h in self.hosts if h.name == name)

    @property
    def writable(self) -> list[str]:
        return [n.name for n in self.nodes if n.role == "primary"]

    @property
    def primary(self) -> str | None:
        """The single writable PostgreSQL node, else None (none, or split brain)."""
        w = self.writable
        return w[0] if len(w) == 1 else None

    @property
    def patroni_leader(self) -> str | None:
        if self.leader_key.value is not None and self.leader_key.value.holder:
            return self.leader_key.value.holder
        view = self.patroni.value
        leader = view.leader() if view is not None else None
        return leader.name if leader else None

    @property
    def redis_masters(self) -> list[str]:
        return [n.name for n in self.nodes if n.redis.value and n.redis.value.role == "master"]

    def to_dict(self) -> dict[str, Any]:
        doc = plain(self)
        doc["primary"] = self.primary
        doc["patroni_leader"] = self.patroni_leader
        doc["redis_masters"] = self.redis_masters
        key = self.leader_key.value
        if key is not None and key.ttl_s is not None and key.ttl_s >= 0:
            doc["leader_key"]["expires_at"] = self.taken_at + key.ttl_s  # unless renewed
        for node, out in zip(self.nodes, doc["nodes"], strict=True):
            out["role"] = node.role
            disk = node.disk.value
            if disk is not None:
                out["disk"]["free_ratio"] = round(disk.free_ratio, 4)
        return doc


# --- derived replication ----------------------------------------------------------------------


def _row_for(primary: PgStatus, standby: str, address: str) -> ReplicationRow | None:
    rows = primary.replication
    by_name = [r for r in rows if r.application_name == standby]
    return (by_name or [r for r in rows if r.client_addr == address] or [None])[0]


def derive_replication(nodes: tuple[NodeSnapshot, ...]) -> tuple[StandbyReplication, ...]:
    """One entry per node that is not the single primary (pure)."""
    primaries = [n for n in nodes if n.role == "primary"]
    primary = primaries[0] if len(primaries) == 1 else None
    p_pg = primary.postgres.value if primary else None
    out = []
    for n in nodes:
        if n.role == "primary":
            continue
        pg = n.postgres.value
        row = _row_for(p_pg, n.name, n.address) if p_pg else None
        lag, source = None, "unknown"
        if row is not None and row.lag_bytes is not None:
            lag, source = row.lag_bytes, f"pg_stat_replication on {primary.name}"  # type: ignore[union-attr]
        elif p_pg and pg and p_pg.current_lsn is not None and pg.replay_lsn is not None:
            lag = max(0, p_pg.current_lsn - pg.replay_lsn)
            source = f"LSNs of {primary.name} and {n.name}"  # type: ignore[union-attr]
        delay: float | None = None
        if row is not None and row.replay_lag_s is not None:
            delay = row.replay_lag_s
        elif lag == 0:
            delay = 0.0
        elif pg is not None and pg.replay_delay_s is not None:
            delay = pg.replay_delay_s
            source += f"; delay estimated on {n.name}"
        if row is not None:
            state = row.state
        elif pg is None:
            state = "unknown"
        else:
            state = "not connected" if primary else f"no primary ({pg.receiver or 'no receiver'})"
        out.append(StandbyReplication(
            standby=n.name, primary=primary.name if primary else None, state=state,
            sync_state=row.sync_state if row else None, lag_bytes=lag,
            replay_delay_s=round(delay, 3) if delay is not None else None, source=source))
    return tuple(out)


# --- plain data for JSON ----------------------------------------------------------------------


def plain(obj: Any) -> Any:
    """Dataclasses → dicts, tuples → lists; a Fact → its value, or {"error": …}."""
    if isinstance(obj, Fact):
        if obj.error:
            return {"error": obj.error}
        return plain(obj.value)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [plain(x) for x in obj]
    if isinstance(obj, frozenset | set):
        return sorted(plain(x) for x in obj)
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    return obj


def redact_tree(obj: Any, redact: Callable[[str], str]) -> Any:
    """Every string in plain data passed through `redact` (keys are ours, values may not be)."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {k: redact_tree(v, redact) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_tree(v, redact) for v in obj]
    return obj
