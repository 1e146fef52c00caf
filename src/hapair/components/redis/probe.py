"""Redis and Sentinel probes: commands as word lists, pure parsers of their replies.

Commands are sent over RESP by the controller (redis-py, password given to the client), never
by `redis-cli -a` (a password in argv) — so builders return `RedisCommand` word lists, not
argv. A command carrying a secret (CONFIG SET masterauth) redacts itself in describe()/repr.

Parsers accept what a client hands back: INFO as text (redis-cli, raw RESP) or as the dict
redis-py makes of it; array replies as lists (RESP2 flat key/value lists or RESP3 maps);
strings or bytes. A Sentinel error reply (NOQUORUM …) arrives as an exception message: pass
its text to parse_ckquorum.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from hapair.components.common import Check, Endpoint, SecretValue
from hapair.errors import StepFailed

Reply = object  # what a RESP client returns: str, bytes, int, list, dict or None


@dataclass(frozen=True)
class RedisCommand:
    words: tuple[str, ...] = field(repr=False)
    secret_positions: frozenset[int] = frozenset()

    def describe(self) -> str:
        return " ".join("***" if i in self.secret_positions else w
                        for i, w in enumerate(self.words))

    def __repr__(self) -> str:
        return f"RedisCommand({self.describe()!r})"


def _cmd(*words: str) -> RedisCommand:
    return RedisCommand(tuple(words))


PING = _cmd("PING")
ROLE = _cmd("ROLE")
INFO_REPLICATION = _cmd("INFO", "replication")
CONFIG_REWRITE = _cmd("CONFIG", "REWRITE")


def ckquorum(master_name: str) -> RedisCommand:
    return _cmd("SENTINEL", "CKQUORUM", master_name)


def get_master_addr(master_name: str) -> RedisCommand:
    return _cmd("SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name)


def sentinel_master(master_name: str) -> RedisCommand:
    return _cmd("SENTINEL", "MASTER", master_name)


def sentinel_replicas(master_name: str) -> RedisCommand:
    return _cmd("SENTINEL", "REPLICAS", master_name)


def sentinel_sentinels(master_name: str) -> RedisCommand:
    return _cmd("SENTINEL", "SENTINELS", master_name)


def sentinel_failover(master_name: str) -> RedisCommand:
    """A planned failover: Sentinel promotes a replica without waiting for agreement."""
    return _cmd("SENTINEL", "FAILOVER", master_name)


def sentinel_set(master_name: str, option: str, value: str) -> RedisCommand:
    return _cmd("SENTINEL", "SET", master_name, option, value)


def replicaof(master: Endpoint | None) -> RedisCommand:
    if master is None:
        return _cmd("REPLICAOF", "NO", "ONE")
    return _cmd("REPLICAOF", master.host, str(master.port))


def config_set(key: str, value: str) -> RedisCommand:
    return _cmd("CONFIG", "SET", key, value)


def config_set_secret(key: str, value: SecretValue) -> RedisCommand:
    return RedisCommand(("CONFIG", "SET", key, value.reveal()), frozenset({3}))


def ha_settings_commands(address: str, port: int, password: SecretValue) -> list[RedisCommand]:
    """Make the RUNNING single-node Redis ready for a replica and Sentinel without a restart
    (all are runtime settings), then persist them."""
    return [
        config_set_secret("masterauth", password),
        config_set("replica-announce-ip", address),
        config_set("replica-announce-port", str(port)),
        config_set("replica-read-only", "yes"),
        CONFIG_REWRITE,
    ]


# ---- parsers -------------------------------------------------------------------------------

def _s(value: Reply) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _pairs(reply: Reply) -> dict[str, str]:
    """A RESP2 flat [k1, v1, k2, v2, …] list or a RESP3 map -> {str: str}."""
    if isinstance(reply, Mapping):
        return {_s(k): _s(v) for k, v in reply.items()}
    if isinstance(reply, list | tuple):
        items = [_s(x) for x in reply]
        return dict(zip(items[::2], items[1::2], strict=False))
    raise StepFailed(f"expected a key/value reply, got {type(reply).__name__}")


@dataclass(frozen=True)
class ReplicaEntry:
    ip: str
    port: int
    state: str
    offset: int
    lag: int


@dataclass(frozen=True)
class ReplicationInfo:
    role: str  # master | slave
    master: Endpoint | None = None  # a replica's master
    master_link_up: bool = False
    master_sync_in_progress: bool = False
    connected_replicas: int = 0
    replicas: tuple[ReplicaEntry, ...] = ()
    master_repl_offset: int = 0
    replica_repl_offset: int = 0

    @property
    def is_master(self) -> bool:
        return self.role == "master"


def _info_fields(reply: Reply) -> dict[str, str]:
    if isinstance(reply, Mapping):
        out = {}
        for key, value in reply.items():
            if isinstance(value, Mapping):  # redis-py parsed slaveN into a dict
                value = ",".join(f"{_s(k)}={_s(v)}" for k, v in value.items())
            out[_s(key)] = _s(value)
        return out
    out = {}
    for line in _s(reply).splitlines():
        line = line.strip()
        if line and not line.startswith("#") and ":" in line:
            key, _, value = line.partition(":")
            out[key] = value
    return out


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def parse_info_replication(reply: Reply) -> ReplicationInfo:
    f = _info_fields(reply)
    role = f.get("role")
    if role not in ("master", "slave"):
        raise StepFailed(f"INFO replication: no role in the reply ({role!r})")
    replicas = []
    for key in sorted(k for k in f if k.startswith("slave") and k[5:].isdigit()):
        kv = dict(part.partition("=")[::2] for part in f[key].split(","))
        replicas.append(ReplicaEntry(kv.get("ip", ""), _int(kv.get("port")), kv.get("state", ""),
                                     _int(kv.get("offset")), _int(kv.get("lag"), -1)))
    master = None
    if role == "slave" and f.get("master_host"):
        master = Endpoint(f["master_host"], _int(f.get("master_port")))
    return ReplicationInfo(
        role=role,
        master=master,
        master_link_up=f.get("master_link_status") == "up",
        master_sync_in_progress=f.get("master_sync_in_progress") == "1",
        connected_replicas=_int(f.get("connected_slaves")),
        replicas=tuple(replicas),
        master_repl_offset=_int(f.get("master_repl_offset")),
        replica_repl_offset=_int(f.get("slave_repl_offset")),
    )


def parse_master_addr(reply: Reply) -> Endpoint | None:
    """SENTINEL GET-MASTER-ADDR-BY-NAME: [ip, port], or nil for an unknown master name."""
    if reply is None:
        return None
    if isinstance(reply, list | tuple) and len(reply) == 2:
        return Endpoint(_s(reply[0]), int(_s(reply[1])))
    raise StepFailed(f"SENTINEL GET-MASTER-ADDR-BY-NAME: unexpected reply {reply!r}")


@dataclass(frozen=True)
class QuorumStatus:
    ok: bool
    usable: int
    message: str


def parse_ckquorum(reply: Reply) -> QuorumStatus:
    """'OK 3 usable Sentinels. Quorum and failover authorization can be reached' or the
    error text 'NOQUORUM 1 usable Sentinels. Not enough available Sentinels …'."""
    text = _s(reply).strip()
    words = text.split()
    if not words:
        raise StepFailed("SENTINEL CKQUORUM: empty reply")
    usable = _int(words[1], -1) if len(words) > 1 else -1
    return QuorumStatus(ok=words[0] == "OK", usable=usable, message=text)


@dataclass(frozen=True)
class SentinelPeer:
    """An entry of SENTINEL REPLICAS / SENTINELS / MASTER."""

    name: str
    ip: str
    port: int
    flags: frozenset[str]
    master_link_status: str = ""
    role_reported: str = ""

    @property
    def down(self) -> bool:
        return bool(self.flags & {"s_down", "o_down", "disconnected"})


def _peer(fields: dict[str, str]) -> SentinelPeer:
    return SentinelPeer(
        name=fields.get("name", ""),
        ip=fields.get("ip", ""),
        port=_int(fields.get("port")),
        flags=frozenset(f for f in fields.get("flags", "").split(",") if f),
        master_link_status=fields.get("master-link-status", ""),
        role_reported=fields.get("role-reported", ""),
    )


def parse_sentinel_entries(reply: Reply) -> tuple[SentinelPeer, ...]:
    """SENTINEL REPLICAS / SENTINELS: a list of entries."""
    if not isinstance(reply, list | tuple):
        raise StepFailed(f"expected a list of entries, got {type(reply).__name__}")
    return tuple(_peer(_pairs(entry)) for entry in reply)


def parse_sentinel_master(reply: Reply) -> SentinelPeer:
    return _peer(_pairs(reply))


# ---- predicates ----------------------------------------------------------------------------

def check_ckquorum(status: QuorumStatus, expected_sentinels: int) -> Check:
    if not status.ok:
        return Check.failed(f"Sentinel quorum cannot be reached: {status.message}")
    if status.usable < expected_sentinels:
        return Check.failed(
            f"only {status.usable}/{expected_sentinels} Sentinels usable: "
            "one more loss stops automatic failover"
        )
    return Check.passed(f"Sentinel quorum reachable: {status.usable} usable Sentinels")


def check_is_master(info: ReplicationInfo, where: str, min_replicas: int = 0) -> Check:
    if not info.is_master:
        return Check.failed(f"{where} is a replica of {info.master}, not the master")
    online = [r for r in info.replicas if r.state == "online"]
    if len(online) < min_replicas:
        return Check.failed(
            f"{where} is master with {len(online)} online replica(s), {min_replicas} expected"
        )
    return Check.passed(f"{where} is master with {len(online)} online replica(s)")


def check_replica_of(info: ReplicationInfo, master: Endpoint, where: str) -> Check:
    if info.is_master:
        return Check.failed(f"{where} is a master, expected a replica of {master}")
    if info.master != master:
        return Check.failed(f"{where} replicates from {info.master}, expected {master}")
    if not info.master_link_up:
        state = "syncing" if info.master_sync_in_progress else "down"
        return Check.failed(f"{where}: link to master {master} is {state}")
    return Check.passed(f"{where} replicates from {master}, link up")


def check_single_master(infos: Mapping[str, ReplicationInfo]) -> Check:
    """Exactly one of the nodes says role:master (two would split writes)."""
    masters = sorted(name for name, info in infos.items() if info.is_master)
    if len(masters) == 1:
        return Check.passed(f"Redis master is {masters[0]}")
    if not masters:
        return Check.failed("no Redis node is master")
    return Check.failed(f"several Redis masters: {', '.join(masters)}")


def check_peers_up(peers: Iterable[SentinelPeer], expected: int, what: str) -> Check:
    peers = list(peers)
    up = [p for p in peers if not p.down]
    if len(up) < expected:
        down = ", ".join(f"{p.ip}:{p.port} ({','.join(sorted(p.flags))})"
                         for p in peers if p.down) or "none listed"
        return Check.failed(f"{len(up)}/{expected} {what} up; down: {down}")
    return Check.passed(f"{len(up)} {what} up")


def master_endpoint_of(infos: Mapping[str, ReplicationInfo],
                       endpoints: Mapping[str, Endpoint]) -> Endpoint | None:
    """The endpoint of the single master among probed nodes, else None."""
    masters: Sequence[str] = [n for n, i in infos.items() if i.is_master]
    return endpoints.get(masters[0]) if len(masters) == 1 else None
