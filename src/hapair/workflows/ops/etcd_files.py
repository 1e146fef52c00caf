"""An etcd member's config file as a recovery rewrites it: forced into a one-member cluster,
re-added to the live cluster, then back to normal.

Native hosts: the file hapair renders (components/etcd) at the member's config path. Compose
hosts: the bind-mounted file of the host's generated bundle, read and edited — its container
paths and listen addresses are the generator's; only the keys a recovery needs change.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from ruamel.yaml import YAML

from hapair.components.common import dump_yaml
from hapair.components.etcd.config import EtcdMember, EtcdParams, config_dict
from hapair.components.etcd.recover import force_new_cluster_config, rejoin_config
from hapair.compose.generate import etcd_config_file
from hapair.compose.host_runtime import ComposeHostRuntime
from hapair.errors import StepFailed
from hapair.exec.transport import Transport
from hapair.workflows.context import WorkflowContext
from hapair.workflows.upgrade.params import UpgradeParams

RESEEDED = ".reseeded-"


@dataclass(frozen=True)
class MemberFiles:
    params: EtcdParams
    path: str  # on the host
    base: dict[str, Any]  # the member's normal config
    containerised: bool
    mode: int = 0o644

    def normal(self) -> str:
        where = " (in a container)" if self.containerised else ""
        return dump_yaml(self.base,
                         header=f"etcd member {self.params.name} — rendered by hapair{where}")

    def forced(self) -> str:
        return force_new_cluster_config(self.params, self.base).content

    def rejoining(self, members_now: list[EtcdMember]) -> str:
        return rejoin_config(self.params, members_now, self.base).content

    def with_fresh_data(self, t: Transport) -> MemberFiles:
        """The member's data set aside (never deleted) before it is re-added empty. Native:
        its directory moved. Compose: the etcd image has no shell to move anything with, so
        the member gets a new directory beside the old one in its volume."""
        data = str(self.base["data-dir"])
        if self.containerised:
            fresh = f"{data.split(RESEEDED)[0]}{RESEEDED}{time.strftime('%Y%m%dT%H%M%S')}"
            return replace(self, base={**self.base, "data-dir": fresh})
        t.run(["sh", "-c", 'set -e; if [ -d "$1/member" ]; then mv "$1" "$1.stale-$(date '
               '+%Y%m%dT%H%M%S)"; fi; install -d -m 0700 -o etcd -g etcd "$1"', "sh", data])
        return self


def member_files(ctx: WorkflowContext, p: UpgradeParams, host: str) -> MemberFiles:
    params = p.etcd(host)
    runtime = ctx.runtime(host)
    if not isinstance(runtime, ComposeHostRuntime):
        return MemberFiles(params, params.config_path, config_dict(params), False)
    path = etcd_config_file(runtime.bundle_dir)
    text = ctx.transports[host].read_file(path).decode()
    base = YAML(typ="safe", pure=True).load(text)
    if not isinstance(base, dict) or "data-dir" not in base:
        raise StepFailed(f"{host}: {path} is not an etcd config with a data-dir")
    base.pop("force-new-cluster", None)  # left by a forced start that was cut short
    return MemberFiles(params, path, base, True)
