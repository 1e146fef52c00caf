"""The config files mounted into the generated services, rendered by the component renderers
(Patroni, etcd, router, Redis/Sentinel, keepalived) with the few changes a container needs,
plus the two Dockerfiles (pure).

Inside a container the host's private address does not exist, so PostgreSQL, Patroni's REST
API, etcd, Redis and Sentinel LISTEN on 0.0.0.0 of the container while ANNOUNCING the node's
private address; the compose file publishes each port on that private address only (never
0.0.0.0), so nothing else can reach them. The renderers have no listen-address parameter yet,
hence the documented adjustments below (asked for in the report).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hapair.components.common import Credential, Endpoint, SecretValue, dump_yaml
from hapair.components.etcd import EtcdMember, EtcdParams
from hapair.components.etcd.config import config_dict as etcd_config_dict
from hapair.components.keepalived import (
    KeepalivedParams,
    default_vrid,
    render_check_scripts,
    render_keepalived_config,
)
from hapair.components.patroni import PatroniNode, PatroniParams, config_dict
from hapair.components.redis import (
    RedisParams,
    SentinelParams,
    render_redis_config,
    render_sentinel_config,
)
from hapair.components.router import (
    RouterBackend,
    RouterParams,
    RouterSentinel,
    render_router_config,
)
from hapair.errors import UsageError

# paths inside the containers
PATRONI_VENV = "/opt/patroni"  # Patroni's own virtualenv in the image built FROM the user's
PATRONI_CONFIG = "/etc/hapair/patroni.yml"
ETCD_CONFIG = "/etc/hapair/etcd.yaml"
ETCD_DATA = "/var/lib/etcd"
ROUTER_CONFIG = "/usr/local/etc/haproxy/hapair-router.cfg"
ROUTER_SOCKET_DIR = "/run/haproxy"
REDIS_DIR = "/etc/hapair-redis"  # a writable volume: Sentinel's CONFIG REWRITE lands here
SENTINEL_DIR = "/etc/hapair-sentinel"
SEED_DIR = "/etc/hapair-seed"  # the rendered files, read-only, copied once
KEEPALIVED_CONFIG = "/etc/keepalived/keepalived.conf"
KEEPALIVED_SCRIPTS = "/etc/keepalived/hapair"
# `hapair backup` on compose hosts: the host's directory, bind-mounted into hapair-patroni at the
# same path (a path in a manifest names the same file on the host and in the container)
BACKUP_DIR = "/var/lib/hapair/backups"

PG_PORT, PATRONI_PORT, REDIS_PORT, SENTINEL_PORT = 5432, 8008, 6379, 26379
ETCD_CLIENT_PORT, ETCD_PEER_PORT = 2379, 2380
ROUTER_PG_PORT, ROUTER_REDIS_PORT = 5433, 6380


@dataclass(frozen=True)
class HostSpec:
    name: str
    address: str  # the private address


@dataclass(frozen=True)
class HaSecrets:
    superuser: Credential  # in the official image: POSTGRES_USER
    replication: Credential
    redis_password: SecretValue = field(repr=False)
    sentinel_password: SecretValue = field(repr=False)
    vrrp_secret: SecretValue = field(repr=False)
    rest: Credential | None = None  # Patroni REST API (guards switchover/restart)


@dataclass(frozen=True)
class Vip:
    address: str
    prefix: int
    interface: str
    port: int = 80  # the HTTP load balancer's port, checked by keepalived
    health_path: str = "/health/"


@dataclass(frozen=True)
class ConfigFile:
    """A file to install on the host: `path` on the host, `content` never shown."""

    path: str
    content: str = field(repr=False)
    mode: int = 0o644
    owner: str | None = None
    secret: bool = False


def etcd_config(cluster: str, me: HostSpec, members: tuple[HostSpec, ...]) -> str:
    params = EtcdParams(
        name=me.name,
        members=tuple(EtcdMember(m.name, m.address) for m in members),
        cluster_token=f"{cluster}-etcd",
        config_path=ETCD_CONFIG,
        data_dir=f"{ETCD_DATA}/{me.name}",
    )
    data = etcd_config_dict(params)
    # listen inside the container; advertise the private address (published there only)
    data["listen-peer-urls"] = f"http://0.0.0.0:{ETCD_PEER_PORT}"
    data["listen-client-urls"] = f"http://0.0.0.0:{ETCD_CLIENT_PORT}"
    return dump_yaml(data, header=f"etcd member {me.name} — rendered by hapair (in a container)")


@dataclass(frozen=True)
class PgFacts:
    major: int
    data_dir: str  # PGDATA inside the container
    bin_dir: str
    database: str
    owner: str
    client_subnets: tuple[str, ...]  # where the app's connections come from (Docker bridges)


def patroni_config(cluster: str, me: HostSpec, nodes: tuple[HostSpec, ...],
                   etcd: tuple[HostSpec, ...], pg: PgFacts, secrets: HaSecrets,
                   durability: str) -> str:
    params = PatroniParams(
        scope=cluster,
        name=me.name,
        nodes=tuple(PatroniNode(n.name, n.address) for n in nodes),
        etcd_hosts=tuple(Endpoint(m.address, ETCD_CLIENT_PORT) for m in etcd),
        data_dir=pg.data_dir,
        bin_dir=pg.bin_dir,
        superuser=secrets.superuser,
        replication=secrets.replication,
        app_user=pg.owner,
        app_database=pg.database,
        durability=durability,  # type: ignore[arg-type]
        config_path=PATRONI_CONFIG,
        rest_auth=secrets.rest,
        extra_hba=(
            # Patroni listens on the container's 0.0.0.0, so its own replication connection
            # (the local timeline check) comes from the container's loopback
            f"host replication {secrets.replication.username} 127.0.0.1/32 scram-sha-256",
            # the app reaches PostgreSQL through the router container, from a Docker bridge
            *(f"host {pg.database} {pg.owner} {s} scram-sha-256" for s in pg.client_subnets),
        ),
    )
    data = config_dict(params)
    postgresql = data["postgresql"]
    # The official image has no `postgres` role (its superuser is POSTGRES_USER): the OS user
    # postgres in the container maps to it over the socket, for hapair's psql there.
    # `local replication`: pg_basebackup of `hapair backup --kind physical`, over the socket too.
    su = secrets.superuser.username
    postgresql["pg_hba"][0:0] = [f"local all {su} peer map=hapair",  # type: ignore[index]
                                 f"local replication {su} peer map=hapair"]
    postgresql["pg_ident"] = [f"hapair postgres {secrets.superuser.username}"]  # type: ignore[index]
    data["postgresql"]["listen"] = f"0.0.0.0:{PG_PORT}"  # type: ignore[index]
    data["restapi"]["listen"] = f"0.0.0.0:{PATRONI_PORT}"  # type: ignore[index]
    return dump_yaml(data, header=f"Patroni {cluster}/{me.name} — rendered by hapair (in a "
                     "container). Holds passwords: keep 0600.")


def _listen_anywhere(text: str) -> str:
    """Redis/Sentinel bind every container address (the port is published on the private
    address only); exactly one `bind` line is expected."""
    new, count = re.subn(r"(?m)^bind .*$", "bind 0.0.0.0", text)
    if count != 1:
        raise UsageError(f"expected one bind line in the rendered config, found {count}")
    return new


def redis_config(me: HostSpec, master: HostSpec, secrets: HaSecrets) -> str:
    params = RedisParams(
        name=me.name, address=me.address, password=secrets.redis_password,
        master=None if me == master else Endpoint(master.address, REDIS_PORT),
        config_path=f"{REDIS_DIR}/redis.conf", data_dir="/data",
    )
    return _listen_anywhere(render_redis_config(params).content)


def master_name(cluster: str) -> str:
    return f"{cluster}-cache"


def sentinel_config(cluster: str, me: HostSpec, master: HostSpec, secrets: HaSecrets) -> str:
    params = SentinelParams(
        name=me.name, address=me.address, master_name=master_name(cluster),
        master=Endpoint(master.address, REDIS_PORT),
        redis_password=secrets.redis_password, sentinel_password=secrets.sentinel_password,
        port=SENTINEL_PORT, config_path=f"{SENTINEL_DIR}/sentinel.conf", data_dir=SENTINEL_DIR,
    )
    return _listen_anywhere(render_sentinel_config(params).content)


def router_config(me: HostSpec, nodes: tuple[HostSpec, ...], cluster: str,
                  secrets: HaSecrets, with_redis: bool) -> str:
    params = RouterParams(
        node_name=me.name,
        backends=tuple(RouterBackend(n.name, n.address) for n in nodes),
        redis_password=secrets.redis_password,
        sentinel=RouterSentinel(Endpoint(me.address, SENTINEL_PORT), master_name(cluster),
                                secrets.sentinel_password) if with_redis else None,
        listen_addresses=("0.0.0.0",),  # inside the app network only: nothing is published
        pg_port=ROUTER_PG_PORT,
        redis_port=ROUTER_REDIS_PORT,
        config_path=ROUTER_CONFIG,
        stats_socket=f"{ROUTER_SOCKET_DIR}/hapair-router.sock",
    )
    return render_router_config(params).content


def keepalived_files(cluster: str, me: HostSpec, nodes: tuple[HostSpec, ...], vip: Vip,
                     secrets: HaSecrets, priority: int) -> tuple[str, str, str]:
    """(keepalived.conf, check-eligible, check-http-lb)."""
    params = KeepalivedParams(
        node_name=me.name, address=me.address,
        peers=tuple(n.address for n in nodes if n != me),
        vip=vip.address, prefix=vip.prefix, interface=vip.interface, priority=priority,
        vrid=default_vrid(cluster), secret=secrets.vrrp_secret,
        etcd_endpoint=Endpoint(me.address, ETCD_CLIENT_PORT),  # published on the address
        http_port=vip.port, http_path=vip.health_path,
        config_path=KEEPALIVED_CONFIG, script_dir=KEEPALIVED_SCRIPTS,
    )
    eligible, http = render_check_scripts(params)
    return render_keepalived_config(params).content, eligible.content, http.content


def postgres_uid(pg_image: str) -> str:
    """The uid of `postgres` in the official images (numeric: the host may have no such
    user): 999 in the Debian ones, 70 in the Alpine ones. Patroni's image is built FROM the
    stack's own image, so the data directory's owner matches whichever it is."""
    return "70" if "alpine" in pg_image.rsplit(":", 1)[-1] else "999"


# --- Dockerfiles -------------------------------------------------------------------------------

PATRONI_VERSION = "4.1.5"


def patroni_dockerfile(pg_image: str, alpine: bool, patroni_version: str = PATRONI_VERSION
                       ) -> str:
    """Patroni on the SAME PostgreSQL image the stack runs, so the server binaries are those
    of the data directory's major version (ORIGINAL_DEFECTS #4)."""
    install = (
        "apk add --no-cache python3 py3-pip" if alpine else
        "apt-get update; apt-get install -y --no-install-recommends python3 python3-venv; "
        "rm -rf /var/lib/apt/lists/*"
    )
    return (
        f"# Patroni {patroni_version} on {pg_image} — generated by hapair.\n"
        f"# Built FROM the image the stack already runs: same PostgreSQL major as the data.\n"
        f"FROM {pg_image}\n"
        f"RUN set -eux; {install}; \\\n"
        f"    python3 -m venv {PATRONI_VENV}; \\\n"
        f"    {PATRONI_VENV}/bin/pip install --no-cache-dir "
        f"'patroni[etcd3,psycopg3]=={patroni_version}'\n"
        f"ENV PATH={PATRONI_VENV}/bin:$PATH\n"
    )


KEEPALIVED_BASE = "debian:bookworm-slim"


def keepalived_dockerfile(base: str = KEEPALIVED_BASE) -> str:
    """keepalived plus what its track scripts call (etcdctl for the quorum check, curl)."""
    return (
        "# keepalived for the front-door VIP — generated by hapair.\n"
        f"FROM {base}\n"
        "RUN set -eux; apt-get update; \\\n"
        "    apt-get install -y --no-install-recommends keepalived etcd-client curl; \\\n"
        "    rm -rf /var/lib/apt/lists/*\n"
    )
