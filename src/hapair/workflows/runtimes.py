"""The ServiceRuntime and the tool shell of an inventory host, whatever runs its services.

`runtime: supervisor` → SupervisorRuntime (native programs); `runtime: compose` →
ComposeHostRuntime (hapair's generated project + the user's). `shell_for` is where a tool of a
program runs (psql beside PostgreSQL, redis-cli beside Redis): the host itself for native
programs, the program's container on compose.
"""

from __future__ import annotations

from collections.abc import Sequence

from hapair.compose.host_runtime import ComposeHostRuntime
from hapair.errors import Refused
from hapair.exec.runtime import ServiceRuntime
from hapair.exec.supervisor import SupervisorRuntime
from hapair.exec.transport import Transport
from hapair.exec.with_env import WithEnv
from hapair.inventory.model import Host


def runtime_for(host: Host, transport: Transport) -> ServiceRuntime:
    if host.runtime == "compose":
        return ComposeHostRuntime(transport, host)
    if host.supervisor is None:
        return SupervisorRuntime(transport)
    return SupervisorRuntime(transport, config=host.supervisor.config,
                             include_dir=host.supervisor.include_dir)


def containerised(runtime: ServiceRuntime) -> bool:
    """Do this host's programs run in containers (their tools too, their data in volumes)?"""
    return isinstance(runtime, ComposeHostRuntime)


def require_programs(runtime: ServiceRuntime, names: Sequence[str]) -> None:
    """Refuse before acting when a compose host has no place for one of `names` (so a
    sequence of stops never ends halfway); native hosts accept any program name."""
    if isinstance(runtime, ComposeHostRuntime):
        for name in names:
            runtime.placement(name)


def native_only(runtime: ServiceRuntime, host: str, what: str) -> None:
    """Refuse an operation whose steps edit native files, before it changes anything."""
    if isinstance(runtime, ComposeHostRuntime):
        raise Refused(f"{host}: {what} is not available on compose hosts yet (it edits the "
                      "native layout's files); see docs/compose.md")


# Programs whose container holds PostgreSQL: its tools connect over the local socket.
PG_PROGRAMS = ("patroni", "postgres")


def shell_for(runtime: ServiceRuntime, transport: Transport, program: str,
              pg_owner: str | None = None) -> Transport:
    """`pg_owner`: the role psql and pg_* tools connect as in a PostgreSQL container. The
    official image has no `postgres` role (its superuser is POSTGRES_USER, the inventory's
    owner); the OS user postgres is peer-mapped to it there. Database `postgres` is the
    default (it always exists; an explicit -d wins)."""
    if not isinstance(runtime, ComposeHostRuntime):
        return transport
    shell = runtime.shell(program)
    if program in PG_PROGRAMS and pg_owner:
        return WithEnv(shell, {"PGUSER": pg_owner, "PGDATABASE": "postgres"})
    return shell
