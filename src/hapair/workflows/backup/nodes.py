"""The pair as the backup workflows see it: each node's transport, PostgreSQL connection and
backup directory, and how to observe who is primary right now.

Everything runs on the nodes through their Transport, as the postgres OS user with peer
authentication. The controller never connects to PostgreSQL itself. On a native host that
transport is the host; on a compose host it is the hapair-patroni container, and the host's
own transport is kept for what happens outside it (containers.py).
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from hapair.components.pgdump import PROBE_SQL, PgConn, parse_probe, psql_argv
from hapair.errors import CommandFailed, HapairError, Refused, UsageError
from hapair.exec.audit import AUDIT_LOG, Audit
from hapair.exec.transport import CommandResult, Transport
from hapair.inventory import Host, Inventory
from hapair.plan.step import one_line
from hapair.workflows.backup import containers
from hapair.workflows.backup.source import (
    ClusterState,
    NodeState,
    states_from_patroni,
    states_from_probes,
)

DEFAULT_BACKUP_DIR = "/var/lib/hapair/backups"
DEFAULT_SOCKET_DIR = "/var/run/postgresql"
PATRONI_PORT = 8008
PROBE_TIMEOUT = 15.0
STEP_TIMEOUT = 300.0
LONG_TIMEOUT = 6 * 3600.0  # a dump or a restore of a big database; still bounded

Log = Callable[[str], None]


def no_log(_line: str) -> None:
    pass


class SecretValue(Protocol):
    """hapair.inventory.Secret, or any value that shows itself only on demand."""

    def reveal(self) -> str: ...


@dataclass(frozen=True)
class Node:
    name: str
    transport: Transport  # where the tools run: the host, or its hapair-patroni container
    address: str  # the node's own address: how its peer reaches its PostgreSQL
    pg: PgConn  # local connection over the Unix socket (peer auth)
    backup_dir: str = DEFAULT_BACKUP_DIR
    patroni_url: str | None = None  # Patroni REST base, e.g. http://10.99.0.11:8008
    os_user: str = "postgres"
    audit_log: str = AUDIT_LOG
    # compose: the host itself (the backup directory's owner and mode, the audit log, the
    # Patroni REST probe); None when the tools run on the host already
    host_transport: Transport | None = None
    container: str | None = None  # compose: the service the tools run in

    @property
    def on_host(self) -> Transport:
        return self.host_transport if self.host_transport is not None else self.transport

    @property
    def where(self) -> str:
        return f"{self.name} (in {self.container})" if self.container else self.name

    def close(self) -> None:
        self.transport.close()
        if self.host_transport is not None:
            self.host_transport.close()


@dataclass(frozen=True)
class Pair:
    """What a backup, verify or restore run needs to know about the deployment."""

    cluster: str
    nodes: tuple[Node, ...]
    database: str  # the live application database (never written to)
    owner: str
    superuser: str = "postgres"
    superuser_password: SecretValue | None = field(default=None, repr=False)
    backend_env_file: str | None = None

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)


@dataclass(frozen=True)
class Settings:
    """Per-run choices from the CLI that the inventory does not hold."""

    backup_dir: str = DEFAULT_BACKUP_DIR
    socket_dir: str = DEFAULT_SOCKET_DIR
    patroni_port: int = PATRONI_PORT

    def __post_init__(self) -> None:
        for flag, path in (("--backup-dir", self.backup_dir), ("--socket-dir", self.socket_dir)):
            # Paths travel in argv and in a psql script line: plain absolute paths only.
            if not path.startswith("/") or any(c in path for c in "\\\n\r\t'\""):
                raise UsageError(f"{flag} {path!r}: expected an absolute path without quotes, "
                                 "backslashes or control characters")


TransportFor = Callable[[Inventory, Host], Transport]


def ssh_transport_for(inv: Inventory, host: Host) -> Transport:
    from hapair.exec.ssh import SSHTransport  # paramiko is only loaded when SSH is used

    index = inv.hosts.index(host)
    return SSHTransport(
        host.name, host.address, host.ssh.port, host.ssh.user, str(host.ssh.key),
        host.ssh.host_key, host_key_ref=f"hosts[{index}].ssh.host_key",
    )


def pair_from_inventory(
    inv: Inventory, settings: Settings, transport_for: TransportFor = ssh_transport_for
) -> Pair:
    runtimes = sorted({h.runtime for h in inv.nodes})
    if len(runtimes) > 1:
        raise Refused("`hapair backup` needs both nodes on one layout; the inventory has "
                      + ", ".join(f"{h.name} on {h.runtime}" for h in inv.nodes))
    compose = runtimes == ["compose"]
    if compose:
        containers.require_mounted_dir(settings.backup_dir)
    pg = inv.services.postgres
    nodes = tuple(_node(inv, h, settings, transport_for(inv, h)) for h in inv.nodes)
    return Pair(
        cluster=inv.cluster,
        nodes=nodes,
        database=pg.database,
        owner=pg.owner,
        # the official image's superuser is POSTGRES_USER (the owner): it has no `postgres`
        superuser=pg.owner if compose else "postgres",
        superuser_password=pg.superuser_password,
        backend_env_file=inv.services.backend.env_file,
    )


def _node(inv: Inventory, h: Host, settings: Settings, transport: Transport) -> Node:
    pg = inv.services.postgres
    url = f"http://{_url_host(h.address)}:{settings.patroni_port}"
    if h.runtime != "compose":
        return Node(h.name, transport, h.address, PgConn(pg.bin_dir, pg.port, settings.socket_dir),
                    backup_dir=settings.backup_dir, patroni_url=url)
    return Node(
        h.name, containers.ContainerShell(transport, h), h.address,
        PgConn(pg.bin_dir, containers.PORT, settings.socket_dir, pg.owner),
        backup_dir=settings.backup_dir, patroni_url=url,
        host_transport=transport, container=containers.SERVICE,
    )


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


# --- commands on a node ---------------------------------------------------------------------


def psql(
    node: Node,
    sql: str,
    *,
    database: str = "postgres",
    variables: Mapping[str, str] | None = None,
    timeout: float = STEP_TIMEOUT,
) -> CommandResult:
    """Run a psql script (on stdin) as the postgres OS user; any SQL error fails it."""
    return node.transport.run(
        psql_argv(node.pg, database, variables), input=sql, user=node.os_user, timeout=timeout
    )


def as_postgres(node: Node, argv: list[str], *, timeout: float = STEP_TIMEOUT,
                env: Mapping[str, str] | None = None) -> CommandResult:
    return node.transport.run(argv, user=node.os_user, timeout=timeout, env=env)


def error_text(exc: HapairError) -> str:
    """The useful part of an error, one line: a command's stderr tail, or the message."""
    if isinstance(exc, CommandFailed) and exc.stderr.strip():
        return one_line(" | ".join(exc.stderr.strip().splitlines()[-2:]))
    return one_line(str(exc))


