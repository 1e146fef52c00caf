"""Patroni 4.1.5 configuration for one data node, adopting the EXISTING PostgreSQL data dir.

Secrets: Patroni reads the superuser/replication (and REST) passwords from its YAML, so the
rendered file holds them: it is a RenderedFile with mode 0600, owned by `postgres`. (The
alternative, PATRONI_*_PASSWORD variables, would need a 0600 env file plus a wrapper, and the
service definition must never carry secrets; one 0600 file is simpler and as safe.)

Choices, with their reasons:
- Never initdb: `bootstrap.method` is a custom method whose command is /bin/false. A node
  with data adopts it (Patroni takes the leader key with the server's system id, without a
  restart — LAB_NOTES "Patroni adopting the running server"); a node with an EMPTY data dir
  clones from the leader; and if no leader exists, the empty node fails its "bootstrap" and
  Patroni exits instead of creating an empty database where the app would run `migrate`
  (ORIGINAL_DEFECTS #3).
- `listen` = 127.0.0.1 and the node's private address, port 5432 — never `*`/0.0.0.0
  (ORIGINAL_DEFECTS #26); loopback keeps local admin tools working. The local router takes
  other loopback ports (router module), so no port has to move while PostgreSQL runs.
- pg_hba: scram-sha-256 for the data nodes' addresses only (replication, superuser for
  pg_rewind, and the app user, which arrives through the routers from either node).
  Patroni REPLACES pg_hba.conf with this list: extra sources go in `extra_hba`.
- Timing: Patroni 4.1.5 raises ttl < 20 to 20 (and `--validate-config` rejects it), so the
  brief's "ttl 10" cannot be used. Defaults ttl 20 / loop_wait 2 / retry_timeout 6 keep
  `loop_wait + 2 x retry_timeout <= ttl` with 6 s of margin. Consequence: an unplanned host
  loss costs ~18-20 s until the leader key expires (see `failover_window`), above the 10 s
  goal of ARCHITECTURE §6; planned switchovers and a PostgreSQL crash on a live host are
  not bound by ttl.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from hapair.components.common import (
    Check,
    Credential,
    Endpoint,
    RenderedFile,
    dump_yaml,
    require_abs_path,
    require_ip,
    require_name,
    require_port,
    require_secret_text,
    require_token,
    unique,
)
from hapair.errors import UsageError

Durability = Literal["sync", "strict", "async"]
DURABILITIES: tuple[str, ...] = ("sync", "strict", "async")

# Patroni's own floors (patroni/config.py _validate_and_adjust_timeouts, validator.py).
MIN_TTL, MIN_LOOP_WAIT, MIN_RETRY_TIMEOUT = 20, 1, 3

REFUSE_INITDB_METHOD = "hapair_adopt_or_clone_only"


@dataclass(frozen=True)
class PatroniTiming:
    ttl: int = 20
    loop_wait: int = 2
    retry_timeout: int = 6


def check_timing(t: PatroniTiming) -> Check:
    """Patroni's rule `loop_wait + 2 x retry_timeout <= ttl` plus its floors. Patroni would
    silently ADJUST a violating config; we refuse it instead, so what we plan is what runs."""
    floors = [("ttl", t.ttl, MIN_TTL), ("loop_wait", t.loop_wait, MIN_LOOP_WAIT),
              ("retry_timeout", t.retry_timeout, MIN_RETRY_TIMEOUT)]
    for name, value, floor in floors:
        if value < floor:
            return Check.failed(
                f"{name}={value} is below Patroni's minimum {floor} (Patroni would raise it)"
            )
    used = t.loop_wait + 2 * t.retry_timeout
    if used > t.ttl:
        return Check.failed(
            f"loop_wait + 2 x retry_timeout = {t.loop_wait} + 2 x {t.retry_timeout} = {used} "
            f"> ttl {t.ttl}: the primary could still hold writes after its key expired"
        )
    return Check.passed(
        f"loop_wait + 2 x retry_timeout = {used} <= ttl {t.ttl} ({t.ttl - used} s margin)"
    )


def failover_window(
    t: PatroniTiming, check_inter_s: float = 1.0, fastinter_s: float = 0.5, rise: int = 2,
    promote_s: float = 1.0,
) -> tuple[float, float]:
    """(best, worst) seconds from an unplanned primary HOST loss until the router sends
    writes to the new primary: the leader key expires ttl after its last renewal (renewed
    every loop_wait), the replica wakes on the etcd watch, promotes, then the router needs
    `rise` good checks (the first after up to `check_inter_s`, the rest at `fastinter_s`)."""
    router = fastinter_s * (rise - 1)
    best = (t.ttl - t.loop_wait) + promote_s + router
    worst = t.ttl + promote_s + check_inter_s + router
    return best, worst


@dataclass(frozen=True)
class PatroniNode:
    """A data node as Patroni sees it. Ports differ per node only in loopback tests."""

    name: str
    address: str
    pg_port: int = 5432
    rest_port: int = 8008

    def __post_init__(self) -> None:
        require_name(self.name, "patroni node name")
        require_ip(self.address, f"patroni node {self.name} address")
        require_port(self.pg_port, f"patroni node {self.name} pg_port")
        require_port(self.rest_port, f"patroni node {self.name} rest_port")

    def rest_url(self, path: str = "/") -> str:
        return f"http://{self.address}:{self.rest_port}{path}"


@dataclass(frozen=True)
class PatroniParams:
    scope: str  # the cluster name (inventory `cluster`)
    name: str  # this node
    nodes: tuple[PatroniNode, ...]  # every data node, this one included
    etcd_hosts: tuple[Endpoint, ...]
    data_dir: str
    bin_dir: str
    superuser: Credential = field(repr=False)
    replication: Credential = field(repr=False)
    app_user: str
    app_database: str
    durability: Durability = "sync"
    timing: PatroniTiming = PatroniTiming()
    config_path: str = "/etc/hapair/patroni.yml"
    config_dir: str | None = None  # where postgresql.conf lives when not in data_dir
    socket_dir: str = "/var/run/postgresql"
    pgpass_path: str = "/var/lib/postgresql/.pgpass_patroni"
    rest_auth: Credential | None = field(default=None, repr=False)  # guards POST endpoints
    maximum_lag_on_failover: int = 1024 * 1024  # bytes; what async mode may lose at most
    max_slot_wal_keep_size: str = "4GB"  # a dead standby's slot cannot fill the disk (#12)
    wal_keep_size: str = "256MB"
    # restart-only settings observed on the running server (max_connections, …): keeping
    # them means adoption does not change them behind the user's back.
    preserved_parameters: tuple[tuple[str, str], ...] = ()
    extra_hba: tuple[str, ...] = ()
    listen_loopback: bool = True
    failsafe_mode: bool = True  # an etcd-only outage does not demote a primary all peers see
    watchdog: Literal["off", "automatic", "required"] = "off"  # no /dev/watchdog in the lab
    namespace: str = "/service/"
    postgres_user: str = "postgres"  # the OS user Patroni runs as (owner of the YAML)

    def __post_init__(self) -> None:
        require_name(self.scope, "patroni scope")
        require_name(self.name, "patroni name")
        if len(self.nodes) < 2:
            raise UsageError("patroni nodes: both data nodes are needed")
        unique([n.name for n in self.nodes], "patroni node names")
        if self.name not in {n.name for n in self.nodes}:
            raise UsageError(f"patroni name: {self.name!r} is not one of the nodes")
        if not self.etcd_hosts:
            raise UsageError("patroni etcd_hosts: at least one etcd endpoint is needed")
        for path, what in [(self.data_dir, "data_dir"), (self.bin_dir, "bin_dir"),
                           (self.config_path, "config_path"), (self.socket_dir, "socket_dir"),
                           (self.pgpass_path, "pgpass_path")]:
            require_abs_path(path, f"patroni {what}")
        if self.config_dir is not None:
            require_abs_path(self.config_dir, "patroni config_dir")
        require_name(self.app_user, "patroni app_user")
        require_name(self.app_database, "patroni app_database")
        if self.durability not in DURABILITIES:
            raise UsageError(f"durability: {self.durability!r} is not one of {DURABILITIES}")
        timing = check_timing(self.timing)
        if not timing.ok:
            raise UsageError(f"patroni timing: {timing.reason}")
        for key, value in self.preserved_parameters:
            require_name(key, "patroni preserved parameter name")
            require_token(value, f"patroni parameter {key}")
        for line in self.extra_hba:
            if "\n" in line or not line.strip():
                raise UsageError("patroni extra_hba: one non-empty pg_hba line per entry")
        if not self.namespace.startswith("/"):
            raise UsageError("patroni namespace must start with '/'")

    @property
    def me(self) -> PatroniNode:
        return next(n for n in self.nodes if n.name == self.name)


def _cidr(address: str) -> str:
    return f"{address}/{ipaddress.ip_address(address).max_prefixlen}"


def pg_hba_lines(p: PatroniParams) -> list[str]:
    su, repl = p.superuser.username, p.replication.username
    lines = [
        # the OS user postgres on the socket: hapair's admin commands and Patroni itself
        f"local all {p.postgres_user} peer",
        "local all all scram-sha-256",
        "host all all 127.0.0.1/32 scram-sha-256",
        "host all all ::1/128 scram-sha-256",
    ]
    for node in p.nodes:
        cidr = _cidr(node.address)
        lines += [
            f"host replication {repl} {cidr} scram-sha-256",
            f"host all {su} {cidr} scram-sha-256",  # pg_rewind and Patroni's peer checks
            f"host {p.app_database} {p.app_user} {cidr} scram-sha-256",  # via the routers
        ]
    lines += list(p.extra_hba)
    return list(dict.fromkeys(lines))  # nodes may share an address in loopback tests


def synchronous_settings(durability: Durability) -> dict[str, bool]:
    """sync: RPO 0 while the standby is healthy, degrades to async (never auto-promotes a
    standby not known to be in sync); strict: writes block without a standby; async: a
    failover may lose up to maximum_lag_on_failover bytes."""
    return {
        "sync": {"synchronous_mode": True, "synchronous_mode_strict": False},
        "strict": {"synchronous_mode": True, "synchronous_mode_strict": True},
        "async": {"synchronous_mode": False, "synchronous_mode_strict": False},
    }[durability]


def postgresql_parameters(p: PatroniParams) -> dict[str, object]:
    params: dict[str, object] = dict(p.preserved_parameters)
    params.update({
        "wal_level": "replica",
        "hot_standby": "on",
        "wal_log_hints": "on",  # pg_rewind needs it when data checksums are off (restart)
        "max_wal_senders": 10,
        "max_replication_slots": 10,
        "max_slot_wal_keep_size": p.max_slot_wal_keep_size,
        "wal_keep_size": p.wal_keep_size,
        "password_encryption": "scram-sha-256",
    })
    return params


def dynamic_config(p: PatroniParams) -> dict[str, object]:
    """The cluster-wide settings Patroni keeps in etcd (/config). `bootstrap.dcs` seeds them
    once; afterwards compare with GET /config and PATCH the difference."""
    t = p.timing
    return {
        "ttl": t.ttl,
        "loop_wait": t.loop_wait,
        "retry_timeout": t.retry_timeout,
        "maximum_lag_on_failover": p.maximum_lag_on_failover,
        **synchronous_settings(p.durability),
        "synchronous_node_count": 1,
        "failsafe_mode": p.failsafe_mode,
        "check_timeline": True,  # never promote a replica on another timeline
        "postgresql": {
            "use_pg_rewind": True,
            "use_slots": True,
            "parameters": postgresql_parameters(p),
        },
    }


def config_dict(p: PatroniParams) -> dict[str, object]:
    me = p.me
    listen_hosts = (["127.0.0.1"] if p.listen_loopback else []) + [me.address]
    postgresql: dict[str, object] = {
        "listen": f"{','.join(listen_hosts)}:{me.pg_port}",
        "connect_address": f"{me.address}:{me.pg_port}",
        "data_dir": p.data_dir,
        "bin_dir": p.bin_dir,
    }
    if p.config_dir:
        postgresql["config_dir"] = p.config_dir
    postgresql.update({
        "pgpass": p.pgpass_path,
        "use_unix_socket": True,
        "authentication": {
            "superuser": _cred(p.superuser, "superuser"),
            "replication": _cred(p.replication, "replication"),
        },
        "parameters": {"unix_socket_directories": p.socket_dir},
        "pg_hba": pg_hba_lines(p),
        "create_replica_methods": ["basebackup"],
        "basebackup": [{"checkpoint": "fast"}],
        "remove_data_directory_on_rewind_failure": False,
        "remove_data_directory_on_diverged_timelines": False,
    })
    restapi: dict[str, object] = {
        "listen": f"{me.address}:{me.rest_port}",
        "connect_address": f"{me.address}:{me.rest_port}",
    }
    if p.rest_auth is not None:
        restapi["authentication"] = _cred(p.rest_auth, "REST")
    return {
        "scope": p.scope,
        "namespace": p.namespace,
        "name": p.name,
        "restapi": restapi,
        "etcd3": {"hosts": [str(h) for h in p.etcd_hosts], "protocol": "http"},
        "bootstrap": {
            "method": REFUSE_INITDB_METHOD,
            REFUSE_INITDB_METHOD: {"command": "/bin/false", "no_params": True},
            "dcs": dynamic_config(p),
        },
        "postgresql": postgresql,
        "watchdog": {"mode": p.watchdog},
    }


def _cred(c: Credential, what: str) -> Mapping[str, str]:
    return {"username": c.username, "password": require_secret_text(c.password, f"{what} password")}


def render_patroni_config(p: PatroniParams) -> RenderedFile:
    """The node's patroni.yml: 0600, owned by the postgres user (it holds passwords)."""
    text = dump_yaml(
        config_dict(p),
        header=f"Patroni {p.scope}/{p.name} — rendered by hapair. Holds passwords: keep 0600.",
    )
    return RenderedFile(p.config_path, text, mode=0o600, owner=p.postgres_user, secret=True)


def patroni_argv(p: PatroniParams, binary: str = "patroni") -> list[str]:
    """Run in the foreground as `postgres_user` under the service runtime."""
    return [binary, p.config_path]


def validate_config_argv(p: PatroniParams, binary: str = "patroni") -> list[str]:
    """Patroni's own validation; --ignore-listen-port because PostgreSQL already listens
    on the port while it is being adopted."""
    return [binary, "--validate-config", "--ignore-listen-port", p.config_path]
