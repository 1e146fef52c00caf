"""The local router: HAProxy 2.6 on each data node, in front of PostgreSQL and Redis.

Ports (all parameters). PostgreSQL keeps 5432 on the node address (and 127.0.0.1); Redis
keeps 6379. The router takes OTHER loopback ports — 127.0.0.1:5433 (PostgreSQL) and
127.0.0.1:6380 (Redis) — because it must start while the single-node services still hold
their ports (upgrade step 5 comes before Patroni takes over PostgreSQL): moving PostgreSQL off
127.0.0.1:5432 would cost a restart that early. The app's POSTGRES_PORT/REDIS_URL change once,
with a graceful reload. With PgBouncer enabled, PgBouncer takes 127.0.0.1:6432 and the app
points there; PgBouncer's upstream is this router.

Selection: PostgreSQL backends are both nodes, checked with GET /primary on Patroni's REST
port (`check port 8008`): Patroni answers 200 only on the leader holding the key, and boots
a returning old primary as a replica. Redis is checked by a tcp-check doing AUTH, PING and
`INFO replication`, expecting `role:master` — which is NOT enough on its own: after a Sentinel
failover the old master keeps saying role:master for ~10 s until Sentinel reconfigures it,
and a crashed master restarts as a master with stale data (checked on this machine: both said
role:master 8 s after SENTINEL FAILOVER). So with `sentinel` set (the production setting)
each node's check also asks the LOCAL Sentinel `get-master-addr-by-name` and expects that
node's own address: one source of truth, so at most one node is ever selected. The price: a
node whose Sentinel is down routes no Redis traffic (Sentinel runs under the supervisor with
autorestart). `on-marked-down shutdown-sessions` cuts sessions to a node marked down.

HAProxy needs the Redis password in its config (there is no file reference for tcp-check
data), so the rendered file holds it, hex-encoded in `send-binary`, and is 0600.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hapair.components.common import (
    Endpoint,
    RenderedFile,
    SecretValue,
    render_template,
    require_abs_path,
    require_ip,
    require_name,
    require_port,
    require_positive,
    require_secret_text,
    unique,
)
from hapair.errors import UsageError


@dataclass(frozen=True)
class RouterBackend:
    """A data node as the router reaches it (ports differ only in loopback tests)."""

    name: str
    address: str
    pg_port: int = 5432
    patroni_port: int = 8008
    redis_port: int = 6379

    def __post_init__(self) -> None:
        require_name(self.name, "router backend name")
        require_ip(self.address, f"router backend {self.name} address")
        for port, what in [(self.pg_port, "pg_port"), (self.patroni_port, "patroni_port"),
                           (self.redis_port, "redis_port")]:
            require_port(port, f"router backend {self.name} {what}")


@dataclass(frozen=True)
class RouterS3:
    """Placeholder for the object-storage route (the storage component fills it later)."""

    port: int
    backends: tuple[tuple[str, Endpoint], ...]  # (name, endpoint), node-local site first
    health_path: str = "/minio/health/live"

    def __post_init__(self) -> None:
        require_port(self.port, "router s3 port")
        require_abs_path(self.health_path, "router s3 health_path")
        if not self.backends:
            raise UsageError("router s3 backends: at least one is needed")


@dataclass(frozen=True)
class RouterSentinel:
    """The Sentinel the Redis check consults (the one on this node)."""

    endpoint: Endpoint
    master_name: str
    password: SecretValue = field(repr=False)

    def __post_init__(self) -> None:
        require_name(self.master_name, "router sentinel master_name")


@dataclass(frozen=True)
class RouterParams:
    node_name: str
    backends: tuple[RouterBackend, ...]
    redis_password: SecretValue = field(repr=False)
    redis_username: str | None = None  # an ACL user; None = the default user
    sentinel: RouterSentinel | None = None  # None only for tests without Sentinel
    listen_addresses: tuple[str, ...] = ("127.0.0.1",)
    pg_port: int = 5433
    redis_port: int = 6380
    s3: RouterS3 | None = None
    config_path: str = "/etc/haproxy/hapair-router.cfg"
    stats_socket: str = "/run/haproxy/hapair-router.sock"
    user: str | None = "haproxy"  # privileges dropped after binding and reading the config
    group: str | None = "haproxy"
    maxconn: int = 4096
    client_timeout: str = "30m"  # pooled DB/Redis connections sit idle for long
    inter_ms: int = 1000
    fastinter_ms: int = 500
    fall: int = 2
    rise: int = 2

    def __post_init__(self) -> None:
        require_name(self.node_name, "router node_name")
        if len(self.backends) < 2:
            raise UsageError("router backends: both data nodes are needed")
        unique([b.name for b in self.backends], "router backend names")
        if not self.listen_addresses:
            raise UsageError("router listen_addresses: at least one address")
        for address in self.listen_addresses:
            require_ip(address, "router listen address")
        ports = [self.pg_port, self.redis_port] + ([self.s3.port] if self.s3 else [])
        for port in ports:
            require_port(port, "router port")
        unique([str(p) for p in ports], "router ports")
        require_abs_path(self.config_path, "router config_path")
        require_abs_path(self.stats_socket, "router stats_socket")
        if self.redis_username is not None:
            require_name(self.redis_username, "router redis_username")
        if (self.user is None) != (self.group is None):
            raise UsageError("router user and group go together")
        for value, what in [(self.maxconn, "maxconn"), (self.inter_ms, "inter_ms"),
                            (self.fastinter_ms, "fastinter_ms"), (self.fall, "fall"),
                            (self.rise, "rise")]:
            require_positive(value, f"router {what}")


def resp_command_hex(*words: str) -> str:
    """A RESP array command, hex-encoded for `tcp-check send-binary` (no config quoting)."""
    out = f"*{len(words)}\r\n".encode()
    for word in words:
        raw = word.encode("utf-8")
        out += f"${len(raw)}\r\n".encode() + raw + b"\r\n"
    return out.hex()


def resp_bulk_pair_hex(first: str, second: str) -> str:
    """The tail of a 2-element RESP array reply ([ip, port]) as hex, for `expect binary`."""
    out = b""
    for word in (first, second):
        raw = word.encode("utf-8")
        out += f"${len(raw)}\r\n".encode() + raw + b"\r\n"
    return out.hex()


def redis_proxies(p: RouterParams) -> tuple[str, ...]:
    """The per-node Redis backend names, as `show stat` reports them."""
    return tuple(f"redis_{b.name}" for b in p.backends)


def render_router_config(p: RouterParams) -> RenderedFile:
    password = require_secret_text(p.redis_password, "router redis password")
    auth = ("AUTH", p.redis_username, password) if p.redis_username else ("AUTH", password)
    sentinel: dict[str, object] = {"sentinel": p.sentinel}
    if p.sentinel is not None:
        sentinel_password = require_secret_text(p.sentinel.password, "router sentinel password")
        sentinel.update(
            sentinel_auth_hex=resp_command_hex("AUTH", sentinel_password),
            sentinel_query_hex=resp_command_hex(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", p.sentinel.master_name),
            expected_master_hex={
                b.name: resp_bulk_pair_hex(b.address, str(b.redis_port)) for b in p.backends
            },
        )
    text = render_template(
        "router/haproxy.cfg.j2",
        node=p.node_name,
        maxconn=p.maxconn,
        user=p.user,
        group=p.group,
        stats_socket=p.stats_socket,
        client_timeout=p.client_timeout,
        inter_ms=p.inter_ms,
        fastinter_ms=p.fastinter_ms,
        fall=p.fall,
        rise=p.rise,
        listen=p.listen_addresses,
        pg_port=p.pg_port,
        redis_port=p.redis_port,
        backends=p.backends,
        redis_auth_hex=resp_command_hex(*auth),
        s3=p.s3,
        **sentinel,
    )
    return RenderedFile(p.config_path, text, mode=0o600, owner="root", secret=True)


def router_argv(p: RouterParams, binary: str = "haproxy") -> list[str]:
    """Foreground, master-worker (-W): SIGUSR2 to the master reloads without dropping
    established connections."""
    return [binary, "-W", "-db", "-f", p.config_path]


def check_config_argv(config_path: str, binary: str = "haproxy") -> list[str]:
    return [binary, "-c", "-f", config_path]
