"""Who is who in a rollback: the target (the node that holds the data and becomes the single
server), its peer (which stops serving), the node the upgrade's backup was taken on, and
where that backup and the app's pre-upgrade env file live."""

from __future__ import annotations

from dataclasses import dataclass

from hapair.exec.runtime import ServiceRuntime
from hapair.inventory import Host
from hapair.plan.step import StepContext
from hapair.workflows.runtimes import runtime_for as host_runtime
from hapair.workflows.upgrade.params import UpgradeParams
from hapair.workflows.upgrade.steps_base import BACKUP_DIR

PLAN = "rollback"
CONFIGS_ARCHIVE = f"{BACKUP_DIR}/configs.tar.gz"
DEFAULT_SUPERVISOR_CONF = "/etc/supervisor/supervisord.conf"
DEFAULT_INCLUDE_DIR = "/etc/supervisor/conf.d"


def sid(host: str, name: str) -> str:
    return f"{PLAN}/{host}/{name}"


@dataclass(frozen=True)
class RollbackParams:
    up: UpgradeParams
    target: str

    def __post_init__(self) -> None:
        names = [n.name for n in self.up.data_nodes]
        if self.target not in names:
            raise ValueError(f"rollback target {self.target!r} is not a data node ({names})")

    @property
    def peer(self) -> str:
        return self.up.peer_of(self.target).name

    @property
    def first(self) -> str:
        """The upgrade's single server: its backup and pre-upgrade env file are there."""
        return self.up.names.primary

    def host(self, name: str) -> Host:
        return self.up.host(name)

    @property
    def all_hosts(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.up.etcd_hosts)

    @property
    def env_path(self) -> str:
        b = self.up.inv.services.backend
        return b.env_file or f"{b.app_dir}/.env"

    @property
    def saved_env_path(self) -> str:
        return f"{self.env_path}.hapair-before"  # written by the upgrade's app.via-router

    def supervisor_conf(self, host: str) -> str:
        sup = self.host(host).supervisor
        return sup.config if sup else DEFAULT_SUPERVISOR_CONF

    def include_dir(self, host: str) -> str:
        sup = self.host(host).supervisor
        return sup.include_dir if sup else DEFAULT_INCLUDE_DIR

    def runtime(self, ctx: StepContext, host: str) -> ServiceRuntime:
        return host_runtime(self.host(host), ctx.on(host))

    def runtime_for(self, ctx: StepContext, host: str) -> ServiceRuntime:
        return self.runtime(ctx, host)  # the RuntimeFor signature of the upgrade's stepkit

    @property
    def vip(self) -> str:
        return self.up.inv.front_door.address

    @property
    def interface(self) -> str:
        return self.up.inv.front_door.interface or "eth0"

    @property
    def front_url(self) -> str:
        door = self.up.inv.front_door
        return f"http://{door.address}:{door.port}"

    @property
    def database(self) -> str:
        return self.up.inv.services.postgres.database

    @property
    def data_dir(self) -> str:
        return self.up.inv.services.postgres.data_dir
