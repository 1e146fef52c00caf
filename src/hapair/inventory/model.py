"""The inventory model: hosts, roles, front door, services, durability (schema version 1).

Every model is frozen and forbids unknown keys. Field validators check one value; model
validators check relations and raise `LocatedError` so the message names the right key.
examples/inventory.yaml is the contract; docs/inventory.md describes each field.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, model_validator

from hapair.inventory.fields import (
    AbsPath,
    Bucket,
    ClusterName,
    ComposeProject,
    ComposeService,
    HostKey,
    HostName,
    Identifier,
    Interface,
    IpAddress,
    LoadContext,
    LocatedError,
    PgMajor,
    Port,
    PrivateKeyFile,
    SecretValue,
    UnixUser,
    UrlPath,
    Version,
    key_path,
    no_duplicates,
)
from hapair.inventory.monitor import MonitorSettings
from hapair.inventory.secrets import Secret

Role = Literal["node", "witness", "lb"]
Runtime = Literal["supervisor", "compose"]
Durability = Literal["sync", "strict", "async"]

NO_WITNESS_WARNING = "no witness: automatic failover is off; manual failover only"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- hosts -----------------------------------------------------------------------------------


class Ssh(Model):
    user: UnixUser = "root"
    port: Port = 22
    key: PrivateKeyFile  # private key; relative to the inventory file, resolved to absolute
    host_key: HostKey  # pinned "TYPE BASE64": host key checking is never turned off


class Supervisor(Model):
    config: AbsPath = "/etc/supervisor/supervisord.conf"
    include_dir: AbsPath = "/etc/supervisor/conf.d"


class ComposeServices(Model):
    """Which of the user's compose services plays which role (`hapair init` writes it)."""

    postgres: ComposeService | None = None
    redis: ComposeService | None = None
    storage: ComposeService | None = None
    storage_setup: ComposeService | None = None
    backend: ComposeService | None = None
    frontend: ComposeService | None = None
    worker: tuple[ComposeService, ...] = ()
    scheduler: ComposeService | None = None
    http_lb: ComposeService | None = None

    @model_validator(mode="after")
    def _check(self) -> ComposeServices:
        seen: dict[str, str] = {}
        for loc, name in self._located():
            if name in seen:
                raise LocatedError(loc, f"service {name!r} already plays {seen[name]}")
            seen[name] = key_path(loc)
        return self

    def _located(self) -> list[tuple[tuple[str | int, ...], str]]:
        out: list[tuple[tuple[str | int, ...], str]] = [
            ((role,), name) for role, name in self if isinstance(name, str)]
        return out + [(("worker", i), name) for i, name in enumerate(self.worker)]


class Compose(Model):
    project: ComposeProject
    files: tuple[AbsPath, ...] = Field(min_length=1)
    env_files: tuple[AbsPath, ...] = ()
    services: ComposeServices = ComposeServices()


class Host(Model):
    name: HostName
    address: IpAddress  # the host's own private address; normalised
    roles: tuple[Role, ...] = Field(min_length=1)
    runtime: Runtime = "supervisor"
    supervisor: Supervisor | None = None  # filled with defaults when runtime is supervisor
    compose: Compose | None = None
    ssh: Ssh

    @model_validator(mode="before")
    @classmethod
    def _supervisor_defaults(cls, data: Any) -> Any:
        is_supervisor = isinstance(data, dict) and data.get("runtime", "supervisor") == "supervisor"
        if is_supervisor and data.get("supervisor") is None:
            data = {**data, "supervisor": {}}
        return data

    @model_validator(mode="after")
    def _check(self) -> Host:
        no_duplicates_in(self.roles, "roles", "role")
        if "node" in self.roles and "witness" in self.roles:
            raise LocatedError(
                ("roles",), "a host cannot be both node and witness (the witness is a third vote)"
            )
        if self.compose is not None and self.runtime != "compose":
            raise LocatedError(("compose",), f"needs runtime: compose (runtime is {self.runtime})")
        if self.supervisor is not None and self.runtime != "supervisor":
            raise LocatedError(
                ("supervisor",), f"needs runtime: supervisor (runtime is {self.runtime})"
            )
        return self

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return ipaddress.ip_address(self.address)

    def has_role(self, role: Role) -> bool:
        return role in self.roles


