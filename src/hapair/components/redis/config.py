"""Redis (master/replica) and Sentinel configuration.

Three Sentinels (node1, node2, witness), quorum 2: the survivor of a host loss plus the
witness make the majority that authorises a failover (two Sentinels never could).
down-after-milliseconds 4000 sits in the 3-5 s band: short enough for a quick failover, long
enough not to fire on a loaded 2-core host. Replication is ASYNCHRONOUS: a failover can lose
the writes of the last moments (sessions, cache); `min_replicas_to_write` bounds that where
Redis holds queues, at the price of refusing writes while no replica is connected.
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
)
from hapair.errors import UsageError


def redis_quote(value: str) -> str:
    """A double-quoted Redis config string (sdssplitargs): any password survives intact."""
    out = []
    for byte in value.encode("utf-8"):
        ch = chr(byte)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\x{byte:02x}")
    return '"' + "".join(out) + '"'


def _binds(address: str, loopback: bool) -> str:
    return " ".join(dict.fromkeys((["127.0.0.1"] if loopback else []) + [address]))


@dataclass(frozen=True)
class RedisParams:
    name: str  # the host
    address: str  # private address: bound, and announced to Sentinel
    password: SecretValue = field(repr=False)  # requirepass AND masterauth
    master: Endpoint | None = None  # None: starts as the master; else `replicaof`
    port: int = 6379
    config_path: str = "/etc/redis/redis.conf"
    data_dir: str = "/var/lib/redis"
    bind_loopback: bool = True
    appendonly: bool = True
    min_replicas_to_write: int = 0  # 0 = off
    min_replicas_max_lag: int = 10
    owner: str = "redis"

    def __post_init__(self) -> None:
        require_name(self.name, "redis name")
        require_ip(self.address, "redis address")
        require_port(self.port, "redis port")
        require_abs_path(self.config_path, "redis config_path")
        require_abs_path(self.data_dir, "redis data_dir")
        if self.min_replicas_to_write < 0:
            raise UsageError("redis min_replicas_to_write must be >= 0")
        require_positive(self.min_replicas_max_lag, "redis min_replicas_max_lag")
        if self.master is not None and (self.master.host, self.master.port) == (
            self.address, self.port
        ):
            raise UsageError("redis master: a node cannot replicate from itself")


def render_redis_config(p: RedisParams) -> RenderedFile:
    text = render_template(
        "redis/redis.conf.j2",
        name=p.name,
        binds=_binds(p.address, p.bind_loopback),
        port=p.port,
        data_dir=p.data_dir,
        appendonly=p.appendonly,
        password=redis_quote(require_secret_text(p.password, "redis password")),
        address=p.address,
        min_replicas_to_write=p.min_replicas_to_write,
        min_replicas_max_lag=p.min_replicas_max_lag,
        master=p.master,
    )
    return RenderedFile(p.config_path, text, mode=0o600, owner=p.owner, secret=True)


def redis_argv(p: RedisParams, binary: str = "redis-server") -> list[str]:
    return [binary, p.config_path]


@dataclass(frozen=True)
class SentinelParams:
    name: str  # the host
    address: str  # bound and announced to the other sentinels
    master_name: str  # e.g. "cms-cache"
    master: Endpoint  # the master when the sentinel is created
    redis_password: SecretValue = field(repr=False)  # sentinel auth-pass
    sentinel_password: SecretValue = field(repr=False)  # requirepass of the sentinels
    port: int = 26379
    quorum: int = 2
    down_after_ms: int = 4000
    failover_timeout_ms: int = 10000
    parallel_syncs: int = 1
    config_path: str = "/etc/redis/sentinel.conf"  # writable, in a writable directory
    data_dir: str = "/var/lib/redis"
    bind_loopback: bool = True
    owner: str = "redis"

    def __post_init__(self) -> None:
        require_name(self.name, "sentinel name")
        require_ip(self.address, "sentinel address")
        require_name(self.master_name, "sentinel master_name")
        require_port(self.port, "sentinel port")
        require_abs_path(self.config_path, "sentinel config_path")
        require_abs_path(self.data_dir, "sentinel data_dir")
        require_positive(self.quorum, "sentinel quorum")
        if self.quorum < 2:
            raise UsageError("sentinel quorum: 1 lets one isolated sentinel start a failover")
        if not 1000 <= self.down_after_ms <= 30000:
            raise UsageError("sentinel down_after_ms must be within 1000-30000")
        if self.failover_timeout_ms < 2 * self.down_after_ms:
            raise UsageError("sentinel failover_timeout_ms must be >= 2 x down_after_ms")
        require_positive(self.parallel_syncs, "sentinel parallel_syncs")


def render_sentinel_config(p: SentinelParams) -> RenderedFile:
    own_password = require_secret_text(p.sentinel_password, "sentinel password")
    text = render_template(
        "redis/sentinel.conf.j2",
        name=p.name,
        port=p.port,
        binds=_binds(p.address, p.bind_loopback),
        data_dir=p.data_dir,
        address=p.address,
        sentinel_password=redis_quote(own_password),
        master_name=p.master_name,
        master=p.master,
        quorum=p.quorum,
        redis_password=redis_quote(require_secret_text(p.redis_password, "redis password")),
        down_after_ms=p.down_after_ms,
        failover_timeout_ms=p.failover_timeout_ms,
        parallel_syncs=p.parallel_syncs,
    )
    return RenderedFile(p.config_path, text, mode=0o600, owner=p.owner, secret=True)


def sentinel_argv(p: SentinelParams, binary: str = "redis-server") -> list[str]:
    return [binary, p.config_path, "--sentinel"]
