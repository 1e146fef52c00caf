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


def shell_for(runtime: ServiceRuntime, transport: Transport, program: str) -> Transport:
    if isinstance(runtime, ComposeHostRuntime):
        return runtime.shell(program)
    return transport
