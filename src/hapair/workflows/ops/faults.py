"""How a drill injects a real fault. In the lab: power loss (`lab crash`) or a network
partition of the host. On real servers: the primary's services are stopped through its
service runtime (after the operator confirmed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from hapair.errors import UsageError
from hapair.exec.transport import Transport
from hapair.inventory import Inventory
from hapair.workflows.context import WorkflowContext
from hapair.workflows.runtimes import require_programs, runtime_for, shell_for

Fault = Literal["crash", "partition", "stop"]
STOP_ORDER = ("keepalived", "nginx", "patroni", "sentinel", "redis", "etcd")


class Injector(Protocol):
    kind: Fault

    def inject(self, host: str) -> None: ...

    def heal(self, host: str) -> None: ...

    def writable_probe(self, host: str) -> bool | None:
        """Is the host's PostgreSQL accepting writes? None: cannot tell (unreachable)."""
        ...


def _say(_msg: str) -> None:
    pass


@dataclass
class LabInjector:
    kind: Fault
    inventory: Inventory | None = None  # which hosts run compose (their psql is in a container)

    def __post_init__(self) -> None:
        from hapair.lab.config import config_from_env

        self.cfg = config_from_env()
        self._shells: dict[str, Transport] = {}

    def inject(self, host: str) -> None:
        from hapair.lab import manager

        if self.kind == "crash":
            manager.crash(self.cfg, host, _say)
        else:
            manager.partition(self.cfg, host, None, _say)

    def heal(self, host: str) -> None:
        from hapair.lab import manager

        if self.kind == "crash":
            manager.boot(self.cfg, host, _say)
        else:
            manager.heal(self.cfg, host, None, _say)

    def writable_probe(self, host: str) -> bool | None:
        try:
            res = self._pg_shell(host).run(
                ["psql", "-X", "-Atc", "SELECT NOT pg_is_in_recovery()"], user="postgres",
                check=False, timeout=5)
        except Exception:  # noqa: BLE001 — a dead host cannot answer; that is the point
            return None
        return res.stdout.strip() == "t" if res.ok else None

    def _pg_shell(self, host: str) -> Transport:
        """Enters the host's namespaces directly (works while it is partitioned); on a
        compose host, then Patroni's container."""
        if host not in self._shells:
            from hapair.lab.transport import LabHostTransport

            t: Transport = LabHostTransport(host)
            inv = self.inventory
            if inv is not None and inv.host(host).runtime == "compose":
                t = shell_for(runtime_for(inv.host(host), t), t, "patroni",
                              pg_owner=inv.services.postgres.owner)
            self._shells[host] = t
        return self._shells[host]


@dataclass
class RuntimeInjector:
    """Real servers: stop the primary's HA services (Patroni stops PostgreSQL with it)."""

    ctx: WorkflowContext
    kind: Fault = "stop"

    def inject(self, host: str) -> None:
        runtime = self.ctx.runtime(host)
        require_programs(runtime, STOP_ORDER)
        for name in STOP_ORDER:
            runtime.stop(name)

    def heal(self, host: str) -> None:
        runtime = self.ctx.runtime(host)
        for name in reversed(STOP_ORDER):
            runtime.start(name)

    def writable_probe(self, host: str) -> bool | None:
        res = self.ctx.shell(host, "patroni").run(
            ["psql", "-X", "-Atc", "SELECT NOT pg_is_in_recovery()"], user="postgres",
            check=False, timeout=5)
        return res.stdout.strip() == "t" if res.ok else None


def is_lab_inventory(inventory: Path) -> bool:
    from hapair.lab.config import config_from_env

    try:
        return config_from_env().inventory_file.resolve() == inventory.resolve()
    except Exception:  # noqa: BLE001 — no lab config: not the lab
        return False


def injector_for(ctx: WorkflowContext, inventory: Path, fault: Fault) -> Injector:
    if is_lab_inventory(inventory):
        if fault == "stop":
            return RuntimeInjector(ctx)
        return LabInjector(fault, ctx.inventory)
    if fault != "stop":
        raise UsageError(f"--fault {fault} exists only in the lab; on real servers the drill "
                         "stops the primary's services (--fault stop)")
    return RuntimeInjector(ctx)