class FrontDoor(Model):
    kind: Literal["vip", "lb_host", "static"]
    address: IpAddress  # what users reach
    port: Port = 80
    interface: Interface | None = None  # the VIP's interface (keepalived)

    @model_validator(mode="after")
    def _check(self) -> FrontDoor:
        if self.interface is not None and self.kind != "vip":
            raise LocatedError(("interface",), f"only used with kind vip (kind is {self.kind})")
        return self


# --- services --------------------------------------------------------------------------------


class Postgres(Model):
    version: PgMajor  # major version; the same on both nodes
    port: Port = 5432
    data_dir: AbsPath
    bin_dir: AbsPath
    database: Identifier
    owner: Identifier
    password: SecretValue  # the owner's password
    superuser_password: SecretValue


class Redis(Model):
    port: Port = 6379
    data_dir: AbsPath
    config: AbsPath
    password: SecretValue  # AUTH everywhere: requirepass, masterauth, Sentinel auth-pass


class Storage(Model):
    backend: Literal["s3", "minio"]
    port: Port = 9000
    data_dir: AbsPath
    access_key: SecretValue
    secret_key: SecretValue
    buckets: tuple[Bucket, ...] = Field(min_length=1)
    router_port: Port = 9010  # the app's S3 endpoint on each node (127.0.0.1), nginx
    writer_port: Port = 9011  # the write selector behind it (127.0.0.1), HAProxy
    replication_interval_s: int = Field(default=5, ge=1, le=3600, strict=True)
    max_delay_s: int = Field(default=30, ge=1, le=86400, strict=True)  # the promised delay

    @model_validator(mode="after")
    def _check(self) -> Storage:
        no_duplicates_in(self.buckets, "buckets", "bucket")
        ports = {"port": self.port, "router_port": self.router_port,
                 "writer_port": self.writer_port}
        for key in ("router_port", "writer_port"):
            clash = [k for k, v in ports.items() if k != key and v == ports[key]]
            if clash:
                raise LocatedError((key,), f"{ports[key]} is also {clash[0]}: each needs its "
                                           "own port")
        if self.max_delay_s < 2 * self.replication_interval_s:
            raise LocatedError(("max_delay_s",), f"{self.max_delay_s} is less than two "
                               f"replication intervals ({self.replication_interval_s} s each): "
                               "an upload waits up to one interval plus a pass")
        return self


class Backend(Model):
    port: Port
    health: UrlPath
    app_dir: AbsPath
    env_file: AbsPath | None = None


class Frontend(Model):
    port: Port
    health: UrlPath
    app_dir: AbsPath


