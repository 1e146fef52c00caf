"""What to probe, where: every address, port, path and credential `status`, `check` and
`monitor` need, taken from UpgradeParams (the one inventory → components mapping). Pure.

Observation never creates state: `ReadOnlySecrets` hands out generated secrets that exist and
records the names of those that do not (a pair that was never upgraded has none), instead of
generating new ones as the upgrade does.

On a compose host (docs/compose.md) the tools run where their server runs: psql and df in
hapair-patroni (as the OS user postgres, peer-mapped to the image's superuser, the inventory's
owner), etcdctl in hapair-etcd against its own loopback (the official image is distroless: no
`env`, no shell); the router's admin socket, the VIP and the backups are on the host itself.
There is no PgBouncer (not applicable) and no object-storage replication of hapair's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hapair.components.common import Endpoint, Plain, SecretValue
from hapair.components.etcd.probe import ETCDCTL_ENV
from hapair.components.pgdump import PgConn
from hapair.compose.generate_configs import ETCD_CLIENT_PORT, PG_PORT
from hapair.inventory.model import Host
from hapair.workflows.backup.nodes import DEFAULT_BACKUP_DIR, DEFAULT_SOCKET_DIR
from hapair.workflows.context import GeneratedSecrets
from hapair.workflows.ops.pair import router_admin_socket
from hapair.workflows.upgrade.params import PGBOUNCER_ADMIN, PGBOUNCER_PORT, UpgradeParams
from hapair.workflows.upgrade.steps_pg import PGPASS

if TYPE_CHECKING:
    from hapair.observe.storage import StorageTargets


class ReadOnlySecrets(GeneratedSecrets):
    """GeneratedSecrets that never generates: a missing secret is an empty value, noted."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.missing: set[str] = set()

    def get(self, name: str, nbytes: int = 24) -> Plain:
        path = self.directory / name
        if not path.is_file():
            self.missing.add(name)
            return Plain("")
        return Plain(path.read_text().strip())


@dataclass(frozen=True)
class HttpTarget:
    name: str  # backend | frontend | lb
    url: str


@dataclass(frozen=True)
class NodeTargets:
    name: str
    address: str
    pg: PgConn  # psql as the postgres OS user over the local socket (peer auth)
    data_dir: str
    patroni_url: str  # REST base, e.g. http://10.99.0.11:8008
    redis: Endpoint
    http: tuple[HttpTarget, ...]
    router_socket: str  # the local router's HAProxy stats socket
    pgbouncer_port: int
    pgbouncer_admin: str
    pgbouncer_passfile: str  # 0600, the postgres user's: its path goes in PGPASSFILE
    vip_interface: str | None  # None: the front door is not a VIP
    backup_dir: str
    pg_env: Mapping[str, str] = field(default_factory=dict)  # psql's environment (PGUSER)
    pgbouncer: bool = True  # False: no PgBouncer on this node (compose): not applicable


@dataclass(frozen=True)
class HostTarget:
    name: str
    address: str
    etcd_url: str | None  # its etcd member's client URL where etcdctl runs (None: no member)
    sentinel: Endpoint | None
    compose: Host | None = None  # the inventory host when its tools run in its containers
    etcd_env: Mapping[str, str] = field(default_factory=lambda: dict(ETCDCTL_ENV))


@dataclass(frozen=True)
class Targets:
    cluster: str
    durability: str
    database: str  # the app database (PgBouncer's pool)
    nodes: tuple[NodeTargets, ...]
    hosts: tuple[HostTarget, ...]  # every host, data nodes first (SSH reachability, etcd)
    witness: str | None
    leader_key: str  # Patroni's leader key in etcd
    sentinel_master: str
    redis_password: SecretValue = field(repr=False)
    sentinel_password: SecretValue | None = field(repr=False)  # None: never generated
    front_door_kind: str = "vip"
    front_door_url: str = ""
    vip: str | None = None
    missing_secrets: tuple[str, ...] = ()
    storage: StorageTargets | None = None  # object storage (observe/storage.py)

    def node(self, name: str) -> NodeTargets:
        return next(n for n in self.nodes if n.name == name)

    def host(self, name: str) -> HostTarget:
        return next(h for h in self.hosts if h.name == name)

    @property
    def etcd_members(self) -> int:
        return sum(1 for h in self.hosts if h.etcd_url)


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def in_containers(host: Host) -> bool:
    """Do this host's programs (and so their tools) run in containers?"""
    return host.runtime == "compose"


