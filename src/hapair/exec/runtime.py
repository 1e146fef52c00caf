"""The service-runtime contract: start/stop/restart/status/logs of a named service on a host.

`supervisor` (native processes under supervisord) implements it now; `compose` (docker
compose) will implement the same interface, so workflows never care which one a host uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class ServiceState(StrEnum):
    RUNNING = "running"
    STARTING = "starting"
    STOPPED = "stopped"
    FAILED = "failed"  # exited unexpectedly / fatal / backoff
    ABSENT = "absent"  # not defined on this host


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: ServiceState
    pid: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class ServiceSpec:
    """A long-running service as hapair defines it on a host.

    Secrets never go in `environment` (it ends up in a config file and /proc); services read
    them from 0600 files instead.
    """

    name: str
    command: tuple[str, ...]
    user: str = "root"
    directory: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    autostart: bool = True  # started when the host boots
    autorestart: bool = True
    stop_signal: str = "TERM"
    stop_wait_secs: int = 60  # PostgreSQL needs time for a clean shutdown
    priority: int = 500


class ServiceRuntime(Protocol):
    def define(self, spec: ServiceSpec) -> None:
        """Create or update the service definition; the runtime starts it if autostart is set
        (as supervisord's `update` and `docker compose up` do)."""
        ...

    def remove(self, name: str) -> None: ...

    def start(self, name: str) -> None: ...

    def stop(self, name: str) -> None: ...

    def restart(self, name: str) -> None: ...

    def status(self, name: str) -> ServiceStatus: ...

    def status_all(self) -> list[ServiceStatus]: ...

    def logs(self, name: str, lines: int = 100) -> str: ...