class Routes(Model):
    """Path prefixes per upstream; the longest matching prefix wins."""

    backend: tuple[UrlPath, ...] = ()
    frontend: tuple[UrlPath, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Routes:
        no_duplicates_in(self.backend, "backend", "prefix")
        no_duplicates_in(self.frontend, "frontend", "prefix")
        for i, prefix in enumerate(self.frontend):
            if prefix in self.backend:
                raise LocatedError(("frontend", i), f"prefix {prefix!r} is also a backend route")
        return self


class HttpLb(Model):
    kind: Literal["nginx", "haproxy"]
    port: Port = 80
    routes: Routes


class Services(Model):
    postgres: Postgres
    redis: Redis
    storage: Storage
    backend: Backend
    frontend: Frontend
    http_lb: HttpLb

    @model_validator(mode="after")
    def _ports_distinct(self) -> Services:
        # All of them run on each node, so they cannot share a port.
        seen: dict[int, str] = {}
        for name in type(self).model_fields:
            port = getattr(self, name).port
            if port in seen:
                raise LocatedError(
                    (name, "port"), f"port {port} is also used by services.{seen[port]}.port"
                )
            seen[port] = name
        return self


# --- the inventory ---------------------------------------------------------------------------


class Inventory(Model):
    version: Version  # schema version; only 1 exists
    cluster: ClusterName
    durability: Durability = "sync"
    hosts: tuple[Host, ...]
    front_door: FrontDoor
    services: Services
    monitor: MonitorSettings = MonitorSettings()  # `hapair monitor`'s alert damping

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _source: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> Inventory:
        _check_hosts(self.hosts)
        _check_front_door(self.front_door, self.hosts)
        if isinstance(info.context, LoadContext):
            self._base_dir = info.context.base_dir
            self._source = info.context.source
        return self

    # helpers for the layers above

    @property
    def base_dir(self) -> Path:
        """The inventory file's directory (relative references start there)."""
        return self._base_dir

    @property
    def source(self) -> str:
        """The inventory file as the user named it (used in messages)."""
        return self._source

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(f"no host named {name!r} in the inventory")

    def hosts_with_role(self, role: Role) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts if role in h.roles)

    @property
    def nodes(self) -> tuple[Host, Host]:
        """The two hosts with role node, in inventory order (who is primary is a fact
        observed at run time, not an inventory setting)."""
        first, second = self.hosts_with_role("node")
        return first, second

    @property
    def witness(self) -> Host | None:
        found = self.hosts_with_role("witness")
        return found[0] if found else None

    @property
    def warnings(self) -> tuple[str, ...]:
        """Things that are valid but limit what hapair can do, one line each."""
        return () if self.witness else (NO_WITNESS_WARNING,)

    def secrets(self) -> dict[str, Secret]:
        """Every resolved secret by key path (for redaction and for showing references)."""
        return dict(_walk_secrets(self, ()))


def no_duplicates_in(items: tuple[Any, ...], field: str, what: str) -> None:
    try:
        no_duplicates(items, what)
    except LocatedError as exc:
        raise LocatedError((field, *exc.loc), exc.problem) from None


def _check_hosts(hosts: tuple[Host, ...]) -> None:
    names: dict[str, int] = {}
    addresses: dict[str, int] = {}
    for i, h in enumerate(hosts):
        if h.name in names:
            raise LocatedError(
                ("hosts", i, "name"),
                f"duplicate host name {h.name!r} (also hosts[{names[h.name]}].name)",
            )
        if h.address in addresses:
            raise LocatedError(
                ("hosts", i, "address"),
                f"duplicate address {h.address} (also hosts[{addresses[h.address]}].address)",
            )
        names[h.name] = i
        addresses[h.address] = i
    nodes = [h.name for h in hosts if "node" in h.roles]
    if len(nodes) != 2:
        found = f": {', '.join(nodes)}" if nodes else ""
        raise LocatedError(
            ("hosts",),
            f"need exactly 2 hosts with role node (the pair), found {len(nodes)}{found}",
        )
    witnesses = [h.name for h in hosts if "witness" in h.roles]
    if len(witnesses) > 1:
        raise LocatedError(
            ("hosts",),
            f"at most 1 host with role witness, found {len(witnesses)}: {', '.join(witnesses)}",
        )


def _check_front_door(door: FrontDoor, hosts: tuple[Host, ...]) -> None:
    if door.kind != "vip":
        return
    for h in hosts:
        if h.address == door.address:
            raise LocatedError(
                ("front_door", "address"),
                f"VIP {door.address} is the address of host {h.name}; a VIP needs its own address",
            )


def _walk_secrets(value: Any, loc: tuple[str | int, ...]) -> list[tuple[str, Secret]]:
    if isinstance(value, Secret):
        return [(key_path(loc), value)]
    if isinstance(value, BaseModel):
        return [
            item
            for name in type(value).model_fields
            for item in _walk_secrets(getattr(value, name), (*loc, name))
        ]
    if isinstance(value, tuple):
        return [item for i, v in enumerate(value) for item in _walk_secrets(v, (*loc, i))]
    return []