def _pg(p: UpgradeParams, h: Host, socket_dir: str) -> tuple[PgConn, dict[str, str]]:
    """psql's connection as the OS user postgres over the local socket (peer). In
    hapair-patroni: the container's port and the image's superuser (it has no `postgres`
    role; the generated pg_ident maps the OS user postgres to the owner)."""
    pg = p.inv.services.postgres
    if not in_containers(h):
        return PgConn(pg.bin_dir, pg.port, socket_dir), {}
    return PgConn(pg.bin_dir, PG_PORT, socket_dir, user=pg.owner), {"PGUSER": pg.owner}


def targets_from_params(p: UpgradeParams, *, backup_dir: str = DEFAULT_BACKUP_DIR,
                        socket_dir: str = DEFAULT_SOCKET_DIR) -> Targets:
    inv, s = p.inv, p.inv.services
    door = inv.front_door
    nodes = []
    for h in p.data_nodes:
        rest = p.patroni(h.name).me
        lb = p.nginx(h.name)
        a = _url_host(h.address)
        pg, pg_env = _pg(p, h, socket_dir)
        nodes.append(NodeTargets(
            name=h.name,
            address=h.address,
            pg=pg,
            pg_env=pg_env,
            data_dir=s.postgres.data_dir,  # on compose: PGDATA as the container sees it
            patroni_url=rest.rest_url(""),
            redis=Endpoint(h.address, s.redis.port),
            http=(HttpTarget("backend", f"http://{a}:{s.backend.port}{s.backend.health}"),
                  HttpTarget("frontend", f"http://{a}:{s.frontend.port}{s.frontend.health}"),
                  HttpTarget("lb", f"http://{a}:{lb.port}{s.backend.health}")),
            router_socket=router_admin_socket(h),
            pgbouncer_port=PGBOUNCER_PORT,
            pgbouncer_admin=PGBOUNCER_ADMIN,
            pgbouncer_passfile=PGPASS,
            vip_interface=p.keepalived(h.name).interface if door.kind == "vip" else None,
            backup_dir=backup_dir,  # on compose too: the host directory
            pgbouncer=not in_containers(h),
        ))
    etcd = {m.name: m.client_url for m in p.etcd_members}
    sentinels = {h.name: p.sentinel(h.name) for h in p.sentinel_hosts}
    hosts = tuple(
        _host_target(h, etcd.get(h.name),
                     Endpoint(h.address, sentinels[h.name].port) if h.name in sentinels else None)
        for h in (*p.data_nodes, *([inv.witness] if inv.witness else []))
    )
    sentinel_password = p.sentinel_password
    patroni = p.patroni(p.names.primary)
    missing = tuple(sorted(getattr(p.gen, "missing", ())))  # after every secret was asked for
    return Targets(
        cluster=inv.cluster,
        durability=inv.durability,
        database=s.postgres.database,
        nodes=tuple(nodes),
        hosts=hosts,
        witness=p.names.witness,
        leader_key=f"{patroni.namespace.rstrip('/')}/{patroni.scope}/leader",
        sentinel_master=p.sentinel_master_name,
        redis_password=s.redis.password,
        sentinel_password=None if "sentinel_password" in missing else sentinel_password,
        front_door_kind=door.kind,
        front_door_url=f"http://{_url_host(door.address)}:{door.port}{s.backend.health}",
        vip=door.address if door.kind == "vip" else None,
        missing_secrets=missing,
        storage=_storage_targets(p),
    )


def _host_target(h: Host, etcd_url: str | None, sentinel: Endpoint | None) -> HostTarget:
    if not in_containers(h):
        return HostTarget(h.name, h.address, etcd_url, sentinel)
    # etcdctl in hapair-etcd asks its own member on the container's loopback (as the
    # generated healthcheck does), with no `env` wrapper: the image has none (etcdctl 3.4+
    # speaks v3 by default)
    local = f"http://127.0.0.1:{ETCD_CLIENT_PORT}" if etcd_url else None
    return HostTarget(h.name, h.address, local, sentinel, compose=h, etcd_env={})


def _storage_targets(p: UpgradeParams) -> StorageTargets | None:
    """None on compose nodes: their layout has no object-storage replication of hapair's
    (the native S3 helpers have no place there), so there is nothing of it to observe."""
    if any(in_containers(h) for h in p.data_nodes):
        return None
    from hapair.observe.storage import storage_targets  # storage pulls in boto3 lazily

    return storage_targets(p)
