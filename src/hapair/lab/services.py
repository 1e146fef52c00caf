"""The lab hosts' services, seen through hapair's own SupervisorRuntime (as workflows see them)."""

from __future__ import annotations

from typing import Any

from hapair.exec.supervisor import SupervisorRuntime
from hapair.lab.config import LabConfig
from hapair.lab.transport import LabHostTransport


def runtime(cfg: LabConfig, name: str) -> SupervisorRuntime:
    return SupervisorRuntime(LabHostTransport(name, cfg.lab_dir))


def host_services(cfg: LabConfig, name: str) -> list[dict[str, Any]]:
    return [
        {"name": s.name, "state": s.state.value, "pid": s.pid}
        for s in runtime(cfg, name).status_all()
    ]
