"""What the compose upgrade works from: the stack discovered on node1, each host's generated
bundle (with the real secrets), the user's compose file as it must read on each node, and
one ComposeHostRuntime per host."""

from __future__ import annotations

from dataclasses import dataclass

from hapair.components.common import Credential
from hapair.compose.edits import EditResult
from hapair.compose.generate import HostBundle
from hapair.compose.generate_configs import HaSecrets
from hapair.compose.model import Stack
from hapair.workflows.backup.nodes import DEFAULT_BACKUP_DIR
from hapair.workflows.compose_hosts import ComposeHosts
from hapair.workflows.compose_preview import ComposePreview
from hapair.workflows.upgrade.params import REPLICATION_USER, UpgradeParams


def ha_secrets(p: UpgradeParams) -> HaSecrets:
    """The secrets the generated configs hold. The official image's superuser is
    POSTGRES_USER (the inventory's `owner`), whose password is `superuser_password`."""
    pg, redis = p.inv.services.postgres, p.inv.services.redis
    return HaSecrets(superuser=Credential(pg.owner, pg.superuser_password),
                     replication=Credential(REPLICATION_USER, p.replication_password),
                     redis_password=redis.password, sentinel_password=p.sentinel_password,
                     vrrp_secret=p.vrrp_secret)


@dataclass
class ComposeUpgrade(ComposeHosts):
    stack: Stack
    bundles: dict[str, HostBundle]  # host name → its generated bundle
    edits: dict[str, EditResult]  # node name → the user's compose file on that node

    @classmethod
    def from_preview(cls, p: UpgradeParams, preview: ComposePreview) -> ComposeUpgrade:
        hosts = [*p.data_nodes, p.host(p.names.witness or "")]
        return cls(p, preview.stack,
                   {h.name: b for h, b in zip(hosts, preview.bundles, strict=True)},
                   {e.node: e for e in preview.edits})

    # --- hosts -------------------------------------------------------------------------------

    @property
    def primary(self) -> str:
        return self.p.names.primary

    @property
    def standby(self) -> str:
        return self.p.names.standby

    @property
    def witness(self) -> str:
        assert self.p.names.witness is not None  # compose_preview refuses without one
        return self.p.names.witness

    # --- the data ----------------------------------------------------------------------------

    @property
    def pg_volume(self) -> str:
        volume = self.bundles[self.primary].pg_volume
        assert volume is not None  # a node bundle always names it
        return volume

    def external_volumes(self, name: str) -> list[str]:
        """The data volumes `name`'s generated file declares external (compose refuses to
        start without them rather than create empty ones): on node2, hapair creates them."""
        volumes = self.bundles[name].compose.get("volumes") or {}
        return sorted(str(v.get("name", k)) for k, v in volumes.items()
                      if isinstance(v, dict) and v.get("external"))

    @property
    def patroni_image(self) -> str:
        return str(self.bundles[self.primary].compose["services"]["hapair-patroni"]["image"])

    def backup_path(self) -> str:
        return f"{DEFAULT_BACKUP_DIR}/{self.p.inv.cluster}-before-upgrade.dump"