# --- who is primary -------------------------------------------------------------------------


def observe(pair: Pair, log: Log = no_log) -> ClusterState:
    """Patroni's view when its REST API answers on any node, else SQL on each node."""
    names = [n.name for n in pair.nodes]
    tried = []
    for node in pair.nodes:
        if not node.patroni_url:
            continue
        url = f"{node.patroni_url}/cluster"
        try:  # curl on the host: the REST port is published on its private address
            r = node.on_host.run(
                ["curl", "-sS", "-f", "--max-time", "5", url], check=False, timeout=PROBE_TIMEOUT
            )
        except HapairError as exc:
            tried.append(f"{node.name}: {error_text(exc)}")
            continue
        if r.ok:
            return ClusterState(states_from_patroni(r.stdout, names),
                                f"Patroni /cluster (asked on {node.name})")
        tried.append(f"{node.name}: {one_line(r.stderr) or f'curl exited {r.returncode}'}")
    if tried:
        log("Patroni REST API not answering (" + "; ".join(tried) + "): asking PostgreSQL")
    probes: dict[str, Mapping[str, object] | str] = {}
    for node in pair.nodes:
        try:
            probes[node.name] = parse_probe(psql(node, PROBE_SQL, timeout=PROBE_TIMEOUT).stdout)
        except HapairError as exc:
            probes[node.name] = error_text(exc)
    return ClusterState(states_from_probes(probes), "SQL on each node (no Patroni REST answer)")


def the_primary(pair: Pair, cluster: ClusterState, why: str) -> Node:
    """The one writable node, or Refused naming what was seen."""
    primaries = cluster.primaries()
    if len(primaries) != 1:
        seen = "; ".join(f"{n.name} {n.role} ({n.state})" for n in cluster.nodes)
        count = "no primary" if not primaries else "several primaries"
        raise Refused(f"{why} needs exactly one writable primary; found {count}: {seen}")
    return pair.node(primaries[0].name)


def states_line(states: tuple[NodeState, ...]) -> str:
    return "; ".join(f"{n.name} {n.role} ({n.state})" for n in states)


# --- audit ----------------------------------------------------------------------------------


def operator() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def audit(node: Node, run_id: str, step: str, result: str, *, quiet: bool = False) -> None:
    """One audit line on the node. `quiet`: on a path that already fails, an audit error must
    not hide the real one."""
    try:
        Audit({node.name: node.on_host}, run_id, operator(), path=node.audit_log).record(
            node.name, step, result
        )
    except HapairError:
        if not quiet:
            raise
