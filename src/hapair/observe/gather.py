"""The I/O of `status`, `check` and `monitor`: probe every host once, freeze a PairSnapshot.

Host-side probes (psql, df, etcdctl, the router's stats socket, PgBouncer, the VIP, backups)
run through each host's Transport, one host per worker thread, in sequence on that host; on a
compose host psql, df and etcdctl run in their containers (shells.py). The
controller's own probes (Patroni REST, HTTP health, Redis and Sentinel over RESP) run in
parallel beside them. Everything is read-only and bounded: SSH commands by their timeout, the
controller's requests by PROBE_TIMEOUT; a host that stops answering is not asked again in the
same pass, so one dead host costs one timeout, not one per probe.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import redis

from hapair.components.common import Endpoint, SecretValue
from hapair.components.etcd.probe import (
    ETCDCTL_ENV,
    endpoint_health_argv,
    endpoint_status_argv,
    parse_endpoint_health,
    parse_endpoint_status,
)
from hapair.components.keepalived import parse_holds_vip, vip_probe_argv
from hapair.components.patroni.probe import ClusterView, parse_cluster, parse_node_status
from hapair.components.pgbouncer.admin import admin_psql_argv, parse_show_databases
from hapair.components.pgdump import psql_argv
from hapair.components.redis.probe import (
    ckquorum,
    get_master_addr,
    parse_ckquorum,
    parse_info_replication,
    parse_master_addr,
    parse_sentinel_entries,
    sentinel_sentinels,
)
from hapair.components.router.stats import ServerStat, parse_show_stat, show_stat_argv
from hapair.errors import StepFailed
from hapair.exec.transport import Transport
from hapair.observe import probes
from hapair.observe.shells import SSH_TIMEOUT, Commands, HostSession, Shells
from hapair.observe.snapshot import (
    BackupSeen,
    Disk,
    EtcdMemberState,
    Fact,
    HostSnapshot,
    HttpResult,
    LeaderKey,
    NodeSnapshot,
    PairSnapshot,
    PatroniNode,
    PgBouncerState,
    PgStatus,
    RedisState,
    SentinelState,
    derive_replication,
    observe,
)
from hapair.observe.targets import HostTarget, NodeTargets, Targets

if TYPE_CHECKING:
    from hapair.observe.storage import NodeStorage, StorageSnapshot

PROBE_TIMEOUT = 3.0  # the controller's HTTP and RESP requests
MAX_WORKERS = 16

T = TypeVar("T")
HttpGet = Callable[[str, float], tuple[int, str]]
RedisFactory = Callable[[Endpoint, SecretValue], Any]


def http_get(url: str, timeout: float) -> tuple[int, str]:
    """GET from the controller (no proxy from the environment): (status, body)."""
    r = httpx.get(url, timeout=timeout, trust_env=False, follow_redirects=False)
    return r.status_code, r.text


def redis_client(ep: Endpoint, password: SecretValue) -> redis.Redis:
    """The password goes to the client, never into an argv (ORIGINAL_DEFECTS #25)."""
    return redis.Redis(host=ep.host, port=ep.port, password=password.reveal() or None,
                       socket_timeout=PROBE_TIMEOUT, socket_connect_timeout=PROBE_TIMEOUT,
                       decode_responses=True)


@dataclass(frozen=True)
class Io:
    """The controller-side I/O (replaced in tests)."""

    http: HttpGet = http_get
    redis: RedisFactory = redis_client
    clock: Callable[[], float] = time.time


def _err(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {PROBE_TIMEOUT:g}s"
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {exc}"
    return str(exc) or type(exc).__name__


# --- one host over its transport ------------------------------------------------------------


@dataclass
class HostSide:
    ssh: Fact[bool] = field(default_factory=Fact)
    etcd: Fact[EtcdMemberState] = field(default_factory=Fact)
    leader_key: Fact[LeaderKey] = field(default_factory=Fact)
    postgres: Fact[PgStatus] = field(default_factory=Fact)
    disk: Fact[Disk] = field(default_factory=Fact)
    router: Fact[tuple[ServerStat, ...]] = field(default_factory=Fact)
    pgbouncer: Fact[PgBouncerState] = field(default_factory=Fact)
    vip: Fact[bool] = field(default_factory=Fact)
    backups: Fact[tuple[BackupSeen, ...]] = field(default_factory=Fact)
    storage: NodeStorage | None = None  # object storage: write selector and pull loop


def probe_host(transport: Transport, host: HostTarget, node: NodeTargets | None,
               targets: Targets, timeout: float = SSH_TIMEOUT) -> HostSide:
    s = HostSession(transport, timeout)

    def reach() -> bool:
        s.output(["true"], "ssh")
        return True

    out = HostSide(ssh=observe(reach))
    if not out.ssh.ok:
        return _all_failed(out.ssh, f"{host.name} unreachable: {out.ssh.error}", host, node)
    sh = s.shells(host)
    if host.etcd_url:
        out.etcd = observe(lambda: etcd_member(sh.etcd, host.etcd_url or "", host.etcd_env))
        if out.etcd.value is not None and out.etcd.value.healthy:
            out.leader_key = observe(lambda: read_leader_key(sh.etcd, host, targets.leader_key))
        else:
            out.leader_key = Fact(error="its etcd member is not healthy")
    if node is not None:
        _probe_node(out, s, sh, node, targets)
    return out


def _probe_node(out: HostSide, s: HostSession, sh: Shells, node: NodeTargets,
                targets: Targets) -> None:
    out.postgres = observe(lambda: probes.parse_pg_status(sh.postgres.output(
        psql_argv(node.pg, "postgres"), "psql", user="postgres",
        env={**node.pg_env, "PGCONNECT_TIMEOUT": "5"}, input=probes.PG_STATUS_SQL)))
    out.disk = observe(lambda: probes.parse_df(
        sh.postgres.output(probes.df_argv(node.data_dir), "df"), node.data_dir))
    out.router = observe(lambda: parse_show_stat(sh.host.output(
        show_stat_argv(node.router_socket), "router stats socket")))
    if node.pgbouncer:  # else not applicable: no value, no error
        out.pgbouncer = observe(lambda: pgbouncer_state(s, node, targets.database))
    if node.vip_interface and targets.vip:
        iface, vip = node.vip_interface, targets.vip
        out.vip = observe(lambda: parse_holds_vip(sh.host.output(vip_probe_argv(iface),
                                                                 "ip addr"), vip))
    out.backups = observe(lambda: newest_backups(s, node))
    if targets.storage is not None:
        out.storage = _node_storage(s, targets, node.name)


def _all_failed(ssh: Fact[bool], why: str, host: HostTarget, node: NodeTargets | None
                ) -> HostSide:
    """Every fact of the host carries the same reason (the ones that apply to it)."""
    down: Fact[Any] = Fact(error=why)
    out = HostSide(ssh=ssh)
    if host.etcd_url:
        out.etcd, out.leader_key = down, down
    if node is not None:
        out.postgres = out.disk = out.router = out.backups = down
        out.pgbouncer = down if node.pgbouncer else Fact()
        out.storage = _storage_down(node.name, down)
        out.vip = down if node.vip_interface else Fact()
    return out


def etcd_member(s: Commands, url: str,
                env: Mapping[str, str] = ETCDCTL_ENV) -> EtcdMemberState:
    """The member on this host, asked on this host (on compose: in its container)."""
    res = s.run(endpoint_health_argv([url]), env=env or None)
    health = parse_endpoint_health(res.stdout) if res.stdout.strip() else ()
    if not health:
        tail = res.stderr.strip().splitlines()[-1:] or [f"etcdctl exited {res.returncode}"]
        return EtcdMemberState(False, tail[0], None, None, None, "")
    h = health[0]
    status = s.run(endpoint_status_argv([url]), env=env or None)
    st = parse_endpoint_status(status.stdout) if status.ok and status.stdout.strip() else ()
    first = st[0] if st else None
    return EtcdMemberState(h.healthy, h.error if not h.healthy else "",
                           first.member_id if first else None, first.leader_id if first else None,
                           first.raft_term if first else None, first.version if first else "")


def read_leader_key(s: Commands, host: HostTarget, key: str) -> LeaderKey:
    url, env = host.etcd_url or "", dict(host.etcd_env) or None
    holder, lease = probes.parse_etcd_get(s.output(probes.etcd_get_argv(url, key),
                                                   "etcdctl get", env=env))
    reply = None
    if lease:
        reply = probes.parse_etcd_lease(s.output(probes.etcd_lease_argv(url, lease),
                                                 "etcdctl lease", env=env))
    return probes.leader_key(holder, lease, reply, host.name)


def pgbouncer_state(s: HostSession, node: NodeTargets, database: str) -> PgBouncerState:
    argv = admin_psql_argv("SHOW DATABASES", node.pgbouncer_admin, port=node.pgbouncer_port)
    text = s.output(argv, "pgbouncer", user="postgres",
                    env={"PGPASSFILE": node.pgbouncer_passfile, "PGCONNECT_TIMEOUT": "5"})
    db = next((d for d in parse_show_databases(text) if d.name == database), None)
    if db is None:
        raise StepFailed(f"pgbouncer has no database {database!r}")
    return PgBouncerState(db.name, db.paused, db.disabled)


def newest_backups(s: HostSession, node: NodeTargets) -> tuple[BackupSeen, ...]:
    names = s.output(probes.list_backups_argv(node.backup_dir), "backup listing").splitlines()
    seen = []
    for entry in probes.newest_complete(node.name, node.backup_dir, names):
        try:
            manifest = json.loads(s.read(f"{entry.path}/manifest.json"))
            seen.append(probes.backup_seen(entry, manifest))
        except FileNotFoundError:
            seen.append(probes.backup_seen(entry, None, "no manifest.json"))
        except (ValueError, UnicodeDecodeError) as exc:
            seen.append(probes.backup_seen(entry, None, f"manifest.json unreadable: {exc}"))
    return tuple(seen)


# --- the controller's probes ----------------------------------------------------------------


def patroni_node(io: Io, node: NodeTargets) -> PatroniNode:
    code, body = io.http(f"{node.patroni_url}/patroni", PROBE_TIMEOUT)
    # /patroni answers 200 on a running member and 503 with the same JSON when PG is down
    return probes.patroni_node(parse_node_status(body)) if body.strip() else _no_body(code)


def _no_body(code: int) -> Any:
    raise StepFailed(f"HTTP {code} without a body")


def patroni_cluster(io: Io, nodes: Sequence[NodeTargets]) -> ClusterView:
    """GET /cluster from the first node that answers."""
    errors = []
    for node in nodes:
        try:
            code, body = io.http(f"{node.patroni_url}/cluster", PROBE_TIMEOUT)
            if code == 200:
                return parse_cluster(body)
            errors.append(f"{node.name}: HTTP {code}")
        except Exception as exc:  # noqa: BLE001 - try the next node
            errors.append(f"{node.name}: {_err(exc)}")
    raise StepFailed("Patroni /cluster not answering: " + "; ".join(errors))


def http_check(io: Io, name: str, url: str) -> HttpResult:
    try:
        code, _ = io.http(url, PROBE_TIMEOUT)
        return HttpResult(name, url, code)
    except Exception as exc:  # noqa: BLE001 - a failed request is the answer
        return HttpResult(name, url, None, _err(exc))


def node_by_address(targets: Targets, address: str | None) -> str | None:
    return next((n.name for n in targets.nodes if n.address == address), None)


def redis_state(io: Io, targets: Targets, node: NodeTargets) -> RedisState:
    with io.redis(node.redis, targets.redis_password) as c:
        info = parse_info_replication(c.execute_command("INFO", "replication"))
    master = f"{info.master.host}:{info.master.port}" if info.master else None
    return RedisState(info.role, master, node_by_address(targets, info.master.host
                                                         if info.master else None),
                      info.master_link_up, info.master_sync_in_progress,
                      info.connected_replicas)


def sentinel_state(io: Io, targets: Targets, ep: Endpoint) -> SentinelState:
    if targets.sentinel_password is None:
        raise StepFailed("no Sentinel password generated beside the inventory (was the pair "
                         "upgraded from this controller?)")
    name = targets.sentinel_master
    with io.redis(ep, targets.sentinel_password) as c:
        addr = parse_master_addr(c.execute_command(*get_master_addr(name).words))
        try:
            quorum = parse_ckquorum(c.execute_command(*ckquorum(name).words))
        except redis.ResponseError as exc:  # NOQUORUM … arrives as an error reply
            quorum = parse_ckquorum(str(exc))
        others = parse_sentinel_entries(c.execute_command(*sentinel_sentinels(name).words))
    return SentinelState(f"{addr.host}:{addr.port}" if addr else None,
                         node_by_address(targets, addr.host if addr else None),
                         quorum.ok, quorum.usable, quorum.message, len(others))


# --- one pass -------------------------------------------------------------------------------


def gather(targets: Targets, transports: Mapping[str, Transport], io: Io | None = None,
           *, ssh_timeout: float = SSH_TIMEOUT, storage_canary: bool = True) -> PairSnapshot:
    """`storage_canary`: write (and delete) a canary object to measure the replication
    delay — the one write of a pass; off, storage is only listed."""
    io = io or Io()
    started = io.clock()
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="observe") as pool:
        def later(fn: Callable[[], T]) -> Future[Fact[T]]:
            return pool.submit(observe, fn, _err)

        host_f = {h.name: pool.submit(_host_side, transports, h, targets, ssh_timeout)
                  for h in targets.hosts}
        patroni_f = {n.name: later(lambda n=n: patroni_node(io, n)) for n in targets.nodes}
        cluster_f = later(lambda: patroni_cluster(io, targets.nodes))
        redis_f = {n.name: later(lambda n=n: redis_state(io, targets, n)) for n in targets.nodes}
        sentinel_f = {h.name: later(lambda h=h: sentinel_state(io, targets, h.sentinel))
                      for h in targets.hosts if h.sentinel}
        http_f = {(n.name, x.name): pool.submit(http_check, io, x.name, x.url)
                  for n in targets.nodes for x in n.http}
        door_f = pool.submit(http_check, io, "front_door", targets.front_door_url)
        storage_f = later(lambda: _storage(io, targets, started, storage_canary)) \
            if targets.storage is not None else None
        sides = {name: f.result() for name, f in host_f.items()}
        hosts = tuple(HostSnapshot(h.name, sides[h.name].ssh, sides[h.name].etcd,
                                   sentinel_f[h.name].result() if h.name in sentinel_f
                                   else Fact()) for h in targets.hosts)
        nodes = tuple(
            NodeSnapshot(
                n.name, n.address,
                postgres=sides[n.name].postgres, patroni=patroni_f[n.name].result(),
                disk=sides[n.name].disk, redis=redis_f[n.name].result(),
                router=sides[n.name].router, pgbouncer=sides[n.name].pgbouncer,
                http=tuple(http_f[(n.name, x.name)].result() for x in n.http),
                vip=sides[n.name].vip, backups=sides[n.name].backups)
            for n in targets.nodes)
        cluster = cluster_f.result()
        door = door_f.result()
        storage = _with_nodes(storage_f.result(), sides, targets) if storage_f else Fact()
    return PairSnapshot(
        cluster=targets.cluster, durability=targets.durability, taken_at=started,
        duration_s=round(time.monotonic() - t0, 3), witness=targets.witness, hosts=hosts,
        nodes=nodes, patroni=cluster, leader_key=_first_leader_key(sides, targets),
        front_door=door, front_door_kind=targets.front_door_kind, vip=targets.vip,
        replication=derive_replication(nodes), missing_secrets=targets.missing_secrets,
        storage=storage)


def _host_side(transports: Mapping[str, Transport], host: HostTarget, targets: Targets,
               timeout: float) -> HostSide:
    node = next((n for n in targets.nodes if n.name == host.name), None)
    transport = transports.get(host.name)
    if transport is None:
        return _all_failed(Fact(error="no transport"), f"no transport for {host.name}", host,
                           node)
    try:
        return probe_host(transport, host, node, targets, timeout)
    except Exception as exc:  # noqa: BLE001 - a bug in one probe must not hide the others
        return _all_failed(Fact(True), f"probing {host.name} failed: {_err(exc)}", host, node)


def _first_leader_key(sides: Mapping[str, HostSide], targets: Targets) -> Fact[LeaderKey]:
    """The first etcd member (inventory order) that answered the linearizable read."""
    errors = []
    for h in targets.hosts:
        fact = sides[h.name].leader_key
        if fact.ok:
            return fact
        if fact.error:
            errors.append(f"{h.name}: {fact.error}")
    return Fact(error="; ".join(errors) or "no healthy etcd member answered")


# --- object storage (observe/storage.py) -----------------------------------------------------


def _node_storage(s: HostSession, targets: Targets, node: str) -> NodeStorage:
    from hapair.observe.storage import node_storage

    assert targets.storage is not None
    return node_storage(s, targets.storage.node(node), time.time())


def _storage_down(node: str, down: Fact[Any]) -> NodeStorage:
    from hapair.observe.storage import NodeStorage

    return NodeStorage(node, down, down)


def _storage(io: Io, targets: Targets, now: float, canary: bool) -> StorageSnapshot:
    from hapair.observe.storage import gather_storage

    assert targets.storage is not None
    return gather_storage(targets.storage, io.http, {}, now=now, timeout=PROBE_TIMEOUT,
                          canary=canary)


def _with_nodes(fact: Fact[StorageSnapshot], sides: Mapping[str, HostSide],
                targets: Targets) -> Fact[StorageSnapshot]:
    if targets.storage is None or fact.value is None:
        return fact
    nodes = tuple(sides[n.name].storage or _storage_down(n.name, Fact(error="not probed"))
                  for n in targets.storage.nodes if n.name in sides)
    return Fact(dataclasses.replace(fact.value, nodes=nodes))
