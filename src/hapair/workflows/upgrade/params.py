"""Inventory → component parameters. The one place that knows how the inventory maps onto
etcd, Patroni, the local router, PgBouncer, Redis/Sentinel, nginx and keepalived.

Roles: the FIRST node of the inventory is the single server being upgraded (it holds the
data; preflight refuses otherwise); the second node is the new standby.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from hapair.components.common import Credential, Endpoint, Plain
from hapair.components.etcd.config import EtcdMember, EtcdParams
from hapair.components.http_lb.config import HttpNode, NginxLbParams
from hapair.components.http_lb.routes import RouteTable
from hapair.components.keepalived import KeepalivedParams, default_vrid
from hapair.components.patroni.config import PatroniNode, PatroniParams
from hapair.components.pgbouncer.config import PgBouncerParams, PgBouncerUser
from hapair.components.redis.config import RedisParams, SentinelParams
from hapair.components.router.config import RouterBackend, RouterParams, RouterSentinel
from hapair.inventory import Host, Inventory
from hapair.workflows.context import GeneratedSecrets

# Software on the hosts (Debian packages + hapair's host virtualenv).
HOST_VENV = "/opt/hapair/venv"
PATRONI_BIN = f"{HOST_VENV}/bin/patroni"
PATRONICTL_BIN = f"{HOST_VENV}/bin/patronictl"
PATRONI_CONFIG = "/etc/hapair/patroni.yml"
REPLICATION_USER = "replicator"
SUPERUSER = "postgres"
PGBOUNCER_ADMIN = "hapair_admin"
PGBOUNCER_PORT = 6432
ROUTER_PG_PORT = 5433
ROUTER_REDIS_PORT = 6380
SENTINEL_PORT = 26379
VIP_PREFIX = 32  # the front door is one address (an elastic/floating IP), not a subnet


@dataclass(frozen=True)
class Names:
    primary: str
    standby: str
    witness: str | None


class UpgradeParams:
    """Every component's parameters for one inventory, with generated secrets filled in."""

    def __init__(self, inventory: Inventory, generated: GeneratedSecrets) -> None:
        self.inv = inventory
        self.gen = generated
        first, second = inventory.nodes
        witness = inventory.witness
        self.names = Names(first.name, second.name, witness.name if witness else None)

    # --- hosts ---------------------------------------------------------------------------

    def host(self, name: str) -> Host:
        return self.inv.host(name)

    @property
    def data_nodes(self) -> tuple[Host, Host]:
        return self.inv.nodes

    def peer_of(self, name: str) -> Host:
        a, b = self.data_nodes
        return b if name == a.name else a

    @property
    def etcd_hosts(self) -> tuple[Host, ...]:
        return tuple(self.inv.hosts_with_role("node") + self.inv.hosts_with_role("witness"))

    @property
    def sentinel_hosts(self) -> tuple[Host, ...]:
        return self.etcd_hosts

    # --- secrets ---------------------------------------------------------------------------

    @cached_property
    def replication_password(self) -> Plain:
        return self.gen.get("replication_password")

    @cached_property
    def sentinel_password(self) -> Plain:
        return self.gen.get("sentinel_password")

    @cached_property
    def pgbouncer_admin_password(self) -> Plain:
        return self.gen.get("pgbouncer_admin_password")

    @cached_property
    def vrrp_secret(self) -> Plain:
        return self.gen.get("vrrp_secret")

    # --- etcd ------------------------------------------------------------------------------

    @cached_property
    def etcd_members(self) -> tuple[EtcdMember, ...]:
        return tuple(EtcdMember(h.name, h.address) for h in self.etcd_hosts)

    def etcd(self, name: str) -> EtcdParams:
        return EtcdParams(name=name, members=self.etcd_members,
                          cluster_token=f"hapair-{self.inv.cluster}")

    # --- PostgreSQL / Patroni ----------------------------------------------------------------

    def patroni(self, name: str) -> PatroniParams:
        pg = self.inv.services.postgres
        return PatroniParams(
            scope=self.inv.cluster,
            name=name,
            nodes=tuple(PatroniNode(h.name, h.address, pg.port) for h in self.data_nodes),
            etcd_hosts=tuple(Endpoint(m.address, m.client_port) for m in self.etcd_members),
            data_dir=pg.data_dir,
            bin_dir=pg.bin_dir,
            superuser=Credential(SUPERUSER, pg.superuser_password),
            replication=Credential(REPLICATION_USER, self.replication_password),
            app_user=pg.owner,
            app_database=pg.database,
            durability=self.inv.durability,
            config_path=PATRONI_CONFIG,
            socket_dir="/run/postgresql",
            # Patroni checks its own timeline over a local replication connection when it
            # starts a stopped server (the hand-over): allow it on loopback only.
            # Physical backups (pg_basebackup as the postgres OS user) use the socket.
            extra_hba=(f"host replication {REPLICATION_USER} 127.0.0.1/32 scram-sha-256",
                       f"local replication {SUPERUSER} peer"),
        )

    # --- router, PgBouncer -------------------------------------------------------------------

    @property
    def sentinel_master_name(self) -> str:
        return f"{self.inv.cluster}-cache"

    def router(self, name: str) -> RouterParams:
        pg, redis = self.inv.services.postgres, self.inv.services.redis
        me = self.host(name)
        return RouterParams(
            node_name=name,
            backends=tuple(RouterBackend(h.name, h.address, pg.port, 8008, redis.port)
                           for h in self.data_nodes),
            redis_password=redis.password,
            sentinel=RouterSentinel(Endpoint(me.address, SENTINEL_PORT),
                                    self.sentinel_master_name, self.sentinel_password),
            pg_port=ROUTER_PG_PORT,
            redis_port=ROUTER_REDIS_PORT,
        )

    def pgbouncer(self, name: str, *, direct: bool) -> PgBouncerParams:
        """`direct`: upstream is the local PostgreSQL (before the hand-over to Patroni);
        otherwise the local router, which follows the primary."""
        pg = self.inv.services.postgres
        upstream = Endpoint("127.0.0.1", pg.port if direct else ROUTER_PG_PORT)
        return PgBouncerParams(
            node_name=name,
            databases=(pg.database,),
            users=(PgBouncerUser(pg.owner, pg.password),
                   PgBouncerUser(PGBOUNCER_ADMIN, self.pgbouncer_admin_password)),
            admin_user=PGBOUNCER_ADMIN,
            upstream=upstream,
            port=PGBOUNCER_PORT,
            pool_mode="session",  # safe for any app; the CMS opens one connection per request
        )

    # --- Redis / Sentinel ------------------------------------------------------------------

    def redis_replica(self, name: str) -> RedisParams:
        redis = self.inv.services.redis
        primary = self.host(self.names.primary)
        return RedisParams(name=name, address=self.host(name).address, password=redis.password,
                           master=Endpoint(primary.address, redis.port), port=redis.port,
                           config_path=redis.config, data_dir=redis.data_dir)

    def sentinel(self, name: str) -> SentinelParams:
        redis = self.inv.services.redis
        primary = self.host(self.names.primary)
        return SentinelParams(
            name=name, address=self.host(name).address,
            master_name=self.sentinel_master_name,
            master=Endpoint(primary.address, redis.port),
            redis_password=redis.password, sentinel_password=self.sentinel_password,
            port=SENTINEL_PORT, config_path="/etc/redis/sentinel.conf",
            data_dir=redis.data_dir,
        )

    # --- HTTP load balancing, front door -------------------------------------------------------

    def nginx(self, name: str) -> NginxLbParams:
        s = self.inv.services
        return NginxLbParams(
            node_name=name,
            nodes=tuple(HttpNode(h.name, h.address, s.backend.port, s.frontend.port)
                        for h in self.data_nodes),
            routes=RouteTable(tuple(s.http_lb.routes.backend), tuple(s.http_lb.routes.frontend)),
            # The VIP (ip_nonlocal_bind: bound whether held or not), the node's own address
            # (direct checks) and loopback (keepalived's track script).
            listen=(self.inv.front_door.address, self.host(name).address, "127.0.0.1"),
            port=self.inv.front_door.port,
        )

    def keepalived(self, name: str) -> KeepalivedParams:
        door = self.inv.front_door
        me, peer = self.host(name), self.peer_of(name)
        return KeepalivedParams(
            node_name=name, address=me.address, peers=(peer.address,), vip=door.address,
            prefix=VIP_PREFIX, interface=door.interface or "eth0",
            priority=150 if name == self.names.primary else 100,
            vrid=default_vrid(self.inv.cluster), secret=self.vrrp_secret,
            # Eligibility = this node's LB and app processes answer (the frontend's own health),
            # NOT the app's full readiness: during a failover the database is briefly down
            # for both nodes, and a readiness check would pull the VIP from both at once.
            http_port=door.port, http_path=self.inv.services.frontend.health,
        )
